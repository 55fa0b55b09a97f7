package state_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/require"
)

func dataMarker(t *testing.T) []byte {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func dataTemplate(private, token bool, value []byte) object.Template {
	return object.Template{ul(ck.CKA_CLASS, ck.CKO_DATA), bo(ck.CKA_TOKEN, token), bo(ck.CKA_PRIVATE, private),
		{Type: ck.CKA_LABEL, Value: []byte("data")}, {Type: ck.CKA_VALUE, Value: value}}
}

// inLog reports whether any recorded command holds b, raw or in the
// base64 JSON gives []byte.
func (r *recorder) holds(b []byte) bool {
	for _, raw := range r.log {
		if bytes.Contains(raw, b) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(b)[:40])) {
			return true
		}
	}
	return false
}

func readValue(t *testing.T, e *engine.Engine, c engine.Caller, id uint64) ([]byte, error) {
	t.Helper()
	av, err := e.GetAttributes(c, id, []uint64{ck.CKA_VALUE})
	if err != nil {
		return nil, err
	}
	if av[0].RV != ck.CKR_OK {
		return nil, hsmerr.Errorf(av[0].RV, "CKA_VALUE")
	}
	return av[0].Value, nil
}

// TestDataValueIsSealed: a data object's CKA_VALUE is sealed before the
// command is built, stored sealed, read back by whoever may read the
// object, changed and copied sealed; a crypto officer does not see a
// private data object at all, and reads a public one.
func TestDataValueIsSealed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, private := range []bool{true, false} {
		marker := dataMarker(t)
		id, err := f.e.CreateObject(ctx, f.alice, dataTemplate(private, true, marker))
		require.NoError(t, err)
		require.False(t, f.rec.holds(marker), "the command holds the clear value")
		o, err := f.m.Store().Object(id)
		require.NoError(t, err)
		require.NotContains(t, o.Attrs, uint64(ck.CKA_VALUE))
		require.NotNil(t, o.Sealed)
		require.False(t, bytes.Contains(o.Sealed, marker))

		got, err := readValue(t, f.e, f.alice, id)
		require.NoError(t, err)
		require.Equal(t, marker, got)
		_, err = readValue(t, f.e, f.bob, id)
		wantRV(t, "another crypto user reads", err, ck.CKR_OBJECT_HANDLE_INVALID)

		got, err = readValue(t, f.e, f.co, id)
		ids, ferr := f.e.FindObjects(f.co, object.Template{ul(ck.CKA_CLASS, ck.CKO_DATA)}, 0)
		require.NoError(t, ferr)
		if private {
			wantRV(t, "a crypto officer reads a private data object", err, ck.CKR_OBJECT_HANDLE_INVALID)
			require.NotContains(t, ids, id, "a crypto officer finds a private data object")
		} else {
			require.NoError(t, err, "a crypto officer reads a public data object")
			require.Equal(t, marker, got)
			require.Contains(t, ids, id)
		}

		// A new value is sealed too, and an empty one is a value.
		next := dataMarker(t)
		require.NoError(t, f.e.SetAttributes(ctx, f.alice, id, object.Template{{Type: ck.CKA_VALUE, Value: next}, {Type: ck.CKA_LABEL, Value: []byte("renamed")}}))
		require.False(t, f.rec.holds(next), "set_attributes holds the clear value")
		got, err = readValue(t, f.e, f.alice, id)
		require.NoError(t, err)
		require.Equal(t, next, got)

		cp, err := f.e.CopyObject(ctx, f.alice, id, nil)
		require.NoError(t, err)
		got, err = readValue(t, f.e, f.alice, cp)
		require.NoError(t, err)
		require.Equal(t, next, got, "the copy's value")
		cp2, err := f.e.CopyObject(ctx, f.alice, id, object.Template{{Type: ck.CKA_VALUE, Value: []byte{}}})
		require.NoError(t, err)
		got, err = readValue(t, f.e, f.alice, cp2)
		require.NoError(t, err)
		require.Empty(t, got, "a copy given an empty value")
	}

	// Session data objects keep their value in memory, readable the same way.
	marker := dataMarker(t)
	sid, err := f.e.CreateObject(ctx, f.alice, dataTemplate(true, false, marker))
	require.NoError(t, err)
	got, err := readValue(t, f.e, f.alice, sid)
	require.NoError(t, err)
	require.Equal(t, marker, got)
	require.NoError(t, f.e.SetAttributes(ctx, f.alice, sid, object.Template{{Type: ck.CKA_VALUE, Value: []byte("x")}}))
	got, err = readValue(t, f.e, f.alice, sid)
	require.NoError(t, err)
	require.Equal(t, []byte("x"), got)
}

// TestApplyRefusesClearData: a command that carries a data object's value
// in clear, or a sealed value that does not open for the object, is
// refused in apply, however it was made.
func TestApplyRefusesClearData(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.CreateObject(ctx, f.alice, dataTemplate(true, true, []byte("v")))
	require.NoError(t, err)
	o, err := f.m.Store().Object(id)
	require.NoError(t, err)

	clear := o.Clone()
	clear.ID, clear.Sealed = id+1, nil
	clear.Attrs[ck.CKA_VALUE] = []byte("in clear")
	wantRV(t, "create with a clear value", f.rec.Submit(ctx, &state.Command{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{clear}}), ck.CKR_ATTRIBUTE_SENSITIVE)

	moved := o.Clone()
	moved.ID = id + 2 // the blob was sealed for id
	wantRV(t, "create with another object's blob", f.rec.Submit(ctx, &state.Command{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{moved}}), ck.CKR_TEMPLATE_INCONSISTENT)

	wantRV(t, "set a clear value", f.rec.Submit(ctx, &state.Command{Op: state.OpSetAttributes, Actor: "alice", ObjectID: id,
		Changes: object.Template{{Type: ck.CKA_VALUE, Value: []byte("in clear")}}}), ck.CKR_ARGUMENTS_BAD)
	wantRV(t, "set a blob that does not open", f.rec.Submit(ctx, &state.Command{Op: state.OpSetAttributes, Actor: "alice", ObjectID: id,
		Sealed: []byte("not a blob")}), ck.CKR_ARGUMENTS_BAD)

	key, err := f.e.GenerateKey(ctx, f.alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	wantRV(t, "a sealed value for a key", f.rec.Submit(ctx, &state.Command{Op: state.OpSetAttributes, Actor: "alice", ObjectID: key,
		Sealed: o.Sealed}), ck.CKR_ARGUMENTS_BAD)
	got, err := readValue(t, f.e, f.alice, id)
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got)
}
