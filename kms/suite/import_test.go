package suite

import (
	"crypto"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kwpWrap is AES key wrap with padding (RFC 5649) of pt under kek.
func kwpWrap(t *testing.T, kek, pt []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(kek)
	require.NoError(t, err)
	n := (len(pt) + 7) / 8
	padded := make([]byte, n*8)
	copy(padded, pt)
	var a [8]byte
	copy(a[:4], []byte{0xa6, 0x59, 0x59, 0xa6})
	binary.BigEndian.PutUint32(a[4:], uint32(len(pt)))
	if n == 1 {
		out := make([]byte, 16)
		b.Encrypt(out, append(a[:], padded...))
		return out
	}
	r := padded
	var block [16]byte
	for j := range 6 {
		for i := range n {
			copy(block[:8], a[:])
			copy(block[8:], r[i*8:i*8+8])
			b.Encrypt(block[:], block[:])
			copy(a[:], block[:8])
			tt := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(a[:])^tt)
			copy(r[i*8:], block[8:])
		}
	}
	return append(a[:], r...)
}

// wrapMaterial wraps key material with the import public key, as AWS's
// wrapping algorithms define: RSAES_OAEP_SHA_* directly;
// RSA_AES_KEY_WRAP_SHA_* an ephemeral AES-256 key with OAEP, then the
// material with that key by AES key wrap with padding.
func wrapMaterial(t *testing.T, spki []byte, alg types.AlgorithmSpec, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(spki)
	require.NoError(t, err)
	rp, ok := pub.(*rsa.PublicKey)
	require.True(t, ok, "the wrapping key is RSA")
	h := crypto.SHA256
	if alg == types.AlgorithmSpecRsaesOaepSha1 || alg == types.AlgorithmSpecRsaAesKeyWrapSha1 {
		h = crypto.SHA1
	}
	switch alg {
	case types.AlgorithmSpecRsaesOaepSha1, types.AlgorithmSpecRsaesOaepSha256:
		out, err := rsa.EncryptOAEP(h.New(), rand.Reader, rp, material, nil)
		require.NoError(t, err)
		return out
	case types.AlgorithmSpecRsaAesKeyWrapSha1, types.AlgorithmSpecRsaAesKeyWrapSha256:
		kek := randBytes(32)
		head, err := rsa.EncryptOAEP(h.New(), rand.Reader, rp, kek, nil)
		require.NoError(t, err)
		return append(head, kwpWrap(t, kek, material)...)
	}
	t.Fatalf("no wrapping for %s", alg)
	return nil
}

// importParams calls GetParametersForImport and checks its answer.
func importParams(t *testing.T, tg *target, arn string, alg types.AlgorithmSpec, spec types.WrappingKeySpec) *kms.GetParametersForImportOutput {
	t.Helper()
	out, err := tg.kms().GetParametersForImport(t.Context(), &kms.GetParametersForImportInput{KeyId: aws.String(arn),
		WrappingAlgorithm: alg, WrappingKeySpec: spec})
	require.NoError(t, err, "GetParametersForImport %s %s", alg, spec)
	assert.Equal(t, arn, aws.ToString(out.KeyId))
	assert.NotEmpty(t, out.ImportToken)
	require.NotNil(t, out.ParametersValidTo)
	assert.WithinDuration(t, tg.now().Add(24*time.Hour), *out.ParametersValidTo, 5*time.Minute, "an import token lives 24 hours")
	pub, err := parsePublicKey(out.PublicKey)
	require.NoError(t, err)
	var bits int
	switch spec {
	case types.WrappingKeySpecRsa2048:
		bits = 2048
	case types.WrappingKeySpecRsa3072:
		bits = 3072
	case types.WrappingKeySpecRsa4096:
		bits = 4096
	}
	assert.Equal(t, bits, pub.(*rsa.PublicKey).N.BitLen())
	return out
}

func importMaterial(t *testing.T, tg *target, arn string, p *kms.GetParametersForImportOutput, alg types.AlgorithmSpec,
	material []byte, validTo *time.Time) error {
	t.Helper()
	in := &kms.ImportKeyMaterialInput{KeyId: aws.String(arn), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapMaterial(t, p.PublicKey, alg, material)}
	if validTo != nil {
		in.ValidTo = validTo
		in.ExpirationModel = types.ExpirationModelTypeKeyMaterialExpires
	}
	_, err := tg.kms().ImportKeyMaterial(t.Context(), in)
	return err
}

// testImport: a key of EXTERNAL origin, GetParametersForImport, material
// wrapped with Go by each wrapping algorithm, ImportKeyMaterial,
// DeleteImportedKeyMaterial, reimport, and the refusals.
func testImport(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	m := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, Description: aws.String("imported")})
	arn := aws.ToString(m.Arn)
	assert.Equal(t, types.OriginTypeExternal, m.Origin)
	assert.Equal(t, types.KeyStatePendingImport, m.KeyState)
	assert.False(t, m.Enabled)
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
	requireErr[*types.KMSInvalidStateException](t, err, arn+" is pending import.")
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)})
	requireErr[*types.KMSInvalidStateException](t, err, anyMessage)

	material := randBytes(32)
	var blob []byte
	for i, w := range []struct {
		alg  types.AlgorithmSpec
		spec types.WrappingKeySpec
	}{
		{types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048},
		{types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa3072},
		{types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa4096},
		{types.AlgorithmSpecRsaAesKeyWrapSha1, types.WrappingKeySpecRsa2048},
	} {
		t.Run(string(w.alg), func(t *testing.T) {
			p := importParams(t, tg, arn, w.alg, w.spec)
			require.NoError(t, importMaterial(t, tg, arn, p, w.alg, material, nil))
			m := describe(t, c, arn)
			assert.Equal(t, types.KeyStateEnabled, m.KeyState)
			assert.Equal(t, types.ExpirationModelTypeKeyMaterialDoesNotExpire, m.ExpirationModel)
			assert.Nil(t, m.ValidTo)
			if i == 0 {
				enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("imported secret")})
				require.NoError(t, err)
				blob = enc.CiphertextBlob
			}
			dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
			require.NoError(t, err, "the same material, imported again, decrypts what it encrypted")
			assert.Equal(t, []byte("imported secret"), dec.Plaintext)

			// The token is spent.
			err = importMaterial(t, tg, arn, p, w.alg, material, nil)
			requireErr[*types.InvalidImportTokenException](t, err, anyMessage)

			_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(arn)})
			require.NoError(t, err)
			m = describe(t, c, arn)
			assert.Equal(t, types.KeyStatePendingImport, m.KeyState)
			_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
			requireErr[*types.KMSInvalidStateException](t, err, arn+" is pending import.")
		})
	}

	t.Run("Refused", func(t *testing.T) {
		before := readKeys(t, c, []string{arn})
		p := importParams(t, tg, arn, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
		after := readKeys(t, c, []string{arn})
		assert.Equal(t, before, after, "import parameters are no state a client reads")

		err := importMaterial(t, tg, arn, p, types.AlgorithmSpecRsaesOaepSha256, randBytes(32), nil)
		requireErr[*types.IncorrectKeyMaterialException](t, err, anyMessage)
		assert.Equal(t, before, readKeys(t, c, []string{arn}))

		other := aws.ToString(createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).Arn)
		po := importParams(t, tg, other, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(arn), ImportToken: po.ImportToken,
			EncryptedKeyMaterial: wrapMaterial(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, material)})
		requireErr[*types.InvalidImportTokenException](t, err, anyMessage)
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(arn), ImportToken: p.ImportToken,
			EncryptedKeyMaterial: randBytes(256)})
		requireErr[*types.InvalidCiphertextException](t, err, anyMessage)
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(arn), ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapMaterial(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, material),
			ExpirationModel:      types.ExpirationModelTypeKeyMaterialExpires})
		requireCode(t, err, "ValidationException", anyMessage)
		for _, validTo := range []time.Time{tg.now().Add(-time.Hour), tg.now().Add(400 * day)} {
			err = importMaterial(t, tg, arn, p, types.AlgorithmSpecRsaesOaepSha256, material, &validTo)
			requireCode(t, err, "ValidationException", anyMessage)
		}
		assert.Equal(t, before, readKeys(t, c, []string{arn}))

		sym := newSymmetric(t, c)
		_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(sym),
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
		requireErr[*types.UnsupportedOperationException](t, err, sym+" origin is AWS_KMS which is invalid for this operation.")
		_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(sym)})
		requireErr[*types.UnsupportedOperationException](t, err, sym+" origin is AWS_KMS which is invalid for this operation.")
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(sym), ImportToken: p.ImportToken,
			EncryptedKeyMaterial: randBytes(256)})
		requireErr[*types.UnsupportedOperationException](t, err, sym+" origin is AWS_KMS which is invalid for this operation.")

		// The right material, at last.
		require.NoError(t, importMaterial(t, tg, arn, p, types.AlgorithmSpecRsaesOaepSha256, material, nil))
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
		require.NoError(t, err)
		assert.Equal(t, []byte("imported secret"), dec.Plaintext)
	})
}

// testImportExpiry: material with ValidTo expires through the clock, and
// an import token after 24 hours.
func testImportExpiry(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := aws.ToString(createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).Arn)
	p := importParams(t, tg, arn, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048)
	validTo := tg.now().Add(day).Truncate(time.Second)
	require.NoError(t, importMaterial(t, tg, arn, p, types.AlgorithmSpecRsaAesKeyWrapSha256, randBytes(32), &validTo))
	m := describe(t, c, arn)
	assert.Equal(t, types.KeyStateEnabled, m.KeyState)
	assert.Equal(t, types.ExpirationModelTypeKeyMaterialExpires, m.ExpirationModel)
	require.NotNil(t, m.ValidTo)
	assert.True(t, validTo.Equal(*m.ValidTo), "ValidTo %v, want %v", m.ValidTo, validTo)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("short-lived")})
	require.NoError(t, err)

	late := aws.ToString(createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).Arn)
	pl := importParams(t, tg, late, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)

	tg.advance(t, 2*day)
	tg.eventually(t, "the material past its ValidTo is deleted", func() bool {
		return describe(t, c, arn).KeyState == types.KeyStatePendingImport
	})
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	requireErr[*types.KMSInvalidStateException](t, err, arn+" is pending import.")

	before := readKeys(t, c, []string{late})
	err = importMaterial(t, tg, late, pl, types.AlgorithmSpecRsaesOaepSha256, randBytes(32), nil)
	requireErr[*types.ExpiredImportTokenException](t, err, anyMessage)
	assert.Equal(t, before, readKeys(t, c, []string{late}))
}
