package state_test

import (
	"context"
	"errors"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/require"
)

// flakyStore is a real store whose transactions fail as told: writes (a
// full disk), reads of objects (a bad page), or it hands apply functions
// rows whose MAC no longer verifies (an edited file).
type flakyStore struct {
	state.Store
	failWrites, failReads bool
}

func (s *flakyStore) Update(index uint64, fn func(state.Tx) error) error {
	return s.Store.Update(index, func(tx state.Tx) error { return fn(&flakyTx{Tx: tx, s: s}) })
}

var errDisk = errors.New("disk I/O error")

type flakyTx struct {
	state.Tx
	s *flakyStore
}

func (t *flakyTx) PutObject(o *object.Object) error {
	if t.s.failWrites {
		return errDisk
	}
	return t.Tx.PutObject(o)
}

func (t *flakyTx) Object(id uint64) (*object.Object, error) {
	if t.s.failReads {
		return nil, errDisk
	}
	return t.Tx.Object(id)
}

// TestStoreFailureIsNotARefusal: an unshare whose write fails, or whose
// read fails, is a *StoreError, leaves the store as it was (the index
// included), and applies normally once the store works again; a refused
// command stays a refusal and is recorded.
func TestStoreFailureIsNotARefusal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.GenerateKey(ctx, f.alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	require.NoError(t, f.e.Share(ctx, f.alice, id, "bob", true))

	fs := &flakyStore{Store: f.m.Store()}
	m := state.NewMachine(fs, f.m.Sealer(), nil)
	unshare, err := (&state.Command{Op: state.OpUnshare, Actor: "alice", ObjectID: id, Name: "bob"}).Encode()
	require.NoError(t, err)

	for _, mode := range []string{"write", "read"} {
		fs.failWrites, fs.failReads = mode == "write", mode == "read"
		before, err := fs.AppliedIndex()
		require.NoError(t, err)
		err = m.Apply(before+1, unshare)
		var se *state.StoreError
		require.ErrorAs(t, err, &se, "a failed %s must stop the node", mode)
		require.False(t, hsmerr.IsRV(err, ck.CKR_ARGUMENTS_BAD), "a store failure must not read as a refusal")
		after, err := fs.AppliedIndex()
		require.NoError(t, err)
		require.Equal(t, before, after, "a failed command must not be recorded as applied")
		o, err := fs.Object(id)
		require.NoError(t, err)
		require.Equal(t, []string{"bob"}, o.SharedWith, "nothing may change")
	}

	fs.failWrites, fs.failReads = false, false
	idx, err := fs.AppliedIndex()
	require.NoError(t, err)
	require.NoError(t, m.Apply(idx+1, unshare), "the same command applies once the store works")
	o, err := fs.Object(id)
	require.NoError(t, err)
	require.Empty(t, o.SharedWith)

	// Unsharing again is a refusal, the same on every node: recorded, not fatal.
	err = m.Apply(idx+2, unshare)
	require.True(t, hsmerr.IsRV(err, ck.CKR_ARGUMENTS_BAD), "got %v", err)
	var se *state.StoreError
	require.False(t, errors.As(err, &se))
	got, err := fs.AppliedIndex()
	require.NoError(t, err)
	require.Equal(t, idx+2, got)
}

// TestCorruptRowStopsTheNode: a row whose MAC fails in apply is damage to
// this node's store, not a refusal.
func TestCorruptRowStopsTheNode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.GenerateKey(ctx, f.alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	st := f.m.Store()
	// Edit the label behind the machine's back, as someone with the file could.
	require.NoError(t, st.Update(0, func(tx state.Tx) error {
		o, err := tx.Object(id)
		if err != nil {
			return err
		}
		o.Attrs[ck.CKA_LABEL] = []byte("edited")
		return tx.PutObject(o)
	}))
	raw, err := (&state.Command{Op: state.OpShare, Actor: "alice", ObjectID: id, Name: "bob"}).Encode()
	require.NoError(t, err)
	idx, err := st.AppliedIndex()
	require.NoError(t, err)
	err = f.m.Apply(idx+1, raw)
	var se *state.StoreError
	require.ErrorAs(t, err, &se)
}

// TestNoSealerStopsTheNode: a node that cannot apply (its domain key is not
// unsealed) must stop rather than refuse what the others apply.
func TestNoSealerStopsTheNode(t *testing.T) {
	f := newFixture(t)
	m := state.NewMachine(f.m.Store(), nil, nil)
	raw, err := (&state.Command{Op: state.OpLoginFailed, Name: "bob"}).Encode()
	require.NoError(t, err)
	idx, err := f.m.Store().AppliedIndex()
	require.NoError(t, err)
	var se *state.StoreError
	require.ErrorAs(t, m.Apply(idx+1, raw), &se)
}
