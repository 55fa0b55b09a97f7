package core

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The operation life-cycle table (lifecycle.go): every operation kind, the
// same call sequences, the CK_RV of each call and whether the operation is
// still active afterwards.

// outMode is how a call that gives output is made.
type outMode int

const (
	outFull  outMode = iota // a buffer big enough
	outQuery                // no buffer: a length query
	outShort                // a buffer one byte short
	outBad                  // full buffer, input the mechanism refuses
)

// opKit drives one operation kind in a session. update and final are nil
// for the kinds that have no multi-part form; lenq is false for the kinds
// whose calls give no output (verify).
type opKit struct {
	name   string
	init   func(h uint64, null bool) error
	single func(h uint64, mode outMode) error
	update func(h uint64) error
	final  func(h uint64, mode outMode) error
	lenq   bool
	// noFinalBad: no input makes the final call fail.
	noFinalBad bool
}

// outCall makes a call that gives output the way mode says; want is the
// output's length.
func outCall(mode outMode, want uint64, call func(Out) (OutResult, error)) error {
	switch mode {
	case outQuery:
		r, err := call(Out{})
		if err == nil && r.Len < want {
			return hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "length %d, want at least %d", r.Len, want)
		}
		return err
	case outShort:
		_, err := call(Out{Present: true, Cap: want - 1})
		return err
	}
	_, err := call(Out{Present: true, Cap: 4096})
	return err
}

type lifecycleKeys struct {
	aes, rsaPub, rsaPriv uint64
	sig                  []byte // CKM_RSA_PKCS signature of lcData
	ct                   []byte // AES-CBC-PAD encryption of lcData (zero IV)
}

var lcData = bytes.Repeat([]byte{0x5A}, 40)

func lifecycleKits(k lifecycleKeys) []opKit {
	cbc := Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: make([]byte, 16)}
	rsaPKCS := Mechanism{Type: ck.CKM_RSA_PKCS}
	sha := Mechanism{Type: ck.CKM_SHA256}
	pick := func(mode outMode, good, bad []byte) []byte {
		if mode == outBad {
			return bad
		}
		return good
	}
	// fed is how much of the input the update step gave, per session;
	// the final step gives the rest.
	var fedMu sync.Mutex
	fedN := map[uint64]int{}
	fed := func(h uint64, n ...int) int {
		fedMu.Lock()
		defer fedMu.Unlock()
		if len(n) > 0 {
			fedN[h] = n[0]
		}
		return fedN[h]
	}
	mechOrNull := func(m Mechanism, null bool) Mechanism {
		if null {
			return Mechanism{Kind: mechKindNull, Null: true}
		}
		return m
	}
	return []opKit{
		{
			name: "encrypt", lenq: true, noFinalBad: true, // CBC_PAD's final call cannot fail
			init: func(h uint64, null bool) error { return e2m(h).EncryptInit(h, mechOrNull(cbc, null), k.aes) },
			single: func(h uint64, mode outMode) error {
				return outCall(mode, 48, func(o Out) (OutResult, error) {
					return e2m(h).Encrypt(h, pick(mode, lcData, make([]byte, maxOpData+1)), o)
				})
			},
			update: func(h uint64) error {
				fed(h, 7)
				_, err := e2m(h).EncryptUpdate(h, lcData[:7], Out{Present: true, Cap: 4096})
				return err
			},
			final: func(h uint64, mode outMode) error {
				// A whole block goes out here; the final call gives the
				// padding block.
				if _, err := e2m(h).EncryptUpdate(h, lcData[fed(h):16], Out{Present: true, Cap: 4096}); err != nil {
					return err
				}
				return outCall(mode, 16, func(o Out) (OutResult, error) { return e2m(h).EncryptFinal(h, o) })
			},
		},
		{
			name: "decrypt", lenq: true,
			init: func(h uint64, null bool) error { return e2m(h).DecryptInit(h, mechOrNull(cbc, null), k.aes) },
			single: func(h uint64, mode outMode) error {
				return outCall(mode, 40, func(o Out) (OutResult, error) { return e2m(h).Decrypt(h, pick(mode, k.ct, k.ct[:15]), o) })
			},
			update: func(h uint64) error {
				fed(h, 7)
				_, err := e2m(h).DecryptUpdate(h, k.ct[:7], Out{Present: true, Cap: 4096})
				return err
			},
			final: func(h uint64, mode outMode) error {
				// With all 48 bytes in, the last block (8 bytes of data
				// and the padding) comes out at the final call; with 7 or
				// none, the final call refuses what it has.
				if mode != outBad {
					if _, err := e2m(h).DecryptUpdate(h, k.ct[fed(h):], Out{Present: true, Cap: 4096}); err != nil {
						return err
					}
				}
				return outCall(mode, 8, func(o Out) (OutResult, error) { return e2m(h).DecryptFinal(h, o) })
			},
		},
		{
			name: "digest", lenq: true,
			init: func(h uint64, null bool) error { return e2m(h).DigestInit(h, mechOrNull(sha, null)) },
			single: func(h uint64, mode outMode) error {
				return outCall(mode, 32, func(o Out) (OutResult, error) {
					return e2m(h).Digest(h, pick(mode, lcData, make([]byte, maxOpData+1)), o)
				})
			},
			update: func(h uint64) error { return e2m(h).DigestUpdate(h, lcData) },
			final: func(h uint64, mode outMode) error {
				if mode == outBad {
					return e2m(h).DigestKey(h, k.aes) // refused, so it ends the digest
				}
				return outCall(mode, 32, func(o Out) (OutResult, error) { return e2m(h).DigestFinal(h, o) })
			},
		},
		{
			name: "sign", lenq: true,
			init: func(h uint64, null bool) error { return e2m(h).SignInit(h, mechOrNull(rsaPKCS, null), k.rsaPriv) },
			single: func(h uint64, mode outMode) error {
				return outCall(mode, 256, func(o Out) (OutResult, error) {
					return e2m(h).Sign(h, pick(mode, lcData, make([]byte, 250)), o)
				})
			},
			update: func(h uint64) error { return e2m(h).SignUpdate(h, lcData[:16]) },
			final: func(h uint64, mode outMode) error {
				if mode == outBad {
					if err := e2m(h).SignUpdate(h, make([]byte, 250)); err != nil {
						return err
					}
				}
				return outCall(mode, 256, func(o Out) (OutResult, error) { return e2m(h).SignFinal(h, o) })
			},
		},
		{
			name: "verify",
			init: func(h uint64, null bool) error { return e2m(h).VerifyInit(h, mechOrNull(rsaPKCS, null), k.rsaPub) },
			single: func(h uint64, mode outMode) error {
				return e2m(h).Verify(h, lcData, pick(mode, k.sig, k.sig[1:]))
			},
			update: func(h uint64) error { fed(h, 16); return e2m(h).VerifyUpdate(h, lcData[:16]) },
			final: func(h uint64, mode outMode) error {
				if mode != outBad {
					if err := e2m(h).VerifyUpdate(h, lcData[fed(h):]); err != nil {
						return err
					}
				}
				return e2m(h).VerifyFinal(h, k.sig)
			},
		},
		{
			name: "sign-recover", lenq: true,
			init: func(h uint64, null bool) error {
				return e2m(h).SignRecoverInit(h, mechOrNull(rsaPKCS, null), k.rsaPriv)
			},
			single: func(h uint64, mode outMode) error {
				return outCall(mode, 256, func(o Out) (OutResult, error) {
					return e2m(h).SignRecover(h, pick(mode, lcData, make([]byte, 250)), o)
				})
			},
		},
		{
			name: "verify-recover", lenq: true,
			init: func(h uint64, null bool) error {
				return e2m(h).VerifyRecoverInit(h, mechOrNull(rsaPKCS, null), k.rsaPub)
			},
			single: func(h uint64, mode outMode) error {
				return outCall(mode, 32, func(o Out) (OutResult, error) {
					return e2m(h).VerifyRecover(h, pick(mode, k.sig, k.sig[1:]), o)
				})
			},
		},
	}
}

// e2m finds the module a session handle belongs to (the table's closures
// take only the handle).
var lcModules sync.Map // session handle -> *Module

func e2m(h uint64) *Module {
	v, _ := lcModules.Load(h)
	return v.(*Module)
}

// lcStep is one call of a row.
type lcStep struct {
	call string // init, null, single, update, final
	mode outMode
	want uint64
}

type lcRow struct {
	name  string
	steps []lcStep
	alive bool // the operation is active after the last step
}

func st(call string, mode outMode, want uint64) lcStep { return lcStep{call, mode, want} }

var lcRows = []lcRow{
	{"init twice", []lcStep{st("init", 0, ck.CKR_OK), st("init", 0, ck.CKR_OPERATION_ACTIVE)}, true},
	{"single-part", []lcStep{st("init", 0, ck.CKR_OK), st("single", outFull, ck.CKR_OK)}, false},
	{"single-part after it ended", []lcStep{st("init", 0, ck.CKR_OK), st("single", outFull, ck.CKR_OK),
		st("single", outFull, ck.CKR_OPERATION_NOT_INITIALIZED)}, false},
	{"length query keeps it", []lcStep{st("init", 0, ck.CKR_OK), st("single", outQuery, ck.CKR_OK)}, true},
	{"length query then the data", []lcStep{st("init", 0, ck.CKR_OK), st("single", outQuery, ck.CKR_OK), st("single", outFull, ck.CKR_OK)}, false},
	{"short buffer keeps it", []lcStep{st("init", 0, ck.CKR_OK), st("single", outShort, ck.CKR_BUFFER_TOO_SMALL)}, true},
	{"short buffer then the data", []lcStep{st("init", 0, ck.CKR_OK), st("single", outShort, ck.CKR_BUFFER_TOO_SMALL), st("single", outFull, ck.CKR_OK)}, false},
	{"single-part error ends it", []lcStep{st("init", 0, ck.CKR_OK), st("single", outBad, 0)}, false},
	{"NULL mechanism cancels", []lcStep{st("init", 0, ck.CKR_OK), st("null", 0, ck.CKR_OK)}, false},
	{"NULL mechanism with nothing active", []lcStep{st("null", 0, ck.CKR_OK)}, false},
	{"no init: single-part", []lcStep{st("single", outFull, ck.CKR_OPERATION_NOT_INITIALIZED)}, false},
	{"no init: update", []lcStep{st("update", 0, ck.CKR_OPERATION_NOT_INITIALIZED)}, false},
	{"no init: final", []lcStep{st("final", outFull, ck.CKR_OPERATION_NOT_INITIALIZED)}, false},
	{"multi-part", []lcStep{st("init", 0, ck.CKR_OK), st("update", 0, ck.CKR_OK), st("final", outFull, ck.CKR_OK)}, false},
	{"update after final", []lcStep{st("init", 0, ck.CKR_OK), st("update", 0, ck.CKR_OK), st("final", outFull, ck.CKR_OK),
		st("update", 0, ck.CKR_OPERATION_NOT_INITIALIZED)}, false},
	{"final with no update", []lcStep{st("init", 0, ck.CKR_OK), st("final", outFull, ck.CKR_OK)}, false},
	{"final length query keeps it", []lcStep{st("init", 0, ck.CKR_OK), st("update", 0, ck.CKR_OK), st("final", outQuery, ck.CKR_OK)}, true},
	{"final short buffer keeps it", []lcStep{st("init", 0, ck.CKR_OK), st("update", 0, ck.CKR_OK), st("final", outShort, ck.CKR_BUFFER_TOO_SMALL)}, true},
	{"final error ends it", []lcStep{st("init", 0, ck.CKR_OK), st("update", 0, ck.CKR_OK), st("final", outBad, 0)}, false},
	{"single-part after update: mixed", []lcStep{st("init", 0, ck.CKR_OK), st("update", 0, ck.CKR_OK),
		st("single", outFull, ck.CKR_OPERATION_ACTIVE)}, false},
	{"update after a single-part length query: mixed", []lcStep{st("init", 0, ck.CKR_OK), st("single", outQuery, ck.CKR_OK),
		st("update", 0, ck.CKR_OPERATION_ACTIVE)}, false},
	{"final after a single-part length query: mixed", []lcStep{st("init", 0, ck.CKR_OK), st("single", outQuery, ck.CKR_OK),
		st("final", outFull, ck.CKR_OPERATION_ACTIVE)}, false},
	{"single-part after a final length query: mixed", []lcStep{st("init", 0, ck.CKR_OK), st("final", outQuery, ck.CKR_OK),
		st("single", outFull, ck.CKR_OPERATION_ACTIVE)}, false},
}

// applies says whether a row can run on a kit.
func (r lcRow) applies(k opKit) bool {
	for _, s := range r.steps {
		if (s.call == "update" || s.call == "final") && k.update == nil {
			return false
		}
		if (s.mode == outQuery || s.mode == outShort) && !k.lenq {
			return false
		}
		if s.call == "final" && s.mode == outBad && k.noFinalBad {
			return false
		}
	}
	return true
}

func (k opKit) do(h uint64, s lcStep) error {
	switch s.call {
	case "init":
		return k.init(h, false)
	case "null":
		return k.init(h, true)
	case "single":
		return k.single(h, s.mode)
	case "update":
		return k.update(h)
	}
	return k.final(h, s.mode)
}

func newLifecycleKeys(t *testing.T, m *Module, h uint64) lifecycleKeys {
	var k lifecycleKeys
	var err error
	k.aes, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 16)})
	require.NoError(t, err)
	k.rsaPub, k.rsaPriv, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		[]Attr{ulAttr(ck.CKA_MODULUS_BITS, 2048), boAttr(ck.CKA_VERIFY, true), boAttr(ck.CKA_VERIFY_RECOVER, true)},
		[]Attr{boAttr(ck.CKA_SIGN, true), boAttr(ck.CKA_SIGN_RECOVER, true)})
	require.NoError(t, err)
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, k.rsaPriv))
	r, err := m.Sign(h, lcData, Out{Present: true, Cap: 512})
	require.NoError(t, err)
	k.sig = r.Data
	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: make([]byte, 16)}, k.aes))
	r, err = m.Encrypt(h, lcData, Out{Present: true, Cap: 512})
	require.NoError(t, err)
	k.ct = r.Data
	return k
}

func TestOperationLifecycle(t *testing.T) {
	e := newEnv(t)
	m := e.m
	keys := newLifecycleKeys(t, m, e.login(t))
	for _, kit := range lifecycleKits(keys) {
		t.Run(kit.name, func(t *testing.T) {
			t.Parallel() // sessions of one module on many goroutines, for -race
			for _, row := range lcRows {
				if !row.applies(kit) {
					continue
				}
				h, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
				require.NoError(t, err)
				lcModules.Store(h, m)
				for i, s := range row.steps {
					err := kit.do(h, s)
					if s.mode == outBad {
						assert.Error(t, err, "%s: step %d (%s, bad input)", row.name, i, s.call)
						continue
					}
					assert.Equal(t, ck.RVName(s.want), ck.RVName(hsmerr.RV(err)), "%s: step %d (%s): %v", row.name, i, s.call, err)
				}
				// Probe: a new init answers CKR_OPERATION_ACTIVE exactly
				// when the operation is still active.
				want := uint64(ck.CKR_OK)
				if row.alive {
					want = ck.CKR_OPERATION_ACTIVE
				}
				assert.Equal(t, ck.RVName(want), ck.RVName(hsmerr.RV(kit.init(h, false))), "%s: active afterwards", row.name)
				require.NoError(t, m.CloseSession(h))
			}
		})
	}
}

// The recover functions give back what was signed (CKM_RSA_PKCS) or the
// whole block (CKM_RSA_X_509), and the signature is Go's PKCS #1 v1.5.
func TestSignVerifyRecover(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	k := newLifecycleKeys(t, m, h)
	require.NoError(t, m.SignRecoverInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, k.rsaPriv))
	sig, err := m.SignRecover(h, lcData, Out{Present: true, Cap: 256})
	require.NoError(t, err)
	assert.Equal(t, k.sig, sig.Data, "sign-recover with CKM_RSA_PKCS is the CKM_RSA_PKCS signature")
	vals, err := m.GetAttributeValue(h, k.rsaPub, []AttrReq{{Type: ck.CKA_PUBLIC_KEY_INFO, Present: true, Cap: 1000}})
	require.NoError(t, err)
	pk, err := x509.ParsePKIXPublicKey(vals[0].Data)
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPKCS1v15(pk.(*rsa.PublicKey), 0, lcData, sig.Data), "Go verifies it")

	require.NoError(t, m.VerifyRecoverInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, k.rsaPub))
	back, err := m.VerifyRecover(h, sig.Data, Out{Present: true, Cap: 256})
	require.NoError(t, err)
	assert.Equal(t, lcData, back.Data)

	// Raw RSA: the block comes back whole.
	block := append([]byte{0}, bytes.Repeat([]byte{7}, 255)...)
	require.NoError(t, m.SignRecoverInit(h, Mechanism{Type: ck.CKM_RSA_X_509}, k.rsaPriv))
	raw, err := m.SignRecover(h, block, Out{Present: true, Cap: 256})
	require.NoError(t, err)
	require.NoError(t, m.VerifyRecoverInit(h, Mechanism{Type: ck.CKM_RSA_X_509}, k.rsaPub))
	back, err = m.VerifyRecover(h, raw.Data, Out{Present: true, Cap: 256})
	require.NoError(t, err)
	assert.Equal(t, block, back.Data)

	// A raw block that is not PKCS #1 does not open under CKM_RSA_PKCS.
	require.NoError(t, m.VerifyRecoverInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, k.rsaPub))
	_, err = m.VerifyRecover(h, raw.Data, Out{Present: true, Cap: 256})
	wantRV(t, "not a PKCS #1 block", err, ck.CKR_SIGNATURE_INVALID)

	// Mechanisms that do not recover, and keys without the attribute.
	wantRV(t, "ECDSA", m.SignRecoverInit(h, Mechanism{Type: ck.CKM_ECDSA}, k.rsaPriv), ck.CKR_MECHANISM_INVALID)
	wantRV(t, "hash-and-sign", m.VerifyRecoverInit(h, Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, k.rsaPub), ck.CKR_MECHANISM_INVALID)
	pub2, priv2, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		[]Attr{ulAttr(ck.CKA_MODULUS_BITS, 2048)}, []Attr{boAttr(ck.CKA_SIGN, true)})
	require.NoError(t, err)
	wantRV(t, "no CKA_SIGN_RECOVER", m.SignRecoverInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, priv2), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	wantRV(t, "no CKA_VERIFY_RECOVER", m.VerifyRecoverInit(h, Mechanism{Type: ck.CKM_RSA_PKCS}, pub2), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
}

// The dual-function updates give what the two operations give apart, and
// feed the second operation only when the first gave its output.
func TestDualFunctionUpdates(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	k := newLifecycleKeys(t, m, h)
	cbc := Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: make([]byte, 16)}
	sha := Mechanism{Type: ck.CKM_SHA256}
	sum := sha256.Sum256(lcData)

	_, err := m.DigestEncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	wantRV(t, "neither active", err, ck.CKR_OPERATION_NOT_INITIALIZED)
	require.NoError(t, m.DigestInit(h, sha))
	_, err = m.DigestEncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	wantRV(t, "no encrypt", err, ck.CKR_OPERATION_NOT_INITIALIZED)
	require.NoError(t, m.EncryptInit(h, cbc, k.aes))
	// A length query and a short buffer feed nothing to the digest.
	r, err := m.DigestEncryptUpdate(h, lcData, Out{})
	require.NoError(t, err)
	assert.Equal(t, uint64(32), r.Len)
	_, err = m.DigestEncryptUpdate(h, lcData, Out{Present: true, Cap: 31})
	wantRV(t, "short", err, ck.CKR_BUFFER_TOO_SMALL)
	r, err = m.DigestEncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	f, err := m.EncryptFinal(h, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	assert.Equal(t, k.ct, append(r.Data, f.Data...))
	d, err := m.DigestFinal(h, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	assert.Equal(t, sum[:], d.Data, "the digest saw the plaintext once")

	// Decrypt and digest: the digest gets the plaintext as it comes out.
	require.NoError(t, m.DecryptInit(h, cbc, k.aes))
	require.NoError(t, m.DigestInit(h, sha))
	var plain []byte
	for _, part := range [][]byte{k.ct[:5], k.ct[5:21], k.ct[21:]} {
		r, err := m.DecryptDigestUpdate(h, part, Out{Present: true, Cap: 64})
		require.NoError(t, err)
		plain = append(plain, r.Data...)
	}
	r, err = m.DecryptFinal(h, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	plain = append(plain, r.Data...)
	require.NoError(t, m.DigestUpdate(h, r.Data), "the last part comes out of the final call: the caller digests it")
	d, err = m.DigestFinal(h, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	assert.Equal(t, lcData, plain)
	assert.Equal(t, sum[:], d.Data)

	// Sign and encrypt; decrypt and verify.
	rsaPKCS := Mechanism{Type: ck.CKM_RSA_PKCS}
	require.NoError(t, m.SignInit(h, rsaPKCS, k.rsaPriv))
	require.NoError(t, m.EncryptInit(h, cbc, k.aes))
	r, err = m.SignEncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	f, err = m.EncryptFinal(h, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	assert.Equal(t, k.ct, append(r.Data, f.Data...))
	s, err := m.SignFinal(h, Out{Present: true, Cap: 512})
	require.NoError(t, err)
	assert.Equal(t, k.sig, s.Data)
	require.NoError(t, m.VerifyInit(h, rsaPKCS, k.rsaPub))
	require.NoError(t, m.DecryptInit(h, cbc, k.aes))
	_, err = m.DecryptVerifyUpdate(h, k.ct, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	r, err = m.DecryptFinal(h, Out{Present: true, Cap: 64})
	require.NoError(t, err)
	require.NoError(t, m.VerifyUpdate(h, r.Data), "the block the decrypt kept back")
	require.NoError(t, m.VerifyFinal(h, k.sig))

	// A dual update with a single-part digest under way: mixed, and the
	// digest ends; the encrypt goes on.
	require.NoError(t, m.DigestInit(h, sha))
	require.NoError(t, m.EncryptInit(h, cbc, k.aes))
	_, err = m.Digest(h, lcData, Out{})
	require.NoError(t, err)
	_, err = m.DigestEncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	wantRV(t, "mixed", err, ck.CKR_OPERATION_ACTIVE)
	_, err = m.DigestFinal(h, Out{Present: true, Cap: 64})
	wantRV(t, "the digest ended", err, ck.CKR_OPERATION_NOT_INITIALIZED)
	_, err = m.EncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	require.NoError(t, err, "the encrypt is still active")
}

func TestOperationState(t *testing.T) {
	e := newEnv(t)
	m := e.m
	a, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION) // digests need no login
	require.NoError(t, err)
	b, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)

	_, err = m.GetOperationState(a, Out{})
	wantRV(t, "nothing active", err, ck.CKR_OPERATION_NOT_INITIALIZED)
	for _, mt := range []uint64{ck.CKM_SHA_1, ck.CKM_SHA256, ck.CKM_SHA512, ck.CKM_SHA3_256} {
		require.NoError(t, m.DigestInit(a, Mechanism{Type: mt}))
		require.NoError(t, m.DigestUpdate(a, []byte("first half, ")))
		n, err := m.GetOperationState(a, Out{})
		require.NoError(t, err)
		_, err = m.GetOperationState(a, Out{Present: true, Cap: n.Len - 1})
		wantRV(t, "short", err, ck.CKR_BUFFER_TOO_SMALL)
		st, err := m.GetOperationState(a, Out{Present: true, Cap: n.Len})
		require.NoError(t, err)
		// Restored in another session, the digest goes on from there;
		// the first session's goes on too.
		require.NoError(t, m.SetOperationState(b, st.Data, 0, 0))
		for _, h := range []uint64{a, b} {
			require.NoError(t, m.DigestUpdate(h, []byte("second half")))
			d, err := m.DigestFinal(h, Out{Present: true, Cap: 64})
			require.NoError(t, err)
			want, ok := mech.RunningHash(mt)
			require.True(t, ok)
			want.Write([]byte("first half, second half"))
			assert.Equal(t, want.Sum(nil), d.Data, "%s in session %d", ck.MechName(mt), h)
		}
	}

	require.NoError(t, m.DigestInit(a, Mechanism{Type: ck.CKM_SHA256}))
	st, err := m.GetOperationState(a, Out{Present: true, Cap: 4096})
	require.NoError(t, err)
	wantRV(t, "a key handle", m.SetOperationState(b, st.Data, 5, 0), ck.CKR_KEY_NOT_NEEDED)
	for i := range st.Data {
		bad := bytes.Clone(st.Data)
		bad[i] ^= 0x80
		wantRV(t, "tampered", m.SetOperationState(b, bad, 0, 0), ck.CKR_SAVED_STATE_INVALID)
	}
	wantRV(t, "cut", m.SetOperationState(b, st.Data[:len(st.Data)-1], 0, 0), ck.CKR_SAVED_STATE_INVALID)
	wantRV(t, "empty", m.SetOperationState(b, []byte{}, 0, 0), ck.CKR_SAVED_STATE_INVALID)
	// Another module (another process) has another key.
	other := NewModule()
	other.loadConfig = m.loadConfig
	require.NoError(t, other.Initialize(0))
	defer other.Finalize()
	os, err := other.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	wantRV(t, "foreign", other.SetOperationState(os, st.Data, 0, 0), ck.CKR_SAVED_STATE_INVALID)

	// Operations that hold keys cannot be saved.
	h := e.login(t)
	k := newLifecycleKeys(t, m, h)
	require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_CBC, Kind: 1, Raw: make([]byte, 16)}, k.aes))
	_, err = m.GetOperationState(h, Out{})
	wantRV(t, "encrypt", err, ck.CKR_STATE_UNSAVEABLE)
	require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
	_, err = m.GetOperationState(h, Out{})
	wantRV(t, "digest and encrypt", err, ck.CKR_STATE_UNSAVEABLE)
	// Restoring replaces what was active.
	require.NoError(t, m.SetOperationState(h, st.Data, 0, 0))
	_, err = m.EncryptUpdate(h, lcData, Out{Present: true, Cap: 64})
	wantRV(t, "encrypt gone", err, ck.CKR_OPERATION_NOT_INITIALIZED)
}

func TestWaitForSlotEvent(t *testing.T) {
	e := newEnv(t)
	m := e.m
	_, err := m.WaitForSlotEvent(ck.CKF_DONT_BLOCK, 0)
	wantRV(t, "nothing changed", err, ck.CKR_NO_EVENT)
	_, err = m.WaitForSlotEvent(0, 300)
	wantRV(t, "nothing changed in 300 ms", err, ck.CKR_NO_EVENT)

	// An officer makes a crypto user: their token slot appears.
	got := make(chan uint64, 1)
	go func() {
		id, err := m.WaitForSlotEvent(0, 5000)
		if err != nil {
			id = 0
		}
		got <- id
	}()
	cs, err := m.OpenSession(clusterSlot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(cs, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])))
	require.NoError(t, m.InitPIN(cs, []byte("erin:erin-password-1")))
	id := <-got
	require.NotZero(t, id, "a blocking wait sees the new slot")
	ti, err := m.GetTokenInfo(id)
	require.NoError(t, err)
	assert.Equal(t, "erin", strings.TrimRight(string(ti.Label[:]), " "))
	_, err = m.WaitForSlotEvent(ck.CKF_DONT_BLOCK, 0)
	wantRV(t, "reported once", err, ck.CKR_NO_EVENT)

	// C_Finalize on another thread ends a blocking wait.
	done := make(chan error, 1)
	go func() {
		_, err := m.WaitForSlotEvent(0, 5000)
		done <- err
	}()
	// Finalize only once the wait is blocked, so the test plays the wake-up
	// and not the check at the call's start.
	require.Eventually(t, func() bool { return m.slotWaiting.Load() > 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, m.Finalize())
	select {
	case err := <-done:
		wantRV(t, "finalized", err, ck.CKR_CRYPTOKI_NOT_INITIALIZED)
		assert.Contains(t, err.Error(), "finalized while waiting", "the blocked wait was woken")
	case <-time.After(3 * time.Second):
		t.Fatal("the wait did not end with C_Finalize")
	}
	require.NoError(t, m.Initialize(0)) // for the cleanup's Finalize
}
