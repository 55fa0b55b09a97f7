package suite

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // OAEP with SHA-1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/state"
)

// hashOf is a signing algorithm's hash, from its name.
func hashOf(alg string) crypto.Hash {
	switch {
	case strings.HasSuffix(alg, "_256"):
		return crypto.SHA256
	case strings.HasSuffix(alg, "_384"):
		return crypto.SHA384
	case strings.HasSuffix(alg, "_512"):
		return crypto.SHA512
	}
	panic("no hash in " + alg)
}

func digestOf(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// goVerify verifies a KMS signature with Go's crypto, as AWS defines each
// algorithm: PKCS #1 v1.5, PSS with a salt of the hash's length, and
// ECDSA as a DER sequence.
func goVerify(pub crypto.PublicKey, alg string, digest, sig []byte) error {
	h := hashOf(alg)
	switch {
	case strings.HasPrefix(alg, "RSASSA_PKCS1_V1_5_"):
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), h, digest, sig)
	case strings.HasPrefix(alg, "RSASSA_PSS_"):
		return rsa.VerifyPSS(pub.(*rsa.PublicKey), h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
	case strings.HasPrefix(alg, "ECDSA_"):
		if k1, ok := pub.(*k1PublicKey); ok {
			return k1Verify(k1, digest, sig)
		}
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig) {
			return fmt.Errorf("ECDSA signature invalid")
		}
		return nil
	}
	return fmt.Errorf("unknown algorithm %s", alg)
}

// signingSpecs are the key specs that sign with a hash (RSA and ECDSA),
// which CreateKey makes; ML-DSA's are testMLDSA's.
func signingSpecs() []string {
	var out []string
	for _, spec := range keySpecs() {
		if _, no := unsupportedSpecs[spec]; no || strings.HasPrefix(spec, "ML_DSA_") {
			continue
		}
		for _, u := range state.KMSKeySpecs[spec] {
			if u == "SIGN_VERIFY" {
				out = append(out, spec)
			}
		}
	}
	return out
}

// publicKey is GetPublicKey's answer, checked against the key's
// metadata, and the parsed key.
func publicKey(t *testing.T, c *kms.Client, arn string) (*kms.GetPublicKeyOutput, crypto.PublicKey) {
	t.Helper()
	out, err := c.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	require.NoError(t, err)
	m := describe(t, c, arn)
	assert.Equal(t, arn, aws.ToString(out.KeyId))
	assert.Equal(t, m.KeySpec, out.KeySpec)
	assert.Equal(t, m.KeyUsage, out.KeyUsage)
	assert.Equal(t, m.SigningAlgorithms, out.SigningAlgorithms)
	assert.Equal(t, m.EncryptionAlgorithms, out.EncryptionAlgorithms)
	pub, err := parsePublicKey(out.PublicKey)
	require.NoError(t, err, "GetPublicKey answers DER SPKI")
	return out, pub
}

// testSignVerify: Sign and Verify with every algorithm of every
// asymmetric signing spec, RAW and DIGEST, each signature also verified
// with Go's crypto against GetPublicKey's key.
func testSignVerify(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	for _, spec := range signingSpecs() {
		t.Run(spec, func(t *testing.T) {
			arn := newKey(t, c, types.KeySpec(spec), types.KeyUsageTypeSignVerify)
			out, pub := publicKey(t, c, arn)
			_, want, _ := wantAlgorithms(spec, "SIGN_VERIFY")
			require.Equal(t, want, out.SigningAlgorithms)
			if strings.HasPrefix(spec, "RSA_") {
				var bits int
				fmt.Sscanf(spec, "RSA_%d", &bits)
				rsaBits(bits)(t, pub)
			}
			for _, alg := range out.SigningAlgorithms {
				t.Run(string(alg), func(t *testing.T) {
					msg := randBytes(300)
					digest := digestOf(hashOf(string(alg)), msg)
					verify := func(m []byte, mt types.MessageType, sig []byte) error {
						v, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(arn), Message: m, MessageType: mt, Signature: sig, SigningAlgorithm: alg})
						if err == nil {
							assert.True(t, v.SignatureValid)
							assert.Equal(t, arn, aws.ToString(v.KeyId))
							assert.Equal(t, alg, v.SigningAlgorithm)
						}
						return err
					}
					for _, mt := range []types.MessageType{"", types.MessageTypeRaw, types.MessageTypeDigest} {
						m := msg
						if mt == types.MessageTypeDigest {
							m = digest
						}
						s, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(keyIDOf(arn)), Message: m, MessageType: mt, SigningAlgorithm: alg})
						require.NoError(t, err, "Sign %s", mt)
						assert.Equal(t, arn, aws.ToString(s.KeyId))
						assert.Equal(t, alg, s.SigningAlgorithm)
						require.NoError(t, goVerify(pub, string(alg), digest, s.Signature), "Go verifies the %s signature", mt)
						require.NoError(t, verify(msg, types.MessageTypeRaw, s.Signature))
						require.NoError(t, verify(digest, types.MessageTypeDigest, s.Signature))
						requireErr[*types.KMSInvalidSignatureException](t, verify(flip(msg, 0), types.MessageTypeRaw, s.Signature), anyMessage)
						requireErr[*types.KMSInvalidSignatureException](t, verify(msg, types.MessageTypeRaw, flip(s.Signature, len(s.Signature)/2)), anyMessage)
					}
					_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: digest[1:], MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
					requireCode(t, err, "ValidationException", "Digest is invalid length for algorithm "+string(alg)+".")
				})
			}
			// An algorithm of another key spec.
			other := types.SigningAlgorithmSpecEcdsaSha384
			if spec == "ECC_NIST_P384" {
				other = types.SigningAlgorithmSpecEcdsaSha256
			}
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: []byte("m"), SigningAlgorithm: other})
			requireErr[*types.InvalidKeyUsageException](t, err, arn+" does not support signing algorithm "+string(other))
		})
	}
	t.Run("KeyUsage", func(t *testing.T) {
		for _, k := range []struct {
			spec  types.KeySpec
			usage types.KeyUsageType
		}{{types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt}, {types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt},
			{types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac}} {
			arn := newKey(t, c, k.spec, k.usage)
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
			requireErr[*types.InvalidKeyUsageException](t, err, arn+" key usage is "+string(k.usage)+" which is not valid for Sign.")
			_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(arn), Message: []byte("m"), Signature: []byte("s"),
				SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
			requireErr[*types.InvalidKeyUsageException](t, err, arn+" key usage is "+string(k.usage)+" which is not valid for Verify.")
		}
		sym := newSymmetric(t, c)
		_, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(sym)})
		requireErr[*types.UnsupportedOperationException](t, err, anyMessage)
	})
}

// testRSAEncryption: RSAES-OAEP. Ciphertext made with Go's
// rsa.EncryptOAEP on the downloaded public key decrypts through KMS.
func testRSAEncryption(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	hashes := map[types.EncryptionAlgorithmSpec]crypto.Hash{
		types.EncryptionAlgorithmSpecRsaesOaepSha1:   crypto.SHA1,
		types.EncryptionAlgorithmSpecRsaesOaepSha256: crypto.SHA256,
	}
	for _, bits := range []int{2048, 3072, 4096} {
		spec := types.KeySpec(fmt.Sprintf("RSA_%d", bits))
		t.Run(string(spec), func(t *testing.T) {
			arn := newKey(t, c, spec, types.KeyUsageTypeEncryptDecrypt)
			out, pub := publicKey(t, c, arn)
			rsaBits(bits)(t, pub)
			assert.Equal(t, []types.EncryptionAlgorithmSpec{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}, out.EncryptionAlgorithms)
			for _, alg := range out.EncryptionAlgorithms {
				h := hashes[alg]
				max := bits/8 - 2*h.Size() - 2 // OAEP's longest message
				for _, n := range []int{1, 100, max} {
					pt := randBytes(n)
					ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pub.(*rsa.PublicKey), pt, nil)
					require.NoError(t, err)
					dec, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: ct, EncryptionAlgorithm: alg})
					require.NoError(t, err, "KMS decrypts Go's %s ciphertext of %d bytes", alg, n)
					assert.Equal(t, pt, dec.Plaintext)
					assert.Equal(t, arn, aws.ToString(dec.KeyId))
					assert.Equal(t, alg, dec.EncryptionAlgorithm)
				}
				enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("through KMS"), EncryptionAlgorithm: alg})
				require.NoError(t, err)
				assert.Equal(t, arn, aws.ToString(enc.KeyId))
				assert.Equal(t, alg, enc.EncryptionAlgorithm)
				assert.Len(t, enc.CiphertextBlob, bits/8, "raw OAEP ciphertext")
				dec, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(keyIDOf(arn)), CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: alg})
				require.NoError(t, err)
				assert.Equal(t, []byte("through KMS"), dec.Plaintext)
			}
			ct, err := rsa.EncryptOAEP(crypto.SHA256.New(), rand.Reader, pub.(*rsa.PublicKey), []byte("x"), nil)
			require.NoError(t, err)
			_, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: ct, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
			requireErr[*types.InvalidCiphertextException](t, err, anyMessage)
			_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
			requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
		})
	}
}

// testMac: GenerateMac and VerifyMac for every HMAC spec.
func testMac(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	for _, spec := range []types.KeySpec{types.KeySpecHmac224, types.KeySpecHmac256, types.KeySpecHmac384, types.KeySpecHmac512} {
		t.Run(string(spec), func(t *testing.T) {
			arn := newKey(t, c, spec, types.KeyUsageTypeGenerateVerifyMac)
			m := describe(t, c, arn)
			require.Len(t, m.MacAlgorithms, 1)
			alg := m.MacAlgorithms[0]
			var bits int
			fmt.Sscanf(string(spec), "HMAC_%d", &bits)
			msg := randBytes(200)
			out, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(arn), Message: msg, MacAlgorithm: alg})
			require.NoError(t, err)
			assert.Len(t, out.Mac, bits/8)
			assert.Equal(t, arn, aws.ToString(out.KeyId))
			assert.Equal(t, alg, out.MacAlgorithm)
			again, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(keyIDOf(arn)), Message: msg, MacAlgorithm: alg})
			require.NoError(t, err)
			assert.Equal(t, out.Mac, again.Mac, "a MAC is a function of key and message")

			v, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(arn), Message: msg, Mac: out.Mac, MacAlgorithm: alg})
			require.NoError(t, err)
			assert.True(t, v.MacValid)
			assert.Equal(t, arn, aws.ToString(v.KeyId))
			assert.Equal(t, alg, v.MacAlgorithm)
			for _, bad := range []struct{ msg, mac []byte }{{flip(msg, 3), out.Mac}, {msg, flip(out.Mac, 0)}, {msg, out.Mac[:len(out.Mac)-1]}} {
				_, err = c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(arn), Message: bad.msg, Mac: bad.mac, MacAlgorithm: alg})
				requireErr[*types.KMSInvalidMacException](t, err, anyMessage)
			}
			other := types.MacAlgorithmSpecHmacSha256
			if alg == other {
				other = types.MacAlgorithmSpecHmacSha512
			}
			_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(arn), Message: msg, MacAlgorithm: other})
			requireErr[*types.InvalidKeyUsageException](t, err, arn+" does not support MAC algorithm "+string(other))
		})
	}
	sym := newSymmetric(t, c)
	_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(sym), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	requireErr[*types.InvalidKeyUsageException](t, err, sym+" key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")
}
