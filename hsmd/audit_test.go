package hsmd

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lossyApplier applies commands for real but, while lose is set, answers
// as a cluster that lost its leader mid-commit: the outcome unknown.
type lossyApplier struct {
	next engine.Applier
	mu   sync.Mutex
	lose bool
	sent int
}

func (a *lossyApplier) Submit(ctx context.Context, c *state.Command) error {
	a.mu.Lock()
	lose := a.lose
	a.sent++
	a.mu.Unlock()
	err := a.next.Submit(ctx, c)
	if lose {
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the cluster lost its leader while committing the change; its outcome is unknown")
	}
	return err
}

func newAuditMachine(t *testing.T) (*state.Machine, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "hsm.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	sealer, dk, err := seal.NewDomainKey("test", seal.KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	m := state.NewMachine(st, nil, nil)
	require.NoError(t, (&engine.LocalApplier{M: m}).Submit(context.Background(), &state.Command{Op: state.OpInit, Domain: dk.Marshal()}))
	m.SetSealer(sealer)
	return m, st
}

func sumUses(t *testing.T, st state.Store, object uint64) (n uint64) {
	t.Helper()
	recs, err := st.AuditRecords(state.AuditQuery{Object: object})
	require.NoError(t, err)
	for _, r := range recs {
		if r.Kind == audit.KindUse {
			n += r.Count
		}
	}
	return n
}

// TestUseCounterCountsExactly: counts of finished seconds are sent once;
// a batch whose outcome was lost is resent as it is and applied once; a
// shutdown flush sends the current second too.
func TestUseCounterCountsExactly(t *testing.T) {
	m, st := newAuditMachine(t)
	a := &lossyApplier{next: &engine.LocalApplier{M: m}}
	u := newUseCounter("n1", m.Sealer, a, 0, slog.New(slog.DiscardHandler))
	now := time.Unix(2_000_000_000, 0)
	u.now = func() time.Time { return now }
	k := useKey{time: now.Unix(), user: "alice", cert: [32]byte{1}, object: 9, op: audit.UseSign}
	for range 1000 {
		u.add(k)
	}
	ctx := context.Background()
	require.NoError(t, u.flush(ctx, false))
	assert.Zero(t, sumUses(t, st, 9), "the current second is still counting")

	now = now.Add(time.Second)
	a.lose = true
	require.Error(t, u.flush(ctx, false))
	require.NotNil(t, u.pending)
	assert.Equal(t, uint64(1000), sumUses(t, st, 9), "applied, though the answer was lost")
	a.lose = false
	k.time = now.Unix()
	u.add(k)
	require.NoError(t, u.flush(ctx, true))
	assert.Nil(t, u.pending)
	assert.Equal(t, uint64(1001), sumUses(t, st, 9), "the resent batch counted once, the last second flushed")
	recs, err := st.AuditRecords(state.AuditQuery{Object: 9})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Len(t, recs[0].Cert, 64)
	rep, err := state.VerifyAudit(st, m.Sealer())
	require.NoError(t, err)
	assert.True(t, rep.OK, "%+v", rep)
}

// TestUseCounterKeepsCountsWhenTheClusterIsDown: counts that could not be
// sent stay in memory and go with the next flush.
func TestUseCounterKeepsCountsWhenTheClusterIsDown(t *testing.T) {
	m, st := newAuditMachine(t)
	down := &downApplier{}
	u := newUseCounter("n1", m.Sealer, down, 0, slog.New(slog.DiscardHandler))
	for i := range 3 {
		u.add(useKey{time: int64(i), user: "bob", object: 4, op: audit.UseDecrypt})
	}
	require.Error(t, u.flush(context.Background(), true))
	u.applier = &engine.LocalApplier{M: m}
	require.NoError(t, u.flush(context.Background(), true))
	assert.Equal(t, uint64(3), sumUses(t, st, 4))
}

// downApplier is a cluster with no leader: nothing is executed.
type downApplier struct{}

func (downApplier) Submit(context.Context, *state.Command) error {
	return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "no cluster leader could take the change")
}

// TestUseCounterIsBounded: requests naming ever more keys fold into one
// counter (object 0) past the bound, and every use is still counted.
func TestUseCounterIsBounded(t *testing.T) {
	m, st := newAuditMachine(t)
	u := newUseCounter("n1", m.Sealer, &engine.LocalApplier{M: m}, 0, slog.New(slog.DiscardHandler))
	extra := 50
	for i := range maxUseCounters + extra {
		u.add(useKey{time: 1, user: "mallory", object: uint64(i + 1), op: audit.UseSign, result: ck.CKR_KEY_HANDLE_INVALID})
	}
	assert.Len(t, u.counts, maxUseCounters+1)
	require.NoError(t, u.flush(context.Background(), true))
	recs, err := st.AuditRecords(state.AuditQuery{User: "mallory"})
	require.NoError(t, err)
	var total, folded uint64
	for _, r := range recs {
		total += r.Count
		if r.Object == 0 {
			folded += r.Count
		}
	}
	assert.Equal(t, uint64(extra), folded)
	assert.Equal(t, uint64(maxUseCounters+extra), total)
}

func BenchmarkCountUse(b *testing.B) {
	u := newUseCounter("n1", nil, nil, 0, slog.New(slog.DiscardHandler))
	k := useKey{time: 1, user: "alice", object: 9, op: audit.UseSign}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.add(k)
		}
	})
}
