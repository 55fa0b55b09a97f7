package state_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestApplyTokenObjectQuota: apply keeps an exact count of each user's
// token objects and refuses the one past MaxTokenObjectsPerUser, the same
// on every node; destroying one makes room again.
func TestApplyTokenObjectQuota(t *testing.T) {
	w := newAuthzWorld(t, true)
	owned := func() uint64 {
		b, err := w.st.Meta(state.MetaOwnedKey("alice"))
		require.NoError(t, err)
		return binary.BigEndian.Uint64(b)
	}
	require.NoError(t, w.apply(&state.Command{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{dataObject(t, 10, "alice")}}))
	require.NoError(t, w.apply(&state.Command{Op: state.OpCreateObjects, Actor: "alice",
		Objects: []*object.Object{dataObject(t, 11, "alice"), dataObject(t, 12, "alice")}}))
	require.Equal(t, uint64(3), owned())
	require.NoError(t, w.apply(&state.Command{Op: state.OpDestroyObject, Actor: "alice", ObjectID: 11}))
	require.Equal(t, uint64(2), owned())

	// Pretend alice is at the limit (making 100,000 objects here would
	// only be slow).
	w.idx++
	require.NoError(t, w.st.Update(w.idx, func(tx state.Tx) error {
		return tx.PutMeta(state.MetaOwnedKey("alice"), binary.BigEndian.AppendUint64(nil, state.MaxTokenObjectsPerUser))
	}))
	before := w.state()
	err := w.apply(&state.Command{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{dataObject(t, 13, "alice")}})
	require.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), hsmerr.RV(err))
	require.Equal(t, before, w.state())
	// Other users are not held back by alice's count.
	require.NoError(t, w.apply(&state.Command{Op: state.OpCreateObjects, Actor: "carol", Objects: []*object.Object{dataObject(t, 14, "carol")}}))
	require.NoError(t, w.apply(&state.Command{Op: state.OpDestroyObject, Actor: "alice", ObjectID: 10}))
	require.NoError(t, w.apply(&state.Command{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{dataObject(t, 13, "alice")}}))
}

// TestEngineSessionObjectLimit: a login session holds at most the limit of
// session objects, even when it creates them concurrently; destroying one
// or ending the session gives the room back, and other sessions are not
// counted against it.
func TestEngineSessionObjectLimit(t *testing.T) {
	f := newFixture(t)
	const limit = 5
	f.e = engine.NewEngine(f.m, f.rec, engine.Options{SessionObjects: limit})
	f.spy.e = f.e
	data := object.Template{ul(ck.CKA_CLASS, ck.CKO_DATA), {Type: ck.CKA_VALUE, Value: []byte("v")}}
	var wg sync.WaitGroup
	ids := make(chan uint64, 4*limit)
	var mu sync.Mutex
	refused := 0
	for i := 0; i < 4*limit; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := f.e.CreateObject(t.Context(), f.alice, data)
			if err != nil {
				assert.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), hsmerr.RV(err))
				mu.Lock()
				refused++
				mu.Unlock()
				return
			}
			ids <- id
		}()
	}
	wg.Wait()
	close(ids)
	require.Len(t, ids, limit)
	require.Equal(t, 3*limit, refused)
	first := <-ids

	other := f.alice
	other.Session = 77
	_, err := f.e.CreateObject(t.Context(), other, data)
	require.NoError(t, err, "another session is limited by this one's objects")

	// A key pair is two objects: it does not fit in one free slot.
	require.NoError(t, f.e.DestroyObject(t.Context(), f.alice, first))
	_, _, err = f.e.GenerateKeyPair(t.Context(), f.alice, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{{Type: ck.CKA_EC_PARAMS, Value: p256Params}}, nil)
	require.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), hsmerr.RV(err))
	_, err = f.e.CreateObject(t.Context(), f.alice, data)
	require.NoError(t, err)

	f.e.EndSession(f.alice.Session)
	for i := 0; i < limit; i++ {
		_, err := f.e.CreateObject(t.Context(), f.alice, data)
		require.NoError(t, err)
	}
}
