package state_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A rotation replaces the sealed record only when an officer sends a
// well-formed record for this cluster that the domain key authenticates;
// every other command is refused and changes nothing.
func TestApplySetDomainKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sealer := f.m.Sealer()
	newPass := seal.KEKSource{Passphrase: []byte("the new passphrase")}
	good, err := sealer.Reseal("test", newPass)
	require.NoError(t, err)
	goodRaw := good.Marshal()

	other, _, err := seal.NewDomainKey("test", seal.KEKSource{KeyFile: bytes.Repeat([]byte{4}, 32)})
	require.NoError(t, err)
	foreign, err := other.Reseal("test", newPass)
	require.NoError(t, err)
	wrongCluster, err := sealer.Reseal("another", newPass)
	require.NoError(t, err)
	heavy := *good
	heavy.Memory = 4 << 20 // 4 GiB of argon2id at every start
	heavyRaw := heavy.Marshal()

	cases := []struct {
		name  string
		actor string
		raw   []byte
		mac   []byte
		rv    uint64
	}{
		{"a crypto user", "alice", goodRaw, sealer.RecordMAC(goodRaw), ck.CKR_USER_NOT_LOGGED_IN},
		{"no such actor", "mallory", goodRaw, sealer.RecordMAC(goodRaw), ck.CKR_USER_PIN_NOT_INITIALIZED},
		{"no MAC", "admin", goodRaw, nil, ck.CKR_SIGNATURE_INVALID},
		{"a MAC by another key", "admin", foreign.Marshal(), other.RecordMAC(foreign.Marshal()), ck.CKR_SIGNATURE_INVALID},
		{"another cluster's record", "admin", wrongCluster.Marshal(), sealer.RecordMAC(wrongCluster.Marshal()), ck.CKR_ARGUMENTS_BAD},
		{"unbounded argon2id", "admin", heavyRaw, sealer.RecordMAC(heavyRaw), ck.CKR_ARGUMENTS_BAD},
		{"not a record", "admin", []byte("{}x"), sealer.RecordMAC([]byte("{}x")), ck.CKR_ARGUMENTS_BAD},
	}
	before, err := f.m.Store().Meta(state.MetaDomainKey)
	require.NoError(t, err)
	for _, tc := range cases {
		err := f.rec.Submit(ctx, &state.Command{Op: state.OpSetDomainKey, Actor: tc.actor, Domain: tc.raw, DomainMAC: tc.mac})
		assert.Equal(t, ck.RVName(tc.rv), ck.RVName(hsmerr.RV(err)), "%s: %v", tc.name, err)
		now, err := f.m.Store().Meta(state.MetaDomainKey)
		require.NoError(t, err)
		assert.Equal(t, before, now, "%s changed the record", tc.name)
	}

	require.NoError(t, f.rec.Submit(ctx, &state.Command{Op: state.OpSetDomainKey, Actor: "admin", Domain: goodRaw, DomainMAC: sealer.RecordMAC(goodRaw)}))
	now, err := f.m.Store().Meta(state.MetaDomainKey)
	require.NoError(t, err)
	assert.Equal(t, goodRaw, now)
	rec, err := seal.UnmarshalSealedDomainKey(now)
	require.NoError(t, err)
	opened, err := rec.Unseal(newPass)
	require.NoError(t, err, "the new passphrase opens the new record")
	assert.True(t, opened.Holds(sealer), "the new record seals the same domain key")
	assert.Equal(t, sealer.Fingerprint(), opened.Fingerprint())
	_, err = rec.Unseal(seal.KEKSource{KeyFile: bytes.Repeat([]byte{3}, 32)})
	assert.Error(t, err, "the old key file no longer opens it")
}
