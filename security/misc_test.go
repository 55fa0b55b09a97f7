package security

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/tokens"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func miscCopyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// TestAttackMiscStoreAheadOfLog: a node whose Raft log lost its tail while
// the store kept it (what sync = false and a crash can do, played here by
// putting back an older copy of the log) would hold commands the cluster
// never committed. It must refuse to start, say why, and change nothing.
func TestAttackMiscStoreAheadOfLog(t *testing.T) {
	c := testcluster.StartWith(t, 1, "sync = false")
	raftDB := filepath.Join(c.Dir, "node1", "raft", "raft.db")
	saved := filepath.Join(t.TempDir(), "raft.db")

	c.Stop(1, false)
	miscCopyFile(t, raftDB, saved)
	_, err := c.StartNode(1)
	require.NoError(t, err)

	cu := pinned(t, c, 1, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])
	for i := 0; i < 5; i++ {
		_, err := cu.GenerateKey(ctx, tokens.Mech{Type: ck.CKM_AES_KEY_GEN}, tokens.Template{
			{Type: ck.CKA_TOKEN, Value: tokens.EncodeBool(true)},
			{Type: ck.CKA_VALUE_LEN, Value: tokens.EncodeUlong(32)},
		})
		require.NoError(t, err)
	}
	cu.Close()
	c.Stop(1, false)

	store := filepath.Join(c.Dir, "node1", "hsm.db")
	before, err := os.ReadFile(store)
	require.NoError(t, err)
	miscCopyFile(t, saved, raftDB)

	out, err := c.StartNode(1)
	require.Error(t, err, "a node whose store is ahead of its log started")
	assert.Contains(t, string(out), "ahead", "the refusal says why")
	assert.Contains(t, string(out), "hsmd init -join", "the refusal says what to do")
	after, err := os.ReadFile(store)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the refused start changed the store")
}
