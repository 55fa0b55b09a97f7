package cluster

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fsm.ApplyBatch gives each log entry its own result in its own place
// (configuration entries none, refusals their own), moves the applied index
// to the last command the store took, and on a store failure stops there
// and calls fatal once.
func TestFSMApplyBatch(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "hsm.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	var fatals []error
	// No sealer: init applies, a command that needs the domain key is a
	// store failure on this node (state.StoreError).
	f, err := newFSM(state.NewMachine(st, nil, nil), slog.New(slog.NewTextHandler(io.Discard, nil)), func(err error) { fatals = append(fatals, err) })
	require.NoError(t, err)
	_, dk, err := seal.NewDomainKey("test", seal.KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	enc := func(c *state.Command) []byte {
		b, err := c.Encode()
		require.NoError(t, err)
		return b
	}
	initCmd := enc(&state.Command{Op: state.OpInit, Domain: dk.Marshal()})
	cmd := func(i uint64, data []byte) *raft.Log { return &raft.Log{Index: i, Type: raft.LogCommand, Data: data} }
	conf := func(i uint64) *raft.Log { return &raft.Log{Index: i, Type: raft.LogConfiguration} }

	out := f.ApplyBatch([]*raft.Log{conf(1), cmd(2, []byte("not a command")), cmd(3, initCmd), conf(4), cmd(5, initCmd)})
	require.Len(t, out, 5)
	assert.Nil(t, out[0], "a configuration entry has no result")
	assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(out[1].(error)), "%v", out[1])
	assert.Nil(t, out[2])
	assert.Nil(t, out[3])
	assert.Equal(t, uint64(ck.CKR_FUNCTION_FAILED), hsmerr.RV(out[4].(error)), "the second init is refused: %v", out[4])
	assert.Equal(t, uint64(5), f.Applied())
	assert.Empty(t, fatals)

	out = f.ApplyBatch([]*raft.Log{cmd(6, enc(&state.Command{Op: state.OpLogout})), conf(7), cmd(8, initCmd)})
	require.Len(t, out, 3)
	var se *state.StoreError
	require.ErrorAs(t, out[0].(error), &se)
	assert.Nil(t, out[1])
	require.ErrorAs(t, out[2].(error), &se, "not applied after the failure")
	assert.ErrorIs(t, out[2].(error), state.ErrNotApplied)
	require.Len(t, fatals, 1, "fatal is called once, with the first failure")
	assert.Same(t, out[0], fatals[0])
	assert.Equal(t, uint64(5), f.Applied(), "the index stays before the failed command")
	idx, err := st.AppliedIndex()
	require.NoError(t, err)
	assert.Equal(t, uint64(5), idx)
}
