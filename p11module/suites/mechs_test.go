package suites

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/chacha20poly1305"
)

// TestMechanisms plays the PKCS#11 v3.0 derivation, AEAD and wrapping
// mechanisms and the template attributes through the real library against
// a real cluster, in both transports:
// CKM_HKDF_DERIVE and CKM_HKDF_DATA (RFC 5869 A.1), CKM_SP800_108_COUNTER_KDF
// (a NIST CAVP vector), CKM_CHACHA20_POLY1305 with CKM_CHACHA20_KEY_GEN,
// CKM_AES_GCM wrapping; CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE,
// CKA_DERIVE_TEMPLATE and CKA_ALLOWED_MECHANISMS on wrap, unwrap and
// derive, with their refusals; the array attributes read back; and bad
// parameters (wrong lengths, NULL pointers) that must get their CK_RV and
// never crash the host. miekg/pkcs11 has no v3.0 parameter types, so the
// structures are built here as bytes (LP64 layout), their pointers to
// pinned Go memory.
func TestMechanisms(t *testing.T) {
	if childMode() != "" {
		mechsChild(t)
		return
	}
	build(t)
	arrays := cDriver(t, "arrays")
	cl, env := startCluster(t)
	eachMode(t, cl, append(env, envArrays+"="+arrays), 5*time.Minute)
}

// envArrays names the compiled testdata/arrays.c for the child.
const envArrays = "SUITES_ARRAYS"

// Mechanism, key type and parameter values of PKCS#11 v3.0 that
// miekg/pkcs11's v2.40 constants lack.
const (
	ckkChaCha20            = 0x33
	ckmAESKeyWrapKWP       = 0x210b
	ckmSP800108Counter     = 0x3ac
	ckmChaCha20KeyGen      = 0x1225
	ckmChaCha20Poly1305    = 0x4021
	ckmHKDFDerive          = 0x402a
	ckmHKDFData            = 0x402b
	ckfHKDFSaltNull        = 1
	ckfHKDFSaltData        = 2
	ckfHKDFSaltKey         = 4
	sp800IterationVariable = 1
	sp800DKMLength         = 3
	sp800ByteArray         = 4
	attributeSize          = 24 // sizeof(CK_ATTRIBUTE) on LP64
)

// cmem builds C structures in Go memory pinned for as long as the test
// runs, so the library may follow their pointers.
type cmem struct{ pin runtime.Pinner }

// ptr pins b and returns its address (0 for an empty b).
func (c *cmem) ptr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	c.pin.Pin(&b[0])
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// words lays out CK_ULONG-sized fields (pointers, lengths, handles).
func words(v ...uint64) []byte {
	var b []byte
	for _, w := range v {
		b = binary.NativeEndian.AppendUint64(b, w)
	}
	return b
}

// hkdfParams is a CK_HKDF_PARAMS (64 bytes).
func (c *cmem) hkdfParams(extract, expand bool, prf, saltType uint64, salt []byte, saltKey uint64, info []byte) []byte {
	b := make([]byte, 8)
	if extract {
		b[0] = 1
	}
	if expand {
		b[1] = 1
	}
	return append(b, words(prf, saltType, c.ptr(salt), uint64(len(salt)), saltKey, c.ptr(info), uint64(len(info)))...)
}

// prfData is one CK_PRF_DATA_PARAM.
type prfData struct {
	typ   uint64
	value []byte
}

// kdf108Params is a CK_SP800_108_KDF_PARAMS (40 bytes) with its data
// parameters.
func (c *cmem) kdf108Params(prf uint64, data []prfData, extraKeys uint64) []byte {
	var arr []byte
	for _, d := range data {
		arr = append(arr, words(d.typ, c.ptr(d.value), uint64(len(d.value)))...)
	}
	return words(prf, uint64(len(data)), c.ptr(arr), extraKeys, 0)
}

// counterFormat is a CK_SP800_108_COUNTER_FORMAT (16 bytes).
func counterFormat(little bool, bits uint64) []byte {
	b := make([]byte, 8)
	if little {
		b[0] = 1
	}
	return append(b, words(bits)...)
}

// chachaParams is a CK_SALSA20_CHACHA20_POLY1305_PARAMS (32 bytes).
func (c *cmem) chachaParams(nonce, aad []byte) []byte {
	return words(c.ptr(nonce), uint64(len(nonce)), c.ptr(aad), uint64(len(aad)))
}

// template is the value of an array attribute: CK_ATTRIBUTEs whose values
// are pinned.
func (c *cmem) template(attrs ...*pkcs11.Attribute) []byte {
	var b []byte
	for _, a := range attrs {
		b = append(b, words(uint64(a.Type), c.ptr(a.Value), uint64(len(a.Value)))...)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 5869 A.1 and a NIST CAVP KBKDF counter-mode vector
// ([PRF=HMAC_SHA256][CTRLOCATION=BEFORE_FIXED][RLEN=32_BITS], COUNT=0).
var (
	rfcIKM  = bytes.Repeat([]byte{0x0b}, 22)
	rfcSalt = mustHex("000102030405060708090a0b0c")
	rfcInfo = mustHex("f0f1f2f3f4f5f6f7f8f9")
	rfcOKM  = mustHex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
	cavpKI  = mustHex("dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0")
	cavpFix = mustHex("01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b864a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac")
	cavpKO  = mustHex("10621342bfb0fd40046c0e29f2cfdbf0")
)

func mechsChild(t *testing.T) {
	p := loadModule(t)
	slot := tokenSlot(t, p, os.Getenv("P11_TOKEN_LABEL"))
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(sh, pkcs11.CKU_USER, os.Getenv("P11_PIN")))
	t.Cleanup(func() { p.Logout(sh); p.CloseSession(sh) })
	c := &cmem{}
	t.Cleanup(c.pin.Unpin)

	// secret makes a session secret key with a known value.
	secret := func(kt uint, v []byte, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
		t.Helper()
		h, err := p.CreateObject(sh, append([]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			attr(pkcs11.CKA_KEY_TYPE, kt), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, v)}, extra...))
		require.NoError(t, err)
		return h
	}
	readable := []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true)}
	derivedTmpl := func(n int, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
		return append(append([]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET), attr(pkcs11.CKA_VALUE_LEN, n)}, readable...), extra...)
	}
	value := func(h pkcs11.ObjectHandle, typ uint) []byte {
		t.Helper()
		a, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{attr(typ, nil)})
		require.NoError(t, err)
		return a[0].Value
	}
	wantRV := func(t *testing.T, rv uint, err error) {
		t.Helper()
		assert.Equal(t, rvName(rv), rvName(rvOf(err)))
	}
	hkdf := func(params []byte) []*pkcs11.Mechanism { return mech(ckmHKDFDerive, params) }
	rfcParams := func() []byte {
		return c.hkdfParams(true, true, pkcs11.CKM_SHA256, ckfHKDFSaltData, rfcSalt, 0, rfcInfo)
	}
	ikm := secret(pkcs11.CKK_GENERIC_SECRET, rfcIKM, attr(pkcs11.CKA_DERIVE, true))

	t.Run("mechanism list", func(t *testing.T) {
		list, err := p.GetMechanismList(slot)
		require.NoError(t, err)
		have := map[uint]bool{}
		for _, m := range list {
			have[m.Mechanism] = true
		}
		for m, flags := range map[uint]uint{
			ckmHKDFDerive:       pkcs11.CKF_DERIVE,
			ckmHKDFData:         pkcs11.CKF_DERIVE,
			ckmSP800108Counter:  pkcs11.CKF_DERIVE,
			ckmChaCha20Poly1305: pkcs11.CKF_ENCRYPT | pkcs11.CKF_DECRYPT,
			ckmChaCha20KeyGen:   pkcs11.CKF_GENERATE,
			pkcs11.CKM_AES_GCM:  pkcs11.CKF_ENCRYPT | pkcs11.CKF_DECRYPT | pkcs11.CKF_WRAP | pkcs11.CKF_UNWRAP,
		} {
			assert.True(t, have[m], "mechanism %#x listed", m)
			info, err := p.GetMechanismInfo(slot, mech(m, nil))
			require.NoError(t, err)
			assert.Equal(t, flags, info.Flags&flags, "mechanism %#x flags %#x", m, info.Flags)
		}
	})

	t.Run("HKDF RFC 5869 A.1", func(t *testing.T) {
		h, err := p.DeriveKey(sh, hkdf(rfcParams()), ikm, derivedTmpl(len(rfcOKM)))
		require.NoError(t, err)
		assert.Equal(t, rfcOKM, value(h, pkcs11.CKA_VALUE))
		// The salt as a key.
		salt := secret(pkcs11.CKK_GENERIC_SECRET, rfcSalt, attr(pkcs11.CKA_DERIVE, true))
		h, err = p.DeriveKey(sh, hkdf(c.hkdfParams(true, true, pkcs11.CKM_SHA256, ckfHKDFSaltKey, nil, uint64(salt), rfcInfo)), ikm, derivedTmpl(len(rfcOKM)))
		require.NoError(t, err)
		assert.Equal(t, rfcOKM, value(h, pkcs11.CKA_VALUE))
		// A data object.
		h, err = p.DeriveKey(sh, mech(ckmHKDFData, rfcParams()), ikm, []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, len(rfcOKM))})
		require.NoError(t, err)
		assert.Equal(t, rfcOKM, value(h, pkcs11.CKA_VALUE))
		assert.Equal(t, uint(pkcs11.CKO_DATA), ulong(value(h, pkcs11.CKA_CLASS)))
	})

	t.Run("SP 800-108 counter CAVP", func(t *testing.T) {
		ki := secret(pkcs11.CKK_GENERIC_SECRET, cavpKI, attr(pkcs11.CKA_DERIVE, true))
		params := c.kdf108Params(pkcs11.CKM_SHA256_HMAC, []prfData{
			{sp800IterationVariable, counterFormat(false, 32)},
			{sp800ByteArray, cavpFix},
		}, 0)
		h, err := p.DeriveKey(sh, mech(ckmSP800108Counter, params), ki, derivedTmpl(len(cavpKO)))
		require.NoError(t, err)
		assert.Equal(t, cavpKO, value(h, pkcs11.CKA_VALUE))
		// Additional derived keys are not offered.
		_, err = p.DeriveKey(sh, mech(ckmSP800108Counter, c.kdf108Params(pkcs11.CKM_SHA256_HMAC, []prfData{
			{sp800IterationVariable, counterFormat(false, 32)}}, 1)), ki, derivedTmpl(16))
		wantRV(t, pkcs11.CKR_MECHANISM_PARAM_INVALID, err)
	})

	t.Run("ChaCha20-Poly1305", func(t *testing.T) {
		k, err := p.GenerateKey(sh, mech(ckmChaCha20KeyGen, nil), append([]*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkChaCha20),
			attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, true)}, readable...))
		require.NoError(t, err)
		key := value(k, pkcs11.CKA_VALUE)
		require.Len(t, key, 32)
		nonce, aad, msg := randomBytes(12), []byte("header"), []byte("a chacha20 message")
		m := mech(ckmChaCha20Poly1305, c.chachaParams(nonce, aad))
		require.NoError(t, p.EncryptInit(sh, m, k))
		ct, err := p.Encrypt(sh, msg)
		require.NoError(t, err)
		aead, err := chacha20poly1305.New(key)
		require.NoError(t, err)
		assert.Equal(t, aead.Seal(nil, nonce, msg, aad), ct)
		require.NoError(t, p.DecryptInit(sh, m, k))
		pt, err := p.Decrypt(sh, ct)
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
		ct[3] ^= 1
		require.NoError(t, p.DecryptInit(sh, m, k))
		_, err = p.Decrypt(sh, ct)
		wantRV(t, pkcs11.CKR_ENCRYPTED_DATA_INVALID, err)
	})

	// wrapper makes an AES key that wraps and unwraps (and does not
	// decrypt), with extra attributes.
	wrapper := func(extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
		t.Helper()
		return secret(pkcs11.CKK_AES, randomBytes(32), append([]*pkcs11.Attribute{attr(pkcs11.CKA_WRAP, true),
			attr(pkcs11.CKA_UNWRAP, true), attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false)}, extra...)...)
	}
	target := func(id string) (pkcs11.ObjectHandle, []byte) {
		v := randomBytes(16)
		return secret(pkcs11.CKK_AES, v, attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_ID, id)), v
	}
	unwrapTmpl := func(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
		return append([]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			attr(pkcs11.CKA_TOKEN, false)}, extra...)
	}
	gcm := func(iv []byte) []*pkcs11.Mechanism {
		return mech(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(iv, []byte("aad"), 128))
	}

	t.Run("AES-GCM wraps", func(t *testing.T) {
		wv := randomBytes(32)
		w := secret(pkcs11.CKK_AES, wv, attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_UNWRAP, true),
			attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false))
		k, kv := target("gcm")
		iv := randomBytes(12)
		wrapped, err := p.WrapKey(sh, gcm(iv), w, k)
		require.NoError(t, err)
		b, _ := aes.NewCipher(wv)
		g, _ := cipher.NewGCM(b)
		assert.Equal(t, g.Seal(nil, iv, kv, []byte("aad")), wrapped)
		u, err := p.UnwrapKey(sh, gcm(iv), w, wrapped, unwrapTmpl(readable[1:]...))
		require.NoError(t, err)
		assert.Equal(t, kv, value(u, pkcs11.CKA_VALUE))
		wrapped[0] ^= 1
		_, err = p.UnwrapKey(sh, gcm(iv), w, wrapped, unwrapTmpl())
		wantRV(t, pkcs11.CKR_WRAPPED_KEY_INVALID, err)
	})

	t.Run("CKA_WRAP_TEMPLATE", func(t *testing.T) {
		w := wrapper(raw(pkcs11.CKA_WRAP_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "wrap-ok"), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES))))
		ok, _ := target("wrap-ok")
		_, err := p.WrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, ok)
		require.NoError(t, err)
		no, _ := target("wrap-no")
		_, err = p.WrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, no)
		wantRV(t, pkcs11.CKR_KEY_NOT_WRAPPABLE, err)
		// The template cannot change.
		err = p.SetAttributeValue(sh, w, []*pkcs11.Attribute{raw(pkcs11.CKA_WRAP_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "wrap-no")))})
		wantRV(t, pkcs11.CKR_ATTRIBUTE_READ_ONLY, err)
	})

	t.Run("CKA_UNWRAP_TEMPLATE", func(t *testing.T) {
		w := wrapper(raw(pkcs11.CKA_UNWRAP_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "unwrapped"), attr(pkcs11.CKA_ENCRYPT, false))))
		k, _ := target("x")
		wrapped, err := p.WrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, k)
		require.NoError(t, err)
		u, err := p.UnwrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, wrapped, unwrapTmpl())
		require.NoError(t, err)
		assert.Equal(t, []byte("unwrapped"), value(u, pkcs11.CKA_ID))
		assert.Equal(t, []byte{0}, value(u, pkcs11.CKA_ENCRYPT))
		// The same value again is fine; another is inconsistent.
		_, err = p.UnwrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, wrapped, unwrapTmpl(attr(pkcs11.CKA_ID, "unwrapped")))
		require.NoError(t, err)
		_, err = p.UnwrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, wrapped, unwrapTmpl(attr(pkcs11.CKA_ENCRYPT, true)))
		wantRV(t, pkcs11.CKR_TEMPLATE_INCONSISTENT, err)
	})

	t.Run("CKA_DERIVE_TEMPLATE", func(t *testing.T) {
		base := secret(pkcs11.CKK_GENERIC_SECRET, rfcIKM, attr(pkcs11.CKA_DERIVE, true),
			raw(pkcs11.CKA_DERIVE_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "derived"), attr(pkcs11.CKA_SIGN, false))))
		h, err := p.DeriveKey(sh, hkdf(rfcParams()), base, derivedTmpl(32))
		require.NoError(t, err)
		assert.Equal(t, []byte("derived"), value(h, pkcs11.CKA_ID))
		assert.Equal(t, []byte{0}, value(h, pkcs11.CKA_SIGN))
		_, err = p.DeriveKey(sh, hkdf(rfcParams()), base, derivedTmpl(32, attr(pkcs11.CKA_ID, "other")))
		wantRV(t, pkcs11.CKR_TEMPLATE_INCONSISTENT, err)
	})

	t.Run("CKA_ALLOWED_MECHANISMS", func(t *testing.T) {
		onlyKW := raw(pkcs11.CKA_ALLOWED_MECHANISMS, words(ckmAESKeyWrapKWP))
		w := wrapper(onlyKW)
		k, _ := target("allowed")
		_, err := p.WrapKey(sh, gcm(randomBytes(12)), w, k)
		wantRV(t, pkcs11.CKR_MECHANISM_INVALID, err)
		wrapped, err := p.WrapKey(sh, mech(ckmAESKeyWrapKWP, nil), w, k)
		require.NoError(t, err)
		_, err = p.UnwrapKey(sh, gcm(randomBytes(12)), w, wrapped, unwrapTmpl())
		wantRV(t, pkcs11.CKR_MECHANISM_INVALID, err)
		base := secret(pkcs11.CKK_GENERIC_SECRET, rfcIKM, attr(pkcs11.CKA_DERIVE, true),
			raw(pkcs11.CKA_ALLOWED_MECHANISMS, words(ckmSP800108Counter)))
		_, err = p.DeriveKey(sh, hkdf(rfcParams()), base, derivedTmpl(32))
		wantRV(t, pkcs11.CKR_MECHANISM_INVALID, err)
	})

	t.Run("array attributes read back", func(t *testing.T) {
		w := wrapper(raw(pkcs11.CKA_WRAP_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "abc"), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES))))
		// miekg/pkcs11 asks for the length, then passes a zeroed array:
		// each entry gets its type and length, no value (pValue NULL).
		a, err := p.GetAttributeValue(sh, w, []*pkcs11.Attribute{attr(pkcs11.CKA_WRAP_TEMPLATE, nil)})
		require.NoError(t, err)
		v := a[0].Value
		require.Len(t, v, 2*attributeSize)
		e := func(i, f int) uint64 { return binary.NativeEndian.Uint64(v[i*attributeSize+8*f:]) }
		assert.Equal(t, uint64(pkcs11.CKA_ID), e(0, 0))
		assert.Equal(t, uint64(0), e(0, 1))
		assert.Equal(t, uint64(3), e(0, 2))
		assert.Equal(t, uint64(pkcs11.CKA_KEY_TYPE), e(1, 0))
		assert.Equal(t, uint64(8), e(1, 2))
		// A token key keeps its template through the cluster's log.
		tok, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_VALUE, randomBytes(16)),
			attr(pkcs11.CKA_LABEL, "mechs-"+randomTag()),
			raw(pkcs11.CKA_UNWRAP_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "abc")))})
		require.NoError(t, err)
		defer p.DestroyObject(sh, tok)
		a, err = p.GetAttributeValue(sh, tok, []*pkcs11.Attribute{attr(pkcs11.CKA_UNWRAP_TEMPLATE, nil)})
		require.NoError(t, err)
		assert.Len(t, a[0].Value, attributeSize)
		// An attribute the key does not have.
		_, err = p.GetAttributeValue(sh, w, []*pkcs11.Attribute{attr(pkcs11.CKA_UNWRAP_TEMPLATE, nil)})
		wantRV(t, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, err)
	})

	t.Run("array attributes read back in C", func(t *testing.T) {
		cmd := exec.Command(os.Getenv(envArrays), os.Getenv(envLib))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "OK\n", string(out))
	})

	t.Run("bad parameters", func(t *testing.T) {
		good := rfcParams()
		nullSalt := c.hkdfParams(true, true, pkcs11.CKM_SHA256, ckfHKDFSaltData, nil, 0, nil)
		copy(nullSalt[32:], words(5)) // ulSaltLen 5 with pSalt NULL
		ctr := counterFormat(false, 32)
		nullData := c.kdf108Params(pkcs11.CKM_SHA256_HMAC, nil, 0)
		copy(nullData[8:], words(2)) // two data parameters at NULL
		nullValue := c.kdf108Params(pkcs11.CKM_SHA256_HMAC, []prfData{{sp800IterationVariable, nil}}, 0)
		dataArr := make([]byte, 24)
		copy(dataArr, words(sp800IterationVariable, 0, 16)) // pValue NULL, ulValueLen 16
		copy(nullValue[16:], words(c.ptr(dataArr)))
		many := make([]prfData, 65)
		for i := range many {
			many[i] = prfData{sp800ByteArray, []byte("x")}
		}
		shortCtr := c.kdf108Params(pkcs11.CKM_SHA256_HMAC, []prfData{{sp800IterationVariable, ctr[:8]}}, 0)
		nullNonce := c.chachaParams(nil, nil)
		copy(nullNonce[8:], words(12))
		chachaKey := secret(ckkChaCha20, randomBytes(32))
		rows := []struct {
			name string
			run  func() error
			rv   uint
		}{
			{"HKDF parameter one byte short", func() error {
				_, err := p.DeriveKey(sh, hkdf(good[:63]), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"HKDF parameter NULL", func() error {
				_, err := p.DeriveKey(sh, hkdf(nil), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"HKDF pSalt NULL with a length", func() error {
				_, err := p.DeriveKey(sh, hkdf(nullSalt), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"HKDF neither extract nor expand", func() error {
				_, err := p.DeriveKey(sh, hkdf(c.hkdfParams(false, false, pkcs11.CKM_SHA256, ckfHKDFSaltNull, nil, 0, nil)), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"HKDF salt key handle invalid", func() error {
				_, err := p.DeriveKey(sh, hkdf(c.hkdfParams(true, true, pkcs11.CKM_SHA256, ckfHKDFSaltKey, nil, madeUpHandle, nil)), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_KEY_HANDLE_INVALID},
			{"HKDF without CKA_VALUE_LEN", func() error {
				_, err := p.DeriveKey(sh, hkdf(good), ikm, readable)
				return err
			}, pkcs11.CKR_TEMPLATE_INCOMPLETE},
			{"SP 800-108 pDataParams NULL with a count", func() error {
				_, err := p.DeriveKey(sh, mech(ckmSP800108Counter, nullData), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"SP 800-108 data pValue NULL with a length", func() error {
				_, err := p.DeriveKey(sh, mech(ckmSP800108Counter, nullValue), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"SP 800-108 65 data parameters", func() error {
				_, err := p.DeriveKey(sh, mech(ckmSP800108Counter, c.kdf108Params(pkcs11.CKM_SHA256_HMAC, many, 0)), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"SP 800-108 counter format short", func() error {
				_, err := p.DeriveKey(sh, mech(ckmSP800108Counter, shortCtr), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"SP 800-108 parameter one byte long", func() error {
				params := append(c.kdf108Params(pkcs11.CKM_SHA256_HMAC, []prfData{{sp800IterationVariable, ctr}}, 0), 0)
				_, err := p.DeriveKey(sh, mech(ckmSP800108Counter, params), ikm, derivedTmpl(16))
				return err
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"ChaCha20-Poly1305 pNonce NULL with a length", func() error {
				return p.EncryptInit(sh, mech(ckmChaCha20Poly1305, nullNonce), chachaKey)
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"ChaCha20-Poly1305 8-byte nonce", func() error {
				return p.EncryptInit(sh, mech(ckmChaCha20Poly1305, c.chachaParams(randomBytes(8), nil)), chachaKey)
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"ChaCha20-Poly1305 parameter NULL", func() error {
				return p.EncryptInit(sh, mech(ckmChaCha20Poly1305, nil), chachaKey)
			}, pkcs11.CKR_MECHANISM_PARAM_INVALID},
			{"ChaCha20 key of 16 bytes", func() error {
				_, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					attr(pkcs11.CKA_KEY_TYPE, ckkChaCha20), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, randomBytes(16))})
				return err
			}, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID},
			{"array attribute not a multiple of CK_ATTRIBUTE", func() error {
				_, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, randomBytes(16)),
					raw(pkcs11.CKA_WRAP_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "x"))[:20])})
				return err
			}, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID},
			{"array attribute nested", func() error {
				inner := c.template(attr(pkcs11.CKA_ID, "x"))
				_, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, randomBytes(16)),
					raw(pkcs11.CKA_WRAP_TEMPLATE, c.template(raw(pkcs11.CKA_UNWRAP_TEMPLATE, inner)))})
				return err
			}, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID},
			{"array attribute entry with NULL value and a length", func() error {
				entry := words(pkcs11.CKA_ID, 0, 4)
				_, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, randomBytes(16)),
					raw(pkcs11.CKA_WRAP_TEMPLATE, entry)})
				return err
			}, pkcs11.CKR_ARGUMENTS_BAD},
			{"array attribute with an unknown attribute", func() error {
				_, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, randomBytes(16)),
					raw(pkcs11.CKA_WRAP_TEMPLATE, c.template(raw(unknownAttr, []byte{1})))})
				return err
			}, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID},
			{"CKA_DERIVE_TEMPLATE on a public key", func() error {
				_, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), attr(pkcs11.CKA_TOKEN, false),
					raw(pkcs11.CKA_DERIVE_TEMPLATE, c.template(attr(pkcs11.CKA_ID, "x")))})
				return err
			}, pkcs11.CKR_TEMPLATE_INCONSISTENT},
		}
		for _, r := range rows {
			t.Run(strings.ReplaceAll(r.name, " ", "_"), func(t *testing.T) {
				wantRV(t, r.rv, r.run())
			})
		}
		// The library still works.
		_, err := p.DeriveKey(sh, hkdf(good), ikm, derivedTmpl(16))
		require.NoError(t, err)
	})
}
