package sqlite

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func putMeta(key string, then error) func(state.Tx) error {
	return func(tx state.Tx) error {
		if err := tx.PutMeta(key, []byte(key)); err != nil {
			return err
		}
		return then
	}
}

func hasMeta(t *testing.T, s *Store, key string) bool {
	t.Helper()
	_, err := s.Meta(key)
	if errors.Is(err, state.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// A refused command in a batch undoes only its own writes; the commands
// around it apply, each sees the ones before it, and the index moves to the
// batch's last command in one commit.
func TestUpdateBatchRefusalInTheMiddle(t *testing.T) {
	s := openTest(t)
	refusal := hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "refused")
	sawA := false
	errs, err := s.UpdateBatch([]uint64{5, 6, 7}, []func(state.Tx) error{
		putMeta("a", nil),
		putMeta("b", refusal),
		func(tx state.Tx) error {
			_, err := tx.Meta("a")
			sawA = err == nil
			return putMeta("c", nil)(tx)
		},
	})
	require.NoError(t, err)
	require.Len(t, errs, 3)
	assert.NoError(t, errs[0])
	assert.Same(t, refusal, errs[1], "the refusal goes back unchanged, to its own command only")
	assert.NoError(t, errs[2])
	assert.True(t, sawA, "a command sees the writes of the one before it in the batch")
	assert.True(t, hasMeta(t, s, "a"))
	assert.False(t, hasMeta(t, s, "b"))
	assert.True(t, hasMeta(t, s, "c"))
	idx, err := s.AppliedIndex()
	require.NoError(t, err)
	assert.Equal(t, uint64(7), idx)

	// A replay of the same batch (a restart before Raft knew it was
	// applied) is skipped command by command; a batch that straddles the
	// applied index applies only what is new.
	errs, err = s.UpdateBatch([]uint64{6, 7, 8}, []func(state.Tx) error{putMeta("x", nil), putMeta("y", nil), putMeta("z", nil)})
	require.NoError(t, err)
	assert.ErrorIs(t, errs[0], ErrReplay)
	assert.ErrorIs(t, errs[1], ErrReplay)
	assert.NoError(t, errs[2])
	assert.False(t, hasMeta(t, s, "x"))
	assert.False(t, hasMeta(t, s, "y"))
	assert.True(t, hasMeta(t, s, "z"))
	idx, _ = s.AppliedIndex()
	assert.Equal(t, uint64(8), idx)
}

// The store failing under a command stops the batch: the commands before it
// commit with their index, it writes nothing, and the ones after it do not
// run, so a restart applies it and them again from the log.
func TestUpdateBatchStoreErrorStops(t *testing.T) {
	s := openTest(t)
	ran := false
	errs, err := s.UpdateBatch([]uint64{3, 4, 5}, []func(state.Tx) error{
		putMeta("a", nil),
		putMeta("b", &state.StoreError{Err: errors.New("disk on fire")}),
		func(tx state.Tx) error { ran = true; return nil },
	})
	require.NoError(t, err)
	assert.NoError(t, errs[0])
	var se *state.StoreError
	assert.ErrorAs(t, errs[1], &se)
	assert.ErrorIs(t, errs[2], state.ErrNotApplied)
	assert.False(t, ran)
	assert.True(t, hasMeta(t, s, "a"))
	assert.False(t, hasMeta(t, s, "b"))
	idx, err := s.AppliedIndex()
	require.NoError(t, err)
	assert.Equal(t, uint64(3), idx)
}

// A crash before the batch's commit leaves the store at the index before the
// batch: nothing of it is on disk (here: a panic in the last command, which
// rolls the whole transaction back, and the file opened again).
func TestUpdateBatchAllOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hsm.db")
	s, err := Open(path, Options{Sync: true})
	require.NoError(t, err)
	require.NoError(t, s.Update(1, putMeta("before", nil)))
	require.Panics(t, func() {
		_, _ = s.UpdateBatch([]uint64{2, 3}, []func(state.Tx) error{
			putMeta("a", nil),
			func(state.Tx) error { panic("crash") },
		})
	})
	require.NoError(t, s.Close())
	s, err = Open(path, Options{Sync: true})
	require.NoError(t, err)
	defer s.Close()
	idx, err := s.AppliedIndex()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), idx)
	assert.True(t, hasMeta(t, s, "before"))
	assert.False(t, hasMeta(t, s, "a"))
}
