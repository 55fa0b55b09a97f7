package state_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/require"
)

// These tests drive hand-made commands straight into Machine.Apply on a
// real SQLite store: what a node certificate could send through Forward,
// or what a command that raced with a change carries. Apply alone must
// refuse what the actor may not do, and a refusal must change nothing.

var (
	hashOnce sync.Once
	goodHash string
)

// authzHash is one valid password hash, made once (argon2id is slow).
func authzHash(t testing.TB) string {
	hashOnce.Do(func() {
		h, err := passwords.HashPassword("authz-test-password")
		require.NoError(t, err)
		goodHash = h
	})
	return goodHash
}

// authzWorld is a store with a domain key, users and objects, and the
// machine that applies commands to it.
type authzWorld struct {
	t   testing.TB
	m   *state.Machine
	s   *seal.Sealer
	st  *sqlite.Store
	idx uint64
}

func newAuthzWorld(t testing.TB, users bool) *authzWorld {
	t.Helper()
	sealer, rec, err := seal.NewDomainKey("authz", seal.KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	return newAuthzWorldKey(t, users, sealer, rec)
}

// newAuthzWorldKey is newAuthzWorld under a given domain key, so that two
// worlds can hold the same state.
func newAuthzWorldKey(t testing.TB, users bool, sealer *seal.Sealer, rec *seal.SealedDomainKey) *authzWorld {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "hsm.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	w := &authzWorld{t: t, m: state.NewMachine(st, nil, nil), s: sealer, st: st}
	dataSealer = sealer
	require.NoError(t, w.apply(&state.Command{Op: state.OpInit, Domain: rec.Marshal()}))
	w.m.SetSealer(sealer)
	if !users {
		return w
	}
	h := authzHash(t)
	require.NoError(t, w.apply(&state.Command{Op: state.OpBootstrap, User: &object.User{Name: "admin", Role: object.RoleCO, PasswordHash: h}}))
	for _, u := range []struct {
		name string
		role object.Role
	}{{"co2", object.RoleCO}, {"alice", object.RoleCU}, {"carol", object.RoleCU}, {"dave", object.RoleCU},
		{"erin", object.RoleCU}, {"locked", object.RoleCU}} {
		require.NoError(t, w.apply(&state.Command{Op: state.OpCreateUser, Actor: "admin",
			User: &object.User{Name: u.name, Role: u.role, PasswordHash: h}}))
	}
	for i := 0; i < object.MaxFailedLogins; i++ {
		require.NoError(t, w.apply(&state.Command{Op: state.OpLoginFailed, Name: "locked"}))
	}
	return w
}

func (w *authzWorld) apply(c *state.Command) error {
	if c.Time == 0 {
		c.Time = 1_800_000_000
	}
	raw, err := c.Encode()
	require.NoError(w.t, err)
	w.idx++
	return w.m.Apply(w.idx, raw)
}

// put writes an object as it stands, bypassing apply, to set up relations
// the API could not (an object a crypto officer owns).
func (w *authzWorld) put(o *object.Object) {
	w.idx++
	require.NoError(w.t, w.st.Update(w.idx, func(tx state.Tx) error {
		o.MAC = w.s.AttrMAC(o)
		return tx.PutObject(o)
	}))
}

// state is everything a command could change, to compare before and after.
func (w *authzWorld) state() string {
	var b bytes.Buffer
	us, err := w.st.Users()
	require.NoError(w.t, err)
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	for _, u := range us {
		fmt.Fprintf(&b, "user %s %v %s %d %v %d\n", u.Name, u.Role, u.PasswordHash, u.FailedLogins, u.Locked, u.Generation)
	}
	os, err := w.st.Find(state.Query{})
	require.NoError(w.t, err)
	for _, o := range os {
		fmt.Fprintf(&b, "object %d %s %x %x %v\n", o.ID, o.Owner, object.MarshalAttrs(o.Attrs), o.Sealed, o.SharedWith)
	}
	for _, k := range []string{state.MetaLoggedOut, state.MetaOwnedKey("alice"), state.MetaOwnedKey("carol")} {
		v, _ := w.st.Meta(k)
		fmt.Fprintf(&b, "meta %s %x\n", k, v)
	}
	return b.String()
}

const authzObject = 77

// certObject is a token certificate whose label its owner may change and
// whose CKA_TRUSTED a crypto officer may set.
func certObject(id uint64, owner string, shared ...string) *object.Object {
	a := object.Attrs{}
	a.SetUlong(ck.CKA_CLASS, ck.CKO_CERTIFICATE)
	a.SetUlong(ck.CKA_CERTIFICATE_TYPE, ck.CKC_X_509)
	a.SetBool(ck.CKA_TOKEN, true)
	a.SetBool(ck.CKA_MODIFIABLE, true)
	a.SetBool(ck.CKA_DESTROYABLE, true)
	a.SetBool(ck.CKA_TRUSTED, false)
	a[ck.CKA_LABEL] = []byte("cert")
	a[ck.CKA_SUBJECT] = []byte("subject")
	a[ck.CKA_VALUE] = []byte("der")
	sort.Strings(shared)
	return &object.Object{ID: id, Owner: owner, Attrs: a, SharedWith: shared}
}

// dataSealer is the domain key of the latest authz world: dataObject
// seals values under it, as the engine would.
var dataSealer *seal.Sealer

// dataObject is a token data object as the engine makes it for owner, its
// value sealed to it under the latest world's domain key.
func dataObject(t testing.TB, id uint64, owner string) *object.Object {
	a, _, err := object.BuildAttrs(object.OpCreate, object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_VALUE, Value: []byte("payload")},
	}, 0, ^uint64(0))
	require.NoError(t, err)
	a[ck.CKA_UNIQUE_ID] = []byte(fmt.Sprintf("%016x", id))
	delete(a, ck.CKA_VALUE)
	o := &object.Object{ID: id, Owner: owner, Attrs: a}
	if dataSealer != nil {
		o.Sealed, err = dataSealer.Seal(id, owner, []byte("payload"))
		require.NoError(t, err)
	}
	return o
}

// Relations of the actor to the command's object.
const (
	relOwner    = "owner"
	relShared   = "shared"
	relStranger = "stranger"
)

// TestApplyAuthorityTable plays every op, by every kind of actor, in every
// relation to the object, straight into apply. want is written out here,
// from the roles of docs/command-authority.md, not computed from the
// table it checks.
func TestApplyAuthorityTable(t *testing.T) {
	actors := []struct{ kind, name string }{
		{"no actor", ""}, {"unknown user", "ghost"}, {"CO", "admin"}, {"CU", "alice"}, {"locked CU", "locked"},
	}
	type opCase struct {
		name      string
		objectOp  bool
		make      func(t *testing.T, actor string) *state.Command
		allowed   func(kind, rel string) bool
		unchanged bool // an allowed command that legitimately changes nothing visible
	}
	only := func(kind string) func(string, string) bool {
		return func(k, _ string) bool { return k == kind }
	}
	ownerCU := func(k, rel string) bool { return k == "CU" && rel == relOwner }
	ops := []opCase{
		{name: "create_user", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpCreateUser, Actor: a, User: &object.User{Name: "newbie", Role: object.RoleCO, PasswordHash: authzHash(t)}}
		}, allowed: only("CO")},
		{name: "delete_user", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpDeleteUser, Actor: a, Name: "dave"}
		}, allowed: only("CO")},
		{name: "unlock_user", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpUnlockUser, Actor: a, Name: "dave"}
		}, allowed: only("CO")},
		{name: "set_password of another", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpSetPassword, Actor: a, Name: "dave", PasswordHash: authzHash(t)}
		}, allowed: only("CO")},
		{name: "set_password of oneself", make: func(_ *testing.T, a string) *state.Command {
			name := a
			if a == "" {
				name = "alice"
			}
			return &state.Command{Op: state.OpSetPassword, Actor: a, Name: name, PasswordHash: authzHash(t)}
		}, allowed: func(k, _ string) bool { return k == "CO" || k == "CU" }},
		{name: "create_objects", make: func(t *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpCreateObjects, Actor: a, Objects: []*object.Object{dataObject(t, 1234, a)}}
		}, allowed: only("CU")},
		{name: "destroy_object", objectOp: true, make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpDestroyObject, Actor: a, ObjectID: authzObject}
		}, allowed: ownerCU},
		{name: "set_attributes label", objectOp: true, make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpSetAttributes, Actor: a, ObjectID: authzObject,
				Changes: object.Template{{Type: ck.CKA_LABEL, Value: []byte("renamed")}}}
		}, allowed: ownerCU},
		{name: "set_attributes trusted", objectOp: true, make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpSetAttributes, Actor: a, ObjectID: authzObject,
				Changes: object.Template{{Type: ck.CKA_TRUSTED, Value: object.EncodeBool(true)}}}
		}, allowed: func(k, rel string) bool { return k == "CO" && rel == relStranger }},
		{name: "share", objectOp: true, make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpShare, Actor: a, ObjectID: authzObject, Name: "erin"}
		}, allowed: ownerCU},
		{name: "unshare", objectOp: true, make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpUnshare, Actor: a, ObjectID: authzObject, Name: "dave"}
		}, allowed: ownerCU},
		{name: "logout", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpLogout, Actor: a, Session: 5, Expires: 1_900_000_000}
		}, allowed: func(k, _ string) bool { return k == "CO" || k == "CU" || k == "locked CU" }},
		{name: "login_failed", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpLoginFailed, Actor: a, Name: "dave"}
		}, allowed: only("no actor")},
		{name: "login_ok", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpLoginOK, Actor: a, Name: "dave"}
		}, allowed: only("no actor"), unchanged: true},
		{name: "bootstrap once users exist", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpBootstrap, Actor: a, User: &object.User{Name: "newbie", Role: object.RoleCO, PasswordHash: authzHash(t)}}
		}, allowed: func(string, string) bool { return false }},
		{name: "init once initialized", make: func(_ *testing.T, a string) *state.Command {
			return &state.Command{Op: state.OpInit, Actor: a, Domain: []byte("x")}
		}, allowed: func(string, string) bool { return false }},
	}
	for _, op := range ops {
		rels := []string{""}
		if op.objectOp {
			rels = []string{relOwner, relShared, relStranger}
		}
		for _, actor := range actors {
			for _, rel := range rels {
				name := fmt.Sprintf("%s/%s", op.name, actor.kind)
				if rel != "" {
					name += "/" + rel
				}
				t.Run(name, func(t *testing.T) {
					w := newAuthzWorld(t, true)
					if op.objectOp {
						// dave always shares the object, so unshare has
						// something to take away.
						switch {
						case rel == relOwner && actor.name != "" && actor.name != "ghost":
							w.put(certObject(authzObject, actor.name, "dave"))
						case rel == relShared && actor.name != "":
							w.put(certObject(authzObject, "carol", "dave", actor.name))
						default:
							w.put(certObject(authzObject, "carol", "dave"))
						}
					}
					before := w.state()
					err := w.apply(op.make(t, actor.name))
					if op.allowed(actor.kind, rel) {
						require.NoError(t, err)
						if !op.unchanged {
							require.NotEqual(t, before, w.state(), "an allowed command changed nothing")
						}
						return
					}
					require.Error(t, err, "apply took a command its actor may not make")
					require.NotEqual(t, uint64(ck.CKR_OK), hsmerr.RV(err))
					require.Equal(t, before, w.state(), "a refused command changed the store")
				})
			}
		}
	}
}

// TestApplyAuthorityCoversEveryOp: an op apply knows but the authority
// table does not is refused, and no such op exists.
func TestApplyAuthorityCoversEveryOp(t *testing.T) {
	applied, ruled := state.AuthorityOps()
	require.ElementsMatch(t, applied, ruled, "every op needs exactly one authority rule")

	w := newAuthzWorld(t, true)
	w.put(certObject(authzObject, "alice"))
	before := w.state()
	state.WithoutAuthority(state.OpDestroyObject, func() {
		err := w.apply(&state.Command{Op: state.OpDestroyObject, Actor: "alice", ObjectID: authzObject})
		require.Equal(t, uint64(ck.CKR_ACTION_PROHIBITED), hsmerr.RV(err))
	})
	require.Equal(t, before, w.state())
}

// TestApplyCreateObjectsOwnedByAnother: a crypto user cannot store objects
// in another user's name, nor pre-shared.
func TestApplyCreateObjectsOwnedByAnother(t *testing.T) {
	w := newAuthzWorld(t, true)
	before := w.state()
	for name, c := range map[string]*state.Command{
		"owned by carol": {Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{dataObject(t, 5, "carol")}},
		"second owned by carol": {Op: state.OpCreateObjects, Actor: "alice",
			Objects: []*object.Object{dataObject(t, 5, "alice"), dataObject(t, 6, "carol")}},
		"pre-shared": {Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{func() *object.Object {
			o := dataObject(t, 5, "alice")
			o.SharedWith = []string{"carol"}
			return o
		}()}},
		"a crypto officer's": {Op: state.OpCreateObjects, Actor: "admin", Objects: []*object.Object{dataObject(t, 5, "admin")}},
		"same id twice": {Op: state.OpCreateObjects, Actor: "alice",
			Objects: []*object.Object{dataObject(t, 5, "alice"), dataObject(t, 5, "alice")}},
		"three objects": {Op: state.OpCreateObjects, Actor: "alice",
			Objects: []*object.Object{dataObject(t, 5, "alice"), dataObject(t, 6, "alice"), dataObject(t, 7, "alice")}},
		"id zero": {Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{dataObject(t, 0, "alice")}},
	} {
		require.Error(t, w.apply(c), name)
		require.Equal(t, before, w.state(), name)
	}
}

// TestApplyBootstrapOnce: bootstrap makes a crypto officer in a store with
// no users, and is refused as soon as one exists.
func TestApplyBootstrapOnce(t *testing.T) {
	w := newAuthzWorld(t, false)
	boot := func(name string, role object.Role) error {
		return w.apply(&state.Command{Op: state.OpBootstrap, User: &object.User{Name: name, Role: role, PasswordHash: authzHash(t)}})
	}
	require.Error(t, boot("first", object.RoleCU), "bootstrap made a crypto user")
	require.Error(t, w.apply(&state.Command{Op: state.OpCreateUser, Actor: "first",
		User: &object.User{Name: "first", Role: object.RoleCO, PasswordHash: authzHash(t)}}), "create_user without an officer")
	require.Error(t, w.apply(&state.Command{Op: state.OpCreateUser,
		User: &object.User{Name: "first", Role: object.RoleCO, PasswordHash: authzHash(t)}}), "create_user without an actor")
	require.NoError(t, boot("first", object.RoleCO))
	err := boot("second", object.RoleCO)
	require.Equal(t, uint64(ck.CKR_USER_ALREADY_LOGGED_IN), hsmerr.RV(err))
	us, err := w.st.Users()
	require.NoError(t, err)
	require.Len(t, us, 1)
	require.Equal(t, "first", us[0].Name)
	require.Equal(t, object.RoleCO, us[0].Role)
}

// TestEngineBootstrapRace: concurrent bootstraps all pass the engine's
// early check; apply lets exactly one through.
func TestEngineBootstrapRace(t *testing.T) {
	w := newAuthzWorld(t, false)
	e := engine.NewEngine(w.m, nil, engine.Options{})
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.Bootstrap(t.Context(), fmt.Sprintf("officer%d", i), "officer-password")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.Equal(t, uint64(ck.CKR_USER_ALREADY_LOGGED_IN), hsmerr.RV(err))
	}
	require.Equal(t, 1, ok)
	us, err := w.st.Users()
	require.NoError(t, err)
	require.Len(t, us, 1)
}

// TestApplyPasswordHashBounds: a hash with parameters that would make every
// login exhaust the daemon is refused in apply.
func TestApplyPasswordHashBounds(t *testing.T) {
	w := newAuthzWorld(t, true)
	before := w.state()
	huge := "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	require.Error(t, w.apply(&state.Command{Op: state.OpCreateUser, Actor: "admin",
		User: &object.User{Name: "newbie", Role: object.RoleCU, PasswordHash: huge}}))
	require.Error(t, w.apply(&state.Command{Op: state.OpSetPassword, Actor: "admin", Name: "alice", PasswordHash: huge}))
	require.Error(t, w.apply(&state.Command{Op: state.OpSetPassword, Actor: "alice", Name: "alice", PasswordHash: "plain"}))
	require.Equal(t, before, w.state())
}
