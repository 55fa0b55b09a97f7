package suites

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// TestBadInput calls the library wrongly, through the C ABI, and checks that
// every call answers the CK_RV PKCS#11 (v2.40 and v3.0) specifies for it and
// that the library goes on working: NULL pointers, zero lengths, wrong
// session and object handles (0, made up, another user's), calls in the wrong
// state, short buffers, bad mechanisms and parameters, bad templates. Rows
// that github.com/miekg/pkcs11 cannot express (NULL pointers, exact buffer
// sizes, C_Finalize in the middle) are cases of testdata/badinput.c, each
// run in a process of its own so that a crash shows as a signal. The table
// runs in process and through the fork helper (see eachMode).
func TestBadInput(t *testing.T) {
	if childMode() != "" {
		badInputChild(t)
		return
	}
	build(t)
	cl, env := startCluster(t)
	// A second crypto user, whose objects the first must not reach.
	otherPIN := randomTag() + randomTag()
	pwFile := filepath.Join(t.TempDir(), "other.password")
	if err := os.WriteFile(pwFile, []byte(otherPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	officer := []string{"HSM_USER=" + cl.Env["HSM_USER"], "HSM_PASSWORD=" + cl.Env["HSM_PASSWORD"]}
	if out, err := cl.HSM(officer, "user", "create", "cu2", "--role", "CU", "--new-password-file", pwFile); err != nil {
		t.Fatalf("hsm user create cu2: %v\n%s", err, out)
	}
	env = append(env, envOther+"=cu2", envOtherPIN+"="+otherPIN)
	eachMode(t, cl, env, 10*time.Minute)
}

// badFixture is what the rows work with: the crypto user's token slot,
// logged in by a session that stays open (login is per application and
// slot, so every new session on the slot is logged in), the other user's
// slot (not logged in) and objects of both.
type badFixture struct {
	p         *pkcs11.Ctx
	slot      uint
	otherSlot uint
	k         keys                // token keys of the crypto user
	noEncrypt pkcs11.ObjectHandle // an AES key with CKA_ENCRYPT false
	other     pkcs11.ObjectHandle // a token AES key of the other user
	tag       string
}

// session opens a read-write session on the crypto user's (logged-in) slot
// for one row.
func (f *badFixture) session(t *testing.T) pkcs11.SessionHandle {
	return f.open(t, f.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
}

// ro opens a read-only session on the crypto user's slot.
func (f *badFixture) ro(t *testing.T) pkcs11.SessionHandle {
	return f.open(t, f.slot, pkcs11.CKF_SERIAL_SESSION)
}

// public opens a read-write session on the other user's slot, where no one
// is logged in.
func (f *badFixture) public(t *testing.T) pkcs11.SessionHandle {
	return f.open(t, f.otherSlot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
}

// tokenObject makes a token data object for one row, destroyed when the
// row ends.
func (f *badFixture) tokenObject(t *testing.T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
	t.Helper()
	obj, err := f.p.CreateObject(sh, dataTemplate(true, f.tag+"-token-data"))
	if err != nil {
		t.Fatalf("C_CreateObject (token data object): %v", err)
	}
	t.Cleanup(func() {
		if err := f.p.DestroyObject(sh, obj); err != nil && !isRV(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			t.Errorf("C_DestroyObject: %v", err)
		}
	})
	return obj
}

func (f *badFixture) open(t *testing.T, slot, flags uint) pkcs11.SessionHandle {
	t.Helper()
	sh, err := f.p.OpenSession(slot, flags)
	if err != nil {
		t.Fatalf("C_OpenSession: %v", err)
	}
	t.Cleanup(func() {
		if err := f.p.CloseSession(sh); err != nil && !isRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID) {
			t.Errorf("C_CloseSession: %v", err)
		}
	})
	return sh
}

// badRow is one row: the CK_RV PKCS#11 asks for, and either a call through
// miekg/pkcs11 (it returns the error of the call under test and checks what
// follows with t) or the name of a case of testdata/badinput.c.
type badRow struct {
	name string
	want uint
	call func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error
	c    string
}

func mech(m uint, param any) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
}

var attr = pkcs11.NewAttribute

// aesTemplate is an AES-128 key's template (class, key type, length,
// token, encrypt), with extra attributes.
func aesTemplate(token bool, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_VALUE_LEN, 16),
		attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_ENCRYPT, true)}, extra...)
}

// dataTemplate is a data object's template, with extra attributes.
func dataTemplate(token bool, label string, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), attr(pkcs11.CKA_TOKEN, token),
		attr(pkcs11.CKA_LABEL, label), attr(pkcs11.CKA_VALUE, []byte("value"))}, extra...)
}

// raw is an attribute with exactly the value bytes given.
func raw(typ uint, v []byte) *pkcs11.Attribute { return &pkcs11.Attribute{Type: typ, Value: v} }

const (
	madeUpHandle   = 0x5eed_f00d_dead_beef
	unknownMech    = 0x8000_1234 // a vendor mechanism no one defines
	unknownAttr    = 0x7fff_0000 // not a defined attribute, not vendor-defined
	ckrCurveNotSup = 0x140
)

// exists tells whether a handle names an object the session can see.
func exists(f *badFixture, sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) error {
	_, err := f.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, nil)})
	return err
}

func sign(t *testing.T, f *badFixture, sh pkcs11.SessionHandle, msg []byte) []byte {
	t.Helper()
	if err := f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPriv); err != nil {
		t.Fatalf("C_SignInit: %v", err)
	}
	sig, err := f.p.Sign(sh, msg)
	if err != nil {
		t.Fatalf("C_Sign: %v", err)
	}
	return sig
}

func gcmMech(iv []byte, tagBits int) []*pkcs11.Mechanism {
	return mech(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(iv, nil, tagBits))
}

func oaep(hash, mgf uint) []*pkcs11.Mechanism {
	return mech(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(hash, mgf, pkcs11.CKZ_DATA_SPECIFIED, nil))
}

var badRows = []badRow{
	// ---- NULL pointers (C) ----
	{name: "C_GetFunctionList(NULL)", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_getfunctionlist"},
	{name: "C_Initialize with pReserved set", want: pkcs11.CKR_ARGUMENTS_BAD, c: "initialize_reserved"},
	{name: "C_Finalize(non-NULL)", want: pkcs11.CKR_ARGUMENTS_BAD, c: "finalize_reserved"},
	{name: "C_GetInfo(NULL)", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_getinfo"},
	{name: "C_GetSlotList NULL count", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_getslotlist_count"},
	{name: "C_GetTokenInfo(slot, NULL)", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_gettokeninfo"},
	{name: "C_GetMechanismList NULL count", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_getmechanismlist_count"},
	{name: "C_OpenSession NULL phSession", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_opensession_handle"},
	{name: "C_GetSessionInfo(h, NULL)", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_getsessioninfo"},
	{name: "C_Login NULL PIN with a length", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_login_pin"},
	{name: "C_SignInit NULL mechanism (v3.0: cancels, none active)", want: pkcs11.CKR_OK, c: "null_signinit_mechanism"},
	{name: "C_Sign NULL pulSignatureLen", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_sign_length"},
	{name: "C_Encrypt NULL data with a length", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_encrypt_data"},
	{name: "C_Verify NULL signature with a length", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_verify_signature"},
	{name: "C_GenerateKey NULL template with a count", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_generatekey_template"},
	{name: "C_GenerateKey NULL phKey", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_generatekey_handle"},
	{name: "C_GenerateKeyPair NULL phPrivateKey", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_generatekeypair_handles"},
	{name: "C_FindObjects NULL handle array", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_findobjects_handles"},
	{name: "C_FindObjects NULL count", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_findobjects_count"},
	{name: "C_GetAttributeValue NULL template with a count", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_getattributevalue_template"},
	{name: "C_GenerateRandom NULL buffer", want: pkcs11.CKR_ARGUMENTS_BAD, c: "null_generaterandom"},
	{name: "C_DigestInit NULL mechanism (v3.0: cancels, none active)", want: pkcs11.CKR_OK, c: "null_digestinit_mechanism"},
	{name: "AES-GCM pIv NULL with ulIvLen 12", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, c: "null_gcm_iv"},
	{name: "AES-GCM without a parameter", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, c: "null_gcm_parameter"},

	// ---- zero lengths ----
	{name: "C_GetAttributeValue with no attributes", want: pkcs11.CKR_OK, c: "zero_getattributevalue_count"},
	{name: "C_FindObjects with ulMaxObjectCount 0", want: pkcs11.CKR_OK, c: "zero_findobjects_max"},
	{name: "C_GetAttributeValue length query (pValue NULL)", want: pkcs11.CKR_OK, c: "zero_attribute_length_query"},
	{name: "SHA-256 of no data", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil)); err != nil {
			t.Fatalf("C_DigestInit: %v", err)
		}
		d, err := f.p.Digest(sh, []byte{})
		if want := sha256.Sum256(nil); err == nil && !bytes.Equal(d, want[:]) {
			t.Errorf("SHA-256 of nothing = %x, want %x", d, want)
		}
		return err
	}},
	{name: "ECDSA signature of no data", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPriv); err != nil {
			t.Fatalf("C_SignInit: %v", err)
		}
		sig, err := f.p.Sign(sh, []byte{})
		if err == nil {
			f.p.VerifyInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPub)
			if err := f.p.Verify(sh, []byte{}, sig); err != nil {
				t.Errorf("C_Verify of the signature of no data: %v", err)
			}
		}
		return err
	}},
	{name: "HMAC of no data", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.SignInit(sh, mech(pkcs11.CKM_SHA256_HMAC, nil), f.k.hmac); err != nil {
			t.Fatalf("C_SignInit: %v", err)
		}
		mac, err := f.p.Sign(sh, []byte{})
		if err == nil && len(mac) != 32 {
			t.Errorf("HMAC-SHA256 of nothing has %d bytes", len(mac))
		}
		return err
	}},
	{name: "AES-GCM of no data", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return gcmRoundTrip(f.p, sh, f.k.aes, []byte{})
	}},
	{name: "C_GenerateRandom of 0 bytes", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GenerateRandom(sh, 0)
		return err
	}},
	{name: "C_FindObjectsInit with an empty template", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		err := f.p.FindObjectsInit(sh, nil)
		if err == nil {
			hs, _, err := f.p.FindObjects(sh, 1000)
			if err != nil || len(hs) < len(f.k.all()) {
				t.Errorf("C_FindObjects of everything: %d handles, %v; want at least the %d keys", len(hs), err, len(f.k.all()))
			}
			f.p.FindObjectsFinal(sh)
		}
		return err
	}},
	{name: "C_Verify with a zero-length signature", want: pkcs11.CKR_SIGNATURE_LEN_RANGE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.VerifyInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPub); err != nil {
			t.Fatalf("C_VerifyInit: %v", err)
		}
		return f.p.Verify(sh, []byte("abc"), []byte{})
	}},
	{name: "C_Verify with a 63-byte P-256 signature", want: pkcs11.CKR_SIGNATURE_LEN_RANGE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		sig := sign(t, f, sh, []byte("abc"))
		if err := f.p.VerifyInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPub); err != nil {
			t.Fatalf("C_VerifyInit: %v", err)
		}
		return f.p.Verify(sh, []byte("abc"), sig[:63])
	}},
	{name: "AES-GCM decryption of zero bytes (shorter than the tag)", want: pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.DecryptInit(sh, gcmMech(make([]byte, 12), 128), f.k.aes); err != nil {
			t.Fatalf("C_DecryptInit: %v", err)
		}
		_, err := f.p.Decrypt(sh, []byte{})
		return err
	}},
	{name: "C_Login with an empty PIN", want: pkcs11.CKR_PIN_INCORRECT, c: "empty_pin_login"},
	{name: "C_Login with a NULL PIN (no protected authentication path)", want: pkcs11.CKR_ARGUMENTS_BAD, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		// miekg/pkcs11 passes NULL, 0 for an empty PIN: what an application
		// does on a token with CKF_PROTECTED_AUTHENTICATION_PATH, which this
		// one does not have.
		return f.p.Login(f.public(t), pkcs11.CKU_USER, "")
	}},

	// ---- session handles ----
	{name: "C_GetSessionInfo(0)", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.GetSessionInfo(0)
		return err
	}},
	{name: "C_GenerateRandom on a made-up session", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.GenerateRandom(madeUpHandle, 8)
		return err
	}},
	{name: "C_SignInit on a made-up session", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.SignInit(madeUpHandle, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPriv)
	}},
	{name: "C_Login on a made-up session", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.Login(madeUpHandle, pkcs11.CKU_USER, "whatever-pin")
	}},
	{name: "C_FindObjectsInit on a made-up session", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.FindObjectsInit(madeUpHandle, nil)
	}},
	{name: "C_CloseSession of a made-up session", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.CloseSession(madeUpHandle)
	}},
	{name: "a call after C_CloseSession", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		sh, err := f.p.OpenSession(f.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Fatalf("C_OpenSession: %v", err)
		}
		if err := f.p.CloseSession(sh); err != nil {
			t.Fatalf("C_CloseSession: %v", err)
		}
		if err := f.p.CloseSession(sh); !isRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID) {
			t.Errorf("C_CloseSession again: %v, want CKR_SESSION_HANDLE_INVALID", err)
		}
		return f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPriv)
	}},
	{name: "a call after C_CloseAllSessions", want: pkcs11.CKR_SESSION_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		sh := f.public(t)
		if err := f.p.CloseAllSessions(f.otherSlot); err != nil {
			t.Fatalf("C_CloseAllSessions: %v", err)
		}
		_, err := f.p.GetSessionInfo(sh)
		return err
	}},
	{name: "C_OpenSession on a made-up slot", want: pkcs11.CKR_SLOT_ID_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.OpenSession(123456, pkcs11.CKF_SERIAL_SESSION)
		return err
	}},
	{name: "C_OpenSession without CKF_SERIAL_SESSION", want: pkcs11.CKR_SESSION_PARALLEL_NOT_SUPPORTED, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.OpenSession(f.slot, pkcs11.CKF_RW_SESSION)
		return err
	}},

	// ---- object handles ----
	{name: "C_GetAttributeValue of object 0", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return exists(f, sh, 0)
	}},
	{name: "C_GetAttributeValue of a made-up object", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return exists(f, sh, madeUpHandle)
	}},
	{name: "C_GetAttributeValue of another user's object", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return exists(f, sh, f.other)
	}},
	{name: "C_DestroyObject(0)", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.DestroyObject(sh, 0)
	}},
	{name: "C_DestroyObject of a made-up object", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.DestroyObject(sh, madeUpHandle)
	}},
	{name: "C_DestroyObject of another user's object", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.DestroyObject(sh, f.other) // the fixture's cleanup checks it is still there
	}},
	{name: "C_SetAttributeValue of another user's object", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.SetAttributeValue(sh, f.other, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, "mine now")})
	}},
	{name: "C_CopyObject of another user's object", want: pkcs11.CKR_OBJECT_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		h, err := f.p.CopyObject(sh, f.other, []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)})
		if err == nil {
			f.p.DestroyObject(sh, h)
		}
		return err
	}},
	{name: "C_FindObjects does not see another user's object", want: pkcs11.CKR_OK, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		hs, err := find(f.p, sh, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, f.tag+"-other")})
		if len(hs) != 0 {
			t.Errorf("C_FindObjects found %v, another user's object", hs)
		}
		return err
	}},
	{name: "C_SignInit with key 0", want: pkcs11.CKR_KEY_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), 0), "Sign")
	}},
	{name: "C_SignInit with a made-up key", want: pkcs11.CKR_KEY_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), madeUpHandle), "Sign")
	}},
	{name: "C_EncryptInit with another user's key", want: pkcs11.CKR_KEY_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, gcmMech(make([]byte, 12), 128), f.other), "Encrypt")
	}},
	{name: "C_EncryptInit with a destroyed key", want: pkcs11.CKR_KEY_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		k, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(false))
		if err != nil {
			t.Fatalf("C_GenerateKey: %v", err)
		}
		if err := f.p.DestroyObject(sh, k); err != nil {
			t.Fatalf("C_DestroyObject: %v", err)
		}
		return atInit(t, f, sh, f.p.EncryptInit(sh, gcmMech(make([]byte, 12), 128), k), "Encrypt")
	}},
	{name: "C_Sign with a made-up key (C_SignInit accepted it)", want: pkcs11.CKR_KEY_HANDLE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		// Where the library only finds out at C_Sign, it must say so there.
		if err := f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), madeUpHandle); err != nil {
			return err
		}
		_, err := f.p.Sign(sh, []byte("abc"))
		return err
	}},

	// ---- session states ----
	{name: "C_Sign without C_SignInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.Sign(sh, []byte("abc"))
		return err
	}},
	{name: "C_SignUpdate without C_SignInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.SignUpdate(sh, []byte("abc"))
	}},
	{name: "C_Verify without C_VerifyInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.Verify(sh, []byte("abc"), make([]byte, 64))
	}},
	{name: "C_Encrypt without C_EncryptInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.Encrypt(sh, []byte("abc"))
		return err
	}},
	{name: "C_Decrypt without C_DecryptInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.Decrypt(sh, make([]byte, 32))
		return err
	}},
	{name: "C_DigestFinal without C_DigestInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.DigestFinal(sh)
		return err
	}},
	{name: "C_FindObjects without C_FindObjectsInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, _, err := f.p.FindObjects(sh, 10)
		return err
	}},
	{name: "C_FindObjectsFinal without C_FindObjectsInit", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.FindObjectsFinal(sh)
	}},
	{name: "C_SignInit while signing", want: pkcs11.CKR_OPERATION_ACTIVE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPriv); err != nil {
			t.Fatalf("C_SignInit: %v", err)
		}
		err := f.p.SignInit(sh, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), f.k.rsaPriv)
		// The first operation goes on: an ECDSA P-256 signature.
		sig, serr := f.p.Sign(sh, []byte("abc"))
		if serr != nil || len(sig) != 64 {
			t.Errorf("C_Sign of the first operation: %d bytes, %v; want a 64-byte ECDSA signature", len(sig), serr)
		}
		return err
	}},
	{name: "C_FindObjectsInit while finding", want: pkcs11.CKR_OPERATION_ACTIVE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		if err := f.p.FindObjectsInit(sh, nil); err != nil {
			t.Fatalf("C_FindObjectsInit: %v", err)
		}
		err := f.p.FindObjectsInit(sh, nil)
		if ferr := f.p.FindObjectsFinal(sh); ferr != nil {
			t.Errorf("C_FindObjectsFinal: %v", ferr)
		}
		return err
	}},
	{name: "C_Sign after an error ends the operation", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		// CKM_RSA_PKCS signs at most k-11 = 245 bytes with RSA-2048.
		if err := f.p.SignInit(sh, mech(pkcs11.CKM_RSA_PKCS, nil), f.k.rsaPriv); err != nil {
			t.Fatalf("C_SignInit: %v", err)
		}
		if _, err := f.p.Sign(sh, make([]byte, 300)); !isRV(err, pkcs11.CKR_DATA_LEN_RANGE) {
			t.Errorf("C_Sign of 300 bytes with CKM_RSA_PKCS: %v, want CKR_DATA_LEN_RANGE", err)
		}
		_, err := f.p.Sign(sh, make([]byte, 20))
		return err
	}},
	{name: "C_Verify after a bad signature ends the operation", want: pkcs11.CKR_OPERATION_NOT_INITIALIZED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		sig := sign(t, f, sh, []byte("abc"))
		sig[5] ^= 1
		if err := f.p.VerifyInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPub); err != nil {
			t.Fatalf("C_VerifyInit: %v", err)
		}
		if err := f.p.Verify(sh, []byte("abc"), sig); !isRV(err, pkcs11.CKR_SIGNATURE_INVALID) {
			t.Errorf("C_Verify of a bad signature: %v, want CKR_SIGNATURE_INVALID", err)
		}
		return f.p.Verify(sh, []byte("abc"), sig)
	}},
	{name: "C_Login when logged in", want: pkcs11.CKR_USER_ALREADY_LOGGED_IN, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.Login(sh, pkcs11.CKU_USER, os.Getenv("P11_PIN"))
	}},
	{name: "C_Login as SO when the user is logged in", want: pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.Login(sh, pkcs11.CKU_SO, "officer:password")
	}},
	{name: "C_Logout when not logged in", want: pkcs11.CKR_USER_NOT_LOGGED_IN, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.Logout(f.public(t))
	}},
	{name: "C_Login with a wrong PIN", want: pkcs11.CKR_PIN_INCORRECT, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		sh := f.public(t)
		err := f.p.Login(sh, pkcs11.CKU_USER, "not-the-password")
		if si, serr := f.p.GetSessionInfo(sh); serr != nil || si.State != pkcs11.CKS_RW_PUBLIC_SESSION {
			t.Errorf("after a refused login the session is in state %d (%v), want CKS_RW_PUBLIC_SESSION", si.State, serr)
		}
		return err
	}},
	{name: "C_Login with an unknown user type", want: pkcs11.CKR_USER_TYPE_INVALID, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.Login(f.public(t), 7, os.Getenv(envOtherPIN))
	}},
	{name: "C_SignInit when not logged in", want: pkcs11.CKR_USER_NOT_LOGGED_IN, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		return f.p.SignInit(f.public(t), mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.ecPriv)
	}},
	{name: "C_CreateObject of a private object when not logged in", want: pkcs11.CKR_USER_NOT_LOGGED_IN, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.CreateObject(f.public(t), dataTemplate(false, "private data", attr(pkcs11.CKA_PRIVATE, true)))
		return err
	}},
	{name: "C_GenerateKey of a token key in a read-only session", want: pkcs11.CKR_SESSION_READ_ONLY, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.GenerateKey(f.ro(t), mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(true))
		return err
	}},
	{name: "C_CreateObject of a token object in a read-only session", want: pkcs11.CKR_SESSION_READ_ONLY, call: func(t *testing.T, f *badFixture, _ pkcs11.SessionHandle) error {
		_, err := f.p.CreateObject(f.ro(t), dataTemplate(true, "token data"))
		return err
	}},
	{name: "C_DestroyObject of a token object in a read-only session", want: pkcs11.CKR_SESSION_READ_ONLY, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		obj := f.tokenObject(t, sh)
		err := f.p.DestroyObject(f.ro(t), obj)
		if eerr := exists(f, sh, obj); eerr != nil {
			t.Errorf("the token object is gone after C_DestroyObject in a read-only session: %v", eerr)
		}
		return err
	}},
	{name: "C_SetAttributeValue of a token object in a read-only session", want: pkcs11.CKR_SESSION_READ_ONLY, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		obj := f.tokenObject(t, sh)
		err := f.p.SetAttributeValue(f.ro(t), obj, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, "changed in a read-only session")})
		if a, gerr := f.p.GetAttributeValue(sh, obj, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, nil)}); gerr != nil || labelOf(a) != f.tag+"-token-data" {
			t.Errorf("after C_SetAttributeValue in a read-only session the label is %q (%v), want %q", labelOf(a), gerr, f.tag+"-token-data")
		}
		return err
	}},

	// ---- mechanisms and parameters ----
	{name: "C_SignInit with an unknown mechanism", want: pkcs11.CKR_MECHANISM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(unknownMech, nil), f.k.ecPriv), "Sign")
	}},
	{name: "C_SignInit with a digest mechanism", want: pkcs11.CKR_MECHANISM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(pkcs11.CKM_SHA256, nil), f.k.ecPriv), "Sign")
	}},
	{name: "C_DigestInit with a signature mechanism", want: pkcs11.CKR_MECHANISM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.DigestInit(sh, mech(pkcs11.CKM_ECDSA, nil))
	}},
	{name: "C_GenerateKey with a key pair mechanism", want: pkcs11.CKR_MECHANISM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil), aesTemplate(false))
		return err
	}},
	{name: "AES-GCM with the wrong ulParameterLen", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, mech(pkcs11.CKM_AES_GCM, make([]byte, 40)), f.k.aes), "Encrypt")
	}},
	{name: "AES-GCM with 129 tag bits", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, gcmMech(make([]byte, 12), 129), f.k.aes), "Encrypt")
	}},
	{name: "AES-GCM with an empty IV", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, gcmMech(nil, 128), f.k.aes), "Encrypt")
	}},
	{name: "AES-CBC with an 8-byte IV", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, mech(pkcs11.CKM_AES_CBC, make([]byte, 8)), f.k.aes), "Encrypt")
	}},
	{name: "ECDSA with a parameter", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, []byte{1, 2, 3, 4}), f.k.ecPriv), "Sign")
	}},
	{name: "RSA-OAEP with an unknown hash", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, oaep(0x1234, pkcs11.CKG_MGF1_SHA256), f.k.rsaPub), "Encrypt")
	}},
	{name: "RSA-OAEP with a MAC mechanism as the hash", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, oaep(pkcs11.CKM_SHA256_HMAC, pkcs11.CKG_MGF1_SHA256), f.k.rsaPub), "Encrypt")
	}},
	{name: "RSA-OAEP with an unknown MGF", want: pkcs11.CKR_MECHANISM_PARAM_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, oaep(pkcs11.CKM_SHA256, 0x99), f.k.rsaPub), "Encrypt")
	}},
	{name: "ECDSA with an RSA key", want: pkcs11.CKR_KEY_TYPE_INCONSISTENT, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), f.k.rsaPriv), "Sign")
	}},
	{name: "RSA signature with an AES key", want: pkcs11.CKR_KEY_TYPE_INCONSISTENT, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.SignInit(sh, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), f.k.aes), "Sign")
	}},
	{name: "AES-GCM with an HMAC key", want: pkcs11.CKR_KEY_TYPE_INCONSISTENT, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, gcmMech(make([]byte, 12), 128), f.k.hmac), "Encrypt")
	}},
	{name: "AES-GCM encryption with a key without CKA_ENCRYPT", want: pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return atInit(t, f, sh, f.p.EncryptInit(sh, gcmMech(make([]byte, 12), 128), f.noEncrypt), "Encrypt")
	}},

	// ---- templates ----
	{name: "C_GenerateKey with an unknown attribute", want: pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(false, raw(unknownAttr, []byte{1})))
		return err
	}},
	{name: "C_CreateObject with an unknown attribute", want: pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.CreateObject(sh, dataTemplate(false, "data", raw(unknownAttr, []byte{1})))
		return err
	}},
	{name: "C_GetAttributeValue of an unknown attribute", want: pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GetAttributeValue(sh, f.k.aes, []*pkcs11.Attribute{attr(unknownAttr, nil)})
		return err
	}},
	{name: "C_GetAttributeValue of CKA_VALUE of a sensitive key", want: pkcs11.CKR_ATTRIBUTE_SENSITIVE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GetAttributeValue(sh, f.k.aes, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)})
		return err
	}},
	{name: "CKA_TOKEN of 4 bytes", want: pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), append(aesTemplate(false)[:3], raw(pkcs11.CKA_TOKEN, []byte{0, 0, 0, 0})))
		return err
	}},
	{name: "CKA_ENCRYPT of 0 bytes", want: pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), append(aesTemplate(false)[:4], raw(pkcs11.CKA_ENCRYPT, []byte{})))
		return err
	}},
	{name: "CKA_VALUE_LEN of 4 bytes", want: pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		tmpl := aesTemplate(false)
		tmpl[2] = raw(pkcs11.CKA_VALUE_LEN, []byte{16, 0, 0, 0})
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), tmpl)
		return err
	}},
	{name: "CKA_CLASS of an unknown class", want: pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		tmpl := dataTemplate(false, "data")
		tmpl[0] = attr(pkcs11.CKA_CLASS, 0x12345)
		_, err := f.p.CreateObject(sh, tmpl)
		return err
	}},
	{name: "C_CreateObject without CKA_CLASS", want: pkcs11.CKR_TEMPLATE_INCOMPLETE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, err := f.p.CreateObject(sh, dataTemplate(false, "data")[1:])
		return err
	}},
	{name: "AES C_GenerateKey without CKA_VALUE_LEN", want: pkcs11.CKR_TEMPLATE_INCOMPLETE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		tmpl := aesTemplate(false)
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), append(tmpl[:2:2], tmpl[3:]...))
		return err
	}},
	{name: "EC C_GenerateKeyPair without CKA_EC_PARAMS", want: pkcs11.CKR_TEMPLATE_INCOMPLETE, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		_, _, err := f.p.GenerateKeyPair(sh, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
			[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VERIFY, true)},
			[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SIGN, true)})
		return err
	}},
	{name: "AES C_GenerateKey with CKA_CLASS CKO_PUBLIC_KEY", want: pkcs11.CKR_TEMPLATE_INCONSISTENT, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		tmpl := aesTemplate(false)
		tmpl[0] = attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY)
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), tmpl)
		return err
	}},
	{name: "AES C_GenerateKey with CKA_KEY_TYPE CKK_GENERIC_SECRET", want: pkcs11.CKR_TEMPLATE_INCONSISTENT, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		// (A key type that is no secret key type at all, such as CKK_RSA, is
		// CKR_ATTRIBUTE_VALUE_INVALID here by design, as in CloudHSM.)
		tmpl := aesTemplate(false)
		tmpl[1] = attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET)
		_, err := f.p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), tmpl)
		return err
	}},
	{name: "C_SetAttributeValue of CKA_CLASS", want: pkcs11.CKR_ATTRIBUTE_READ_ONLY, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.SetAttributeValue(sh, f.k.aes, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)})
	}},
	{name: "C_SetAttributeValue of CKA_SENSITIVE back to false", want: pkcs11.CKR_ATTRIBUTE_READ_ONLY, call: func(t *testing.T, f *badFixture, sh pkcs11.SessionHandle) error {
		return f.p.SetAttributeValue(sh, f.k.aes, []*pkcs11.Attribute{attr(pkcs11.CKA_SENSITIVE, false)})
	}},

	// ---- short buffers: CKR_BUFFER_TOO_SMALL, and the operation goes on (C) ----
	{name: "C_Sign into a short buffer", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_sign"},
	{name: "C_SignFinal into a short buffer", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_signfinal"},
	{name: "C_Encrypt into a short buffer", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_encrypt"},
	{name: "C_Decrypt into a short buffer", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_decrypt"},
	{name: "C_Digest into a short buffer", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_digest"},
	{name: "C_GetAttributeValue into a short buffer", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_getattributevalue"},
	{name: "C_GetSlotList into a short array", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_getslotlist"},
	{name: "C_GetMechanismList into a short array", want: pkcs11.CKR_BUFFER_TOO_SMALL, c: "short_getmechanismlist"},

	// ---- C_Finalize and C_Initialize (C) ----
	{name: "C_GetInfo after C_Finalize", want: pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, c: "finalize_then_getinfo"},
	{name: "a session call after C_Finalize", want: pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, c: "finalize_then_session_call"},
	{name: "C_Finalize twice", want: pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, c: "finalize_twice"},
	{name: "C_Initialize twice", want: pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED, c: "initialize_twice"},
	{name: "an old session after C_Finalize and C_Initialize", want: pkcs11.CKR_SESSION_HANDLE_INVALID, c: "reinitialize_old_session"},
}

// atInit passes on the error of a C_EncryptInit or C_SignInit under test.
// When the Init call accepted what it should have refused, it also logs what
// the operation then answers, which is where the library found out.
func atInit(t *testing.T, f *badFixture, sh pkcs11.SessionHandle, err error, op string) error {
	t.Helper()
	if err != nil {
		return err
	}
	var oerr error
	switch op {
	case "Encrypt":
		_, oerr = f.p.Encrypt(sh, make([]byte, 32))
	case "Sign":
		_, oerr = f.p.Sign(sh, make([]byte, 32))
	}
	t.Logf("C_%sInit accepted it; C_%s then answered %s", op, op, rvName(rvOf(oerr)))
	return err
}

func labelOf(a []*pkcs11.Attribute) string {
	if len(a) == 0 {
		return ""
	}
	return string(a[0].Value)
}

func badInputChild(t *testing.T) {
	checkHarnessCases(t)
	p := loadModule(t)
	f := &badFixture{p: p, tag: "badinput-" + randomTag()}
	f.slot = tokenSlot(t, p, os.Getenv("P11_TOKEN_LABEL"))
	f.otherSlot = tokenSlot(t, p, os.Getenv(envOther))

	// The other user's token key, made first: then no one is logged in on
	// that slot.
	osh, err := p.OpenSession(f.otherSlot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("C_OpenSession (other user): %v", err)
	}
	if err := p.Login(osh, pkcs11.CKU_USER, os.Getenv(envOtherPIN)); err != nil {
		t.Fatalf("C_Login (other user): %v", err)
	}
	f.other, err = p.GenerateKey(osh, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(true,
		attr(pkcs11.CKA_DECRYPT, true), attr(pkcs11.CKA_LABEL, f.tag+"-other")))
	if err != nil {
		t.Fatalf("C_GenerateKey (other user): %v", err)
	}
	if err := p.Logout(osh); err != nil {
		t.Fatalf("C_Logout (other user): %v", err)
	}
	if err := p.CloseSession(osh); err != nil {
		t.Fatalf("C_CloseSession (other user): %v", err)
	}

	admin, err := p.OpenSession(f.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("C_OpenSession: %v", err)
	}
	if err := p.Login(admin, pkcs11.CKU_USER, os.Getenv("P11_PIN")); err != nil {
		t.Fatalf("C_Login: %v", err)
	}
	f.k = makeKeys(t, p, admin, true, f.tag)
	if f.noEncrypt, err = p.GenerateKey(admin, mech(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_VALUE_LEN, 16), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_DECRYPT, true)}); err != nil {
		t.Fatalf("C_GenerateKey (no CKA_ENCRYPT): %v", err)
	}

	t.Cleanup(func() {
		// The crypto user's token objects go; the other user's key must
		// still be there for its owner to destroy.
		for _, h := range f.k.all() {
			if err := p.DestroyObject(admin, h); err != nil {
				t.Errorf("C_DestroyObject(%d): %v", h, err)
			}
		}
		p.Logout(admin)
		p.CloseSession(admin)
		osh, err := p.OpenSession(f.otherSlot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Errorf("C_OpenSession (other user): %v", err)
			return
		}
		defer p.CloseSession(osh)
		if err := p.Login(osh, pkcs11.CKU_USER, os.Getenv(envOtherPIN)); err != nil {
			t.Errorf("C_Login (other user): %v", err)
			return
		}
		if err := p.DestroyObject(osh, f.other); err != nil {
			t.Errorf("the other user's key, which the crypto user tried to destroy, cannot be destroyed by its owner: %v", err)
		}
		p.Logout(osh)
	})

	cenv := append(os.Environ(),
		fmt.Sprintf("SUITES_EC_PRIV=%d", f.k.ecPriv), fmt.Sprintf("SUITES_EC_PUB=%d", f.k.ecPub),
		fmt.Sprintf("SUITES_AES=%d", f.k.aes), fmt.Sprintf("SUITES_HMAC=%d", f.k.hmac))
	var bad []string
	for _, r := range badRows {
		ok := t.Run(r.name, func(t *testing.T) {
			var got uint
			if r.c != "" {
				got = runHarness(t, r.c, cenv)
			} else {
				got = rvOf(r.call(t, f, f.session(t)))
			}
			if got != r.want {
				t.Errorf("%s: got %s, want %s", r.name, rvName(got), rvName(r.want))
			}
		})
		if !ok {
			bad = append(bad, r.name)
		}
	}
	t.Logf("%s transport: %d rows, %d failed", childMode(), len(badRows), len(bad))
	for _, n := range bad {
		t.Logf("  failed: %s", n)
	}
}

// runHarness runs one case of the C harness in a process of its own and
// returns the CK_RV it printed; a crash or a failed follow-up check fails
// the test.
func runHarness(t *testing.T, name string, env []string) uint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv(envHarness), os.Getenv(envLib), name)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("case %s hung\nstdout:\n%s\nstderr:\n%s", name, &stdout, &stderr)
	case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled():
		t.Fatalf("case %s crashed the host process: %v\nstdout:\n%s\nstderr:\n%s", name, err, &stdout, &stderr)
	case err != nil:
		t.Errorf("case %s: %v\nstdout:\n%s\nstderr:\n%s", name, err, &stdout, &stderr)
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "RV "); ok {
			rv, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				t.Fatalf("case %s printed %q", name, line)
			}
			return uint(rv)
		}
	}
	t.Fatalf("case %s printed no CK_RV\nstdout:\n%s\nstderr:\n%s", name, &stdout, &stderr)
	return 0
}

// checkHarnessCases checks that the table names every case of the C
// harness, and only those.
func checkHarnessCases(t *testing.T) {
	out, err := exec.Command(os.Getenv(envHarness), "-list").Output()
	if err != nil {
		t.Fatalf("badinput -list: %v", err)
	}
	inC := strings.Fields(string(out))
	var inTable []string
	for _, r := range badRows {
		if r.c != "" {
			inTable = append(inTable, r.c)
		}
	}
	sort.Strings(inC)
	sort.Strings(inTable)
	if strings.Join(inC, " ") != strings.Join(inTable, " ") {
		t.Fatalf("the table's C cases differ from the harness's:\n table: %v\n C:     %v", inTable, inC)
	}
}
