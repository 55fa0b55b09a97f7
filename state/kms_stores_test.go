package state_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// principalCmd is an officer's kms_principal_create of a new principal,
// bringing kmsuser (with a random password) when withUser.
func principalCmd(t *testing.T, f *fixture, name string, withUser bool) *state.Command {
	t.Helper()
	var idb [10]byte
	var sb [30]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(sb[:])
	akid := "AKIA" + base32.StdEncoding.EncodeToString(idb[:])[:16]
	sealed, err := f.m.Sealer().Seal(0, state.KMSSecretOwner(akid), []byte(base64.StdEncoding.EncodeToString(sb[:])))
	require.NoError(t, err)
	c := &state.Command{Op: state.OpKMSPrincipalCreate, Actor: f.co.User, Role: f.co.Role,
		KMS: &state.KMSCommand{PrincipalRow: &state.KMSPrincipal{Name: name, AccessKeyID: akid, Secret: sealed}}}
	if withUser {
		hash, err := passwords.HashPassword("random-kmsuser-password-1")
		require.NoError(t, err)
		c.User = &object.User{Name: state.KMSUser, Role: object.RoleCU, PasswordHash: hash}
	}
	return c
}

// TestKMSUserClaim is the rule of kmsuser (docs/kms.md, "Custom key
// stores"): on a cluster whose KMS has not claimed it, an officer may make
// kmsuser as a crypto user (for another cluster's KMS), reset its password
// and delete it, and this cluster's KMS then refuses its first principal;
// once the KMS's first principal has made it, nobody makes, deletes or
// resets it. Each step is a row: who does what, and the answer.
func TestKMSUserClaim(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	steps := []struct {
		name string
		do   func() error
		rv   uint64
		msg  string
	}{
		{"an officer makes kmsuser as an officer", func() error {
			return f.e.CreateUser(ctx, f.co, state.KMSUser, object.RoleCO, "kmsuser-password-1")
		}, ck.CKR_ARGUMENTS_BAD, "can only be a crypto user"},
		{"an officer makes kmsuser as a crypto user (unclaimed)", func() error {
			return f.e.CreateUser(ctx, f.co, state.KMSUser, object.RoleCU, "kmsuser-password-1")
		}, ck.CKR_OK, ""},
		{"kmsuser logs in", func() error { _, err := f.e.Login(ctx, state.KMSUser, "kmsuser-password-1"); return err }, ck.CKR_OK, ""},
		{"kmsuser sets its own password (unclaimed)", func() error {
			return f.e.SetPassword(ctx, engine.Caller{User: state.KMSUser, Role: object.RoleCU, Session: 9}, state.KMSUser, "kmsuser-password-2")
		}, ck.CKR_OK, ""},
		{"an officer resets kmsuser's password (unclaimed)", func() error {
			return f.e.SetPassword(ctx, f.co, state.KMSUser, "kmsuser-password-3")
		}, ck.CKR_OK, ""},
		{"the first principal, with an officer's kmsuser", func() error {
			return f.rec.Submit(ctx, principalCmd(t, f, "svc", false))
		}, ck.CKR_ACTION_PROHIBITED, "cannot have principals"},
		{"the first principal bringing its own kmsuser, while an officer's exists", func() error {
			return f.rec.Submit(ctx, principalCmd(t, f, "svc", true))
		}, ck.CKR_ACTION_PROHIBITED, "cannot have principals"},
		{"an officer deletes kmsuser (unclaimed)", func() error { return f.e.DeleteUser(ctx, f.co, state.KMSUser) }, ck.CKR_OK, ""},
		{"the first principal makes and claims kmsuser", func() error {
			return f.rec.Submit(ctx, principalCmd(t, f, "svc", true))
		}, ck.CKR_OK, ""},
		{"a second principal", func() error { return f.rec.Submit(ctx, principalCmd(t, f, "svc2", false)) }, ck.CKR_OK, ""},
		{"an officer resets the claimed kmsuser's password", func() error {
			return f.e.SetPassword(ctx, f.co, state.KMSUser, "kmsuser-password-4")
		}, ck.CKR_ACTION_PROHIBITED, "this cluster's KMS's own"},
		{"an officer deletes the claimed kmsuser", func() error { return f.e.DeleteUser(ctx, f.co, state.KMSUser) },
			ck.CKR_ACTION_PROHIBITED, "this cluster's KMS's own"},
		{"an officer deletes every principal, then kmsuser", func() error {
			for _, n := range []string{"svc", "svc2"} {
				if err := f.rec.Submit(ctx, &state.Command{Op: state.OpKMSPrincipalDelete, Actor: f.co.User, Role: f.co.Role,
					KMS: &state.KMSCommand{Name: n}}); err != nil {
					return err
				}
			}
			return f.e.DeleteUser(ctx, f.co, state.KMSUser)
		}, ck.CKR_ACTION_PROHIBITED, "this cluster's KMS's own"},
		{"an officer makes kmsuser again", func() error {
			return f.e.CreateUser(ctx, f.co, "kmsuser", object.RoleCU, "kmsuser-password-5")
		}, ck.CKR_ACTION_PROHIBITED, "this cluster's KMS's own"},
	}
	for _, s := range steps {
		err := s.do()
		require.Equal(t, ck.RVName(s.rv), ck.RVName(hsmerr.RV(err)), "%s: %v", s.name, err)
		if s.msg != "" {
			assert.Contains(t, err.Error(), s.msg, s.name)
		}
	}
}
