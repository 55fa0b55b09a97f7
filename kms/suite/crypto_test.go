package suite

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x01
	return out
}

// testEncryptDecrypt: Encrypt and Decrypt with an encryption context;
// a wrong or missing context is InvalidCiphertextException, another key
// IncorrectKeyException; the response KeyId is the key ARN.
func testEncryptDecrypt(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn, other := newSymmetric(t, c), newSymmetric(t, c)
	alias := newAlias()
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(arn)})
	require.NoError(t, err)
	ec := map[string]string{"purpose": "suite", "tenant": "a=b,c", "ünï": "cödé"}
	pt := randBytes(100)

	for _, form := range []string{keyIDOf(arn), arn, alias, aliasARN(mainRegion, alias)} {
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(form), Plaintext: pt, EncryptionContext: ec})
		require.NoError(t, err, "Encrypt with %s", form)
		assert.Equal(t, arn, aws.ToString(enc.KeyId), "the response KeyId is the key ARN")
		assert.Equal(t, types.EncryptionAlgorithmSpecSymmetricDefault, enc.EncryptionAlgorithm)
		assert.NotContains(t, string(enc.CiphertextBlob), string(pt))
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		require.NoError(t, err, "Decrypt needs no KeyId")
		assert.Equal(t, pt, dec.Plaintext)
		assert.Equal(t, arn, aws.ToString(dec.KeyId))
		assert.Equal(t, types.EncryptionAlgorithmSpecSymmetricDefault, dec.EncryptionAlgorithm)
		dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(form)})
		require.NoError(t, err, "Decrypt with KeyId %s", form)
		assert.Equal(t, pt, dec.Plaintext)
		assert.Equal(t, arn, aws.ToString(dec.KeyId))
	}

	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: pt, EncryptionContext: ec})
	require.NoError(t, err)
	blob := enc.CiphertextBlob
	t.Run("WrongContext", func(t *testing.T) {
		for name, bad := range map[string]map[string]string{
			"missing":     nil,
			"empty":       {},
			"other value": {"purpose": "suite", "tenant": "a=b,d", "ünï": "cödé"},
			"one less":    {"purpose": "suite", "tenant": "a=b,c"},
			"one more":    {"purpose": "suite", "tenant": "a=b,c", "ünï": "cödé", "x": ""},
			"moved =":     {"purpose": "suite", "tenant=a": "b,c", "ünï": "cödé"},
		} {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: bad})
			requireErr[*types.InvalidCiphertextException](t, err, "")
			_ = name
		}
		noCtx, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: pt})
		require.NoError(t, err)
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: noCtx.CiphertextBlob, EncryptionContext: map[string]string{}})
		require.NoError(t, err, "an empty context is no context")
		assert.Equal(t, pt, dec.Plaintext)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: noCtx.CiphertextBlob, EncryptionContext: ec})
		requireErr[*types.InvalidCiphertextException](t, err, "")
	})
	t.Run("IncorrectKey", func(t *testing.T) {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyId: aws.String(other)})
		requireErr[*types.IncorrectKeyException](t, err, anyMessage)
		ecc := newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyId: aws.String(ecc)})
		require.Error(t, err, "a signing key decrypts nothing")
	})
	t.Run("Tampered", func(t *testing.T) {
		for _, i := range []int{0, 1, 17, 20, 33, len(blob) - 1} {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: flip(blob, i), EncryptionContext: ec})
			require.Error(t, err, "byte %d flipped", i)
			var ic *types.InvalidCiphertextException
			var ik *types.IncorrectKeyException
			var nf *types.NotFoundException
			if !errorsAsAny(err, &ic, &ik, &nf) {
				requireCode(t, err, "AccessDeniedException", anyMessage) // the key ID now names no key
			}
		}
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: flip(blob, len(blob)-1), EncryptionContext: ec})
		requireErr[*types.InvalidCiphertextException](t, err, "")
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext of this service")})
		requireErr[*types.InvalidCiphertextException](t, err, "")
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob[:40], EncryptionContext: ec})
		requireErr[*types.InvalidCiphertextException](t, err, "")
	})
	t.Run("Bounds", func(t *testing.T) {
		for _, n := range []int{1, 4096} {
			p := randBytes(n)
			enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: p})
			require.NoError(t, err, "%d bytes", n)
			assert.LessOrEqual(t, len(enc.CiphertextBlob), 6144)
			dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			require.NoError(t, err)
			assert.Equal(t, p, dec.Plaintext)
		}
	})
	t.Run("KeyUsage", func(t *testing.T) {
		for _, k := range []struct {
			spec  types.KeySpec
			usage types.KeyUsageType
		}{{types.KeySpecRsa2048, types.KeyUsageTypeSignVerify}, {types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify},
			{types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac}} {
			key := newKey(t, c, k.spec, k.usage)
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: pt})
			requireErr[*types.InvalidKeyUsageException](t, err, key+" key usage is "+string(k.usage)+" which is not valid for Encrypt.")
		}
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: pt, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
	})
}

func errorsAsAny(err error, targets ...any) bool {
	for _, tgt := range targets {
		if errors.As(err, tgt) {
			return true
		}
	}
	return false
}

// testReEncrypt: ReEncrypt from one key and context to another.
func testReEncrypt(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	src, dst := newSymmetric(t, c), newSymmetric(t, c)
	ec1, ec2 := map[string]string{"from": "one"}, map[string]string{"to": "two"}
	pt := []byte("re-encrypted secret")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(src), Plaintext: pt, EncryptionContext: ec1})
	require.NoError(t, err)

	re, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec1,
		DestinationKeyId: aws.String(keyIDOf(dst)), DestinationEncryptionContext: ec2})
	require.NoError(t, err)
	assert.Equal(t, dst, aws.ToString(re.KeyId))
	assert.Equal(t, src, aws.ToString(re.SourceKeyId))
	assert.Equal(t, types.EncryptionAlgorithmSpecSymmetricDefault, re.SourceEncryptionAlgorithm)
	assert.Equal(t, types.EncryptionAlgorithmSpecSymmetricDefault, re.DestinationEncryptionAlgorithm)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: ec2})
	require.NoError(t, err)
	assert.Equal(t, pt, dec.Plaintext)
	assert.Equal(t, dst, aws.ToString(dec.KeyId))
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: ec1})
	requireErr[*types.InvalidCiphertextException](t, err, "")

	// The same key, a new context.
	re2, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec1,
		SourceKeyId: aws.String(src), DestinationKeyId: aws.String(src), DestinationEncryptionContext: ec2})
	require.NoError(t, err)
	dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re2.CiphertextBlob, EncryptionContext: ec2, KeyId: aws.String(src)})
	require.NoError(t, err)
	assert.Equal(t, pt, dec.Plaintext)

	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec2, DestinationKeyId: aws.String(dst)})
	requireErr[*types.InvalidCiphertextException](t, err, "")
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec1,
		SourceKeyId: aws.String(dst), DestinationKeyId: aws.String(dst)})
	requireErr[*types.IncorrectKeyException](t, err, anyMessage)
	sign := newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec1, DestinationKeyId: aws.String(sign)})
	requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(dst)})
	require.NoError(t, err)
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec1, DestinationKeyId: aws.String(dst)})
	requireErr[*types.DisabledException](t, err, dst+" is disabled.")
}

// testDataKeys: GenerateDataKey with a KeySpec or NumberOfBytes (neither
// and both refused) and GenerateDataKeyWithoutPlaintext.
func testDataKeys(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)
	ec := map[string]string{"bucket": "suite"}
	for _, v := range []struct {
		spec types.DataKeySpec
		n    *int32
		want int
	}{{types.DataKeySpecAes256, nil, 32}, {types.DataKeySpecAes128, nil, 16}, {"", aws.Int32(1), 1}, {"", aws.Int32(64), 64}, {"", aws.Int32(1024), 1024}} {
		out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyIDOf(arn)), KeySpec: v.spec, NumberOfBytes: v.n, EncryptionContext: ec})
		require.NoError(t, err, "GenerateDataKey %s %v", v.spec, aws.ToInt32(v.n))
		assert.Len(t, out.Plaintext, v.want)
		assert.Equal(t, arn, aws.ToString(out.KeyId))
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
		require.NoError(t, err)
		assert.Equal(t, out.Plaintext, dec.Plaintext)
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
		requireErr[*types.InvalidCiphertextException](t, err, "")

		wp, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(arn),
			KeySpec: v.spec, NumberOfBytes: v.n, EncryptionContext: ec})
		require.NoError(t, err)
		assert.Equal(t, arn, aws.ToString(wp.KeyId))
		dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob, EncryptionContext: ec})
		require.NoError(t, err)
		assert.Len(t, dec.Plaintext, v.want)
	}
	a, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	b, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	assert.NotEqual(t, a.Plaintext, b.Plaintext, "every data key is new")

	const either = "Please specify either number of bytes or key spec."
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn)})
	requireCode(t, err, "ValidationException", either)
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	requireCode(t, err, "ValidationException", either)
	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(arn)})
	requireCode(t, err, "ValidationException", either)
	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(arn),
		KeySpec: types.DataKeySpecAes128, NumberOfBytes: aws.Int32(16)})
	requireCode(t, err, "ValidationException", either)

	for _, k := range []string{
		newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt),
		newKey(t, c, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac),
	} {
		_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), KeySpec: types.DataKeySpecAes256})
		requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
		_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(k), KeySpec: types.DataKeySpecAes256})
		requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
	}
}

// dataKeyPairSpecs are the pair specs the service generates, with the
// public key each must hold.
var dataKeyPairSpecs = []struct {
	spec  types.DataKeyPairSpec
	check func(t *testing.T, pub crypto.PublicKey)
}{
	{types.DataKeyPairSpecRsa2048, rsaBits(2048)},
	{types.DataKeyPairSpecRsa3072, rsaBits(3072)},
	{types.DataKeyPairSpecRsa4096, rsaBits(4096)},
	{types.DataKeyPairSpecEccNistP256, curveIs(elliptic.P256())},
	{types.DataKeyPairSpecEccNistP384, curveIs(elliptic.P384())},
	{types.DataKeyPairSpecEccNistP521, curveIs(elliptic.P521())},
	{types.DataKeyPairSpecEccSecgP256k1, func(t *testing.T, pub crypto.PublicKey) {
		_, ok := pub.(*k1PublicKey)
		require.True(t, ok, "a secp256k1 key, not %T", pub)
	}},
}

func rsaBits(n int) func(t *testing.T, pub crypto.PublicKey) {
	return func(t *testing.T, pub crypto.PublicKey) {
		p, ok := pub.(*rsa.PublicKey)
		require.True(t, ok, "an RSA key, not %T", pub)
		assert.Equal(t, n, p.N.BitLen())
		assert.Equal(t, 65537, p.E)
	}
}

func curveIs(c elliptic.Curve) func(t *testing.T, pub crypto.PublicKey) {
	return func(t *testing.T, pub crypto.PublicKey) {
		p, ok := pub.(*ecdsa.PublicKey)
		require.True(t, ok, "an EC key, not %T", pub)
		assert.Equal(t, c.Params().Name, p.Curve.Params().Name)
	}
}

// checkPair parses the SPKI public key and the PKCS #8 private key and
// checks that they are one pair.
func checkPair(t *testing.T, spki, pkcs8 []byte, check func(t *testing.T, pub crypto.PublicKey)) {
	t.Helper()
	pub, err := parsePublicKey(spki)
	require.NoError(t, err, "the public key is DER SPKI")
	check(t, pub)
	privPub, err := parsePrivateKey(pkcs8)
	require.NoError(t, err, "the private key is DER PKCS #8")
	type equaler interface{ Equal(crypto.PublicKey) bool }
	assert.True(t, privPub.(equaler).Equal(pub), "the private key is the public key's")
}

// testDataKeyPairs: GenerateDataKeyPair and its WithoutPlaintext form,
// checked by parsing the PKCS #8 and SPKI keys and by decrypting the
// private key's blob.
func testDataKeyPairs(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)
	ec := map[string]string{"pair": "suite"}
	for _, s := range dataKeyPairSpecs {
		t.Run(string(s.spec), func(t *testing.T) {
			out, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(arn), KeyPairSpec: s.spec, EncryptionContext: ec})
			require.NoError(t, err)
			assert.Equal(t, arn, aws.ToString(out.KeyId))
			assert.Equal(t, s.spec, out.KeyPairSpec)
			checkPair(t, out.PublicKey, out.PrivateKeyPlaintext, s.check)
			dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
			require.NoError(t, err)
			assert.Equal(t, out.PrivateKeyPlaintext, dec.Plaintext)
			_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob})
			requireErr[*types.InvalidCiphertextException](t, err, "")

			wp, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(arn),
				KeyPairSpec: s.spec, EncryptionContext: ec})
			require.NoError(t, err)
			assert.Equal(t, arn, aws.ToString(wp.KeyId))
			assert.Equal(t, s.spec, wp.KeyPairSpec)
			dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.PrivateKeyCiphertextBlob, EncryptionContext: ec})
			require.NoError(t, err)
			checkPair(t, wp.PublicKey, dec.Plaintext, s.check)
		})
	}
	t.Run("Refused", func(t *testing.T) {
		for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecSm2} { // SM2: China Regions only
			_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(arn), KeyPairSpec: spec})
			requireErr[*types.UnsupportedOperationException](t, err, anyMessage)
		}
		rsaKey := newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
		_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(rsaKey), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
		_, err = c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(rsaKey),
			KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
	})
}

// testGenerateRandom: GenerateRandom's sizes.
func testGenerateRandom(t *testing.T, tg *target) {
	c := tg.kms()
	var prev []byte
	for _, n := range []int32{1, 32, 1024, 1024} {
		out, err := c.GenerateRandom(t.Context(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(n)})
		require.NoError(t, err)
		assert.Len(t, out.Plaintext, int(n))
		if n == 1024 {
			assert.NotEqual(t, prev, out.Plaintext)
			prev = out.Plaintext
		}
	}
	_, err := c.GenerateRandom(t.Context(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
	requireErr[*types.CustomKeyStoreNotFoundException](t, err, anyMessage)
}
