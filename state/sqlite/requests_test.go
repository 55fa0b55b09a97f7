package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/state"
)

func reqID(i int) string { return fmt.Sprintf("%032x", i) }

// The request table: numbers one above the newest, a second record for
// the same actor and ID refused, the oldest first, drops by number, and a
// savepoint that undoes its records.
func TestRequestRows(t *testing.T) {
	s := openTest(t)
	update(t, s, 1, func(tx state.Tx) error {
		for i, actor := range []string{"alice", "bob", "alice"} {
			seq, err := tx.PutRequest(actor, reqID(i), int64(100+i), []byte(fmt.Sprintf("rec-%d", i)))
			require.NoError(t, err)
			assert.Equal(t, uint64(i+1), seq)
		}
		_, err := tx.PutRequest("alice", reqID(0), 200, []byte("again"))
		require.Error(t, err, "a second record for the same actor and ID")
		seq, err := tx.PutRequest("bob", reqID(0), 201, []byte("bob's own"))
		require.NoError(t, err, "another actor's same ID is another record")
		assert.Equal(t, uint64(4), seq)

		old, err := tx.OldestRequests(2)
		require.NoError(t, err)
		assert.Equal(t, []state.RequestAge{{Seq: 1, Time: 100}, {Seq: 2, Time: 101}}, old)
		require.NoError(t, tx.DeleteRequestsThrough(2))
		_, err = tx.Request("alice", reqID(0))
		assert.ErrorIs(t, err, state.ErrNotFound)
		v, err := tx.Request("alice", reqID(2))
		require.NoError(t, err)
		assert.Equal(t, []byte("rec-2"), v)

		refusal := errors.New("refused")
		require.Same(t, refusal, tx.Savepoint(func() error {
			_, err := tx.PutRequest("carol", reqID(9), 300, []byte("undone"))
			require.NoError(t, err)
			return refusal
		}))
		return nil
	})
	_, err := s.Request("carol", reqID(9))
	assert.ErrorIs(t, err, state.ErrNotFound, "the savepoint's record was undone")
	v, err := s.Request("bob", reqID(0))
	require.NoError(t, err)
	assert.Equal(t, []byte("bob's own"), v)

	// With every record dropped the numbers start again at 1: the same on
	// every node, and the count (newest less oldest, plus one) stays right.
	update(t, s, 2, func(tx state.Tx) error {
		require.NoError(t, tx.DeleteRequestsThrough(4))
		seq, err := tx.PutRequest("dave", reqID(1), 400, []byte("x"))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), seq)
		assert.Error(t, tx.DeleteRequestsThrough(1<<63), "a number out of range")
		return nil
	})
}

// oldRequestRows are request-ID records as the builds before the requests
// table kept them: the record, its place in the expiry queue (time, then
// log index) and the count. The queue orders them carol, alice, bob.
var oldRequestRows = []struct{ key, value string }{
	{"req/alice/" + reqID(1), `{"op":"create_objects","time":200,"objects":[11],"expiry":"reqexp/00000000000000c8/0000000000000009"}`},
	{"req/bob/" + reqID(2), `{"op":"destroy_object","time":200,"rv":130,"msg":"gone","expiry":"reqexp/00000000000000c8/000000000000000a"}`},
	{"req/carol/" + reqID(3), `{"op":"share","time":100,"expiry":"reqexp/0000000000000064/0000000000000011"}`},
	{"req_count", "\x00\x00\x00\x00\x00\x00\x00\x03"},
	{"reqexp/0000000000000064/0000000000000011", "carol/" + reqID(3)},
	{"reqexp/00000000000000c8/0000000000000009", "alice/" + reqID(1)},
	{"reqexp/00000000000000c8/000000000000000a", "bob/" + reqID(2)},
}

// checkConverted checks that s holds oldRequestRows as table rows,
// numbered from first in the queue's order, and no longer as meta rows.
func checkConverted(t *testing.T, s *Store, first uint64) {
	t.Helper()
	rows, err := s.r.Query(`SELECT seq, actor, id, time FROM requests WHERE seq >= ? ORDER BY seq`, int64(first))
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var seq, at int64
		var actor, id string
		require.NoError(t, rows.Scan(&seq, &actor, &id, &at))
		got = append(got, fmt.Sprintf("%d %s/%s %d", seq, actor, id, at))
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{
		fmt.Sprintf("%d carol/%s 100", first, reqID(3)),
		fmt.Sprintf("%d alice/%s 200", first+1, reqID(1)),
		fmt.Sprintf("%d bob/%s 200", first+2, reqID(2)),
	}, got)
	rec, err := state.ReadRequest(s, "bob", reqID(2))
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, "gone", rec.Msg)
	assert.Equal(t, uint64(130), rec.RV)
	for _, p := range []string{"req/", "reqexp/", "req_"} {
		left, err := s.MetaScan(p, "", 10)
		require.NoError(t, err)
		assert.Empty(t, left, "meta rows under %q left", p)
	}
}

// A store written before the requests table has its records moved into it
// on the first open, after any already there, and keeps its other meta
// rows; the next open writes nothing.
func TestConvertMetaRequestsOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	update(t, s, 1, func(tx state.Tx) error {
		for _, r := range oldRequestRows {
			require.NoError(t, tx.PutMeta(r.key, []byte(r.value)))
		}
		require.NoError(t, tx.PutMeta("req0", []byte("not a request record")))
		require.NoError(t, tx.PutMeta("zzz", []byte("other")))
		_, err := tx.PutRequest("dave", reqID(4), 50, []byte(`{"op":"share","time":50}`))
		return err
	})
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	checkConverted(t, s, 2)
	for _, k := range []string{"req0", "zzz"} {
		_, err := s.Meta(k)
		assert.NoError(t, err, "meta %q was dropped", k)
	}
	want := dump(t, s)
	require.NoError(t, s.Close())
	s, err = Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	assert.Equal(t, want, dump(t, s), "a second open changed the store")
}

// A stream from before version 3 carries the records as meta rows:
// restore converts them as the first open does.
func TestRestoreConvertsMetaRequests(t *testing.T) {
	var body []byte
	for _, r := range oldRequestRows {
		body = append(body, rec('M', metaBody(r.key, r.value))...)
	}
	n := uint64(len(oldRequestRows))
	stream := seal(append(header(7, n, 0, 0, 0), body...), n, 0, 0, 0)
	s := openTest(t)
	require.NoError(t, s.Restore(bytes.NewReader(stream), 0))
	checkConverted(t, s, 1)
	idx, err := s.AppliedIndex()
	require.NoError(t, err)
	assert.Equal(t, uint64(7), idx)
}
