package sqlite

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

const (
	cka_CLASS    = 0x0
	cka_LABEL    = 0x3
	cka_KEY_TYPE = 0x100
	cka_ID       = 0x102
	cka_TOKEN    = 0x1

	cko_DATA        = 0
	cko_CERTIFICATE = 1
	cko_PUBLIC_KEY  = 2
	cko_PRIVATE_KEY = 3
	cko_SECRET_KEY  = 4

	ckk_RSA = 0
	ckk_AES = 0x1f
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "tokens.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func update(t testing.TB, s *Store, index uint64, fn func(tx state.Tx) error) {
	t.Helper()
	if err := s.Update(index, fn); err != nil {
		t.Fatalf("Update(%d): %v", index, err)
	}
}

func u64(v uint64) *uint64 { return &v }

// newObject makes an object; label or id nil leaves the attribute out, keyType
// < 0 leaves CKA_KEY_TYPE out.
func newObject(id uint64, owner string, class uint64, keyType int64, label, ckaid []byte, sealed []byte, shares ...string) *object.Object {
	a := object.Attrs{}
	a.SetUlong(cka_CLASS, class)
	a.SetBool(cka_TOKEN, true)
	if keyType >= 0 {
		a.SetUlong(cka_KEY_TYPE, uint64(keyType))
	}
	if label != nil {
		a[cka_LABEL] = label
	}
	if ckaid != nil {
		a[cka_ID] = ckaid
	}
	return &object.Object{ID: id, Owner: owner, Attrs: a, Sealed: sealed, SharedWith: shares}
}

func ids(objs []*object.Object) []uint64 {
	out := []uint64{}
	for _, o := range objs {
		out = append(out, o.ID)
	}
	return out
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("%s: got %v, want state.ErrNotFound", what, err)
	}
	if hsmerr.RV(err) != state.ErrNotFound.RV {
		t.Fatalf("%s: RV %#x, want %#x", what, hsmerr.RV(err), state.ErrNotFound.RV)
	}
}

func TestUserRoundTrip(t *testing.T) {
	s := openTest(t)
	alice := &object.User{Name: "alice", Role: object.RoleCU, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		FailedLogins: 3, Locked: true, Generation: 1<<63 + 5, Created: 1700000000, MAC: []byte{0xde, 0xad}}
	admin := &object.User{Name: "admin", Role: object.RoleCO, PasswordHash: "x", Generation: 1, Created: -1}
	update(t, s, 0, func(tx state.Tx) error {
		if err := tx.PutUser(alice); err != nil {
			return err
		}
		if err := tx.PutUser(admin); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if all, err := tx.Users(); err != nil || len(all) != 2 || all[0].Name != "admin" || all[1].Name != "alice" {
			t.Errorf("tx.Users = %v, %v", all, err)
		}
		got, err := tx.User("alice")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, alice) {
			t.Errorf("tx.User = %+v, want %+v", got, alice)
		}
		_, err = tx.User("bob")
		wantNotFound(t, "tx.User(bob)", err)
		return nil
	})
	got, err := s.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, alice) {
		t.Fatalf("User = %+v, want %+v", got, alice)
	}
	all, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !reflect.DeepEqual(all[0], admin) || !reflect.DeepEqual(all[1], alice) {
		t.Fatalf("Users = %+v, want [admin alice]", all)
	}
	_, err = s.User("bob")
	wantNotFound(t, "User(bob)", err)

	// Replace, then delete.
	alice2 := *alice
	alice2.Locked, alice2.FailedLogins, alice2.Generation = false, 0, 6
	update(t, s, 0, func(tx state.Tx) error { return tx.PutUser(&alice2) })
	if got, _ := s.User("alice"); !reflect.DeepEqual(got, &alice2) {
		t.Fatalf("after replace User = %+v, want %+v", got, &alice2)
	}
	update(t, s, 0, func(tx state.Tx) error { return tx.DeleteUser("alice") })
	_, err = s.User("alice")
	wantNotFound(t, "User after delete", err)
	err = s.Update(0, func(tx state.Tx) error { return tx.DeleteUser("alice") })
	wantNotFound(t, "DeleteUser of missing user", err)
	if err := s.Update(0, func(tx state.Tx) error { return tx.PutUser(&object.User{}) }); err == nil {
		t.Fatal("PutUser with empty name succeeded")
	}
	if all, _ := s.Users(); len(all) != 1 || all[0].Name != "admin" {
		t.Fatalf("Users = %+v, want [admin]", all)
	}
}

func TestObjectRoundTrip(t *testing.T) {
	s := openTest(t)
	key := newObject(42, "alice", cko_SECRET_KEY, ckk_AES, []byte("my key"), []byte{1, 2}, []byte("sealed bytes"), "bob", "carol")
	key.Attrs[0x80000001] = []byte{} // an empty vendor attribute survives
	key.MAC = []byte("mac of 42")
	pub := newObject(7, "alice", cko_PUBLIC_KEY, ckk_RSA, nil, nil, nil)
	empty := newObject(8, "bob", cko_DATA, -1, []byte{}, []byte{}, []byte{})
	update(t, s, 0, func(tx state.Tx) error {
		for _, o := range []*object.Object{key, pub, empty} {
			if err := tx.PutObject(o); err != nil {
				return err
			}
		}
		got, err := tx.Object(42)
		if err != nil {
			return err
		}
		if len(got.SharedWith) != 2 {
			t.Errorf("tx.Object shares = %v", got.SharedWith)
		}
		return nil
	})

	got, err := s.Object(42)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, key) {
		t.Fatalf("Object(42) = %+v\nwant %+v", got, key)
	}
	if got, _ := s.Object(7); got.Sealed != nil || got.SharedWith != nil || got.MAC != nil || !reflect.DeepEqual(got.Attrs, pub.Attrs) {
		t.Fatalf("Object(7) = %+v, want no sealed bytes, no shares, no MAC", got)
	}
	if got, _ := s.Object(8); got.Sealed == nil || len(got.Sealed) != 0 {
		t.Fatalf("Object(8).Sealed = %#v, want empty non-nil", got.Sealed)
	}
	_, err = s.Object(43)
	wantNotFound(t, "Object(43)", err)
	_, err = s.Object(1 << 63)
	wantNotFound(t, "Object(2^63)", err)

	// Replace: new attrs, index columns, sealed bytes and shares.
	key2 := newObject(42, "alice", cko_PRIVATE_KEY, ckk_RSA, []byte("renamed"), []byte{3}, []byte("other"), "dave")
	key2.MAC = []byte("new mac")
	update(t, s, 0, func(tx state.Tx) error { return tx.PutObject(key2) })
	if got, _ := s.Object(42); !reflect.DeepEqual(got, key2) {
		t.Fatalf("after replace Object(42) = %+v\nwant %+v", got, key2)
	}
	if got, _ := s.Find(state.Query{Label: []byte("my key")}); len(got) != 0 {
		t.Fatalf("old label still found: %v", ids(got))
	}
	if got, _ := s.Find(state.Query{Label: []byte("renamed"), ID: []byte{3}, Class: u64(cko_PRIVATE_KEY)}); !reflect.DeepEqual(ids(got), []uint64{42}) {
		t.Fatalf("new label: %v", ids(got))
	}
	if got, _ := s.Find(state.Query{VisibleTo: "bob"}); !reflect.DeepEqual(ids(got), []uint64{8}) {
		t.Fatalf("bob still sees %v", ids(got))
	}

	// Delete removes the shares too.
	update(t, s, 0, func(tx state.Tx) error { return tx.DeleteObject(42) })
	_, err = s.Object(42)
	wantNotFound(t, "Object after delete", err)
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM shares`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("shares left after delete: %d (%v)", n, err)
	}
	err = s.Update(0, func(tx state.Tx) error { return tx.DeleteObject(42) })
	wantNotFound(t, "DeleteObject of missing object", err)

	for _, bad := range []*object.Object{
		newObject(0, "alice", cko_DATA, -1, nil, nil, nil),
		newObject(1<<63, "alice", cko_DATA, -1, nil, nil, nil),
		newObject(9, "", cko_DATA, -1, nil, nil, nil),
		newObject(9, "alice", cko_DATA, -1, nil, nil, nil, ""),
		newObject(9, "alice", cko_DATA, -1, nil, nil, nil, "carol", "bob"), // unsorted
		newObject(9, "alice", cko_DATA, -1, nil, nil, nil, "bob", "bob"),   // duplicate
	} {
		if err := s.Update(0, func(tx state.Tx) error { return tx.PutObject(bad) }); err == nil {
			t.Errorf("PutObject(id %d, owner %q, shares %q) succeeded", bad.ID, bad.Owner, bad.SharedWith)
		}
	}
}

func TestCountOwnedAndRemoveShares(t *testing.T) {
	s := openTest(t)
	update(t, s, 0, func(tx state.Tx) error {
		for i, owner := range []string{"alice", "alice", "bob", "alice"} {
			if err := tx.PutObject(newObject(uint64(i+1), owner, cko_DATA, -1, nil, nil, nil, "carol", "dave")); err != nil {
				return err
			}
		}
		for owner, want := range map[string]int{"alice": 3, "bob": 1, "carol": 0} {
			if n, err := tx.CountOwned(owner); err != nil || n != want {
				t.Errorf("CountOwned(%s) = %d, %v; want %d", owner, n, err, want)
			}
		}
		return tx.RemoveSharesWith("carol")
	})
	got, err := s.Find(state.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		if !reflect.DeepEqual(o.SharedWith, []string{"dave"}) {
			t.Fatalf("object %d shared with %v, want [dave]", o.ID, o.SharedWith)
		}
	}
	if got, _ := s.Find(state.Query{VisibleTo: "carol"}); len(got) != 0 {
		t.Fatalf("carol still sees %v", ids(got))
	}
}

func TestMetaRoundTrip(t *testing.T) {
	s := openTest(t)
	update(t, s, 0, func(tx state.Tx) error {
		if err := tx.PutMeta("a", []byte{0, 1, 2}); err != nil {
			return err
		}
		if err := tx.PutMeta("empty", nil); err != nil {
			return err
		}
		if v, err := tx.Meta("a"); err != nil || !bytes.Equal(v, []byte{0, 1, 2}) {
			t.Errorf("tx.Meta(a) = %x, %v", v, err)
		}
		_, err := tx.Meta("b")
		wantNotFound(t, "tx.Meta(b)", err)
		return nil
	})
	if v, err := s.Meta("a"); err != nil || !bytes.Equal(v, []byte{0, 1, 2}) {
		t.Fatalf("Meta(a) = %x, %v", v, err)
	}
	if v, err := s.Meta("empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Meta(empty) = %#v, %v; want empty non-nil", v, err)
	}
	_, err := s.Meta("b")
	wantNotFound(t, "Meta(b)", err)
	update(t, s, 0, func(tx state.Tx) error { return tx.PutMeta("a", []byte("new")) })
	if v, _ := s.Meta("a"); string(v) != "new" {
		t.Fatalf("Meta(a) after overwrite = %q", v)
	}
}

// findFixture: IDs are inserted out of order to check ordering.
//
//	900 alice secret AES  label "k1" id 01  shared with bob
//	  3 alice data        no label, no id
//	 50 alice public RSA  label "k2" id 02
//	 12 bob   secret AES  label "k1" id 01  shared with alice, carol
//	700 carol private RSA label "k1" id ""  (explicit empty CKA_ID)
//	 60 bob   data        label ""          (explicit empty label)
func findFixture(t *testing.T) *Store {
	s := openTest(t)
	update(t, s, 0, func(tx state.Tx) error {
		for _, o := range []*object.Object{
			newObject(900, "alice", cko_SECRET_KEY, ckk_AES, []byte("k1"), []byte{1}, []byte("s"), "bob"),
			newObject(3, "alice", cko_DATA, -1, nil, nil, nil),
			newObject(50, "alice", cko_PUBLIC_KEY, ckk_RSA, []byte("k2"), []byte{2}, nil),
			newObject(12, "bob", cko_SECRET_KEY, ckk_AES, []byte("k1"), []byte{1}, []byte("s"), "alice", "carol"),
			newObject(700, "carol", cko_PRIVATE_KEY, ckk_RSA, []byte("k1"), []byte{}, []byte("s")),
			newObject(60, "bob", cko_DATA, -1, []byte{}, nil, nil),
		} {
			if err := tx.PutObject(o); err != nil {
				return err
			}
		}
		return nil
	})
	return s
}

func TestFind(t *testing.T) {
	s := findFixture(t)
	for _, c := range []struct {
		name string
		q    state.Query
		want []uint64
	}{
		{"all", state.Query{}, []uint64{3, 12, 50, 60, 700, 900}},
		{"visible to alice", state.Query{VisibleTo: "alice"}, []uint64{3, 12, 50, 900}},
		{"visible to bob", state.Query{VisibleTo: "bob"}, []uint64{12, 60, 900}},
		{"visible to carol", state.Query{VisibleTo: "carol"}, []uint64{12, 700}},
		{"visible to nobody", state.Query{VisibleTo: "zed"}, []uint64{}},
		{"owner alice", state.Query{Owner: "alice"}, []uint64{3, 50, 900}},
		{"owner bob visible to alice", state.Query{Owner: "bob", VisibleTo: "alice"}, []uint64{12}},
		{"owner alice visible to alice", state.Query{Owner: "alice", VisibleTo: "alice"}, []uint64{3, 50, 900}},
		{"owner carol visible to alice", state.Query{Owner: "carol", VisibleTo: "alice"}, []uint64{}},
		{"label k1", state.Query{Label: []byte("k1")}, []uint64{12, 700, 900}},
		{"label k1 visible to alice", state.Query{Label: []byte("k1"), VisibleTo: "alice"}, []uint64{12, 900}},
		{"label k1 visible to carol", state.Query{Label: []byte("k1"), VisibleTo: "carol"}, []uint64{12, 700}},
		{"empty label", state.Query{Label: []byte{}}, []uint64{3, 60}},
		{"empty label visible to bob", state.Query{Label: []byte{}, VisibleTo: "bob"}, []uint64{60}},
		{"missing label", state.Query{Label: []byte("nope")}, []uint64{}},
		{"id 01", state.Query{ID: []byte{1}}, []uint64{12, 900}},
		{"id 01 visible to carol", state.Query{ID: []byte{1}, VisibleTo: "carol"}, []uint64{12}},
		{"empty id", state.Query{ID: []byte{}}, []uint64{3, 60, 700}},
		{"class secret", state.Query{Class: u64(cko_SECRET_KEY)}, []uint64{12, 900}},
		{"class data", state.Query{Class: u64(cko_DATA)}, []uint64{3, 60}},
		{"class secret visible to carol", state.Query{Class: u64(cko_SECRET_KEY), VisibleTo: "carol"}, []uint64{12}},
		{"key type RSA", state.Query{KeyType: u64(ckk_RSA)}, []uint64{50, 700}},
		{"not a key", state.Query{KeyType: u64(^uint64(0))}, []uint64{3, 60}},
		{"class+key type", state.Query{Class: u64(cko_SECRET_KEY), KeyType: u64(ckk_AES), VisibleTo: "bob"}, []uint64{12, 900}},
		{"label+id+class", state.Query{Label: []byte("k1"), ID: []byte{1}, Class: u64(cko_SECRET_KEY), Owner: "bob"}, []uint64{12}},
		{"limit", state.Query{Limit: 2}, []uint64{3, 12}},
		{"limit visible", state.Query{VisibleTo: "alice", Limit: 3}, []uint64{3, 12, 50}},
		{"limit label visible", state.Query{Label: []byte("k1"), VisibleTo: "alice", Limit: 1}, []uint64{12}},
		{"limit above count", state.Query{Owner: "bob", Limit: 10}, []uint64{12, 60}},
	} {
		got, err := s.Find(c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(ids(got), c.want) {
			t.Errorf("%s: got %v, want %v", c.name, ids(got), c.want)
		}
	}

	// Find fills every field, shares sorted.
	got, err := s.Find(state.Query{VisibleTo: "carol", ID: []byte{1}})
	if err != nil || len(got) != 1 {
		t.Fatalf("Find: %v, %v", ids(got), err)
	}
	want := newObject(12, "bob", cko_SECRET_KEY, ckk_AES, []byte("k1"), []byte{1}, []byte("s"), "alice", "carol")
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("Find returned %+v\nwant %+v", got[0], want)
	}
}

var errRefused = errors.New("refused by the engine")

func TestUpdateErrorRollsBackButRecordsIndex(t *testing.T) {
	s := openTest(t)
	update(t, s, 1, func(tx state.Tx) error {
		if err := tx.PutUser(&object.User{Name: "alice", Role: object.RoleCU}); err != nil {
			return err
		}
		return tx.PutObject(newObject(5, "alice", cko_DATA, -1, []byte("x"), nil, nil, "bob"))
	})
	err := s.Update(2, func(tx state.Tx) error {
		if err := tx.PutUser(&object.User{Name: "bob", Role: object.RoleCU}); err != nil {
			return err
		}
		if err := tx.DeleteUser("alice"); err != nil {
			return err
		}
		if err := tx.PutObject(newObject(5, "alice", cko_DATA, -1, []byte("changed"), nil, nil)); err != nil {
			return err
		}
		if err := tx.PutMeta("m", []byte("v")); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errRefused)
	})
	if !errors.Is(err, errRefused) || err.Error() != "wrapped: "+errRefused.Error() {
		t.Fatalf("Update returned %v, want fn's error unchanged", err)
	}
	if idx, err := s.AppliedIndex(); err != nil || idx != 2 {
		t.Fatalf("AppliedIndex = %d, %v; want 2", idx, err)
	}
	if _, err := s.User("alice"); err != nil {
		t.Fatalf("alice gone after refused command: %v", err)
	}
	if _, err := s.User("bob"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("bob written by refused command: %v", err)
	}
	if o, err := s.Object(5); err != nil || string(o.Attrs[cka_LABEL]) != "x" || !reflect.DeepEqual(o.SharedWith, []string{"bob"}) {
		t.Fatalf("object changed by refused command: %+v, %v", o, err)
	}
	if _, err := s.Meta("m"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("meta written by refused command: %v", err)
	}
	// Store errors returned by fn are refusals too.
	err = s.Update(3, func(tx state.Tx) error {
		if err := tx.PutMeta("m", []byte("v")); err != nil {
			return err
		}
		return tx.DeleteObject(99)
	})
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Update(3) = %v, want not found", err)
	}
	if idx, _ := s.AppliedIndex(); idx != 3 {
		t.Fatalf("AppliedIndex = %d, want 3", idx)
	}
	if _, err := s.Meta("m"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("meta written by refused command: %v", err)
	}
}

func TestUpdateReplayRefused(t *testing.T) {
	s := openTest(t)
	if idx, err := s.AppliedIndex(); err != nil || idx != 0 {
		t.Fatalf("fresh AppliedIndex = %d, %v", idx, err)
	}
	update(t, s, 5, func(tx state.Tx) error { return tx.PutMeta("k", []byte("5")) })
	for _, idx := range []uint64{5, 4, 1} {
		ran := false
		err := s.Update(idx, func(tx state.Tx) error { ran = true; return tx.PutMeta("k", []byte("old")) })
		if !errors.Is(err, ErrReplay) {
			t.Fatalf("Update(%d) after 5 = %v, want ErrReplay", idx, err)
		}
		if ran {
			t.Fatalf("Update(%d) ran fn on replay", idx)
		}
	}
	// Index 0 is neither checked nor recorded.
	update(t, s, 0, func(tx state.Tx) error { return tx.PutMeta("k", []byte("0")) })
	if idx, _ := s.AppliedIndex(); idx != 5 {
		t.Fatalf("AppliedIndex after index 0 = %d, want 5", idx)
	}
	update(t, s, 9, func(tx state.Tx) error { return nil }) // gaps are fine
	if idx, _ := s.AppliedIndex(); idx != 9 {
		t.Fatalf("AppliedIndex = %d, want 9", idx)
	}
	if v, _ := s.Meta("k"); string(v) != "0" {
		t.Fatalf("Meta(k) = %q, want 0", v)
	}
	if err := s.Update(1<<63, func(tx state.Tx) error { return nil }); err == nil {
		t.Fatal("Update(2^63) succeeded")
	}
}

func TestUpdatePanicWritesNothing(t *testing.T) {
	s := openTest(t)
	update(t, s, 1, func(tx state.Tx) error { return nil })
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate")
			}
		}()
		s.Update(2, func(tx state.Tx) error {
			tx.PutMeta("k", []byte("v"))
			panic("boom")
		})
	}()
	if idx, _ := s.AppliedIndex(); idx != 1 {
		t.Fatalf("AppliedIndex after panic = %d, want 1", idx)
	}
	if _, err := s.Meta("k"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("meta written by panicking command: %v", err)
	}
	update(t, s, 2, func(tx state.Tx) error { return tx.PutMeta("k", []byte("v")) })
}

func TestTxUnusableAfterUpdate(t *testing.T) {
	s := openTest(t)
	var leaked state.Tx
	update(t, s, 0, func(tx state.Tx) error { leaked = tx; return nil })
	if err := leaked.PutMeta("k", nil); err == nil {
		t.Fatal("PutMeta on a finished tx succeeded")
	}
	if _, err := leaked.User("a"); err == nil || errors.Is(err, state.ErrNotFound) {
		t.Fatalf("User on a finished tx: %v", err)
	}
	if _, err := leaked.CountOwned("a"); err == nil {
		t.Fatal("CountOwned on a finished tx succeeded")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	for _, opts := range []Options{{}, {Sync: true}} {
		path := filepath.Join(t.TempDir(), "tokens.db")
		s, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if s.Path() != path {
			t.Fatalf("Path() = %q, want %q", s.Path(), path)
		}
		user := &object.User{Name: "alice", Role: object.RoleCU, PasswordHash: "h", Generation: 3, Created: 17}
		obj := newObject(77, "alice", cko_SECRET_KEY, ckk_AES, []byte("l"), []byte("i"), []byte("sealed"), "bob")
		update(t, s, 10, func(tx state.Tx) error { return tx.PutUser(user) })
		update(t, s, 11, func(tx state.Tx) error { return tx.PutObject(obj) })
		update(t, s, 12, func(tx state.Tx) error { return tx.PutMeta("epoch", []byte{9}) })
		s.Update(13, func(tx state.Tx) error { return errRefused })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := s.User("alice"); err == nil {
			t.Fatal("read after Close succeeded")
		}
		if err := s.Update(14, func(tx state.Tx) error { return nil }); err == nil {
			t.Fatal("Update after Close succeeded")
		}

		s, err = Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.User("alice"); err != nil || !reflect.DeepEqual(got, user) {
			t.Fatalf("User after reopen = %+v, %v", got, err)
		}
		if got, err := s.Object(77); err != nil || !reflect.DeepEqual(got, obj) {
			t.Fatalf("Object after reopen = %+v, %v", got, err)
		}
		if got, err := s.Find(state.Query{VisibleTo: "bob", Label: []byte("l")}); err != nil || len(got) != 1 {
			t.Fatalf("Find after reopen = %v, %v", ids(got), err)
		}
		if v, err := s.Meta("epoch"); err != nil || !bytes.Equal(v, []byte{9}) {
			t.Fatalf("Meta after reopen = %x, %v", v, err)
		}
		if idx, err := s.AppliedIndex(); err != nil || idx != 13 {
			t.Fatalf("AppliedIndex after reopen = %d, %v; want 13", idx, err)
		}
		if err := s.Update(13, func(tx state.Tx) error { return nil }); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay after reopen: %v", err)
		}
		s.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, 1, func(tx state.Tx) error { return tx.PutMeta("k", []byte("v")) })
	s.Close()

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	future := SchemaVersion() + 1
	if _, err := raw.Exec(`UPDATE schema_version SET version = ?`, future); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	_, err = Open(path, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema = %v, want ErrNewerSchema", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(future)) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error does not say which version: %v", err)
	}

	// Nothing was changed.
	raw, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v int
	var val []byte
	if err := raw.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != future {
		t.Fatalf("schema version now %d, %v", v, err)
	}
	if err := raw.QueryRow(`SELECT value FROM meta WHERE key = 'k'`).Scan(&val); err != nil || string(val) != "v" {
		t.Fatalf("data after refused open: %q, %v", val, err)
	}
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "no", "such", "dir", "tokens.db")
	if _, err := Open(missing, Options{}); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !os.IsNotExist(err) {
		t.Fatalf("Open created the directory: %v", err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open of an empty path succeeded")
	}

	text := filepath.Join(dir, "notes.txt")
	content := bytes.Repeat([]byte("not a database, keep me\n"), 200)
	if err := os.WriteFile(text, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(text, Options{}); err == nil {
		t.Fatal("Open of a text file succeeded")
	}
	if got, _ := os.ReadFile(text); !bytes.Equal(got, content) {
		t.Fatal("Open changed a text file")
	}

	foreign := filepath.Join(dir, "other.db")
	raw, err := sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE users (x); INSERT INTO users VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	before, _ := os.ReadFile(foreign)
	if _, err := Open(foreign, Options{}); !errors.Is(err, ErrForeignDatabase) {
		t.Fatalf("Open of a foreign database = %v, want ErrForeignDatabase", err)
	}
	if after, _ := os.ReadFile(foreign); !bytes.Equal(before, after) {
		t.Fatal("Open changed a foreign database")
	}
}

func TestExists(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	if Exists(path) {
		t.Fatal("Exists before Open")
	}
	if Exists(dir) {
		t.Fatal("Exists(directory)")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !Exists(path) {
		t.Fatal("!Exists after Open")
	}
}

// TestReadsDuringUpdate checks that reads are served, from the last
// committed state, while an Update holds the write transaction.
func TestReadsDuringUpdate(t *testing.T) {
	s := openTest(t)
	update(t, s, 1, func(tx state.Tx) error { return tx.PutMeta("k", []byte("committed")) })
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.Update(2, func(tx state.Tx) error {
			if err := tx.PutMeta("k", []byte("uncommitted")); err != nil {
				return err
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	read := make(chan string)
	go func() {
		v, err := s.Meta("k")
		if err != nil {
			read <- err.Error()
			return
		}
		read <- string(v)
	}()
	select {
	case v := <-read:
		if v != "committed" {
			t.Errorf("read during Update = %q, want committed", v)
		}
	case <-time.After(5 * time.Second):
		t.Error("read blocked by an open Update")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Meta("k"); string(v) != "uncommitted" {
		t.Fatalf("after commit Meta = %q", v)
	}
}

// TestConcurrentReadersAndWriters runs readers against a stream of Updates
// (run with -race). Each Update i adds object i and sets applied index i, so
// a reader that saw applied index a must then see at least a objects.
func TestConcurrentReadersAndWriters(t *testing.T) {
	s := openTest(t)
	const writes = 150
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for r := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for !stop.Load() {
				a, err := s.AppliedIndex()
				if err != nil {
					errs <- err
					return
				}
				if a < last {
					errs <- fmt.Errorf("applied index went back from %d to %d", last, a)
					return
				}
				last = a
				all, err := s.Find(state.Query{VisibleTo: "reader"})
				if err != nil {
					errs <- err
					return
				}
				if uint64(len(all)) < a {
					errs <- fmt.Errorf("applied index %d but %d objects", a, len(all))
					return
				}
				if a > 0 {
					o, err := s.Object(a)
					if err != nil || !reflect.DeepEqual(o.SharedWith, []string{"reader"}) {
						errs <- fmt.Errorf("Object(%d) = %v, %v", a, o, err)
						return
					}
				}
				if r%2 == 0 {
					if _, err := s.Find(state.Query{Label: []byte(fmt.Sprint(a)), VisibleTo: "reader"}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	// Concurrent writers with index 0 are serialised, not lost.
	var wwg sync.WaitGroup
	for w := range 3 {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := range 20 {
				err := s.Update(0, func(tx state.Tx) error {
					v, err := tx.Meta("counter")
					if errors.Is(err, state.ErrNotFound) {
						v, err = []byte{0}, nil
					}
					if err != nil {
						return err
					}
					return tx.PutMeta("counter", []byte{v[0] + 1})
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d, %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	for i := uint64(1); i <= writes; i++ {
		update(t, s, i, func(tx state.Tx) error {
			return tx.PutObject(newObject(i, "owner", cko_DATA, -1, []byte(fmt.Sprint(i)), nil, nil, "reader"))
		})
	}
	wwg.Wait()
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v, err := s.Meta("counter"); err != nil || v[0] != 60 {
		t.Fatalf("counter = %v, %v; want 60", v, err)
	}
	if all, _ := s.Find(state.Query{}); len(all) != writes {
		t.Fatalf("%d objects, want %d", len(all), writes)
	}
}

func TestConnectionSettings(t *testing.T) {
	for _, c := range []struct {
		opts Options
		sync int
	}{{Options{}, 1}, {Options{Sync: true}, 2}} {
		// An awkward file name checks the URI escaping too.
		path := filepath.Join(t.TempDir(), "a b?c#d%20e.db")
		s, err := Open(path, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var syncMode, fk int
		if err := s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v", mode, err)
		}
		if err := s.w.QueryRow(`PRAGMA synchronous`).Scan(&syncMode); err != nil || syncMode != c.sync {
			t.Errorf("%+v: synchronous = %d, %v; want %d", c.opts, syncMode, err, c.sync)
		}
		if err := s.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d, %v", fk, err)
		}
		var temp int
		if err := s.w.QueryRow(`PRAGMA temp_store`).Scan(&temp); err != nil || temp != 2 {
			t.Errorf("temp_store = %d, %v; want 2 (memory)", temp, err)
		}
		if _, err := s.r.Exec(`INSERT INTO meta (key, value) VALUES ('x', x'')`); err == nil {
			t.Error("the read pool can write")
		}
		update(t, s, 1, func(tx state.Tx) error { return tx.PutMeta("k", []byte("v")) })
		for _, suffix := range []string{"", "-wal", "-shm"} {
			fi, err := os.Stat(path + suffix)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", path+suffix, fi.Mode().Perm())
			}
		}
		s.Close()
		if !Exists(path) {
			t.Fatalf("no file at %q", path)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("files after Close: %q, want only the database", names)
		}
	}
}
