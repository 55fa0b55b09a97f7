package suites

import (
	"bytes"
	"crypto/sha256"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLifecycle plays the operation life cycle (docs/pkcs11-library.md,
// "Operation life cycle") through the real library, in process and through
// the helper: the rows miekg/pkcs11 can express (it makes the length query
// and the fetch itself, so the short-buffer rows are in the Go table of
// p11module/core), for every operation kind; then saved digest states, a
// dual-function update, sign-recover and C_WaitForSlotEvent.
func TestLifecycle(t *testing.T) {
	if childMode() != "" {
		lifecycleChild(t)
		return
	}
	build(t)
	cl, env := startCluster(t)
	env = append(env, "P11_SO_PIN="+cl.Env["P11_SO_PIN"])
	eachMode(t, cl, env, 10*time.Minute)
}

// lcKind drives one operation kind through miekg/pkcs11. bad is a
// single-part call the mechanism refuses.
type lcKind struct {
	name   string
	init   func(sh pkcs11.SessionHandle) error
	single func(sh pkcs11.SessionHandle) error
	bad    func(sh pkcs11.SessionHandle) error
	update func(sh pkcs11.SessionHandle) error // nil: no multi-part form
	final  func(sh pkcs11.SessionHandle) error
}

func lifecycleChild(t *testing.T) {
	p := loadModule(t)
	slot := tokenSlot(t, p, os.Getenv("P11_TOKEN_LABEL"))
	admin, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(admin, pkcs11.CKU_USER, os.Getenv("P11_PIN")))
	attr := pkcs11.NewAttribute
	aes, err := p.GenerateKey(admin, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(false, attr(pkcs11.CKA_DECRYPT, true)))
	require.NoError(t, err)
	rsaPub, rsaPriv, err := p.GenerateKeyPair(admin, mech(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_MODULUS_BITS, 2048), attr(pkcs11.CKA_VERIFY, true),
			attr(pkcs11.CKA_VERIFY_RECOVER, true)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_SIGN_RECOVER, true)})
	require.NoError(t, err)
	data := bytes.Repeat([]byte{0x42}, 40)
	cbc := func() []*pkcs11.Mechanism { return mech(pkcs11.CKM_AES_CBC_PAD, make([]byte, 16)) }
	rsa := func() []*pkcs11.Mechanism { return mech(pkcs11.CKM_RSA_PKCS, nil) }
	sha := func() []*pkcs11.Mechanism { return mech(pkcs11.CKM_SHA256, nil) }
	require.NoError(t, p.SignInit(admin, rsa(), rsaPriv))
	sig, err := p.Sign(admin, data)
	require.NoError(t, err)
	require.NoError(t, p.EncryptInit(admin, cbc(), aes))
	ct, err := p.Encrypt(admin, data)
	require.NoError(t, err)

	ignore := func(_ []byte, err error) error { return err }
	kinds := []lcKind{
		{name: "encrypt",
			init:   func(sh pkcs11.SessionHandle) error { return p.EncryptInit(sh, cbc(), aes) },
			single: func(sh pkcs11.SessionHandle) error { return ignore(p.Encrypt(sh, data)) },
			bad:    func(sh pkcs11.SessionHandle) error { return ignore(p.Encrypt(sh, make([]byte, 16<<20+1))) },
			update: func(sh pkcs11.SessionHandle) error { return ignore(p.EncryptUpdate(sh, data)) },
			final:  func(sh pkcs11.SessionHandle) error { return ignore(p.EncryptFinal(sh)) }},
		{name: "decrypt",
			init:   func(sh pkcs11.SessionHandle) error { return p.DecryptInit(sh, cbc(), aes) },
			single: func(sh pkcs11.SessionHandle) error { return ignore(p.Decrypt(sh, ct)) },
			bad:    func(sh pkcs11.SessionHandle) error { return ignore(p.Decrypt(sh, ct[:15])) },
			update: func(sh pkcs11.SessionHandle) error { return ignore(p.DecryptUpdate(sh, ct)) },
			final:  func(sh pkcs11.SessionHandle) error { return ignore(p.DecryptFinal(sh)) }},
		{name: "digest",
			init:   func(sh pkcs11.SessionHandle) error { return p.DigestInit(sh, sha()) },
			single: func(sh pkcs11.SessionHandle) error { return ignore(p.Digest(sh, data)) },
			bad:    func(sh pkcs11.SessionHandle) error { return ignore(p.Digest(sh, make([]byte, 16<<20+1))) },
			update: func(sh pkcs11.SessionHandle) error { return p.DigestUpdate(sh, data) },
			final:  func(sh pkcs11.SessionHandle) error { return ignore(p.DigestFinal(sh)) }},
		{name: "sign",
			init:   func(sh pkcs11.SessionHandle) error { return p.SignInit(sh, rsa(), rsaPriv) },
			single: func(sh pkcs11.SessionHandle) error { return ignore(p.Sign(sh, data)) },
			bad:    func(sh pkcs11.SessionHandle) error { return ignore(p.Sign(sh, make([]byte, 250))) },
			update: func(sh pkcs11.SessionHandle) error { return p.SignUpdate(sh, data) },
			final:  func(sh pkcs11.SessionHandle) error { return ignore(p.SignFinal(sh)) }},
		{name: "verify",
			init:   func(sh pkcs11.SessionHandle) error { return p.VerifyInit(sh, rsa(), rsaPub) },
			single: func(sh pkcs11.SessionHandle) error { return p.Verify(sh, data, sig) },
			bad:    func(sh pkcs11.SessionHandle) error { return p.Verify(sh, data[1:], sig) },
			update: func(sh pkcs11.SessionHandle) error { return p.VerifyUpdate(sh, data) },
			final:  func(sh pkcs11.SessionHandle) error { return p.VerifyFinal(sh, sig) }},
		{name: "sign-recover",
			init:   func(sh pkcs11.SessionHandle) error { return p.SignRecoverInit(sh, rsa(), rsaPriv) },
			single: func(sh pkcs11.SessionHandle) error { return ignore(p.SignRecover(sh, data)) },
			bad:    func(sh pkcs11.SessionHandle) error { return ignore(p.SignRecover(sh, make([]byte, 250))) }},
	}
	type step struct {
		call string
		want uint
	}
	rows := []struct {
		name  string
		steps []step
		alive bool
	}{
		{"init twice", []step{{"init", pkcs11.CKR_OK}, {"init", pkcs11.CKR_OPERATION_ACTIVE}}, true},
		{"single-part ends it", []step{{"init", pkcs11.CKR_OK}, {"single", pkcs11.CKR_OK}}, false},
		{"an error ends it", []step{{"init", pkcs11.CKR_OK}, {"bad", ^uint(0)}}, false},
		{"no init", []step{{"single", pkcs11.CKR_OPERATION_NOT_INITIALIZED}}, false},
		{"multi-part", []step{{"init", pkcs11.CKR_OK}, {"update", pkcs11.CKR_OK}, {"final", pkcs11.CKR_OK}}, false},
		{"update after final", []step{{"init", pkcs11.CKR_OK}, {"update", pkcs11.CKR_OK}, {"final", pkcs11.CKR_OK},
			{"update", pkcs11.CKR_OPERATION_NOT_INITIALIZED}}, false},
		{"single-part after update", []step{{"init", pkcs11.CKR_OK}, {"update", pkcs11.CKR_OK},
			{"single", pkcs11.CKR_OPERATION_ACTIVE}}, false},
	}
	for _, k := range kinds {
		for _, row := range rows {
			multi := false
			for _, s := range row.steps {
				multi = multi || s.call == "update" || s.call == "final"
			}
			if multi && k.update == nil {
				continue
			}
			sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			require.NoError(t, err)
			for i, s := range row.steps {
				call := map[string]func(pkcs11.SessionHandle) error{"init": k.init, "single": k.single, "bad": k.bad,
					"update": k.update, "final": k.final}[s.call]
				err := call(sh)
				if s.want == ^uint(0) {
					assert.Error(t, err, "%s %s: step %d", k.name, row.name, i)
					continue
				}
				assert.Equal(t, rvName(s.want), rvName(rvOf(err)), "%s %s: step %d (%s)", k.name, row.name, i, s.call)
			}
			want := uint(pkcs11.CKR_OK)
			if row.alive {
				want = pkcs11.CKR_OPERATION_ACTIVE
			}
			assert.Equal(t, rvName(want), rvName(rvOf(k.init(sh))), "%s %s: active afterwards", k.name, row.name)
			require.NoError(t, p.CloseSession(sh))
		}
	}

	// A digest's state, saved in one session and restored in another; a
	// changed state is refused; an encrypt cannot be saved.
	a, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	b, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.DigestInit(a, sha()))
	require.NoError(t, p.DigestUpdate(a, []byte("saved ")))
	state, err := p.GetOperationState(a)
	require.NoError(t, err)
	require.NoError(t, p.SetOperationState(b, state, 0, 0))
	require.NoError(t, p.DigestUpdate(b, []byte("and restored")))
	d, err := p.DigestFinal(b)
	require.NoError(t, err)
	want := sha256.Sum256([]byte("saved and restored"))
	assert.Equal(t, want[:], d)
	state[len(state)/2] ^= 1
	assert.Equal(t, rvName(pkcs11.CKR_SAVED_STATE_INVALID), rvName(rvOf(p.SetOperationState(b, state, 0, 0))))
	require.NoError(t, p.EncryptInit(admin, cbc(), aes))
	_, err = p.GetOperationState(admin)
	assert.Equal(t, rvName(pkcs11.CKR_STATE_UNSAVEABLE), rvName(rvOf(err)))
	require.NoError(t, ignore(p.Encrypt(admin, data)))

	// Digest and encrypt in one call.
	require.NoError(t, p.DigestInit(admin, sha()))
	require.NoError(t, p.EncryptInit(admin, cbc(), aes))
	part, err := p.DigestEncryptUpdate(admin, data)
	require.NoError(t, err)
	last, err := p.EncryptFinal(admin)
	require.NoError(t, err)
	assert.Equal(t, ct, append(part, last...))
	d, err = p.DigestFinal(admin)
	require.NoError(t, err)
	want = sha256.Sum256(data)
	assert.Equal(t, want[:], d)

	// Sign with recovery gives the CKM_RSA_PKCS signature. (miekg/pkcs11's
	// VerifyRecover calls C_DecryptVerifyUpdate, so verify-recover is
	// tested in p11module/core.)
	require.NoError(t, p.SignRecoverInit(admin, rsa(), rsaPriv))
	rec, err := p.SignRecover(admin, data)
	require.NoError(t, err)
	assert.Equal(t, sig, rec)

	// Slot events: none yet; an officer makes a crypto user, and a blocking
	// wait sees the new token slot.
	_, err = p.GetSlotList(true)
	require.NoError(t, err)
	// (miekg/pkcs11 drops the CK_RV: with CKR_NO_EVENT the slot stays 0,
	// the cluster slot, which never has events.)
	ev := <-p.WaitForSlotEvent(pkcs11.CKF_DONT_BLOCK)
	assert.Zero(t, ev.SlotID, "no event yet")
	events := p.WaitForSlotEvent(0)
	cs, err := p.OpenSession(0, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(cs, pkcs11.CKU_SO, os.Getenv("P11_SO_PIN")))
	name := "lc" + randomTag()
	require.NoError(t, p.InitPIN(cs, name+":"+randomTag()+randomTag()))
	select {
	case ev := <-events:
		require.NotZero(t, ev.SlotID)
		ti, err := p.GetTokenInfo(ev.SlotID)
		require.NoError(t, err)
		assert.Equal(t, name, strings.TrimRight(ti.Label, " "))
	case <-time.After(20 * time.Second):
		t.Fatal("no slot event for the new crypto user")
	}
}
