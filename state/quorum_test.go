package state_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/quorum"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quorumFixture is a store with three officers (admin, admin2, admin3), a
// crypto user alice, approval keys for admin (ECDSA P-256) and admin2
// (Ed25519), and quorum 2 for user management. Commands go straight to the
// machine with chosen times, so expiry is exact.
type quorumFixture struct {
	*fixture
	keys map[string]any // officer -> private key
	now  int64
	hash string
	seq  int
}

func newQuorumFixture(t *testing.T) *quorumFixture {
	t.Helper()
	f := &quorumFixture{fixture: newFixture(t), keys: map[string]any{}, now: 1_000_000}
	ctx := context.Background()
	for _, u := range []string{"admin2", "admin3"} {
		require.NoError(t, f.e.CreateUser(ctx, f.co, u, object.RoleCO, u+"-password"))
	}
	h, err := passwords.HashPassword("alice-new-password")
	require.NoError(t, err)
	f.hash = h
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	f.register(t, "admin", ec)
	f.register(t, "admin2", ed)
	require.NoError(t, f.apply(&state.Command{Op: state.OpQuorumSetPolicy, Actor: "admin",
		Service: quorum.ServiceUserManagement, QuorumM: 2}))
	return f
}

func (f *quorumFixture) apply(c *state.Command) error {
	if c.Time == 0 {
		c.Time = f.now
	}
	return f.rec.Submit(context.Background(), c)
}

func publicDER(t *testing.T, priv any) []byte {
	t.Helper()
	var pub any
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return der
}

func (f *quorumFixture) register(t *testing.T, officer string, priv any) {
	t.Helper()
	der := publicDER(t, priv)
	sig, err := quorum.Sign(priv, quorum.RegistrationBytes(officer, der))
	require.NoError(t, err)
	require.NoError(t, f.apply(&state.Command{Op: state.OpQuorumRegisterKey, Actor: officer, QuorumKey: der, Signature: sig}))
	f.keys[officer] = priv
}

// token makes a token for requester and service at f.now.
func (f *quorumFixture) token(t *testing.T, requester, service string) *quorum.Token {
	t.Helper()
	f.seq++
	id := fmt.Sprintf("%032x", f.seq)
	require.NoError(t, f.apply(&state.Command{Op: state.OpQuorumCreateToken, Actor: requester, Service: service, TokenID: id}))
	return &quorum.Token{ID: id, Service: service, Requester: requester, Issued: f.now, Expires: f.now + quorum.TokenLifetime}
}

// approve signs tok with signer's key and submits it as actor.
func (f *quorumFixture) approve(t *testing.T, tok *quorum.Token, actor string, signer any) error {
	t.Helper()
	sig, err := quorum.Sign(signer, tok.SigningBytes())
	require.NoError(t, err)
	return f.apply(&state.Command{Op: state.OpQuorumApprove, Actor: actor, TokenID: tok.ID, Signature: sig})
}

// reset is admin resetting alice's password with the token at time at.
func (f *quorumFixture) reset(token string, at int64) error {
	return f.apply(&state.Command{Op: state.OpSetPassword, Actor: "admin", Name: "alice", PasswordHash: f.hash,
		QuorumToken: token, Time: at})
}

func (f *quorumFixture) alicePasswordChanged(t *testing.T) bool {
	u, err := f.m.Store().User("alice")
	require.NoError(t, err)
	return u.PasswordHash == f.hash
}

func TestQuorumApplyRules(t *testing.T) {
	refused := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "%v", err)
	}
	cases := []struct {
		name string
		// play returns the token to use and when; ok says the reset must pass.
		play func(t *testing.T, f *quorumFixture) (string, int64)
		ok   bool
	}{
		{"no token", func(t *testing.T, f *quorumFixture) (string, int64) { return "", f.now }, false},
		{"unknown token", func(t *testing.T, f *quorumFixture) (string, int64) { return fmt.Sprintf("%032x", 999), f.now }, false},
		{"approved by two officers", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			return tok.ID, f.now + 10
		}, true},
		{"used at the last second of its life", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			return tok.ID, tok.Expires
		}, true},
		{"expired token", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			return tok.ID, tok.Expires + 1
		}, false},
		{"wrong service", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceClusterMembership)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			return tok.ID, f.now
		}, false},
		{"too few approvals", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			return tok.ID, f.now
		}, false},
		{"duplicate approvals by one officer", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			err := f.approve(t, tok, "admin2", f.keys["admin2"])
			require.True(t, hsmerr.IsRV(err, ck.CKR_ARGUMENTS_BAD), "%v", err)
			return tok.ID, f.now
		}, false},
		{"approval by a crypto user", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			// alice holds a valid signature by admin2's key, yet she is
			// no officer.
			err := f.approve(t, tok, "alice", f.keys["admin2"])
			require.True(t, hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN), "%v", err)
			return tok.ID, f.now
		}, false},
		{"approval by an officer with no registered key", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			err := f.approve(t, tok, "admin3", f.keys["admin2"])
			require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "%v", err)
			return tok.ID, f.now
		}, false},
		{"signature by an unregistered key", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			_, other, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			err = f.approve(t, tok, "admin2", other)
			require.True(t, hsmerr.IsRV(err, ck.CKR_SIGNATURE_INVALID), "%v", err)
			return tok.ID, f.now
		}, false},
		{"signature over another token", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			forged := *tok
			forged.Service = quorum.ServiceClusterMembership
			sig, err := quorum.Sign(f.keys["admin2"], forged.SigningBytes())
			require.NoError(t, err)
			err = f.apply(&state.Command{Op: state.OpQuorumApprove, Actor: "admin2", TokenID: tok.ID, Signature: sig})
			require.True(t, hsmerr.IsRV(err, ck.CKR_SIGNATURE_INVALID), "%v", err)
			return tok.ID, f.now
		}, false},
		{"another officer's token", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin2", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			return tok.ID, f.now
		}, false},
		{"approver re-registered a key since", func(t *testing.T, f *quorumFixture) (string, int64) {
			tok := f.token(t, "admin", quorum.ServiceUserManagement)
			require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
			require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
			_, fresh, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			f.register(t, "admin2", fresh)
			return tok.ID, f.now
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newQuorumFixture(t)
			id, at := tc.play(t, f)
			err := f.reset(id, at)
			if !tc.ok {
				refused(t, err)
				require.False(t, f.alicePasswordChanged(t), "a refused reset changed the password")
				return
			}
			require.NoError(t, err)
			require.True(t, f.alicePasswordChanged(t))
			// Token reuse: the token was spent.
			refused(t, f.reset(id, at))
		})
	}
}

// Every user-management command is gated, and a user changing their own
// password is not.
func TestQuorumGatesUserManagement(t *testing.T) {
	f := newQuorumFixture(t)
	h := f.hash
	gated := []*state.Command{
		{Op: state.OpCreateUser, Actor: "admin", User: &object.User{Name: "mallory", Role: object.RoleCO, PasswordHash: h}},
		{Op: state.OpDeleteUser, Actor: "admin", Name: "bob"},
		{Op: state.OpUnlockUser, Actor: "admin", Name: "bob"},
		{Op: state.OpSetPassword, Actor: "admin", Name: "admin2", PasswordHash: h},
		// A node certificate forging a command without an actor.
		{Op: state.OpCreateUser, User: &object.User{Name: "mallory", Role: object.RoleCO, PasswordHash: h}},
	}
	for _, c := range gated {
		err := f.apply(c)
		want := uint64(ck.CKR_ACTION_PROHIBITED)
		if c.Actor == "" {
			want = ck.CKR_USER_NOT_LOGGED_IN // the authority table refuses it first
		}
		require.True(t, hsmerr.IsRV(err, want), "%s: %v", c.Op, err)
	}
	_, err := f.m.Store().User("mallory")
	require.ErrorIs(t, err, state.ErrNotFound)
	require.NoError(t, f.apply(&state.Command{Op: state.OpSetPassword, Actor: "alice", Name: "alice", PasswordHash: h}))
}

func TestQuorumPolicyRules(t *testing.T) {
	f := newQuorumFixture(t)
	set := func(m int, token string) error {
		return f.apply(&state.Command{Op: state.OpQuorumSetPolicy, Actor: "admin", Service: quorum.ServiceClusterMembership,
			QuorumM: m, QuorumToken: token})
	}
	// With user management at 2, changing any M needs 2 approvals.
	require.True(t, hsmerr.IsRV(set(2, ""), ck.CKR_ACTION_PROHIBITED))
	// M above the officers with registered keys (2) is refused.
	tok := f.token(t, "admin", quorum.ServiceQuorum)
	require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
	require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
	require.True(t, hsmerr.IsRV(set(3, tok.ID), ck.CKR_ARGUMENTS_BAD))
	require.NoError(t, set(2, tok.ID))
	info, err := f.e.Quorum(f.co)
	require.NoError(t, err)
	require.Equal(t, 2, info.Policy[quorum.ServiceClusterMembership])
	// Lowering user management back to 1 alone is refused.
	err = f.apply(&state.Command{Op: state.OpQuorumSetPolicy, Actor: "admin", Service: quorum.ServiceUserManagement, QuorumM: 1})
	require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "%v", err)
	// A crypto user can neither register nor set.
	err = f.apply(&state.Command{Op: state.OpQuorumSetPolicy, Actor: "alice", Service: quorum.ServiceUserManagement, QuorumM: 1})
	require.True(t, hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN), "%v", err)
	// Deleting a registered officer below M is refused, even with quorum.
	del := f.token(t, "admin", quorum.ServiceUserManagement)
	require.NoError(t, f.approve(t, del, "admin", f.keys["admin"]))
	require.NoError(t, f.approve(t, del, "admin2", f.keys["admin2"]))
	err = f.apply(&state.Command{Op: state.OpDeleteUser, Actor: "admin", Name: "admin2", QuorumToken: del.ID})
	require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "%v", err)
	_, err = f.m.Store().User("admin2")
	require.NoError(t, err)
}

func TestQuorumMembershipUse(t *testing.T) {
	f := newQuorumFixture(t)
	use := func(token string) error {
		return f.apply(&state.Command{Op: state.OpQuorumUse, Actor: "admin", Service: quorum.ServiceClusterMembership, QuorumToken: token})
	}
	// Quorum off for membership: no token needed.
	require.NoError(t, use(""))
	tok := f.token(t, "admin", quorum.ServiceQuorum)
	require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
	require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
	require.NoError(t, f.apply(&state.Command{Op: state.OpQuorumSetPolicy, Actor: "admin", Service: quorum.ServiceClusterMembership,
		QuorumM: 2, QuorumToken: tok.ID}))
	require.True(t, hsmerr.IsRV(use(""), ck.CKR_ACTION_PROHIBITED))
	m := f.token(t, "admin", quorum.ServiceClusterMembership)
	require.NoError(t, f.approve(t, m, "admin2", f.keys["admin2"]))
	require.True(t, hsmerr.IsRV(use(m.ID), ck.CKR_ACTION_PROHIBITED))
	require.NoError(t, f.approve(t, m, "admin", f.keys["admin"]))
	require.NoError(t, use(m.ID))
	require.True(t, hsmerr.IsRV(use(m.ID), ck.CKR_ACTION_PROHIBITED), "a spent token worked again")
}

func TestQuorumRegisterKey(t *testing.T) {
	f := newQuorumFixture(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der := publicDER(t, ec)
	// Without proof of the private key.
	sig, err := quorum.Sign(ec, quorum.RegistrationBytes("admin2", der))
	require.NoError(t, err)
	err = f.apply(&state.Command{Op: state.OpQuorumRegisterKey, Actor: "admin3", QuorumKey: der, Signature: sig})
	require.True(t, hsmerr.IsRV(err, ck.CKR_SIGNATURE_INVALID), "%v", err)
	// A crypto user.
	sig, err = quorum.Sign(ec, quorum.RegistrationBytes("alice", der))
	require.NoError(t, err)
	err = f.apply(&state.Command{Op: state.OpQuorumRegisterKey, Actor: "alice", QuorumKey: der, Signature: sig})
	require.True(t, hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN), "%v", err)
	// P-384 is refused.
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	der384, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	require.NoError(t, err)
	err = f.apply(&state.Command{Op: state.OpQuorumRegisterKey, Actor: "admin3", QuorumKey: der384, Signature: sig})
	require.True(t, hsmerr.IsRV(err, ck.CKR_ARGUMENTS_BAD), "%v", err)
	info, err := f.e.Quorum(f.co)
	require.NoError(t, err)
	require.Len(t, info.Keys, 2)
}

// A replica that replays the same log ends in the same quorum state.
func TestQuorumReplayDeterministic(t *testing.T) {
	f := newQuorumFixture(t)
	tok := f.token(t, "admin", quorum.ServiceUserManagement)
	require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
	require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
	require.NoError(t, f.reset(tok.ID, f.now+1))
	other := state.NewMachine(newStore(t, "b.db"), nil, nil)
	other.SetSealer(f.m.Sealer())
	for i, raw := range f.rec.log {
		_ = other.Apply(uint64(i+1), raw)
	}
	a, err := f.m.Store().Meta(quorum.MetaQuorum)
	require.NoError(t, err)
	b, err := other.Store().Meta(quorum.MetaQuorum)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

// With a user-management quorum of 2, one officer alone cannot change a
// cluster setting (it decides what tokens show before login); with a token
// two officers approved, the change lands.
func TestQuorumSetting(t *testing.T) {
	f := newQuorumFixture(t)
	set := func(token string) error {
		return f.apply(&state.Command{Op: state.OpSetSetting, Actor: "admin", Name: state.SettingPublicObjects, Value: "off",
			QuorumToken: token})
	}
	get := func() string {
		v, err := state.Setting(f.m.Store().Meta, state.SettingPublicObjects)
		require.NoError(t, err)
		return v
	}
	err := set("")
	require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "%v", err)
	assert.Equal(t, "on", get(), "one officer changed the setting alone")
	tok := f.token(t, "admin", quorum.ServiceUserManagement)
	require.NoError(t, f.approve(t, tok, "admin", f.keys["admin"]))
	require.NoError(t, f.approve(t, tok, "admin2", f.keys["admin2"]))
	require.NoError(t, set(tok.ID))
	assert.Equal(t, "off", get())
}
