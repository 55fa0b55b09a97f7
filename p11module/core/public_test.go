package core

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
)

func requireRV(t *testing.T, rv uint64, err error, what string) {
	t.Helper()
	require.Equal(t, ck.RVName(rv), ck.RVName(hsmerr.RV(err)), "%s: %v", what, err)
}

// officer returns a client logged in as the cluster's crypto officer.
func (e *env) officer(t *testing.T) *client.Client {
	t.Helper()
	cfg, err := client.LoadConfig(e.cl.Env["HSM_CONFIG"])
	require.NoError(t, err)
	cfg.Creds, err = cfg.ReadCredentials()
	require.NoError(t, err)
	ctx := context.Background()
	c, err := client.Dial(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	user, pw, _ := strings.Cut(e.cl.Env["P11_SO_PIN"], ":")
	require.NoError(t, c.Login(ctx, user, pw))
	return c
}

func dataObj(label string, token, private bool) []Attr {
	return []Attr{ulAttr(ck.CKA_CLASS, ck.CKO_DATA), boAttr(ck.CKA_TOKEN, token), boAttr(ck.CKA_PRIVATE, private),
		{Type: ck.CKA_LABEL, Value: []byte(label)}, {Type: ck.CKA_VALUE, Value: []byte("value of " + label)}}
}

func (e *env) findAll(t *testing.T, h uint64, tmpl []Attr) []uint64 {
	t.Helper()
	require.NoError(t, e.m.FindObjectsInit(h, tmpl))
	ids, err := e.m.FindObjects(h, 1000)
	require.NoError(t, err)
	require.NoError(t, e.m.FindObjectsFinal(h))
	return ids
}

// TestPublicSession plays PKCS#11's public session against a real daemon:
// the token's public objects are found and read before login, private ones
// are not; public session objects are made, used, kept across login and
// logout, and gone when their session closes; the officer's setting hides
// the token's objects.
func TestPublicSession(t *testing.T) {
	e := newEnv(t)
	m := e.m
	// Logged in: one public and one private token data object, and a token
	// key pair (the public key is public, the private key private).
	li := e.login(t)
	pubData, err := m.CreateObject(li, dataObj("pub-data", true, false))
	require.NoError(t, err)
	privData, err := m.CreateObject(li, dataObj("priv-data", true, true))
	require.NoError(t, err)
	pk, sk, err := m.GenerateKeyPair(li, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]Attr{boAttr(ck.CKA_TOKEN, true), {Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}, boAttr(ck.CKA_VERIFY, true)},
		[]Attr{boAttr(ck.CKA_TOKEN, true), boAttr(ck.CKA_SIGN, true)})
	require.NoError(t, err)
	require.NoError(t, m.CloseSession(li)) // the last session: logged out

	// Before login.
	ro, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	ids := e.findAll(t, ro, nil)
	assert.Contains(t, ids, pubData)
	assert.Contains(t, ids, pk)
	assert.NotContains(t, ids, privData)
	assert.NotContains(t, ids, sk)
	vals, err := m.GetAttributeValue(ro, pubData, []AttrReq{{Type: ck.CKA_VALUE, Present: true, Cap: 64}})
	require.NoError(t, err)
	assert.Equal(t, "value of pub-data", string(vals[0].Data))
	_, err = m.GetAttributeValue(ro, privData, []AttrReq{{Type: ck.CKA_LABEL}})
	requireRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "private object before login")
	requireRV(t, ck.CKR_USER_NOT_LOGGED_IN, m.SignInit(ro, Mechanism{Type: ck.CKM_ECDSA}, sk), "private key before login")
	require.NoError(t, m.VerifyInit(ro, Mechanism{Type: ck.CKM_ECDSA}, pk), "a token public key verifies before login")
	requireRV(t, ck.CKR_SESSION_READ_ONLY, m.DestroyObject(ro, pubData), "destroy a token object in a RO session")
	_, err = m.CreateObject(ro, dataObj("x", true, false))
	requireRV(t, ck.CKR_SESSION_READ_ONLY, err, "token object in a RO session")

	// Public session objects in a read-write public session.
	rw, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	_, err = m.CreateObject(rw, dataObj("x", true, false))
	requireRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "token object before login")
	requireRV(t, ck.CKR_OBJECT_HANDLE_INVALID, m.DestroyObject(rw, pubData), "destroy a token object before login")
	requireRV(t, ck.CKR_OBJECT_HANDLE_INVALID, m.SetAttributeValue(rw, pubData, []Attr{{Type: ck.CKA_LABEL, Value: []byte("x")}}), "change a token object before login")
	_, err = m.CreateObject(rw, dataObj("x", false, true))
	requireRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "private session object before login")
	// Template errors come first, whatever the login state.
	_, err = m.CreateObject(rw, []Attr{boAttr(ck.CKA_TOKEN, true)})
	requireRV(t, ck.CKR_TEMPLATE_INCOMPLETE, err, "no class")
	_, err = m.CreateObject(rw, append(dataObj("x", true, true), Attr{Type: 0x7fff0001, Value: []byte{1}}))
	requireRV(t, ck.CKR_ATTRIBUTE_TYPE_INVALID, err, "unknown attribute")
	key, err := m.GenerateKey(rw, Mechanism{Type: ck.CKM_AES_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 32),
		boAttr(ck.CKA_PRIVATE, false), boAttr(ck.CKA_ENCRYPT, true), boAttr(ck.CKA_DECRYPT, true)})
	require.NoError(t, err)
	gcm := Mechanism{Type: ck.CKM_AES_GCM, Kind: 2, IV: make([]byte, 12), IVBits: 96, TagBits: 128}
	require.NoError(t, m.EncryptInit(rw, gcm, key))
	ct, err := m.Encrypt(rw, []byte("hello"), Out{Present: true, Cap: 100})
	require.NoError(t, err)
	require.NoError(t, m.DecryptInit(rw, gcm, key))
	pt, err := m.Decrypt(rw, ct.Data, Out{Present: true, Cap: 100})
	require.NoError(t, err)
	assert.Equal(t, "hello", string(pt.Data))
	sessData, err := m.CreateObject(rw, dataObj("sess", false, false))
	require.NoError(t, err)
	assert.Contains(t, e.findAll(t, ro, nil), sessData, "other sessions of the application see it")

	// Login and logout keep the public session objects.
	require.NoError(t, m.Login(rw, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])))
	assert.Contains(t, e.findAll(t, rw, nil), key)
	require.NoError(t, m.EncryptInit(rw, gcm, key))
	_, err = m.Encrypt(rw, []byte("hello"), Out{Present: true, Cap: 100})
	require.NoError(t, err)
	require.NoError(t, m.Logout(rw))
	assert.Contains(t, e.findAll(t, ro, nil), key)

	// Closing the session that made them destroys them.
	require.NoError(t, m.CloseSession(rw))
	after := e.findAll(t, ro, nil)
	assert.NotContains(t, after, key)
	assert.NotContains(t, after, sessData)
	assert.Contains(t, after, pubData)

	// With public_objects off, the token shows nothing before login.
	co := e.officer(t)
	ctx := context.Background()
	require.NoError(t, co.SetClusterSetting(ctx, "public_objects", "off"))
	assert.Empty(t, e.findAll(t, ro, nil))
	_, err = m.GetAttributeValue(ro, pubData, []AttrReq{{Type: ck.CKA_LABEL}})
	requireRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "public object with the setting off")
	require.NoError(t, co.SetClusterSetting(ctx, "public_objects", "on"))
	assert.Contains(t, e.findAll(t, ro, nil), pubData)
	requireRV(t, ck.CKR_ARGUMENTS_BAD, co.SetClusterSetting(ctx, "public_objects", "maybe"), "bad value")
}

// TestErrorOrderClusterSlot: the cluster slot has no public session, yet a
// bad template is still a template error before the login state.
func TestErrorOrderClusterSlot(t *testing.T) {
	e := newEnv(t)
	h, err := e.m.OpenSession(clusterSlot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	_, err = e.m.CreateObject(h, []Attr{boAttr(ck.CKA_TOKEN, false)})
	requireRV(t, ck.CKR_TEMPLATE_INCOMPLETE, err, "no class")
	_, err = e.m.CreateObject(h, dataObj("x", false, false))
	requireRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "good template, no login")
	assert.Empty(t, e.findAll(t, h, nil))
}

// TestTokenPINFlags: the flags follow the cluster's lockout counter.
func TestTokenPINFlags(t *testing.T) {
	e := newEnv(t)
	m := e.m
	flags := func() uint64 {
		ti, err := m.GetTokenInfo(e.slot)
		require.NoError(t, err)
		return ti.Flags & (ck.CKF_USER_PIN_COUNT_LOW | ck.CKF_USER_PIN_FINAL_TRY | ck.CKF_USER_PIN_LOCKED)
	}
	require.Zero(t, flags())
	h, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	requireRV(t, ck.CKR_PIN_INCORRECT, m.Login(h, ck.CKU_USER, []byte("wrong-password-1")), "wrong PIN")
	assert.Equal(t, uint64(ck.CKF_USER_PIN_COUNT_LOW), flags())
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])))
	assert.Zero(t, flags(), "a good login resets the counter")
}

func TestPINFlagsTable(t *testing.T) {
	for _, c := range []struct {
		failed int
		locked bool
		want   uint64
	}{
		{0, false, 0},
		{1, false, ck.CKF_USER_PIN_COUNT_LOW},
		{3, false, ck.CKF_USER_PIN_COUNT_LOW},
		{4, false, ck.CKF_USER_PIN_COUNT_LOW | ck.CKF_USER_PIN_FINAL_TRY},
		{5, false, ck.CKF_USER_PIN_LOCKED},
		{0, true, ck.CKF_USER_PIN_LOCKED},
		{2, true, ck.CKF_USER_PIN_LOCKED},
	} {
		assert.Equal(t, c.want, pinFlags(c.failed, c.locked), "failed %d locked %v", c.failed, c.locked)
	}
}
