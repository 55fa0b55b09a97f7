package state_test

import (
	"context"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Revocations go through apply: only a crypto officer's land, the list is
// ordered and deduplicated whatever the order of commands, and bad input
// changes nothing.
func TestRevokeCertApply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	heard := 0
	f.spy.certRevoked = func() { heard++ }
	fpA, fpB := strings.Repeat("b", 64), strings.Repeat("a", 64)
	apply := func(actor, fp string) error {
		return f.rec.Submit(ctx, &state.Command{Op: state.OpRevokeCert, Actor: actor, Time: 1_800_000_000, Fingerprint: fp, Name: "app"})
	}
	require.NoError(t, apply("admin", fpA))
	require.NoError(t, apply("admin", fpB))
	require.NoError(t, apply("admin", fpA), "revoking twice is harmless")
	list, err := state.RevokedCerts(f.m.Store().Meta)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, fpB, list[0].Fingerprint, "ordered by fingerprint")
	assert.Equal(t, state.RevokedCert{Fingerprint: fpA, Name: "app", By: "admin", Time: 1_800_000_000}, list[1])
	assert.Equal(t, 3, heard)
	fps, err := state.RevokedFingerprints(f.m.Store().Meta)
	require.NoError(t, err)
	assert.Len(t, fps, 2)

	// A crypto user's command, a forged actor, bad fingerprints: refused,
	// nothing changes.
	wantRV(t, "CU", apply("alice", strings.Repeat("c", 64)), ck.CKR_USER_NOT_LOGGED_IN)
	wantRV(t, "unknown actor", apply("ghost", strings.Repeat("c", 64)), ck.CKR_USER_PIN_NOT_INITIALIZED)
	for _, bad := range []string{"", "abc", strings.Repeat("A", 64), strings.Repeat("g", 64), strings.Repeat("a", 66)} {
		wantRV(t, "fingerprint "+bad, apply("admin", bad), ck.CKR_ARGUMENTS_BAD)
	}
	err = f.rec.Submit(ctx, &state.Command{Op: state.OpRevokeCert, Actor: "admin", Fingerprint: strings.Repeat("d", 64), Name: "a\nb"})
	wantRV(t, "control characters", err, ck.CKR_ARGUMENTS_BAD)
	again, err := state.RevokedCerts(f.m.Store().Meta)
	require.NoError(t, err)
	assert.Equal(t, list, again)

	// Through the engine: a CU is refused before anything is submitted.
	wantRV(t, "engine CU", f.e.RevokeCert(ctx, f.alice, strings.Repeat("e", 64), ""), ck.CKR_USER_NOT_LOGGED_IN)
	require.NoError(t, f.e.RevokeCert(ctx, f.co, strings.Repeat("e", 64), "x"))
	got, err := f.e.ListRevokedCerts(f.alice)
	require.NoError(t, err)
	assert.Len(t, got, 3)
}
