package testcluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

func TestMain(m *testing.M) { Main(m) }

// TestPortsBelowEphemeralRange: cluster.sh gives every listener of a node a
// port of its own below the kernel's ephemeral range, so that no outgoing
// connection can be holding it while the node is down, and a node killed
// and started again listens on the same ports.
func TestPortsBelowEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	require.NoError(t, err)
	var low, high int
	_, err = fmt.Sscan(string(b), &low, &high)
	require.NoError(t, err)
	require.GreaterOrEqual(t, low, 32000, "the kernel's ephemeral range starts below the ports cluster.sh picks")

	c := Start(t, 1)
	read := func() []string {
		var addrs []string
		for _, f := range []string{"node1.addr", "node1.kms.addr", "node1.metrics.addr"} {
			b, err := os.ReadFile(filepath.Join(c.Dir, f))
			require.NoError(t, err)
			addrs = append(addrs, strings.TrimSpace(string(b)))
		}
		return addrs
	}
	before := read()
	seen := map[int]bool{}
	for _, a := range before {
		_, port, err := net.SplitHostPort(a)
		require.NoError(t, err)
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		assert.True(t, p >= 10000 && p < 32000, "port %d is not in 10000-31999", p)
		assert.False(t, seen[p], "port %d twice", p)
		seen[p] = true
	}
	c.Stop(1, true)
	out, err := c.StartNode(1)
	require.NoError(t, err, "%s", out)
	assert.Equal(t, before, read(), "the node came back on other ports")
}
