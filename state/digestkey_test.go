package state_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha3"
	"encoding"
	"hash"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// TestEngineDigestKey: C_DigestKey's daemon side. The digest of a key
// equals the digest of its known value; the state that comes back is
// sealed (no key byte in it) and bound to the user; the rule on which keys
// may be digested and who may use them holds.
func TestEngineDigestKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret := func(value []byte, token, sensitive, extractable bool) uint64 {
		id, err := f.e.CreateObject(ctx, f.alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY),
			ul(ck.CKA_KEY_TYPE, ck.CKK_GENERIC_SECRET), bo(ck.CKA_TOKEN, token), bo(ck.CKA_SENSITIVE, sensitive),
			bo(ck.CKA_EXTRACTABLE, extractable), {Type: ck.CKA_VALUE, Value: value}})
		require.NoError(t, err)
		return id
	}
	value := bytes.Repeat([]byte{0xA5}, 32)
	extractable := secret(value, true, true, true)
	readable := secret([]byte("short"), true, false, false)
	locked := secret(bytes.Repeat([]byte{0x5A}, 32), true, true, false)
	stateOf := func(h hash.Hash, prefix []byte) []byte {
		h.Write(prefix)
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		require.NoError(t, err)
		return b
	}
	sha := mech.Mech{Type: ck.CKM_SHA256}

	t.Run("digest equals the digest of the value", func(t *testing.T) {
		for _, c := range []struct {
			m   uint64
			new func() hash.Hash
		}{{ck.CKM_SHA256, sha256.New}, {ck.CKM_SHA3_256, func() hash.Hash { return sha3.New256() }}} {
			sealed, err := f.e.DigestKey(f.alice, engine.DigestKeyRequest{Mech: mech.Mech{Type: c.m},
				State: stateOf(c.new(), []byte("prefix")), Key: extractable})
			require.NoError(t, err)
			assert.False(t, bytes.Contains(sealed, value[:16]), "the sealed state shows key bytes")
			sealed, err = f.e.DigestKey(f.alice, engine.DigestKeyRequest{Mech: mech.Mech{Type: c.m}, Sealed: sealed, Key: readable})
			require.NoError(t, err)
			got, err := f.e.DigestKey(f.alice, engine.DigestKeyRequest{Mech: mech.Mech{Type: c.m}, Sealed: sealed,
				Data: []byte("suffix"), Final: true})
			require.NoError(t, err)
			want := c.new()
			want.Write([]byte("prefix"))
			want.Write(value)
			want.Write([]byte("short"))
			want.Write([]byte("suffix"))
			assert.Equal(t, want.Sum(nil), got, ck.MechName(c.m))
		}
	})

	sealed, err := f.e.DigestKey(f.alice, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Key: extractable})
	require.NoError(t, err)
	require.NoError(t, f.e.Share(ctx, f.alice, readable, "bob", true))
	rows := []struct {
		name   string
		caller engine.Caller
		req    engine.DigestKeyRequest
		want   uint64
	}{
		{"sensitive and not extractable", f.alice, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Key: locked}, ck.CKR_KEY_INDIGESTIBLE},
		{"another user's key", f.bob, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Key: extractable}, ck.CKR_KEY_HANDLE_INVALID},
		{"a key shared with the caller", f.bob, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Key: readable}, ck.CKR_OK},
		{"a crypto officer", f.co, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Key: readable}, ck.CKR_USER_NOT_LOGGED_IN},
		{"no such key", f.alice, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Key: 12345}, ck.CKR_KEY_HANDLE_INVALID},
		{"another user's sealed state", f.bob, engine.DigestKeyRequest{Mech: sha, Sealed: sealed, Final: true}, ck.CKR_ARGUMENTS_BAD},
		{"a sealed state under another mechanism", f.alice, engine.DigestKeyRequest{Mech: mech.Mech{Type: ck.CKM_SHA384}, Sealed: sealed, Final: true}, ck.CKR_ARGUMENTS_BAD},
		{"a changed sealed state", f.alice, engine.DigestKeyRequest{Mech: sha, Sealed: append(bytes.Clone(sealed[:len(sealed)-1]), sealed[len(sealed)-1]^1), Final: true}, ck.CKR_ARGUMENTS_BAD},
		{"both states", f.alice, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha256.New(), nil), Sealed: sealed}, ck.CKR_ARGUMENTS_BAD},
		{"a state of another hash", f.alice, engine.DigestKeyRequest{Mech: sha, State: stateOf(sha3.New256(), nil), Key: readable}, ck.CKR_ARGUMENTS_BAD},
		{"not a digest", f.alice, engine.DigestKeyRequest{Mech: mech.Mech{Type: ck.CKM_AES_ECB}, State: stateOf(sha256.New(), nil), Key: readable}, ck.CKR_MECHANISM_INVALID},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			_, err := f.e.DigestKey(r.caller, r.req)
			if r.want == ck.CKR_OK {
				require.NoError(t, err)
				return
			}
			assert.Equal(t, r.want, hsmerr.RV(err), "%v", err)
		})
	}
}
