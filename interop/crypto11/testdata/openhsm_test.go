// openhsm_test.go is added to crypto11's package by interop/crypto11.sh at
// run time (it is not part of crypto11). Its tests run crypto11's own test
// bodies over what openhsm offers, where crypto11's top-level test stops at
// the first thing openhsm does not offer:
//
//   - TestHardECDSA loops over P-224, P-256, P-384 and P-521 and stops at
//     P-224, which openhsm does not offer (CKR_CURVE_NOT_SUPPORTED), so the
//     other three curves would never be exercised.
//   - TestHmac makes its keys with nShield's vendor mechanism first and falls
//     back to CKM_GENERIC_SECRET_KEY_GEN only on nShield's and CloudHSM's
//     error codes; openhsm answers CKR_MECHANISM_INVALID for the unknown
//     mechanism, so crypto11's HMAC code would never be exercised.
//
// Keep to Go 1.13 (crypto11's go.mod language version): no generics, no any.
package crypto11

import (
	"bytes"
	"crypto/elliptic"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestOpenHSMHardECDSA is crypto11's TestHardECDSA over the NIST curves
// openhsm offers.
func TestOpenHSMHardECDSA(t *testing.T) {
	saved := curves
	curves = []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()}
	defer func() { curves = saved }()
	TestHardECDSA(t)
}

// TestOpenHSMHmacGeneric is crypto11's TestHmac with CKK_GENERIC_SECRET keys
// (CipherGeneric, made with CKM_GENERIC_SECRET_KEY_GEN), which the HMAC
// mechanisms take. It adds SHA-384 and SHA-512.
func TestOpenHSMHmacGeneric(t *testing.T) {
	ctx, err := ConfigureFromFile("config")
	require.NoError(t, err)
	defer func() {
		require.NoError(t, ctx.Close())
	}()

	t.Run("HMACSHA1", func(t *testing.T) {
		testHmac(t, ctx, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKM_SHA_1_HMAC, 0, 20, false)
	})
	t.Run("HMACSHA1General", func(t *testing.T) {
		testHmac(t, ctx, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKM_SHA_1_HMAC_GENERAL, 10, 10, true)
	})
	t.Run("HMACSHA256", func(t *testing.T) {
		testHmac(t, ctx, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKM_SHA256_HMAC, 0, 32, false)
	})
	t.Run("HMACSHA384", func(t *testing.T) {
		testHmac(t, ctx, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKM_SHA384_HMAC, 0, 48, false)
	})
	t.Run("HMACSHA512", func(t *testing.T) {
		testHmac(t, ctx, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKM_SHA512_HMAC, 0, 64, false)
	})
}

// TestOpenHSMCBCMultiPart narrows down TestHardSymmetric's CBCClose and
// CBCNoClose failures. crypto11's CBC BlockMode calls C_EncryptUpdate and
// C_DecryptUpdate through miekg/pkcs11, which asks for the output length
// with a NULL buffer first and then calls again with a buffer (PKCS#11 v2.40
// section 5.2). Two things are checked, for AES-128-CBC over 2 x 32 bytes:
//   - SameAsSinglePart: Update, Update, Final together give exactly the
//     ciphertext of a single-part C_Encrypt (and decrypt back), so the
//     length query does not consume the input;
//   - UpdateReturnsWholeBlocks: each Update returns its 32 bytes and Final
//     none, which crypto11's cipher.BlockMode needs (blockmode.go).
func TestOpenHSMCBCMultiPart(t *testing.T) {
	ctx, err := ConfigureFromFile("config")
	require.NoError(t, err)
	defer func() {
		require.NoError(t, ctx.Close())
	}()
	key, err := ctx.GenerateSecretKey(randomBytes(), 128, CipherAES)
	require.NoError(t, err)
	defer func() { _ = key.Delete() }()

	p := ctx.ctx
	s, err := p.OpenSession(ctx.slot, pkcs11.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	defer func() { _ = p.CloseSession(s) }()

	iv := make([]byte, 16)
	mech := func() []*pkcs11.Mechanism {
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC, iv)}
	}
	plain := make([]byte, 64)
	for i := range plain {
		plain[i] = byte(i)
	}

	require.NoError(t, p.EncryptInit(s, mech(), key.handle))
	single, err := p.Encrypt(s, plain)
	require.NoError(t, err)
	require.Len(t, single, 64)

	require.NoError(t, p.EncryptInit(s, mech(), key.handle))
	u1, err := p.EncryptUpdate(s, plain[:32])
	require.NoError(t, err)
	u2, err := p.EncryptUpdate(s, plain[32:])
	require.NoError(t, err)
	fin, err := p.EncryptFinal(s)
	require.NoError(t, err)
	multi := append(append(append([]byte{}, u1...), u2...), fin...)
	t.Logf("C_EncryptUpdate(32 bytes) -> %d bytes, C_EncryptUpdate(32 bytes) -> %d bytes, C_EncryptFinal -> %d bytes",
		len(u1), len(u2), len(fin))

	require.NoError(t, p.DecryptInit(s, mech(), key.handle))
	d1, err := p.DecryptUpdate(s, single[:32])
	require.NoError(t, err)
	d2, err := p.DecryptUpdate(s, single[32:])
	require.NoError(t, err)
	dfin, err := p.DecryptFinal(s)
	require.NoError(t, err)
	back := append(append(append([]byte{}, d1...), d2...), dfin...)
	t.Logf("C_DecryptUpdate(32 bytes) -> %d bytes, C_DecryptUpdate(32 bytes) -> %d bytes, C_DecryptFinal -> %d bytes",
		len(d1), len(d2), len(dfin))

	t.Run("SameAsSinglePart", func(t *testing.T) {
		require.Equal(t, len(single), len(multi), "multi-part ciphertext length (single-part: 64 bytes)")
		require.True(t, bytes.Equal(single, multi), "multi-part ciphertext differs from single-part")
		require.Equal(t, len(plain), len(back), "multi-part plaintext length")
		require.True(t, bytes.Equal(plain, back), "multi-part decryption differs from the plaintext")
	})
	t.Run("UpdateReturnsWholeBlocks", func(t *testing.T) {
		require.Len(t, u1, 32, "first C_EncryptUpdate")
		require.Len(t, u2, 32, "second C_EncryptUpdate")
		require.Len(t, fin, 0, "C_EncryptFinal")
		require.Len(t, d1, 32, "first C_DecryptUpdate")
		require.Len(t, d2, 32, "second C_DecryptUpdate")
		require.Len(t, dfin, 0, "C_DecryptFinal")
	})
}
