package core

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/stretchr/testify/require"
)

// These tests drive the module (PKCS#11 semantics, no cgo) against a real
// daemon started by scripts/cluster.sh.

func hostUlong(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
func ulAttr(t, v uint64) Attr   { return Attr{Type: t, Value: hostUlong(v)} }
func boAttr(t uint64, v bool) Attr {
	if v {
		return Attr{Type: t, Value: []byte{1}}
	}
	return Attr{Type: t, Value: []byte{0}}
}

type env struct {
	m    *Module
	cl   *testcluster.Cluster
	slot uint64 // the crypto user's token slot
}

func newEnv(t *testing.T) *env {
	cl := testcluster.Start(t, 1)
	m := NewModule()
	m.loadConfig = func() (*client.Config, error) { return client.LoadConfig(cl.Env["HSM_CONFIG"]) }
	if err := m.Initialize(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Finalize() })
	e := &env{m: m, cl: cl}
	slots, err := m.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range slots {
		ti, err := m.GetTokenInfo(id)
		if err != nil {
			t.Fatal(err)
		}
		if string(bytes.TrimRight(ti.Label[:], " ")) == cl.Env["P11_TOKEN_LABEL"] {
			e.slot = id
		}
	}
	if e.slot == 0 {
		t.Fatalf("no slot with label %s in %v", cl.Env["P11_TOKEN_LABEL"], slots)
	}
	return e
}

func (e *env) login(t *testing.T) uint64 {
	t.Helper()
	h, err := e.m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Login(h, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])); err != nil {
		t.Fatal(err)
	}
	return h
}

func wantRV(t *testing.T, what string, err error, rv uint64) {
	t.Helper()
	if got := hsmerr.RV(err); got != rv {
		t.Fatalf("%s: got %s (%v), want %s", what, ck.RVName(got), err, ck.RVName(rv))
	}
}

func TestSlotsAndLogin(t *testing.T) {
	e := newEnv(t)
	m := e.m
	slots, _ := m.GetSlotList(false)
	if slots[0] != clusterSlot {
		t.Fatalf("cluster slot missing: %v", slots)
	}
	again, _ := m.GetSlotList(false)
	if len(again) != len(slots) || again[len(again)-1] != slots[len(slots)-1] {
		t.Fatal("slot IDs changed between listings")
	}
	_, err := m.GetSlotInfo(9999)
	wantRV(t, "unknown slot", err, ck.CKR_SLOT_ID_INVALID)
	_, err = m.OpenSession(e.slot, ck.CKF_RW_SESSION)
	wantRV(t, "no serial flag", err, ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED)
	ro, _ := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	wantRV(t, "wrong PIN", m.Login(ro, ck.CKU_USER, []byte("not-the-password")), ck.CKR_PIN_INCORRECT)
	wantRV(t, "SO with a RO session open", m.Login(ro, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])), ck.CKR_SESSION_READ_ONLY_EXISTS)
	if err := m.Login(ro, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])); err != nil {
		t.Fatal(err)
	}
	wantRV(t, "login twice", m.Login(ro, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])), ck.CKR_USER_ALREADY_LOGGED_IN)
	si, _ := m.GetSessionInfo(ro)
	if si.State != ck.CKS_RO_USER_FUNCTIONS {
		t.Fatalf("state %d", si.State)
	}
	// A second session on the slot shares the login.
	rw, _ := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if si, _ := m.GetSessionInfo(rw); si.State != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatalf("second session state %d", si.State)
	}
	_, err = m.GenerateKey(ro, Mechanism{Type: ck.CKM_AES_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 16), boAttr(ck.CKA_TOKEN, true)})
	wantRV(t, "token key in a RO session", err, ck.CKR_SESSION_READ_ONLY)
	if err := m.Logout(rw); err != nil {
		t.Fatal(err)
	}
	if si, _ := m.GetSessionInfo(ro); si.State != ck.CKS_RO_PUBLIC_SESSION {
		t.Fatalf("after logout %d", si.State)
	}
	// The cluster slot takes user:password, and C_LoginUser the name apart.
	cs, _ := m.OpenSession(clusterSlot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	wantRV(t, "cluster slot without user", m.Login(cs, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])), ck.CKR_PIN_INCORRECT)
	if err := m.LoginUser(cs, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"]), []byte(e.cl.Env["P11_TOKEN_LABEL"])); err != nil {
		t.Fatal(err)
	}
	m.Logout(cs)
	if err := m.Login(cs, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])); err != nil {
		t.Fatal(err)
	}
	// As SO: C_InitPIN on the cluster slot makes a crypto user, whose
	// token slot then appears.
	if err := m.InitPIN(cs, []byte("carol:carol-password")); err != nil {
		t.Fatal(err)
	}
	after, _ := m.GetSlotList(true)
	if len(after) != len(slots)+1 {
		t.Fatalf("slots %v -> %v", slots, after)
	}
	_, err = m.Sign(cs, nil, Out{})
	wantRV(t, "SO signs", err, ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, "SO sign init", m.SignInit(cs, Mechanism{Type: ck.CKM_ECDSA}, 5), ck.CKR_USER_NOT_LOGGED_IN)
}

func TestSignTwoCallRule(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]Attr{{Type: ck.CKA_EC_PARAMS, Value: p256}, boAttr(ck.CKA_TOKEN, false)}, []Attr{boAttr(ck.CKA_SIGN, true)})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("two calls")
	if err := m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv); err != nil {
		t.Fatal(err)
	}
	wantRV(t, "second init", m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv), ck.CKR_OPERATION_ACTIVE)
	r, err := m.Sign(h, msg, Out{})
	if err != nil || r.Len != 64 || r.Data != nil {
		t.Fatalf("length query: %+v %v", r, err)
	}
	r, err = m.Sign(h, msg, Out{Present: true, Cap: 10})
	wantRV(t, "short buffer", err, ck.CKR_BUFFER_TOO_SMALL)
	if r.Len != 64 {
		t.Fatalf("short buffer length %d", r.Len)
	}
	r, err = m.Sign(h, msg, Out{Present: true, Cap: 64})
	if err != nil || len(r.Data) != 64 {
		t.Fatalf("sign: %v", err)
	}
	_, err = m.Sign(h, msg, Out{Present: true, Cap: 64})
	wantRV(t, "after the operation ended", err, ck.CKR_OPERATION_NOT_INITIALIZED)

	vals, err := m.GetAttributeValue(h, pub, []AttrReq{{Type: ck.CKA_PUBLIC_KEY_INFO, Present: true, Cap: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKIXPublicKey(vals[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.Verify(k.(*ecdsa.PublicKey), sum[:], new(big.Int).SetBytes(r.Data[:32]), new(big.Int).SetBytes(r.Data[32:])) {
		t.Fatal("Go rejects the signature")
	}
	// Multi-part sign, then verify, and a bad signature.
	m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv)
	m.SignUpdate(h, msg[:3])
	m.SignUpdate(h, msg[3:])
	r, err = m.SignFinal(h, Out{Present: true, Cap: 64})
	if err != nil {
		t.Fatal(err)
	}
	m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub)
	if err := m.Verify(h, msg, r.Data); err != nil {
		t.Fatal(err)
	}
	r.Data[0] ^= 1
	m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub)
	wantRV(t, "bad signature", m.Verify(h, msg, r.Data), ck.CKR_SIGNATURE_INVALID)
	// The verify operation ended with the failure.
	wantRV(t, "verify after failure", m.Verify(h, msg, r.Data), ck.CKR_OPERATION_NOT_INITIALIZED)
}

func TestAttributesAndFind(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	id, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN},
		[]Attr{ulAttr(ck.CKA_VALUE_LEN, 32), boAttr(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte("find-me")}})
	if err != nil {
		t.Fatal(err)
	}
	req := []AttrReq{
		{Type: ck.CKA_VALUE_LEN, Present: true, Cap: 8},
		{Type: ck.CKA_LABEL},
		{Type: ck.CKA_VALUE, Present: true, Cap: 32},
		{Type: ck.CKA_MODULUS, Present: true, Cap: 32},
		{Type: ck.CKA_LABEL, Present: true, Cap: 2},
	}
	out, err := m.GetAttributeValue(h, id, req)
	if rv := hsmerr.RV(err); rv != ck.CKR_ATTRIBUTE_SENSITIVE {
		t.Fatalf("overall rv %s", ck.RVName(rv))
	}
	if binary.NativeEndian.Uint64(out[0].Data) != 32 {
		t.Error("CKA_VALUE_LEN not in host order")
	}
	if out[1].Len != 7 || out[1].Data != nil {
		t.Errorf("length query: %+v", out[1])
	}
	if out[2].Len != unavailable || out[3].Len != unavailable || out[4].Len != unavailable {
		t.Errorf("sensitive/invalid/short: %+v %+v %+v", out[2], out[3], out[4])
	}
	find := func(tmpl []Attr) []uint64 {
		t.Helper()
		if err := m.FindObjectsInit(h, tmpl); err != nil {
			t.Fatal(err)
		}
		var all []uint64
		for {
			got, err := m.FindObjects(h, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			all = append(all, got...)
		}
		m.FindObjectsFinal(h)
		return all
	}
	if got := find([]Attr{{Type: ck.CKA_LABEL, Value: []byte("find-me")}}); len(got) != 1 || got[0] != id {
		t.Fatalf("find by label: %v", got)
	}
	if got := find([]Attr{ulAttr(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ulAttr(ck.CKA_KEY_TYPE, ck.CKK_AES)}); len(got) != 1 {
		t.Fatalf("find by class (host-order ulongs): %v", got)
	}
	if got := find([]Attr{{Type: ck.CKA_LABEL, Value: []byte("nothing")}}); len(got) != 0 {
		t.Fatalf("find nothing: %v", got)
	}
	m.FindObjectsInit(h, nil)
	wantRV(t, "second search", m.FindObjectsInit(h, nil), ck.CKR_OPERATION_ACTIVE)
	m.FindObjectsFinal(h)
	_, err = m.FindObjects(h, 1)
	wantRV(t, "find after final", err, ck.CKR_OPERATION_NOT_INITIALIZED)
	if err := m.SetAttributeValue(h, id, []Attr{{Type: ck.CKA_LABEL, Value: []byte("renamed")}}); err != nil {
		t.Fatal(err)
	}
	if got := find([]Attr{{Type: ck.CKA_LABEL, Value: []byte("renamed")}}); len(got) != 1 {
		t.Fatal("rename")
	}
	if err := m.DestroyObject(h, id); err != nil {
		t.Fatal(err)
	}
	_, err = m.GetAttributeValue(h, id, req[:1])
	wantRV(t, "destroyed", err, ck.CKR_OBJECT_HANDLE_INVALID)
}

func TestEncryptAndDigest(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 16)})
	if err != nil {
		t.Fatal(err)
	}
	gcm := Mechanism{Type: ck.CKM_AES_GCM, Kind: 2, IV: make([]byte, 12), TagBits: 128}
	pt := bytes.Repeat([]byte("x"), 100)
	m.EncryptInit(h, gcm, key)
	ct, err := m.Encrypt(h, pt, Out{Present: true, Cap: 200})
	if err != nil || len(ct.Data) != 116 {
		t.Fatalf("encrypt: %v", err)
	}
	m.DecryptInit(h, gcm, key)
	m.DecryptUpdate(h, ct.Data[:50], Out{Present: true, Cap: 200})
	m.DecryptUpdate(h, ct.Data[50:], Out{Present: true, Cap: 200})
	back, err := m.DecryptFinal(h, Out{Present: true, Cap: 200})
	if err != nil || !bytes.Equal(back.Data, pt) {
		t.Fatalf("multi-part decrypt: %v", err)
	}
	cbc := Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: make([]byte, 8)}
	wantRV(t, "short IV", func() error {
		if err := m.EncryptInit(h, cbc, key); err != nil {
			return err
		}
		_, err := m.Encrypt(h, pt, Out{Present: true, Cap: 200})
		return err
	}(), ck.CKR_MECHANISM_PARAM_INVALID)
	wantRV(t, "param for a mechanism without one", m.SignInit(h, Mechanism{Type: ck.CKM_SHA256_HMAC, Kind: 1, Raw: []byte{1}}, key), ck.CKR_MECHANISM_PARAM_INVALID)
	wantRV(t, "unknown mechanism", m.EncryptInit(h, Mechanism{Type: 0x80000001}, key), ck.CKR_MECHANISM_INVALID)
	// Digests need no login and run here.
	pub, _ := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	if err := m.DigestInit(pub, Mechanism{Type: ck.CKM_SHA256}); err != nil {
		t.Fatal(err)
	}
	m.DigestUpdate(pub, []byte("ab"))
	m.DigestUpdate(pub, []byte("c"))
	d, err := m.DigestFinal(pub, Out{Present: true, Cap: 32})
	want := sha256.Sum256([]byte("abc"))
	if err != nil || !bytes.Equal(d.Data, want[:]) {
		t.Fatalf("digest: %v", err)
	}
	rnd, err := m.GenerateRandom(pub, 16)
	if err != nil || len(rnd) != 16 {
		t.Fatal("random")
	}
}

// TestConcurrentSessions runs many sessions on many goroutines (with -race).
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 32), boAttr(ck.CKA_TOKEN, true)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
			if err != nil {
				errs <- err
				return
			}
			defer m.CloseSession(s)
			for i := 0; i < 20; i++ {
				if err := m.SignInit(s, Mechanism{Type: ck.CKM_SHA256_HMAC}, key); err != nil {
					errs <- err
					return
				}
				if _, err := m.Sign(s, []byte{byte(i)}, Out{Present: true, Cap: 32}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestReinitialize: C_Finalize then C_Initialize in the same process gives
// a working module, with the same slot IDs.
func TestReinitialize(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	before, _ := m.GetSlotList(true)
	if err := m.Finalize(); err != nil {
		t.Fatal(err)
	}
	_, err := m.GetSessionInfo(h)
	wantRV(t, "after finalize", err, ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	wantRV(t, "finalize twice", m.Finalize(), ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	if err := m.Initialize(0); err != nil {
		t.Fatal(err)
	}
	wantRV(t, "initialize twice", m.Initialize(0), ck.CKR_CRYPTOKI_ALREADY_INITIALIZED)
	after, _ := m.GetSlotList(true)
	if len(after) != len(before) || after[len(after)-1] != before[len(before)-1] {
		t.Fatalf("slots %v -> %v", before, after)
	}
	h = e.login(t)
	if _, err := m.GenerateRandom(h, 8); err != nil {
		t.Fatal(err)
	}
}

// TestBadConfig: a missing config makes C_Initialize fail with a clear
// error, not a silent CKR_GENERAL_ERROR.
func TestBadConfig(t *testing.T) {
	m := NewModule()
	m.loadConfig = func() (*client.Config, error) { return client.LoadConfig("/nonexistent/client.toml") }
	err := m.Initialize(0)
	wantRV(t, "missing config", err, ck.CKR_GENERAL_ERROR)
	if !strings.Contains(err.Error(), "/nonexistent/client.toml") {
		t.Fatalf("the error does not say which file: %v", err)
	}
}

// TestMultiPartStreams: block modes stream whole blocks from each update,
// chaining IV and counter, and a length query takes no input; the parts
// together equal the single-part result.
func TestMultiPartStreams(t *testing.T) {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 16)})
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{7}, 16)
	ctr := append(hostUlong(32), iv...)
	data := make([]byte, 100)
	for i := range data {
		data[i] = byte(i)
	}
	cases := []struct {
		name string
		mech Mechanism
		data []byte
	}{
		{"ECB", Mechanism{Type: ck.CKM_AES_ECB}, data[:96]},
		{"CBC", Mechanism{Type: ck.CKM_AES_CBC, Kind: 1, Raw: iv}, data[:96]},
		{"CBC_PAD", Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: iv}, data},
		{"CBC_PAD whole blocks", Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: iv}, data[:64]},
		{"CTR", Mechanism{Type: ck.CKM_AES_CTR, Kind: 1, Raw: ctr}, data},
		{"GCM", Mechanism{Type: ck.CKM_AES_GCM, Kind: 2, IV: iv[:12], TagBits: 128}, data},
	}
	big := Out{Present: true, Cap: 1 << 10}
	for _, c := range cases {
		if err := m.EncryptInit(h, c.mech, key); err != nil {
			t.Fatal(c.name, err)
		}
		single, err := m.Encrypt(h, c.data, big)
		if err != nil {
			t.Fatal(c.name, err)
		}
		multi := func(encrypt bool, in []byte) []byte {
			init, upd, fin := m.EncryptInit, m.EncryptUpdate, m.EncryptFinal
			if !encrypt {
				init, upd, fin = m.DecryptInit, m.DecryptUpdate, m.DecryptFinal
			}
			if err := init(h, c.mech, key); err != nil {
				t.Fatal(c.name, err)
			}
			var out []byte
			for _, part := range [][]byte{in[:7], in[7:40], in[40:]} {
				q, err := upd(h, part, Out{})
				if err != nil {
					t.Fatal(c.name, err)
				}
				r, err := upd(h, part, big)
				if err != nil {
					t.Fatal(c.name, err)
				}
				if r.Len != q.Len {
					t.Fatalf("%s: the length query said %d, the update gave %d", c.name, q.Len, r.Len)
				}
				out = append(out, r.Data...)
			}
			r, err := fin(h, big)
			if err != nil {
				t.Fatal(c.name, err)
			}
			return append(out, r.Data...)
		}
		if got := multi(true, c.data); !bytes.Equal(got, single.Data) {
			t.Errorf("%s: multi-part encryption differs from single-part (%d vs %d bytes)", c.name, len(got), len(single.Data))
		}
		if got := multi(false, single.Data); !bytes.Equal(got, c.data) {
			t.Errorf("%s: multi-part decryption does not give the plaintext back", c.name)
		}
	}
	// Block modes give whole blocks from each update.
	m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_CBC, Kind: 1, Raw: iv}, key)
	r, _ := m.EncryptUpdate(h, data[:40], big)
	if r.Len != 32 {
		t.Errorf("CBC update of 40 bytes gave %d", r.Len)
	}
	_, err = m.EncryptFinal(h, big)
	wantRV(t, "CBC final with a partial block", err, ck.CKR_DATA_LEN_RANGE)
}

// TestSetPIN: a crypto user changes their own PIN with C_SetPIN (the old
// one is checked), and an officer resets it with C_InitPIN.
func TestSetPIN(t *testing.T) {
	e := newEnv(t)
	m := e.m
	old := e.cl.Env["P11_PIN"]
	h, _ := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	wantRV(t, "wrong old PIN", m.SetPIN(h, []byte("not-the-old-pin"), []byte("new-password-1")), ck.CKR_PIN_INCORRECT)
	if err := m.SetPIN(h, []byte(old), []byte("new-password-1")); err != nil {
		t.Fatal(err)
	}
	wantRV(t, "old PIN after the change", m.Login(h, ck.CKU_USER, []byte(old)), ck.CKR_PIN_INCORRECT)
	if err := m.Login(h, ck.CKU_USER, []byte("new-password-1")); err != nil {
		t.Fatal(err)
	}
	m.Logout(h)
	// The officer resets it on the token slot.
	if err := m.Login(h, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])); err != nil {
		t.Fatal(err)
	}
	if err := m.InitPIN(h, []byte(old)); err != nil {
		t.Fatal(err)
	}
	m.Logout(h)
	if err := m.Login(h, ck.CKU_USER, []byte(old)); err != nil {
		t.Fatalf("after the officer's reset: %v", err)
	}
	ro, _ := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	wantRV(t, "SetPIN in a R/O session", m.SetPIN(ro, []byte(old), []byte("x-password-2")), ck.CKR_SESSION_READ_ONLY)
}

// TestInitPINExistingUser: C_InitPIN on the cluster slot for a crypto user
// who exists sets their password. The library knows "exists" by the
// error's reason (hsmerr.ErrUserExists, from the engine through the
// cluster and the gRPC status), not by its text.
func TestInitPINExistingUser(t *testing.T) {
	e := newEnv(t)
	m := e.m
	cs, err := m.OpenSession(clusterSlot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(cs, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])))
	require.NoError(t, m.InitPIN(cs, []byte("dave:dave-password-1")))
	require.NoError(t, m.InitPIN(cs, []byte("dave:dave-password-2")), "C_InitPIN for a user who exists")
	require.NoError(t, m.Logout(cs))
	wantRV(t, "the first password", m.LoginUser(cs, ck.CKU_USER, []byte("dave-password-1"), []byte("dave")), ck.CKR_PIN_INCORRECT)
	require.NoError(t, m.LoginUser(cs, ck.CKU_USER, []byte("dave-password-2"), []byte("dave")), "the second password")
	require.NoError(t, m.Logout(cs))
	// Any other refusal of the create is the caller's answer, not a reset.
	require.NoError(t, m.Login(cs, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])))
	wantRV(t, "a bad user name", m.InitPIN(cs, []byte("no spaces allowed:dave-password-3")), ck.CKR_ARGUMENTS_BAD)
}
