package suites

import (
	"crypto/sha256"
	"crypto/sha3"
	"hash"
	"os"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDigestKeyAndInitToken runs, through the real library in process and
// through the helper, against a real one-node cluster: C_DigestKey (the
// digest of a key equals the digest of its known value; a private key, a
// sensitive non-extractable key and another user's key are refused) and
// C_InitToken on a crypto user's token slot (a wrong label, a wrong PIN or
// open sessions change nothing; the right label wipes the user's objects,
// and the user still logs in). Then testdata/recover.c, what
// miekg/pkcs11 cannot express: NULL-mechanism cancel of every C_*Init and
// C_VerifyRecover.
func TestDigestKeyAndInitToken(t *testing.T) {
	if childMode() != "" {
		p := loadModule(t)
		t.Run("C_DigestKey", func(t *testing.T) { digestKeyChild(t, p) })
		t.Run("C_InitToken", func(t *testing.T) { initTokenChild(t, p) })
		return
	}
	build(t)
	cl, env := startCluster(t)
	env = append(env, "P11_SO_PIN="+cl.Env["P11_SO_PIN"])
	eachMode(t, cl, env, 10*time.Minute)

	driver := cDriver(t, "recover")
	runDriver(t, driver, env)
}

// newUser makes a crypto user through the officer's C_InitPIN on the
// cluster slot and returns the user's name, password and token slot.
func newUser(t *testing.T, p *pkcs11.Ctx, prefix string) (string, string, uint) {
	t.Helper()
	cs, err := p.OpenSession(0, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(cs, pkcs11.CKU_SO, os.Getenv("P11_SO_PIN")))
	name, pw := prefix+randomTag(), randomTag()+randomTag()
	require.NoError(t, p.InitPIN(cs, name+":"+pw))
	require.NoError(t, p.Logout(cs))
	require.NoError(t, p.CloseSession(cs))
	return name, pw, tokenSlot(t, p, name)
}

func digestKeyChild(t *testing.T, p *pkcs11.Ctx) {
	slot := tokenSlot(t, p, os.Getenv("P11_TOKEN_LABEL"))
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(sh, pkcs11.CKU_USER, os.Getenv("P11_PIN")))
	secret := func(keyType uint, value []byte, token, sensitive, extractable bool) pkcs11.ObjectHandle {
		h, err := p.CreateObject(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			attr(pkcs11.CKA_KEY_TYPE, keyType), attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_SENSITIVE, sensitive),
			attr(pkcs11.CKA_EXTRACTABLE, extractable), attr(pkcs11.CKA_VALUE, value), attr(pkcs11.CKA_ENCRYPT, true)})
		require.NoError(t, err)
		return h
	}
	aesValue, genValue := randomBytes(32), randomBytes(7)
	aes := secret(pkcs11.CKK_AES, aesValue, true, true, true)                   // sensitive, but extractable
	generic := secret(pkcs11.CKK_GENERIC_SECRET, genValue, false, false, false) // a readable session key
	locked := secret(pkcs11.CKK_AES, randomBytes(16), true, true, false)        // sensitive, not extractable
	_, priv, err := p.GenerateKeyPair(sh, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_EC_PARAMS, []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_SENSITIVE, false)})
	require.NoError(t, err)

	t.Run("digest of keys", func(t *testing.T) {
		for _, c := range []struct {
			m   uint
			new func() hash.Hash
		}{{pkcs11.CKM_SHA256, sha256.New}, {pkcs11.CKM_SHA3_256, func() hash.Hash { return sha3.New256() }}} {
			require.NoError(t, p.DigestInit(sh, mech(c.m, nil)))
			require.NoError(t, p.DigestUpdate(sh, []byte("prefix")))
			require.NoError(t, p.DigestKey(sh, aes))
			_, err := p.GetOperationState(sh)
			assert.Equal(t, rvName(pkcs11.CKR_STATE_UNSAVEABLE), rvName(rvOf(err)), "a digest that took a key is not saved")
			require.NoError(t, p.DigestUpdate(sh, []byte("middle")))
			require.NoError(t, p.DigestKey(sh, generic))
			got, err := p.DigestFinal(sh)
			require.NoError(t, err)
			want := c.new()
			for _, part := range [][]byte{[]byte("prefix"), aesValue, []byte("middle"), genValue} {
				want.Write(part)
			}
			assert.Equal(t, want.Sum(nil), got)
		}
		// The key alone, as the first part.
		require.NoError(t, p.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil)))
		require.NoError(t, p.DigestKey(sh, aes))
		got, err := p.DigestFinal(sh)
		require.NoError(t, err)
		want := sha256.Sum256(aesValue)
		assert.Equal(t, want[:], got)
	})

	other, otherPW, otherSlot := newUser(t, p, "dk")
	osh, err := p.OpenSession(otherSlot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(osh, pkcs11.CKU_USER, otherPW))
	othersKey, err := p.CreateObject(osh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_EXTRACTABLE, true),
		attr(pkcs11.CKA_VALUE, randomBytes(16))})
	require.NoError(t, err, "a key of %s", other)

	for _, r := range []struct {
		name string
		key  pkcs11.ObjectHandle
		want uint
	}{
		{"a private key", priv, pkcs11.CKR_KEY_INDIGESTIBLE},
		{"a sensitive key that is not extractable", locked, pkcs11.CKR_KEY_INDIGESTIBLE},
		{"another user's key", othersKey, pkcs11.CKR_KEY_HANDLE_INVALID},
		{"no key", 0, pkcs11.CKR_KEY_HANDLE_INVALID},
	} {
		t.Run(r.name, func(t *testing.T) {
			require.NoError(t, p.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil)))
			require.NoError(t, p.DigestUpdate(sh, []byte("x")))
			err := p.DigestKey(sh, r.key)
			assert.Equal(t, rvName(r.want), rvName(rvOf(err)))
			// A refused C_DigestKey ends the digest.
			assert.Equal(t, rvName(pkcs11.CKR_OPERATION_NOT_INITIALIZED), rvName(rvOf(p.DigestUpdate(sh, []byte("y")))))
		})
	}
	require.NoError(t, p.CloseSession(osh))
	require.NoError(t, p.CloseSession(sh))
}

func initTokenChild(t *testing.T, p *pkcs11.Ctx) {
	name, pw, slot := newUser(t, p, "wipe")
	so := os.Getenv("P11_SO_PIN")

	// The user makes token objects, and one session object that closes
	// with its session.
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(sh, pkcs11.CKU_USER, pw))
	_, err = p.CreateObject(sh, dataTemplate(true, "wipe-data"))
	require.NoError(t, err)
	_, err = p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(true, attr(pkcs11.CKA_LABEL, "wipe-key")))
	require.NoError(t, err)
	count := func(sh pkcs11.SessionHandle) int {
		require.NoError(t, p.FindObjectsInit(sh, nil))
		hs, _, err := p.FindObjects(sh, 100)
		require.NoError(t, err)
		require.NoError(t, p.FindObjectsFinal(sh))
		return len(hs)
	}
	require.Equal(t, 2, count(sh))

	assert.Equal(t, rvName(pkcs11.CKR_SESSION_EXISTS), rvName(rvOf(p.InitToken(slot, so, name))),
		"C_InitToken with a session open on the slot")
	require.NoError(t, p.Logout(sh))
	require.NoError(t, p.CloseSession(sh))

	for _, r := range []struct {
		name, pin, label string
		want             uint
	}{
		{"a wrong label", so, name + "x", pkcs11.CKR_ARGUMENTS_BAD},
		{"another user's label", so, os.Getenv("P11_TOKEN_LABEL"), pkcs11.CKR_ARGUMENTS_BAD},
		{"a wrong officer password", so + "x", name, pkcs11.CKR_PIN_INCORRECT},
		{"the crypto user's own PIN", name + ":" + pw, name, pkcs11.CKR_PIN_INCORRECT},
		{"a PIN that is not officer:password", "nocolon", name, pkcs11.CKR_PIN_INCORRECT},
	} {
		t.Run(r.name, func(t *testing.T) {
			assert.Equal(t, rvName(r.want), rvName(rvOf(p.InitToken(slot, r.pin, r.label))))
		})
	}
	assert.Equal(t, rvName(pkcs11.CKR_FUNCTION_NOT_SUPPORTED), rvName(rvOf(p.InitToken(0, so, "anything"))),
		"the cluster slot")

	check := func() int {
		sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		require.NoError(t, err)
		require.NoError(t, p.Login(sh, pkcs11.CKU_USER, pw), "the user still logs in with the same password")
		n := count(sh)
		require.NoError(t, p.Logout(sh))
		require.NoError(t, p.CloseSession(sh))
		return n
	}
	require.Equal(t, 2, check(), "a refused C_InitToken changed nothing")

	require.NoError(t, p.InitToken(slot, so, name))
	assert.Zero(t, check(), "C_InitToken wiped the user's objects")
	ti, err := p.GetTokenInfo(slot)
	require.NoError(t, err)
	assert.Equal(t, name, trimLabel(ti.Label), "the slot and its label stay")
}

func trimLabel(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}
