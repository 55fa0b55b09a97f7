package sqlite

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/snapshot"
	"github.com/openhsm/openhsm/state"
)

// populate fills s with users, objects (with and without sealed bytes,
// MACs, key types, labels), shares and meta, n of each kind and more, and
// records applied index 10.
func populate(t testing.TB, s *Store, n int) {
	t.Helper()
	update(t, s, 10, func(tx state.Tx) error {
		for i := range n {
			u := &object.User{Name: fmt.Sprintf("user-%03d", i), Role: object.RoleCU, PasswordHash: fmt.Sprintf("$argon2id$hash-%d", i),
				FailedLogins: i % 5, Locked: i%3 == 0, Generation: uint64(i) << 60, Created: int64(1700000000 + i), Number: uint64(i + 1)}
			if i%4 != 1 {
				u.MAC = []byte(fmt.Sprintf("user-mac-%d", i))
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutUser(&object.User{Name: "admin", Role: object.RoleCO, PasswordHash: "x", Created: -5, Generation: 1<<64 - 1}); err != nil {
			return err
		}
		for i := range n {
			owner := fmt.Sprintf("user-%03d", i%max(1, n/2))
			var shares []string
			for j := range i % 4 {
				shares = append(shares, fmt.Sprintf("user-%03d", (i+j+1)%n))
			}
			shares = sortedUnique(shares)
			var o *object.Object
			switch i % 4 {
			case 0:
				o = newObject(uint64(1000+i), owner, cko_SECRET_KEY, ckk_AES, []byte(fmt.Sprintf("key %d", i)), []byte{byte(i)}, []byte(fmt.Sprintf("sealed-%d", i)), shares...)
			case 1:
				o = newObject(uint64(1000+i), owner, cko_PUBLIC_KEY, ckk_RSA, nil, nil, nil, shares...)
			case 2:
				o = newObject(uint64(1000+i), owner, cko_DATA, -1, []byte{}, []byte{}, []byte{}, shares...)
			case 3:
				o = newObject(uint64(1<<62+i), owner, cko_PRIVATE_KEY, ckk_RSA, []byte("same label"), nil, []byte{0, 1, 2}, shares...)
				o.Attrs[0x80000001] = []byte{}
			}
			if i%5 != 2 {
				o.MAC = []byte(fmt.Sprintf("obj-mac-%d", i))
			}
			if err := tx.PutObject(o); err != nil {
				return err
			}
		}
		for i := range n {
			if err := tx.PutMeta(fmt.Sprintf("meta-%d", i), []byte(fmt.Sprintf("value %d", i))); err != nil {
				return err
			}
		}
		if err := tx.PutMeta("empty", []byte{}); err != nil {
			return err
		}
		// Audit records: the store keeps them as given (the chain is the
		// machine's business), so any field values do here.
		var recs []*audit.Record
		for i := range n {
			recs = append(recs, &audit.Record{Seq: uint64(i + 1), Prev: []byte{byte(i)}, Index: 10, Time: int64(-i),
				Kind: audit.KindUse, Op: "sign", User: fmt.Sprintf("user-%03d", i), Cert: "ab", Node: "n1",
				Object: uint64(1<<63 - 1 - i), Subject: "", Result: uint64(i) << 40, Count: 1 << 62, MAC: []byte(fmt.Sprintf("mac-%d", i))})
			if i%3 == 1 {
				// KMS records carry their detail; one of them an empty one.
				r := recs[len(recs)-1]
				r.Kind, r.Op, r.Subject, r.Object = audit.KindKMS, "Encrypt", "arn:aws:kms:eu-west-1:111122223333:key/k", 0
				if i != 1 {
					r.Detail = fmt.Sprintf(`{"context_keys":["a","é"],"request_id":"r-%d"}`, i)
				}
			}
		}
		if err := tx.AppendAudit(recs, []byte("head")); err != nil {
			return err
		}
		// Request-ID records, the oldest two dropped, so that the
		// numbers start above 1.
		for i := range n + 2 {
			if _, err := tx.PutRequest(fmt.Sprintf("user-%03d", i%max(1, n)), fmt.Sprintf("%032x", i), int64(1700000000+i%3),
				[]byte(fmt.Sprintf(`{"op":"create_objects","time":%d}`, i))); err != nil {
				return err
			}
		}
		if err := tx.DeleteRequestsThrough(2); err != nil {
			return err
		}
		return tx.PutMeta(state.MetaDomainKey, []byte(`{"format":1}`))
	})
}

func sortedUnique(ss []string) []string {
	m := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !m[s] {
			m[s] = true
			out = append(out, s)
		}
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// dumpSQL is one query that returns every row of every table, each value
// with its SQLite type, so that NULL, an empty blob and an empty string all
// differ. It is built once, from the schema.
var dumpSQL struct {
	once sync.Once
	q    string
	err  error
}

func dump(t testing.TB, s *Store) string {
	t.Helper()
	dumpSQL.once.Do(func() {
		var parts []string
		for _, table := range []string{"schema_version", "applied", "meta", "users", "objects", "shares", "audit", "requests"} {
			rows, err := s.r.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
			if err != nil {
				dumpSQL.err = err
				return
			}
			var cols []string
			for rows.Next() {
				var c string
				if err := rows.Scan(&c); err != nil {
					dumpSQL.err = err
					return
				}
				cols = append(cols, fmt.Sprintf("typeof(%q) || ':' || quote(%q)", c, c))
			}
			rows.Close()
			if len(cols) == 0 {
				dumpSQL.err = fmt.Errorf("table %s has no columns", table)
				return
			}
			parts = append(parts, fmt.Sprintf("'== %s' || char(10) || coalesce((SELECT group_concat(line, char(10)) FROM (SELECT %s AS line FROM %s ORDER BY 1)), '')",
				table, strings.Join(cols, " || ' | ' || "), table))
		}
		dumpSQL.q = "SELECT " + strings.Join(parts, " || char(10) || ")
	})
	if dumpSQL.err != nil {
		t.Fatal(dumpSQL.err)
	}
	dumpStmts.Lock()
	st := dumpStmts.m[s]
	if st == nil {
		var err error
		if st, err = s.r.Prepare(dumpSQL.q); err != nil {
			dumpStmts.Unlock()
			t.Fatal(err)
		}
		dumpStmts.m[s] = st
	}
	dumpStmts.Unlock()
	var out string
	if err := st.QueryRow().Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpStmts keeps dumpSQL prepared per store, as the tests call dump often.
var dumpStmts = struct {
	sync.Mutex
	m map[*Store]*sql.Stmt
}{m: map[*Store]*sql.Stmt{}}

func snapshotBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func applied(t testing.TB, s *Store) uint64 {
	t.Helper()
	idx, err := s.AppliedIndex()
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestSnapshotRoundTrip(t *testing.T) {
	src := openTest(t)
	populate(t, src, 12)
	want := dump(t, src)

	sn, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if sn.Index() != 10 {
		t.Fatalf("Index = %d, want 10", sn.Index())
	}
	if u, o := sn.Counts(); u != 13 || o != 12 {
		t.Fatalf("Counts = %d, %d, want 13, 12", u, o)
	}
	var calls [][2]int
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf, func(done, total int) { calls = append(calls, [2]int{done, total}) }); err != nil {
		t.Fatal(err)
	}
	// 13 users, 12 objects, 15 meta rows (with the audit head), 0+1+2+3
	// shares per 4 objects, 12 audit records, 12 request records (14
	// made, the oldest 2 dropped).
	total := 13 + 12 + 15 + 18 + 12 + 12
	if len(calls) == 0 || calls[len(calls)-1] != [2]int{total, total} {
		t.Fatalf("progress calls %v, want the last to be %d of %d", calls, total, total)
	}
	// Writing again gives the same stream.
	var again bytes.Buffer
	if _, err := sn.WriteTo(&again, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("a second WriteTo wrote a different stream")
	}

	for _, tc := range []struct {
		index, want uint64
	}{{77, 77}, {0, 10}} {
		dst := openTest(t)
		if err := dst.Restore(bytes.NewReader(buf.Bytes()), tc.index); err != nil {
			t.Fatal(err)
		}
		if got := applied(t, dst); got != tc.want {
			t.Fatalf("AppliedIndex after Restore(%d) = %d, want %d", tc.index, got, tc.want)
		}
		got := dump(t, dst)
		// The applied index differs by design when one is given.
		if tc.index == 0 && got != want {
			t.Fatalf("restored rows differ:\n%s\nwant\n%s", got, want)
		}
		if tc.index != 0 {
			w := strings.Replace(want, "== applied\ninteger:1 | integer:10\n", "== applied\ninteger:1 | integer:77\n", 1)
			if got != w {
				t.Fatalf("restored rows differ:\n%s\nwant\n%s", got, w)
			}
		}
		// The API sees the same.
		for _, q := range []state.Query{{}, {VisibleTo: "user-003"}, {Label: []byte("same label")}, {Class: u64(cko_SECRET_KEY)}, {Owner: "user-001", ID: []byte{}}} {
			a, err1 := src.Find(q)
			b, err2 := dst.Find(q)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) || len(a) == 0 {
				t.Fatalf("Find(%+v): %d objects (%v) vs %d (%v)", q, len(a), err1, len(b), err2)
			}
		}
		ua, _ := src.Users()
		ub, _ := dst.Users()
		if !reflect.DeepEqual(ua, ub) {
			t.Fatal("Users differ after restore")
		}
		// And a snapshot of the restored store is the same stream (but for
		// the index).
		if tc.index == 0 && !bytes.Equal(snapshotBytes(t, dst), buf.Bytes()) {
			t.Fatal("snapshot of the restored store differs")
		}
	}
}

func TestSnapshotOfEmptyStore(t *testing.T) {
	src := openTest(t)
	stream := snapshotBytes(t, src)
	dst := openTest(t)
	populate(t, dst, 3)
	if err := dst.Restore(bytes.NewReader(stream), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, dst), dump(t, src); got != want {
		t.Fatalf("restored empty store:\n%s\nwant\n%s", got, want)
	}
	if applied(t, dst) != 0 {
		t.Fatal("applied index not 0")
	}
}

// blockingWriter blocks its first Write until release is closed.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.started)
		<-w.release
	})
	return w.buf.Write(p)
}

func TestSnapshotDoesNotBlockOrSeeWrites(t *testing.T) {
	s := openTest(t)
	populate(t, s, 300) // more than one 64 KiB buffer of stream
	want := dump(t, s)

	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	// Writes between Snapshot and WriteTo are not in the stream.
	update(t, s, 11, func(tx state.Tx) error { return tx.DeleteUser("user-000") })

	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := sn.WriteTo(w, nil)
		errc <- err
	}()
	<-w.started
	// WriteTo is stuck in the middle of the stream, its read transaction
	// open; updates still go through, promptly.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(12); i < 62; i++ {
			if err := s.Update(i, func(tx state.Tx) error {
				if err := tx.PutUser(&object.User{Name: fmt.Sprintf("new-%d", i), Role: object.RoleCU, PasswordHash: "h"}); err != nil {
					return err
				}
				if err := tx.DeleteObject(1000 + i); err != nil && !errors.Is(err, state.ErrNotFound) {
					return err
				}
				return tx.PutMeta("meta-1", []byte("changed"))
			}); err != nil {
				t.Errorf("Update(%d): %v", i, err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("updates blocked by a snapshot being written")
	}
	// Reads see the new state meanwhile.
	if _, err := s.User("new-61"); err != nil {
		t.Fatal(err)
	}
	close(w.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	dst := openTest(t)
	if err := dst.Restore(bytes.NewReader(w.buf.Bytes()), 0); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); got != want {
		t.Fatal("the stream holds writes made after the snapshot was pinned")
	}
	if applied(t, s) != 61 || applied(t, dst) != 10 {
		t.Fatalf("applied: source %d, restored %d; want 61, 10", applied(t, s), applied(t, dst))
	}
}

// fileBytes checkpoints the WAL into the database file and returns the
// file's bytes.
func fileBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRestoreBadStreamChangesNothing(t *testing.T) {
	src := openTest(t)
	populate(t, src, 2) // every kind of record, in a short stream
	stream := snapshotBytes(t, src)
	t.Logf("stream of %d bytes", len(stream))

	dst := openTest(t)
	update(t, dst, 5, func(tx state.Tx) error {
		if err := tx.PutUser(&object.User{Name: "zed", Role: object.RoleCO, PasswordHash: "p", MAC: []byte("m")}); err != nil {
			return err
		}
		if err := tx.PutObject(newObject(99, "zed", cko_SECRET_KEY, ckk_AES, []byte("keep me"), nil, []byte("s"), "user-001")); err != nil {
			return err
		}
		return tx.PutMeta("keep", []byte("me"))
	})
	want := dump(t, dst)
	wantFile := fileBytes(t, dst)

	check := func(what string, b []byte) {
		t.Helper()
		err := dst.Restore(bytes.NewReader(b), 0)
		if err == nil {
			t.Fatalf("%s: Restore succeeded", what)
		}
		if got := dump(t, dst); got != want {
			t.Fatalf("%s: Restore failed (%v) but changed the store:\n%s", what, err, got)
		}
		if applied(t, dst) != 5 {
			t.Fatalf("%s: applied index changed", what)
		}
	}

	// Every truncation, including the empty stream.
	for n := range len(stream) {
		check(fmt.Sprintf("truncated to %d bytes", n), stream[:n])
	}
	// Every single-byte change.
	for i := range stream {
		b := bytes.Clone(stream)
		b[i] ^= 0x20
		check(fmt.Sprintf("byte %d flipped", i), b)
	}
	check("wrong magic", append([]byte("OHSMSNAQ"), stream[8:]...))
	check("trailing byte", append(bytes.Clone(stream), 0))
	check("stream twice", append(bytes.Clone(stream), stream...))

	// A reader that fails part way.
	err := dst.Restore(io.MultiReader(bytes.NewReader(stream[:len(stream)/2]), errReader{}), 0)
	if !errors.Is(err, errBoom) {
		t.Fatalf("failing reader: %v, want errBoom", err)
	}
	if dump(t, dst) != want {
		t.Fatal("failing reader changed the store")
	}
	if !bytes.Equal(fileBytes(t, dst), wantFile) {
		t.Fatal("the database file changed")
	}
	// The store still works, and takes a good stream.
	if err := dst.Restore(bytes.NewReader(stream), 0); err != nil {
		t.Fatal(err)
	}
	if dump(t, dst) != dump(t, src) {
		t.Fatal("good stream after bad ones not restored")
	}
}

var errBoom = errors.New("boom")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

// rec is one record in the stream format, for hand-made streams.
func rec(kind byte, body []byte) []byte {
	b := []byte{kind}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func header(index, meta, users, objects, shares uint64) []byte {
	b := []byte("OHSMSNAP\x00\x01\x00\x00")
	for _, v := range []uint64{index, meta, users, objects, shares} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// seal appends a correct trailer.
func seal(b []byte, meta, users, objects, shares uint64) []byte {
	b = append(b, 'Z', 0, 0, 0, 64)
	for _, v := range []uint64{meta, users, objects, shares} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func metaBody(k, v string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(k)))
	b = append(b, k...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func TestRestoreRefusesWellSealedButInvalidStreams(t *testing.T) {
	dst := openTest(t)
	populate(t, dst, 2)
	want := dump(t, dst)
	version4 := header(3, 1, 0, 0, 0)
	version4[9] = 4
	good := seal(append(header(3, 1, 0, 0, 0), rec('M', metaBody("k", "v"))...), 1, 0, 0, 0)
	for name, b := range map[string][]byte{
		"count above header": seal(append(header(3, 0, 0, 0, 0), rec('M', metaBody("k", "v"))...), 1, 0, 0, 0),
		"count below header": seal(header(3, 1, 0, 0, 0), 0, 0, 0, 0),
		"duplicate meta key": seal(append(append(header(3, 2, 0, 0, 0), rec('M', metaBody("k", "v"))...), rec('M', metaBody("k", "w"))...), 2, 0, 0, 0),
		"unknown kind":       seal(append(header(3, 1, 0, 0, 0), rec('X', metaBody("k", "v"))...), 1, 0, 0, 0),
		"extra body bytes":   seal(append(header(3, 1, 0, 0, 0), rec('M', append(metaBody("k", "v"), 0))...), 1, 0, 0, 0),
		"NULL meta value":    seal(append(header(3, 1, 0, 0, 0), rec('M', []byte{0, 0, 0, 1, 'k', 0xff, 0xff, 0xff, 0xff})...), 1, 0, 0, 0),
		"share without object": seal(append(header(3, 0, 0, 0, 1),
			rec('S', append(binary.BigEndian.AppendUint64(nil, 5), 0, 0, 0, 1, 'a'))...), 0, 0, 0, 1),
		"index out of range": seal(append(header(1<<63, 1, 0, 0, 0), rec('M', metaBody("k", "v"))...), 1, 0, 0, 0),
		"version 4":          seal(append(version4, rec('M', metaBody("k", "v"))...), 1, 0, 0, 0),
		"audit in version 1": seal(append(header(3, 0, 0, 0, 0), rec('A', []byte("openhsm audit v1"))...), 0, 0, 0, 0),
		"request in version 1": seal(append(header(3, 0, 0, 0, 0), rec('Q', append(binary.BigEndian.AppendUint64(nil, 1),
			0, 0, 0, 1, 'a', 0, 0, 0, 1, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))...), 0, 0, 0, 0),
		// A length field that promises far more than is sent: refused as
		// too large (over the bound) or as truncated, without allocating it.
		"huge record":       append(header(3, 1, 0, 0, 0), 'M', 0xff, 0xff, 0xff, 0xf0),
		"large, truncated":  append(header(3, 1, 0, 0, 0), 'M', 0x00, 0xff, 0xff, 0xf0, 1, 2, 3),
		"hostile count":     seal(header(3, 1<<50, 0, 0, 0), 0, 0, 0, 0),
		"trailer too short": append(header(3, 0, 0, 0, 0), 'Z', 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0),
	} {
		err := dst.Restore(bytes.NewReader(b), 0)
		if !errors.Is(err, snapshot.ErrBad) {
			t.Errorf("%s: Restore = %v, want ErrBadSnapshot", name, err)
		}
		if dump(t, dst) != want {
			t.Fatalf("%s: store changed", name)
		}
	}
	if err := dst.Restore(bytes.NewReader(good), 0); err != nil {
		t.Fatalf("hand-made good stream: %v", err)
	}
	if m, err := dst.Meta("k"); err != nil || string(m) != "v" || applied(t, dst) != 3 {
		t.Fatalf("after good stream: %q %v, applied %d", m, err, applied(t, dst))
	}
	if _, err := dst.User("admin"); !errors.Is(err, state.ErrNotFound) {
		t.Fatal("old user survived the restore")
	}
	if err := dst.Restore(bytes.NewReader(good), 1<<63); err == nil {
		t.Fatal("index 2^63 accepted")
	}
}

// Statements prepared and cached before a restore (Find's, the read
// statements) see the restored state.
func TestRestoreCachedStatementsSeeNewState(t *testing.T) {
	a := openTest(t)
	update(t, a, 1, func(tx state.Tx) error {
		return tx.PutObject(newObject(1, "alice", cko_SECRET_KEY, ckk_AES, []byte("A"), nil, []byte("s")))
	})
	b := openTest(t)
	update(t, b, 1, func(tx state.Tx) error {
		if err := tx.PutUser(&object.User{Name: "bob", Role: object.RoleCU, PasswordHash: "h"}); err != nil {
			return err
		}
		return tx.PutObject(newObject(2, "bob", cko_SECRET_KEY, ckk_AES, []byte("A"), nil, []byte("s")))
	})
	q := state.Query{Label: []byte("A")}
	if got, _ := a.Find(q); !reflect.DeepEqual(ids(got), []uint64{1}) {
		t.Fatalf("before: %v", ids(got))
	}
	if _, err := a.User("bob"); !errors.Is(err, state.ErrNotFound) {
		t.Fatal(err)
	}
	if err := a.Restore(bytes.NewReader(snapshotBytes(t, b)), 9); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Find(q); !reflect.DeepEqual(ids(got), []uint64{2}) {
		t.Fatalf("after: %v", ids(got))
	}
	if _, err := a.User("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Object(1); !errors.Is(err, state.ErrNotFound) {
		t.Fatal(err)
	}
	// Updates carry on from the restored index.
	if err := a.Update(9, func(state.Tx) error { return nil }); !errors.Is(err, ErrReplay) {
		t.Fatalf("Update(9) after restore at 9: %v", err)
	}
	update(t, a, 10, func(tx state.Tx) error { return tx.DeleteObject(2) })
}

func TestSnapshotAfterCloseAndClosedStore(t *testing.T) {
	s := openTest(t)
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sn.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := sn.WriteTo(io.Discard, nil); err == nil {
		t.Fatal("WriteTo after Close succeeded")
	}
	s.Close()
	if _, err := s.Snapshot(); err == nil {
		t.Fatal("Snapshot of a closed store succeeded")
	}
	if err := s.Restore(bytes.NewReader(nil), 0); err == nil {
		t.Fatal("Restore into a closed store succeeded")
	}
}

func FuzzRestore(f *testing.F) {
	dir := f.TempDir()
	src, err := Open(filepath.Join(dir, "src.db"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer src.Close()
	populate(f, src, 3)
	seed := snapshotBytes(f, src)
	f.Add(seed)
	f.Add(seal(append(header(3, 1, 0, 0, 0), rec('M', metaBody("k", "v"))...), 1, 0, 0, 0))
	f.Add(seed[:len(seed)/2])

	s, err := Open(filepath.Join(dir, "fuzz.db"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	if err := s.Restore(bytes.NewReader(seed), 0); err != nil {
		f.Fatal(err)
	}
	want := dump(f, s)
	f.Fuzz(func(t *testing.T, b []byte) {
		err := s.Restore(bytes.NewReader(b), 0)
		if err != nil {
			if got := dump(t, s); got != want {
				t.Fatalf("failed Restore (%v) changed the store", err)
			}
			return
		}
		// Accepted: a snapshot of what was restored is the same stream
		// (an older version's stream comes back in the current one, with
		// the same rows).
		again := snapshotBytes(t, s)
		if b[9] != snapshot.Version {
			got := dump(t, s)
			if err := s.Restore(bytes.NewReader(again), 0); err != nil || dump(t, s) != got {
				t.Fatalf("a version %d stream's rows do not survive a round trip in version %d: %v", b[9], snapshot.Version, err)
			}
		} else if !bytes.Equal(again, b) {
			t.Fatalf("restored %d bytes, snapshot gives back %d different ones", len(b), len(again))
		}
		if err := s.Restore(bytes.NewReader(seed), 0); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSnapshotCarriesKMSDetail: the stream carries a KMS record's detail,
// and a restored store reads it back as written.
func TestSnapshotCarriesKMSDetail(t *testing.T) {
	src := openTest(t)
	populate(t, src, 12)
	dst := openTest(t)
	if err := dst.Restore(bytes.NewReader(snapshotBytes(t, src)), 0); err != nil {
		t.Fatal(err)
	}
	a, err := src.AuditRecords(state.AuditQuery{Kinds: []string{audit.KindKMS}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dst.AuditRecords(state.AuditQuery{Kinds: []string{audit.KindKMS}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 4 || !reflect.DeepEqual(a, b) {
		t.Fatalf("KMS records before and after restore:\n%+v\n%+v", a, b)
	}
	if a[1].Detail != `{"context_keys":["a","é"],"request_id":"r-4"}` {
		t.Fatalf("detail %q", a[1].Detail)
	}
}
