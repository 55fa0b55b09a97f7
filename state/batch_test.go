package state_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Group commit must not change what a command does: a log applied in
// batches (one store transaction each) gives every command the result and
// the store the state that applying it one command at a time gives,
// including refusals in the middle of a batch.
func TestApplyBatchEqualsOneByOne(t *testing.T) {
	ctx := context.Background()
	sealer, dk, err := seal.NewDomainKey("test", seal.KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	m := state.NewMachine(newStore(t, "source.db"), nil, nil)
	r := &recorder{local: &engine.LocalApplier{M: m}}
	require.NoError(t, r.Submit(ctx, &state.Command{Op: state.OpInit, Domain: dk.Marshal()}))
	m.SetSealer(sealer)
	e := engine.NewEngine(m, r, engine.Options{})
	require.NoError(t, e.Bootstrap(ctx, "admin", "officer-pass"))
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	alice := engine.Caller{User: "alice", Role: object.RoleCU, Session: 2}
	for _, u := range []string{"alice", "bob"} {
		require.NoError(t, e.CreateUser(ctx, co, u, object.RoleCU, u+"-password"))
	}
	var keys []uint64
	for i := 0; i < 12; i++ {
		id, err := e.GenerateKey(ctx, alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN},
			object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte{'k', byte('a' + i)}}})
		require.NoError(t, err)
		keys = append(keys, id)
		if i == 5 {
			require.NoError(t, e.Share(ctx, alice, keys[0], "bob", true))
		}
	}
	require.NoError(t, e.DestroyObject(ctx, alice, keys[3]))
	log := r.log
	destroy := log[len(log)-1]

	// Commands the engine would not send, that apply must refuse: the same
	// destroy again (the object is gone), bob destroying alice's key (not
	// the owner: the authority check), and bytes that are no command.
	c, err := state.DecodeCommand(destroy)
	require.NoError(t, err)
	c.Actor, c.ObjectID = "bob", keys[4]
	byBob, err := c.Encode()
	require.NoError(t, err)
	n := len(log)
	log = append(log[:n-3:n-3], append([][]byte{destroy, byBob, []byte("not a command")}, log[n-3:]...)...)
	log = append(log, destroy)

	one := state.NewMachine(newStore(t, "one.db"), sealer, nil)
	var want []error
	for i, raw := range log {
		want = append(want, one.Apply(uint64(i+1), raw))
	}
	refused := 0
	for _, err := range want {
		var se *state.StoreError
		require.False(t, errors.As(err, &se), "no store failures: %v", err)
		if err != nil {
			refused++
		}
	}
	require.GreaterOrEqual(t, refused, 4, "the log holds refused commands")

	for _, size := range []int{2, 5, 64} {
		batched := state.NewMachine(newStore(t, "batched.db"), sealer, nil)
		var got []error
		for at := 0; at < len(log); at += size {
			var es []state.Entry
			for i := at; i < min(at+size, len(log)); i++ {
				es = append(es, state.Entry{Index: uint64(i + 1), Raw: log[i]})
			}
			got = append(got, batched.ApplyBatch(es)...)
		}
		require.Len(t, got, len(want))
		for i := range want {
			assert.Equal(t, hsmerr.RV(want[i]), hsmerr.RV(got[i]), "batch size %d, command %d: %v / %v", size, i+1, want[i], got[i])
			assert.Equal(t, want[i] == nil, got[i] == nil, "batch size %d, command %d", size, i+1)
		}
		assert.Equal(t, snapshotOf(t, one.Store()), snapshotOf(t, batched.Store()), "batch size %d: the state differs", size)
	}
}

func snapshotOf(t *testing.T, s state.Store) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	require.NoError(t, err)
	defer snap.Close()
	var b bytes.Buffer
	_, err = snap.WriteTo(&b, nil)
	require.NoError(t, err)
	return b.Bytes()
}
