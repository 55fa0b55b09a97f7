package security

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/tokens"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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

// miscProcStatus reads one field of /proc/PID/<file> of node k.
func miscNodeProc(t *testing.T, c *testcluster.Cluster, k int, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", k)))
	require.NoError(t, err)
	out, err := os.ReadFile(fmt.Sprintf("/proc/%s/%s", strings.TrimSpace(string(b)), file))
	require.NoError(t, err)
	return string(out)
}

// TestAttackMiscNoCoreDump: someone who can crash the daemon, or read what
// the host keeps of a crashed process, must not find the domain key in a
// core file. The daemon turns core files off before it unseals anything,
// and locks its memory out of swap where the host lets it.
func TestAttackMiscNoCoreDump(t *testing.T) {
	c := testcluster.Start(t, 1)
	limits := miscNodeProc(t, c, 1, "limits")
	assert.Regexp(t, `(?m)^Max core file size\s+0\s+0\s+bytes`, limits)

	// Whether memory can be locked is the host's choice: ask the kernel
	// whether this (same-user) process could lift the limit, as hsmd does.
	var cur unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur))
	canLock := cur.Cur == unix.RLIM_INFINITY || unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}) == nil
	status := miscNodeProc(t, c, 1, "status")
	log, err := os.ReadFile(c.LogFile(1))
	require.NoError(t, err)
	if canLock {
		assert.NotRegexp(t, `(?m)^VmLck:\s+0 kB`, status, "the host allows locking, yet hsmd's memory is not locked")
	} else {
		assert.Contains(t, string(log), "memory is not locked", "hsmd says that its memory could not be locked")
	}
}
