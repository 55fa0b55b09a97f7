package state_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// TestApplyWipeToken plays wipe_token (C_InitToken on a crypto user's
// token slot) straight into apply, by every kind of actor and against
// every kind of target: only a crypto officer may, only a crypto user's
// token is wiped, and a refusal changes no row. An allowed wipe destroys
// the user's destroyable objects and their shares, and nothing else.
func TestApplyWipeToken(t *testing.T) {
	rows := []struct {
		name   string
		actor  string
		target string
		want   uint64 // CKR_OK: the wipe happens
	}{
		{"officer wipes a crypto user", "admin", "alice", ck.CKR_OK},
		{"the other officer too", "co2", "alice", ck.CKR_OK},
		{"forged: no actor", "", "alice", ck.CKR_USER_NOT_LOGGED_IN},
		{"forged: unknown actor", "ghost", "alice", ck.CKR_USER_PIN_NOT_INITIALIZED},
		{"the user herself", "alice", "alice", ck.CKR_USER_NOT_LOGGED_IN},
		{"another crypto user", "carol", "alice", ck.CKR_USER_NOT_LOGGED_IN},
		{"a locked crypto user", "locked", "alice", ck.CKR_USER_NOT_LOGGED_IN},
		{"an officer has no token", "admin", "co2", ck.CKR_ACTION_PROHIBITED},
		{"no such user", "admin", "nobody", ck.CKR_ARGUMENTS_BAD},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			w := newAuthzWorld(t, true)
			w.put(certObject(71, "alice", "dave")) // shared with dave
			w.put(dataObject(t, 72, "alice"))
			keep := certObject(73, "alice")
			keep.Attrs.SetBool(ck.CKA_DESTROYABLE, false)
			w.put(keep)
			w.put(certObject(74, "carol", "alice")) // carol's, shared with alice
			before := w.state()
			err := w.apply(&state.Command{Op: state.OpWipeToken, Actor: r.actor, Name: r.target})
			if r.want != ck.CKR_OK {
				require.Error(t, err)
				if r.want != ck.CKR_ARGUMENTS_BAD {
					assert.Equal(t, r.want, hsmerr.RV(err), "%v", err)
				} else {
					assert.NotEqual(t, uint64(ck.CKR_OK), hsmerr.RV(err))
				}
				require.Equal(t, before, w.state(), "a refused wipe changed the store")
				return
			}
			require.NoError(t, err)
			left, err := w.st.Find(state.Query{})
			require.NoError(t, err)
			var ids []uint64
			for _, o := range left {
				ids = append(ids, o.ID)
				if o.ID == 74 {
					assert.Equal(t, []string{"alice"}, o.SharedWith, "carol's share with alice stays")
				}
			}
			assert.Equal(t, []uint64{73, 74}, ids, "alice's destroyable objects go, the rest stay")
			u, err := w.st.User("alice")
			require.NoError(t, err)
			assert.Equal(t, authzHash(t), u.PasswordHash, "the user and her password stay")
			assert.Equal(t, object.RoleCU, u.Role)
		})
	}
}

// TestEngineWipeToken: the engine refuses a crypto user at once, and an
// officer's wipe goes through apply.
func TestEngineWipeToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.CreateObject(ctx, f.alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_DATA), bo(ck.CKA_TOKEN, true),
		{Type: ck.CKA_VALUE, Value: []byte("v")}})
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		who  func() (string, object.Role)
	}{{"alice herself", func() (string, object.Role) { return "alice", object.RoleCU }},
		{"bob", func() (string, object.Role) { return "bob", object.RoleCU }}} {
		t.Run(c.name, func(t *testing.T) {
			caller := f.alice
			caller.User, caller.Role = c.who()
			err := f.e.WipeToken(ctx, caller, "alice")
			assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), hsmerr.RV(err))
			_, err = f.e.GetAttributes(f.alice, id, []uint64{ck.CKA_CLASS})
			require.NoError(t, err, "the object is still there")
		})
	}
	require.NoError(t, f.e.WipeToken(ctx, f.co, "alice"))
	_, err = f.e.GetAttributes(f.alice, id, []uint64{ck.CKA_CLASS})
	assert.Equal(t, uint64(ck.CKR_OBJECT_HANDLE_INVALID), hsmerr.RV(err))
}
