package state_test

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
)

// recorder is an Applier that applies locally and keeps every command, so
// a test can replay the log on another store.
type recorder struct {
	local *engine.LocalApplier
	log   [][]byte
}

func (r *recorder) Submit(ctx context.Context, c *state.Command) error {
	raw, err := c.Encode()
	if err != nil {
		return err
	}
	r.log = append(r.log, raw)
	return r.local.Submit(ctx, c)
}

// spy is the machine's observer in tests: it passes what apply did on to
// the engine, as a daemon's node does, and lets a test listen in.
type spy struct {
	e           *engine.Engine
	loggedOut   func(session uint64, expires int64)
	certRevoked func()
}

func (s *spy) ObjectChanged(id uint64) {
	if s.e != nil {
		s.e.ObjectChanged(id)
	}
}

func (s *spy) UsersChanged() {
	if s.e != nil {
		s.e.UsersChanged()
	}
}

func (s *spy) LoggedOut(session uint64, expires int64) {
	if s.e != nil {
		s.e.LoggedOut(session, expires)
	}
	if s.loggedOut != nil {
		s.loggedOut(session, expires)
	}
}

func (s *spy) KMSChanged() {}

func (s *spy) CertRevoked() {
	if s.certRevoked != nil {
		s.certRevoked()
	}
}

func (s *spy) Restored() error {
	if s.e != nil {
		return s.e.Restored()
	}
	return nil
}

type fixture struct {
	spy   *spy
	e     *engine.Engine
	m     *state.Machine
	rec   *recorder
	co    engine.Caller
	alice engine.Caller
	bob   engine.Caller
}

func newStore(t *testing.T, name string) *sqlite.Store {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), name), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	sealer, rec, err := seal.NewDomainKey("test", seal.KEKSource{KeyFile: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	sp := &spy{}
	m := state.NewMachine(newStore(t, "a.db"), nil, sp)
	r := &recorder{local: &engine.LocalApplier{M: m}}
	if err := r.Submit(ctx, &state.Command{Op: state.OpInit, Domain: rec.Marshal()}); err != nil {
		t.Fatal(err)
	}
	m.SetSealer(sealer)
	e := engine.NewEngine(m, r, engine.Options{})
	sp.e = e
	if err := e.Bootstrap(ctx, "admin", "officer-pass"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, m: m, rec: r, spy: sp,
		co:    engine.Caller{User: "admin", Role: object.RoleCO, Session: 1},
		alice: engine.Caller{User: "alice", Role: object.RoleCU, Session: 2},
		bob:   engine.Caller{User: "bob", Role: object.RoleCU, Session: 3}}
	for _, u := range []string{"alice", "bob"} {
		if err := e.CreateUser(ctx, f.co, u, object.RoleCU, u+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func ul(t, v uint64) object.Attribute { return object.Attribute{Type: t, Value: object.EncodeUlong(v)} }
func bo(t uint64, v bool) object.Attribute {
	return object.Attribute{Type: t, Value: object.EncodeBool(v)}
}

func wantRV(t *testing.T, what string, err error, rv uint64) {
	t.Helper()
	if got := hsmerr.RV(err); got != rv {
		t.Fatalf("%s: got %s (%v), want %s", what, ck.RVName(got), err, ck.RVName(rv))
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := 0; i < object.MaxFailedLogins; i++ {
		_, err := f.e.Login(ctx, "alice", "wrong-password")
		wantRV(t, "wrong password", err, ck.CKR_PIN_INCORRECT)
	}
	_, err := f.e.Login(ctx, "alice", "alice-password")
	wantRV(t, "right password after lockout", err, ck.CKR_PIN_LOCKED)
	_, err = f.e.Login(ctx, "nobody", "whatever-pass")
	wantRV(t, "unknown user", err, ck.CKR_PIN_INCORRECT)
	wantRV(t, "CU unlocks", f.e.UnlockUser(ctx, f.bob, "alice"), ck.CKR_USER_NOT_LOGGED_IN)
	wantRV(t, "CO unlocks", f.e.UnlockUser(ctx, f.co, "alice"), ck.CKR_OK)
	if _, err := f.e.Login(ctx, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	// A right password resets the count: four wrong, one right, four wrong
	// leaves the account open.
	for round := 0; round < 2; round++ {
		for i := 0; i < object.MaxFailedLogins-1; i++ {
			f.e.Login(ctx, "alice", "wrong-password")
		}
		if round == 0 {
			if _, err := f.e.Login(ctx, "alice", "alice-password"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.e.Login(ctx, "alice", "alice-password"); err != nil {
		t.Fatalf("four failures locked the account: %v", err)
	}
}

func TestRolesAndSharing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aes := mech.Mech{Type: ck.CKM_AES_KEY_GEN}
	tmpl := object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true)}
	_, err := f.e.GenerateKey(ctx, f.co, aes, tmpl)
	wantRV(t, "CO generates", err, ck.CKR_USER_NOT_LOGGED_IN)
	wantRV(t, "CU creates user", f.e.CreateUser(ctx, f.alice, "eve", object.RoleCU, "eve-password"), ck.CKR_USER_NOT_LOGGED_IN)
	id, err := f.e.GenerateKey(ctx, f.alice, aes, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	gcm := mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	ct, err := f.e.Encrypt(f.alice, id, gcm, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.e.Decrypt(f.co, id, gcm, ct)
	wantRV(t, "CO decrypts", err, ck.CKR_USER_NOT_LOGGED_IN)
	_, err = f.e.Decrypt(f.bob, id, gcm, ct)
	wantRV(t, "bob before share", err, ck.CKR_KEY_HANDLE_INVALID)
	if ids, _ := f.e.FindObjects(f.bob, nil, 0); len(ids) != 0 {
		t.Fatalf("bob sees %d objects before the share", len(ids))
	}
	wantRV(t, "bob shares alice's key", f.e.Share(ctx, f.bob, id, "bob", true), ck.CKR_OBJECT_HANDLE_INVALID)
	wantRV(t, "share", f.e.Share(ctx, f.alice, id, "bob", true), ck.CKR_OK)
	pt, err := f.e.Decrypt(f.bob, id, gcm, ct)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("bob after share: %v", err)
	}
	wantRV(t, "bob destroys", f.e.DestroyObject(ctx, f.bob, id), ck.CKR_ACTION_PROHIBITED)
	wantRV(t, "bob re-shares", f.e.Share(ctx, f.bob, id, "admin", true), ck.CKR_ACTION_PROHIBITED)
	wantRV(t, "bob relabels", f.e.SetAttributes(ctx, f.bob, id, object.Template{{Type: ck.CKA_LABEL, Value: []byte("x")}}), ck.CKR_ACTION_PROHIBITED)
	wantRV(t, "CO sets trusted", f.e.SetAttributes(ctx, f.co, id, object.Template{bo(ck.CKA_TRUSTED, true)}), ck.CKR_OK)
	wantRV(t, "delete owner of keys", f.e.DeleteUser(ctx, f.co, "alice"), ck.CKR_ACTION_PROHIBITED)
	wantRV(t, "unshare", f.e.Share(ctx, f.alice, id, "bob", false), ck.CKR_OK)
	_, err = f.e.Decrypt(f.bob, id, gcm, ct)
	wantRV(t, "bob after unshare", err, ck.CKR_KEY_HANDLE_INVALID)
	wantRV(t, "alice destroys", f.e.DestroyObject(ctx, f.alice, id), ck.CKR_OK)
	_, err = f.e.Encrypt(f.alice, id, gcm, []byte("x"))
	wantRV(t, "use after destroy", err, ck.CKR_KEY_HANDLE_INVALID)
	wantRV(t, "delete alice", f.e.DeleteUser(ctx, f.co, "alice"), ck.CKR_OK)
	wantRV(t, "delete last CO", f.e.DeleteUser(ctx, f.co, "admin"), ck.CKR_ACTION_PROHIBITED)
}

func TestSessionObjectsStayInTheirSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.GenerateKey(ctx, f.alice, mech.Mech{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32)})
	if err != nil {
		t.Fatal(err)
	}
	other := f.alice
	other.Session = 99
	if ids, _ := f.e.FindObjects(other, nil, 0); len(ids) != 0 {
		t.Fatal("another session sees a session object")
	}
	if ids, _ := f.e.FindObjects(f.alice, nil, 0); len(ids) != 1 || ids[0] != id {
		t.Fatalf("own session: %v", ids)
	}
	if n, _ := f.m.Store().Find(state.Query{}); len(n) != 0 {
		t.Fatal("a session object reached the store")
	}
	f.e.EndSession(f.alice.Session)
	if ids, _ := f.e.FindObjects(f.alice, nil, 0); len(ids) != 0 {
		t.Fatal("session object outlived its session")
	}
}

// TestApplyIsDeterministic replays the command log of one store on a fresh
// one: both must end the same, refusals included.
func TestApplyIsDeterministic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.GenerateKey(ctx, f.alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_TOKEN, true)})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.e.GenerateKeyPair(ctx, f.alice, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{{Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}, bo(ck.CKA_TOKEN, true)},
		object.Template{bo(ck.CKA_TOKEN, true)})
	if err != nil {
		t.Fatal(err)
	}
	f.e.Share(ctx, f.alice, id, "bob", true)
	f.e.Login(ctx, "bob", "wrong-password")
	f.e.SetAttributes(ctx, f.alice, id, object.Template{{Type: ck.CKA_LABEL, Value: []byte("renamed")}})
	// A command refused at apply time must be refused alike on replay.
	f.rec.Submit(ctx, &state.Command{Op: state.OpDestroyObject, Actor: "bob", ObjectID: id})

	m2 := state.NewMachine(newStore(t, "b.db"), f.m.Sealer(), nil)
	for i, raw := range f.rec.log {
		if err := m2.Apply(uint64(i+1), raw); err != nil {
			if _, isStore := err.(*state.StoreError); isStore {
				t.Fatalf("replay %d: %v", i, err)
			}
		}
	}
	dump := func(s state.Store) []any {
		objs, _ := s.Find(state.Query{})
		users, _ := s.Users()
		var out []any
		for _, o := range objs {
			out = append(out, o.ID, o.Owner, object.MarshalAttrs(o.Attrs), o.Sealed, o.SharedWith, o.MAC)
		}
		for _, u := range users {
			out = append(out, *u)
		}
		return out
	}
	a, b := dump(f.m.Store()), dump(m2.Store())
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatal("replaying the log gave a different store")
	}
	if objs, _ := m2.Store().Find(state.Query{}); len(objs) != 3 {
		t.Fatalf("replayed store has %d objects, want 3 (the refused destroy must not land)", len(objs))
	}
	ia, _ := f.m.Store().AppliedIndex()
	ib, _ := m2.Store().AppliedIndex()
	if ia != ib {
		t.Fatalf("applied index %d vs %d", ia, ib)
	}
	// A replayed index is skipped, not an error.
	if err := m2.Apply(1, f.rec.log[0]); err != nil {
		t.Fatalf("replay of an applied index: %v", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []*state.Command{
		{Op: state.OpCreateUser, User: &object.User{Name: "a", Role: object.RoleCU, PasswordHash: "h"}},
		{Op: state.OpShare, Actor: "a", ObjectID: 5, Name: "b"},
		{Op: state.OpSetAttributes, Actor: "a", ObjectID: 5, Changes: object.Template{{Type: 3, Value: []byte("x")}}},
		{Op: state.OpCreateObjects, Actor: "a", Objects: []*object.Object{{ID: 1, Owner: "a", Attrs: object.Attrs{0: object.EncodeUlong(4)}, Sealed: []byte{1, 2}}}},
	} {
		raw, _ := c.Encode()
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := state.DecodeCommand(raw)
		if err != nil {
			return
		}
		again, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		// The encoding is canonical: what decodes, re-encodes to bytes that
		// decode and encode to themselves (every node logs the same bytes).
		c2, err := state.DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		third, err := c2.Encode()
		if err != nil || !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}

// TestGeneratedKeysAreLocal: every generated key is CKA_LOCAL with its
// mechanism, RSA's included (CKM_RSA_PKCS_KEY_PAIR_GEN is 0).
func TestGeneratedKeysAreLocal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pub, priv, err := f.e.GenerateKeyPair(ctx, f.alice, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_MODULUS_BITS, 2048)}, object.Template{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{pub, priv} {
		vs, err := f.e.GetAttributes(f.alice, id, []uint64{ck.CKA_LOCAL, ck.CKA_KEY_GEN_MECHANISM})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(vs[0].Value, []byte{1}) || !bytes.Equal(vs[1].Value, object.EncodeUlong(ck.CKM_RSA_PKCS_KEY_PAIR_GEN)) {
			t.Errorf("object %d: CKA_LOCAL %x, CKA_KEY_GEN_MECHANISM %x", id, vs[0].Value, vs[1].Value)
		}
	}
	vs, _ := f.e.GetAttributes(f.alice, priv, []uint64{ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE})
	if !bytes.Equal(vs[0].Value, []byte{1}) || !bytes.Equal(vs[1].Value, []byte{1}) {
		t.Errorf("RSA private key: ALWAYS_SENSITIVE %x NEVER_EXTRACTABLE %x", vs[0].Value, vs[1].Value)
	}
}
