package testcluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRemoveBinaries: the folders Bin and BinTags built into are gone after
// RemoveBinaries, and BinTags forgets them.
func TestRemoveBinaries(t *testing.T) {
	plain, err := os.MkdirTemp("", "openhsm-bin-")
	require.NoError(t, err)
	tagged, err := os.MkdirTemp("", "openhsm-bin-tags-")
	require.NoError(t, err)
	for _, d := range []string{plain, tagged} {
		require.NoError(t, os.WriteFile(filepath.Join(d, "hsmd"), []byte("binary"), 0o755))
	}
	saved := binDir
	binDir = plain
	t.Cleanup(func() { binDir = saved })
	tagMu.Lock()
	tagBins["faultinject"] = tagged
	tagMu.Unlock()

	RemoveBinaries()
	for _, d := range []string{plain, tagged} {
		_, err := os.Stat(d)
		assert.True(t, os.IsNotExist(err), "%s is still there: %v", d, err)
	}
	tagMu.Lock()
	defer tagMu.Unlock()
	assert.Empty(t, tagBins)
}
