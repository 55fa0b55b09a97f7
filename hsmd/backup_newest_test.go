package hsmd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openhsm/openhsm/backup"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newest reads the backups' headers again only when backup_dir changed,
// and then sees every change: a new backup, a pruned one, a file renamed
// in, the folder gone.
func TestBackupsNewestFollowsTheFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	b := &backups{cfg: &Config{BackupDir: dir}}
	s, rec, err := seal.NewDomainKey("c1", seal.KEKSource{KeyFile: make([]byte, 32)})
	require.NoError(t, err)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "tokens.db"), sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Update(1, func(tx state.Tx) error { return tx.PutMeta(state.MetaDomainKey, rec.Marshal()) }))
	write := func(created time.Time) string {
		sn, err := st.Snapshot()
		require.NoError(t, err)
		defer sn.Close()
		path, err := backup.WriteFile(dir, s, backup.Header{ClusterID: "c1", Node: "n1", Created: created, SealedDomainKey: rec.Marshal()}, sn, nil)
		require.NoError(t, err)
		return path
	}
	// The folder's modification time, set back (to another time each call)
	// so that newest trusts it.
	back := time.Now().Add(-time.Hour)
	settle := func() {
		back = back.Add(time.Second)
		require.NoError(t, os.Chtimes(dir, back, back))
	}
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)

	assert.True(t, b.newest().IsZero(), "no folder")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	settle()
	assert.True(t, b.newest().IsZero(), "an empty folder")

	p1 := write(t1)
	settle()
	assert.Equal(t, t1, b.newest())

	// Unchanged, the folder is not read again: a header rewritten in place
	// (which leaves the folder's time alone) is not seen.
	require.NoError(t, os.WriteFile(p1, []byte("garbage"), 0o600))
	assert.Equal(t, t1, b.newest(), "the folder did not change")

	p2 := write(t2)
	settle()
	assert.Equal(t, t2, b.newest(), "a new backup")

	require.NoError(t, os.Remove(p2))
	settle()
	assert.True(t, b.newest().IsZero(), "the newest removed; the other is unreadable")

	// Within a second of a change, newest reads the folder every time.
	write(t1)
	assert.Equal(t, t1, b.newest())
	require.NoError(t, os.RemoveAll(dir))
	assert.True(t, b.newest().IsZero(), "the folder gone")
}
