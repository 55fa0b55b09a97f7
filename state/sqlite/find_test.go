package sqlite

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/state"
)

// queryPlan returns the EXPLAIN QUERY PLAN details of a Find.
func queryPlan(t *testing.T, s *Store, q state.Query) []string {
	t.Helper()
	query, args := buildFind(q)
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestFindUsesIndexes checks with EXPLAIN QUERY PLAN that lookups never scan
// a table or a whole index, and use the indexes meant for them.
func TestFindUsesIndexes(t *testing.T) {
	s := findFixture(t)
	for _, c := range []struct {
		name string
		q    state.Query
		want []string // substrings that must appear in the plan
	}{
		{"label visible", state.Query{Label: []byte("k1"), VisibleTo: "alice"},
			[]string{"objects_owner_label (owner=? AND label=?)", "objects_label (label=?)", "s USING PRIMARY KEY (object_id=? AND user=?)"}},
		{"empty label visible", state.Query{Label: []byte{}, VisibleTo: "alice", Limit: 1},
			[]string{"objects_owner_label (owner=? AND label=?)", "objects_label (label=?)"}},
		{"id visible", state.Query{ID: []byte{1}, VisibleTo: "alice"},
			[]string{"objects_owner_ckaid (owner=? AND ckaid=?)", "objects_ckaid (ckaid=?)", "s USING PRIMARY KEY (object_id=? AND user=?)"}},
		{"label and id visible", state.Query{Label: []byte("k1"), ID: []byte{1}, VisibleTo: "alice"},
			[]string{"SEARCH o USING INDEX objects_owner_", "SEARCH o USING INDEX objects_"}},
		{"class visible", state.Query{Class: u64(cko_SECRET_KEY), VisibleTo: "alice"},
			[]string{"objects_owner_class (owner=? AND class=?)", "shares_user (user=?)", "INTEGER PRIMARY KEY (rowid=?)"}},
		{"class and key type visible", state.Query{Class: u64(cko_SECRET_KEY), KeyType: u64(ckk_AES), VisibleTo: "alice"},
			[]string{"objects_owner_class (owner=? AND class=? AND key_type=?)", "shares_user (user=?)"}},
		{"visible", state.Query{VisibleTo: "alice"},
			[]string{"(owner=?)", "shares_user (user=?)"}},
		{"owner", state.Query{Owner: "alice"}, []string{"(owner=?)"}},
		{"label", state.Query{Label: []byte("k1")}, []string{"objects_label (label=?)"}},
		{"id", state.Query{ID: []byte{1}}, []string{"objects_ckaid (ckaid=?)"}},
		{"class", state.Query{Class: u64(cko_SECRET_KEY)}, []string{"objects_class (class=?)"}},
		{"class and key type", state.Query{Class: u64(cko_SECRET_KEY), KeyType: u64(ckk_AES)}, []string{"objects_class (class=? AND key_type=?)"}},
		{"owner and label", state.Query{Owner: "bob", Label: []byte("k1")}, []string{"objects_owner_label (owner=? AND label=?)"}},
	} {
		plan := queryPlan(t, s, c.q)
		text := strings.Join(plan, "\n")
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN ") {
				t.Errorf("%s: plan scans: %q\n%s", c.name, line, text)
			}
		}
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: plan lacks %q:\n%s", c.name, w, text)
			}
		}
		// The plan is the one Find runs: same SQL, same answer as a filter
		// over everything.
		if _, err := s.Find(c.q); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	// Listing everything is the one query that must scan.
	if text := strings.Join(queryPlan(t, s, state.Query{}), "\n"); !strings.Contains(text, "SCAN o") {
		t.Errorf("plan of an empty query:\n%s", text)
	}
}

// The benchmark store: benchObjects objects, owned in turn by u0..u9, each
// with a unique label and CKA_ID; every 50th is shared with the next user.
// Object benchCertID is the only certificate.
const (
	benchObjects = 100_000
	benchUsers   = 10
	benchCertID  = 33_333 // owned by u3
)

var bench struct {
	once sync.Once
	dir  string
	s    *Store
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.s != nil {
		bench.s.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchOwner(i uint64) string { return fmt.Sprintf("u%d", i%benchUsers) }
func benchLabel(i uint64) []byte { return fmt.Appendf(nil, "key-%06d", i) }
func benchCKAID(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i*2654435761) }

func benchStore(b *testing.B) *Store {
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "tokens-sqlite-bench")
		if bench.err != nil {
			return
		}
		bench.s, bench.err = Open(filepath.Join(bench.dir, "tokens.db"), Options{})
		if bench.err != nil {
			return
		}
		sealed := make([]byte, 60)
		bench.err = bench.s.Update(1, func(tx state.Tx) error {
			for i := uint64(1); i <= benchObjects; i++ {
				class, kt := uint64(cko_SECRET_KEY), int64(ckk_AES)
				switch {
				case i == benchCertID:
					class, kt = cko_CERTIFICATE, -1
				case i%3 == 1:
					class, kt = cko_PRIVATE_KEY, ckk_RSA
				case i%3 == 2:
					class, kt = cko_PUBLIC_KEY, ckk_RSA
				}
				var shares []string
				if i%50 == 0 {
					shares = []string{benchOwner(i + 1)}
				}
				o := newObject(i, benchOwner(i), class, kt, benchLabel(i), benchCKAID(i), sealed, shares...)
				o.MAC = sealed[:32]
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.s
}

func benchFind(b *testing.B, q state.Query, want uint64) {
	s := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Find(q)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != want {
			b.Fatalf("Find(%+v) = %v, want [%d]", q, ids(got), want)
		}
	}
}

// BenchmarkFindByLabel100k finds one of the caller's own objects by label.
func BenchmarkFindByLabel100k(b *testing.B) {
	const id = 77_777
	benchFind(b, state.Query{VisibleTo: benchOwner(id), Label: benchLabel(id)}, id)
}

// BenchmarkFindByID100k finds an object shared with the caller by CKA_ID.
func BenchmarkFindByID100k(b *testing.B) {
	const id = 50_000
	benchFind(b, state.Query{VisibleTo: benchOwner(id + 1), ID: benchCKAID(id)}, id)
}

// BenchmarkFindByClass100k finds the one certificate among 100,000 keys.
func BenchmarkFindByClass100k(b *testing.B) {
	benchFind(b, state.Query{VisibleTo: benchOwner(benchCertID), Class: u64(cko_CERTIFICATE)}, benchCertID)
}
