package suite

import (
	"encoding/asn1"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mldsaSet is what the suite knows of one ML-DSA key spec, from FIPS 204
// and the NIST OIDs, and circl's verifier for it (pure ML-DSA, empty
// context): the checks outside the service.
type mldsaSet struct {
	oid            asn1.ObjectIdentifier
	pubLen, sigLen int
	verify         func(pub, msg, sig []byte) (bool, error)
}

var mldsaSets = map[types.KeySpec]mldsaSet{
	types.KeySpecMlDsa44: {asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}, mldsa44.PublicKeySize, mldsa44.SignatureSize,
		func(pub, msg, sig []byte) (bool, error) {
			var pk mldsa44.PublicKey
			if err := pk.UnmarshalBinary(pub); err != nil {
				return false, err
			}
			return mldsa44.Verify(&pk, msg, nil, sig), nil
		}},
	types.KeySpecMlDsa65: {asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}, mldsa65.PublicKeySize, mldsa65.SignatureSize,
		func(pub, msg, sig []byte) (bool, error) {
			var pk mldsa65.PublicKey
			if err := pk.UnmarshalBinary(pub); err != nil {
				return false, err
			}
			return mldsa65.Verify(&pk, msg, nil, sig), nil
		}},
	types.KeySpecMlDsa87: {asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}, mldsa87.PublicKeySize, mldsa87.SignatureSize,
		func(pub, msg, sig []byte) (bool, error) {
			var pk mldsa87.PublicKey
			if err := pk.UnmarshalBinary(pub); err != nil {
				return false, err
			}
			return mldsa87.Verify(&pk, msg, nil, sig), nil
		}},
}

// mldsaPublicKey parses GetPublicKey's DER SubjectPublicKeyInfo of an
// ML-DSA key: the set's OID with no parameters, the encoded key as the
// BIT STRING.
func mldsaPublicKey(t *testing.T, set mldsaSet, der []byte) []byte {
	t.Helper()
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	require.NoError(t, err, "GetPublicKey answers DER SPKI")
	require.Empty(t, rest)
	assert.Equal(t, set.oid, spki.Algorithm.Algorithm)
	assert.Empty(t, spki.Algorithm.Parameters.FullBytes, "the ML-DSA AlgorithmIdentifier has no parameters")
	require.Equal(t, 8*len(spki.PublicKey.Bytes), spki.PublicKey.BitLength)
	require.Len(t, spki.PublicKey.Bytes, set.pubLen)
	return spki.PublicKey.Bytes
}

// errExternalMu is the service's refusal of MessageType EXTERNAL_MU
// (kms/algorithms.go; docs/kms.md says why).
const errExternalMu = "MessageType EXTERNAL_MU is not supported by this service: sign the message itself with MessageType RAW (up to 4096 bytes)"

// testMLDSA: ML_DSA_44/65/87 keys. CreateKey and DescribeKey, GetPublicKey
// as NIST's SPKI, Sign RAW (a hedged pure ML-DSA signature, empty context)
// checked with circl's verifier on the downloaded key, Verify through KMS
// (good, changed message, changed and cut signature), DIGEST refused as
// AWS refuses it, EXTERNAL_MU refused as this service does, and the key
// rules an asymmetric key has: no rotation, no data keys, no imported
// material, key policy conditions on the signing algorithm.
func testMLDSA(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	for _, spec := range []types.KeySpec{types.KeySpecMlDsa44, types.KeySpecMlDsa65, types.KeySpecMlDsa87} {
		set := mldsaSets[spec]
		t.Run(string(spec), func(t *testing.T) {
			arn := newKey(t, c, spec, types.KeyUsageTypeSignVerify)
			m := describe(t, c, arn)
			assert.Equal(t, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecMlDsaShake256}, m.SigningAlgorithms)
			assert.Empty(t, m.EncryptionAlgorithms)
			out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyIDOf(arn))})
			require.NoError(t, err)
			assert.Equal(t, spec, out.KeySpec)
			assert.Equal(t, types.KeyUsageTypeSignVerify, out.KeyUsage)
			assert.Equal(t, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecMlDsaShake256}, out.SigningAlgorithms)
			assert.Empty(t, out.CustomerMasterKeySpec, "CustomerMasterKeySpec has no ML-DSA value")
			pub := mldsaPublicKey(t, set, out.PublicKey)
			assert.Len(t, out.PublicKey, set.pubLen+22, "SPKI: 4 bytes of SEQUENCE, 13 of AlgorithmIdentifier, 5 of BIT STRING header")

			alg := types.SigningAlgorithmSpecMlDsaShake256
			verify := func(msg []byte, mt types.MessageType, sig []byte) error {
				v, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(arn), Message: msg, MessageType: mt, Signature: sig, SigningAlgorithm: alg})
				if err == nil {
					assert.True(t, v.SignatureValid)
					assert.Equal(t, arn, aws.ToString(v.KeyId))
					assert.Equal(t, alg, v.SigningAlgorithm)
				}
				return err
			}
			for _, n := range []int{1, 300, 4096} {
				for _, mt := range []types.MessageType{"", types.MessageTypeRaw} {
					t.Run(fmt.Sprintf("RAW/%d/%q", n, mt), func(t *testing.T) {
						msg := randBytes(n)
						s, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: msg, MessageType: mt, SigningAlgorithm: alg})
						require.NoError(t, err)
						assert.Equal(t, arn, aws.ToString(s.KeyId))
						assert.Equal(t, alg, s.SigningAlgorithm)
						require.Len(t, s.Signature, set.sigLen)
						ok, err := set.verify(pub, msg, s.Signature)
						require.NoError(t, err)
						require.True(t, ok, "circl verifies the signature with the downloaded public key")
						ok, err = set.verify(pub, flip(msg, 0), s.Signature)
						require.NoError(t, err)
						require.False(t, ok, "and refuses it for another message")

						require.NoError(t, verify(msg, mt, s.Signature))
						requireErr[*types.KMSInvalidSignatureException](t, verify(flip(msg, n-1), types.MessageTypeRaw, s.Signature), anyMessage)
						requireErr[*types.KMSInvalidSignatureException](t, verify(msg, types.MessageTypeRaw, flip(s.Signature, len(s.Signature)/2)), anyMessage)
						requireErr[*types.KMSInvalidSignatureException](t, verify(msg, types.MessageTypeRaw, s.Signature[:len(s.Signature)-1]), anyMessage)

						again, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: msg, SigningAlgorithm: alg})
						require.NoError(t, err)
						assert.NotEqual(t, s.Signature, again.Signature, "hedged signing: two signatures of one message differ")
						require.NoError(t, verify(msg, types.MessageTypeRaw, again.Signature))
					})
				}
			}
			sig, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: []byte("m"), SigningAlgorithm: alg})
			require.NoError(t, err)

			// DIGEST: ML-DSA hashes the message with the key's public key
			// hash itself; AWS refuses a digest.
			digestMsg := "Message type DIGEST is incompatible with key spec " + string(spec) + "."
			_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: randBytes(64), MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
			requireCode(t, err, "ValidationException", digestMsg)
			requireCode(t, verify(randBytes(64), types.MessageTypeDigest, sig.Signature), "ValidationException", digestMsg)
			// EXTERNAL_MU: refused, never signed as something else.
			_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: randBytes(64), MessageType: types.MessageTypeExternalMu, SigningAlgorithm: alg})
			requireErr[*types.UnsupportedOperationException](t, err, errExternalMu)
			requireErr[*types.UnsupportedOperationException](t, verify(randBytes(64), types.MessageTypeExternalMu, sig.Signature), errExternalMu)
			// The model's bound on RAW messages.
			_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: randBytes(4097), SigningAlgorithm: alg})
			requireCode(t, err, "ValidationException", anyMessage)
			// Other keys' algorithms, and ML-DSA's on another key.
			_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			requireErr[*types.InvalidKeyUsageException](t, err, arn+" does not support signing algorithm ECDSA_SHA_256")
		})
	}

	arn := newKey(t, c, types.KeySpecMlDsa44, types.KeyUsageTypeSignVerify)
	t.Run("KeyRules", func(t *testing.T) {
		ecc := newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
		_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ecc), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		requireErr[*types.InvalidKeyUsageException](t, err, ecc+" does not support signing algorithm ML_DSA_SHAKE_256")
		_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ecc), Message: randBytes(64), MessageType: types.MessageTypeExternalMu,
			SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		requireCode(t, err, "ValidationException", "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_P256.")

		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn)})
		requireErr[*types.UnsupportedOperationException](t, err, anyMessage)
		_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)})
		requireErr[*types.UnsupportedOperationException](t, err, anyMessage)
		_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
		requireErr[*types.InvalidKeyUsageException](t, err, anyMessage)
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("m")})
		requireErr[*types.InvalidKeyUsageException](t, err, arn+" key usage is SIGN_VERIFY which is not valid for Encrypt.")
		_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(arn), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		requireErr[*types.InvalidKeyUsageException](t, err, arn+" key usage is SIGN_VERIFY which is not valid for GenerateMac.")

		for _, in := range []*kms.CreateKeyInput{
			{KeySpec: types.KeySpecMlDsa65, KeyUsage: types.KeyUsageTypeEncryptDecrypt},
			{KeySpec: types.KeySpecMlDsa65},
			{KeySpec: types.KeySpecMlDsa65, KeyUsage: types.KeyUsageTypeGenerateVerifyMac},
		} {
			before := listKeyARNs(t, c)
			usage := in.KeyUsage
			if usage == "" {
				usage = types.KeyUsageTypeEncryptDecrypt
			}
			_, err := c.CreateKey(ctx, in)
			requireCode(t, err, "ValidationException", "KeyUsage "+string(usage)+" is not compatible with KeySpec ML_DSA_65")
			assert.Equal(t, before, listKeyARNs(t, c), "a refused CreateKey makes no key")
		}
		_, err = c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecMlDsa65, KeyUsage: types.KeyUsageTypeSignVerify, Origin: types.OriginTypeExternal})
		requireErr[*types.UnsupportedOperationException](t, err, "This service imports key material into SYMMETRIC_DEFAULT keys only")
	})
	t.Run("KeyPolicy", func(t *testing.T) {
		// The key policy's kms:SigningAlgorithm condition sees the new
		// algorithm: signing is denied, verifying is not.
		policy := `{"Version":"2012-10-17","Statement":[` +
			`{"Sid":"All","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"},` +
			`{"Sid":"NoMLDSASign","Effect":"Deny","Principal":"*","Action":"kms:Sign","Resource":"*",` +
			`"Condition":{"StringEquals":{"kms:SigningAlgorithm":"ML_DSA_SHAKE_256"}}}]}`
		sig, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		require.NoError(t, err)
		_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), Policy: aws.String(policy)})
		require.NoError(t, err)
		_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		requireCode(t, err, "AccessDeniedException", anyMessage)
		v, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(arn), Message: []byte("m"), Signature: sig.Signature,
			SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		require.NoError(t, err)
		assert.True(t, v.SignatureValid)
	})
}
