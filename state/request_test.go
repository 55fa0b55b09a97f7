package state_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

const (
	reqA = "0123456789abcdef0123456789abcdef"
	reqB = "fedcba9876543210fedcba9876543210"
)

// reqData is a token data object as the engine makes it, its value sealed
// under the fixture's domain key.
func reqData(t *testing.T, f *fixture, id uint64, owner, label string) *object.Object {
	t.Helper()
	a, _, err := object.BuildAttrs(object.OpCreate, object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
		{Type: ck.CKA_VALUE, Value: []byte("v")},
	}, 0, ^uint64(0))
	require.NoError(t, err)
	a[ck.CKA_UNIQUE_ID] = []byte(fmt.Sprintf("%016x", id))
	delete(a, ck.CKA_VALUE)
	o := &object.Object{ID: id, Owner: owner, Attrs: a}
	o.Sealed, err = f.m.Sealer().Seal(id, owner, []byte("v"))
	require.NoError(t, err)
	return o
}

func createCmd(actor, reqID string, at int64, objs ...*object.Object) *state.Command {
	return &state.Command{Op: state.OpCreateObjects, Actor: actor, RequestID: reqID, Time: at, Objects: objs}
}

func exists(t *testing.T, f *fixture, id uint64) bool {
	t.Helper()
	_, err := f.m.Store().Object(id)
	if err == nil {
		return true
	}
	require.ErrorIs(t, err, state.ErrNotFound)
	return false
}

// A retried key generation (the same request ID) returns the first one's
// handle and makes no second key.
func TestRequestIDGenerateKeyTwice(t *testing.T) {
	f := newFixture(t)
	ctx := engine.WithRequestID(context.Background(), reqA)
	tmpl := object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte("once")}}
	aes := mech.Mech{Type: ck.CKM_AES_KEY_GEN}
	first, err := f.e.GenerateKey(ctx, f.alice, aes, tmpl)
	require.NoError(t, err)
	again, err := f.e.GenerateKey(ctx, f.alice, aes, tmpl)
	require.NoError(t, err)
	assert.Equal(t, first, again, "the retry must return the first try's handle")
	found, err := f.e.FindObjects(f.alice, object.Template{{Type: ck.CKA_LABEL, Value: []byte("once")}}, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{first}, found, "exactly one key")

	// A key pair: both handles come back.
	ctx = engine.WithRequestID(context.Background(), reqB)
	ec := mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN}
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	pubT := object.Template{bo(ck.CKA_TOKEN, true), {Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_LABEL, Value: []byte("pair")}}
	privT := object.Template{bo(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte("pair")}}
	pub1, priv1, err := f.e.GenerateKeyPair(ctx, f.alice, ec, pubT, privT)
	require.NoError(t, err)
	pub2, priv2, err := f.e.GenerateKeyPair(ctx, f.alice, ec, pubT, privT)
	require.NoError(t, err)
	assert.Equal(t, []uint64{pub1, priv1}, []uint64{pub2, priv2})
	found, err = f.e.FindObjects(f.alice, object.Template{{Type: ck.CKA_LABEL, Value: []byte("pair")}}, 0)
	require.NoError(t, err)
	assert.Len(t, found, 2)

	// Without an ID, the same call makes a new key every time.
	k1, err := f.e.GenerateKey(context.Background(), f.alice, aes, tmpl)
	require.NoError(t, err)
	k2, err := f.e.GenerateKey(context.Background(), f.alice, aes, tmpl)
	require.NoError(t, err)
	assert.NotEqual(t, k1, k2)
}

// A retried destroy whose first try went through answers OK (from the
// record), not "no such object".
func TestRequestIDDestroyTwice(t *testing.T) {
	f := newFixture(t)
	tmpl := object.Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_TOKEN, true)}
	id, err := f.e.GenerateKey(context.Background(), f.alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	ctx := engine.WithRequestID(context.Background(), reqA)
	require.NoError(t, f.e.DestroyObject(ctx, f.alice, id))
	require.NoError(t, f.e.DestroyObject(ctx, f.alice, id), "the retry gets the recorded outcome")
	wantRV(t, "a new destroy", f.e.DestroyObject(context.Background(), f.alice, id), ck.CKR_OBJECT_HANDLE_INVALID)
}

// The state machine: the same ID twice gives the same outcome and one
// object; a refusal is recorded too; another actor's same ID and another
// op under the same ID are kept apart.
func TestApplyDedupe(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqA, 1000, reqData(t, f, 11, "alice", "a"))))
	// A retry carries new object IDs (the engine makes them before it
	// submits); none of them is made.
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqA, 1001, reqData(t, f, 12, "alice", "a"))))
	assert.True(t, exists(t, f, 11))
	assert.False(t, exists(t, f, 12), "the retry made a second object")
	r, err := f.e.Request("alice", reqA)
	require.NoError(t, err)
	require.NotNil(t, r)
	assert.Equal(t, []uint64{11}, r.Objects)
	assert.NoError(t, r.Err())

	// Bob's same ID is his own request.
	require.NoError(t, f.rec.Submit(ctx, createCmd("bob", reqA, 1002, reqData(t, f, 13, "bob", "b"))))
	assert.True(t, exists(t, f, 13))
	r, err = f.e.Request("bob", reqA)
	require.NoError(t, err)
	assert.Equal(t, []uint64{13}, r.Objects)

	// Another op under a used ID: refused, nothing applied, the record
	// unchanged.
	err = f.rec.Submit(ctx, &state.Command{Op: state.OpDestroyObject, Actor: "alice", RequestID: reqA, Time: 1003, ObjectID: 11})
	wantRV(t, "another op under a used ID", err, ck.CKR_ARGUMENTS_BAD)
	assert.True(t, exists(t, f, 11))

	// A refusal is recorded: the retry is refused alike even once the
	// command would succeed.
	share := &state.Command{Op: state.OpShare, Actor: "alice", RequestID: reqB, Time: 1004, ObjectID: 11, Name: "carol"}
	first := f.rec.Submit(ctx, share)
	wantRV(t, "share with nobody", first, ck.CKR_USER_PIN_NOT_INITIALIZED)
	require.NoError(t, f.e.CreateUser(ctx, f.co, "carol", object.RoleCU, "carol-password"))
	share.Time = 1005
	again := f.rec.Submit(ctx, share)
	assert.Equal(t, first.Error(), again.Error())
	o, err := f.m.Store().Object(11)
	require.NoError(t, err)
	assert.Empty(t, o.SharedWith)

	// A command with a malformed ID or without an actor is applied as
	// without one.
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", "not-hex", 1006, reqData(t, f, 14, "alice", "c"))))
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", "not-hex", 1007, reqData(t, f, 15, "alice", "c"))))
	assert.True(t, exists(t, f, 14) && exists(t, f, 15))
}

// Records expire by Command.Time: a day later the same ID is a new request.
func TestApplyDedupeExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqA, 5000, reqData(t, f, 21, "alice", "x"))))
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqA, 5000+state.RequestTTL, reqData(t, f, 22, "alice", "x"))))
	assert.False(t, exists(t, f, 22), "within the TTL the record holds")
	// Another request past the TTL drops the old record...
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqB, 5001+state.RequestTTL, reqData(t, f, 23, "alice", "y"))))
	r, err := f.e.Request("alice", reqA)
	require.NoError(t, err)
	assert.Nil(t, r, "the expired record is gone")
	// ...so the old ID applies again.
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqA, 5002+state.RequestTTL, reqData(t, f, 24, "alice", "x"))))
	assert.True(t, exists(t, f, 24))
}

// The records are state like any other: the log replayed on a new store
// and a snapshot restored both hold them, so a retry after a restart, or
// on a node that caught up from a snapshot, is still deduplicated; and a
// replay of applied entries after a restart changes nothing.
func TestApplyDedupeReplayAndSnapshot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", reqA, 100, reqData(t, f, 31, "alice", "x"))))

	// Replaying the applied entries on the same store (a restart before a
	// snapshot): every one is skipped.
	for i, raw := range f.rec.log {
		require.NoError(t, f.m.Apply(uint64(i+1), raw))
	}

	check := func(name string, m *state.Machine) {
		t.Helper()
		m.SetSealer(f.m.Sealer())
		la := &engine.LocalApplier{M: m}
		require.NoError(t, la.Submit(ctx, createCmd("alice", reqA, 200, reqData(t, f, 32, "alice", "x"))), name)
		_, err := m.Store().Object(32)
		assert.ErrorIs(t, err, state.ErrNotFound, "%s: the retry made a second object", name)
		_, err = m.Store().Object(31)
		assert.NoError(t, err, name)
	}

	// The log replayed on a new store.
	replayed := state.NewMachine(newStore(t, "replay.db"), nil, nil)
	replayed.SetSealer(f.m.Sealer())
	for i, raw := range f.rec.log {
		replayed.Apply(uint64(i+1), raw)
	}
	check("replayed log", replayed)

	// A snapshot restored into a new store.
	snap, err := f.m.Store().Snapshot()
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = snap.WriteTo(&buf, nil)
	require.NoError(t, err)
	require.NoError(t, snap.Close())
	restored := state.NewMachine(newStore(t, "restored.db"), nil, nil)
	require.NoError(t, restored.Restore(&buf, 0))
	check("restored snapshot", restored)
}

// Login bookkeeping is never deduplicated: a repeated wrong guess with the
// same request ID still counts.
func TestRequestIDDoesNotHideFailedLogins(t *testing.T) {
	f := newFixture(t)
	ctx := engine.WithRequestID(context.Background(), reqA)
	for i := 0; i < object.MaxFailedLogins; i++ {
		_, err := f.e.Login(ctx, "alice", "wrong-password")
		wantRV(t, "wrong password", err, ck.CKR_PIN_INCORRECT)
	}
	_, err := f.e.Login(ctx, "alice", "alice-password")
	wantRV(t, "locked", err, ck.CKR_PIN_LOCKED)
}

// Past MaxRequests the oldest records go first; a record is never dropped
// before its own time is up, even behind an older one whose time is later
// (a leader's clock that went back), and dropping stops at the first
// record kept.
func TestApplyDedupeBounds(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ids := []string{reqA, reqB, "00000000000000000000000000000001", "00000000000000000000000000000002", "00000000000000000000000000000003"}
	kept := func() []bool {
		var out []bool
		for _, id := range ids {
			r, err := f.e.Request("alice", id)
			require.NoError(t, err)
			out = append(out, r != nil)
		}
		return out
	}
	state.WithMaxRequests(3, func() {
		for i, id := range ids[:4] {
			require.NoError(t, f.rec.Submit(ctx, createCmd("alice", id, 1000+int64(i), reqData(t, f, uint64(41+i), "alice", id))))
		}
		assert.Equal(t, []bool{false, true, true, true, false}, kept(), "the fourth record drops the first")
	})
	// The rest expire by time: a record is kept while its time is at
	// least the command's less RequestTTL, so a command at 1003+TTL drops
	// the records made at 1001 and 1002 and keeps the one at 1003.
	require.NoError(t, f.rec.Submit(ctx, createCmd("alice", ids[4], 1003+state.RequestTTL, reqData(t, f, 50, "alice", "e"))))
	assert.Equal(t, []bool{false, false, false, true, true}, kept(), "records at 1001 and 1002 expired, 1003 kept")

	// A record made later with an earlier time (a clock that went back)
	// waits behind the older ones: nothing is dropped out of order.
	g := newFixture(t)
	require.NoError(t, g.rec.Submit(ctx, createCmd("alice", reqA, 5000, reqData(t, g, 61, "alice", "a"))))
	require.NoError(t, g.rec.Submit(ctx, createCmd("alice", reqB, 10, reqData(t, g, 62, "alice", "b"))))
	require.NoError(t, g.rec.Submit(ctx, createCmd("alice", ids[2], 11+state.RequestTTL, reqData(t, g, 63, "alice", "c"))))
	for _, id := range []string{reqA, reqB} {
		r, err := g.e.Request("alice", id)
		require.NoError(t, err)
		assert.NotNil(t, r, "record %s dropped out of order", id)
	}
	require.NoError(t, g.rec.Submit(ctx, createCmd("alice", ids[3], 5001+state.RequestTTL, reqData(t, g, 64, "alice", "d"))))
	for _, id := range []string{reqA, reqB} {
		r, err := g.e.Request("alice", id)
		require.NoError(t, err)
		assert.Nil(t, r, "record %s outlived its time", id)
	}
}
