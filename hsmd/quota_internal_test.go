package hsmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openhsm/openhsm/engine"
	"github.com/stretchr/testify/require"
)

func TestSessionQuota(t *testing.T) {
	q := newSessionQuota(2)
	require.NoError(t, q.admit(1, "alice"))
	require.NoError(t, q.admit(1, "alice"), "a session already counted is admitted again")
	require.NoError(t, q.admit(2, "alice"))
	require.Error(t, q.admit(3, "alice"))
	require.NoError(t, q.admit(4, "bob"))
	q.drop(1)
	q.drop(1)
	require.Equal(t, 1, q.held("alice"))
	require.NoError(t, q.admit(3, "alice"))
	q.drop(2)
	q.drop(3)
	require.Equal(t, 0, q.held("alice"))
}

func TestQuotaConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "n.pem", "n-key.pem", "pass"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	base := "node = \"n1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"pass\"\n"
	load := func(extra string) (*Config, error) {
		p := filepath.Join(dir, "node.toml")
		require.NoError(t, os.WriteFile(p, []byte(base+extra), 0o600))
		return LoadConfig(p)
	}
	c, err := load("")
	require.NoError(t, err)
	require.Equal(t, DefaultMaxSessionsPerUser, c.MaxSessionsPerUser)
	require.Equal(t, engine.DefaultSessionObjects, c.MaxSessionObjects)
	c, err = load("max_sessions_per_user = 8\nmax_session_objects = 50\n")
	require.NoError(t, err)
	require.Equal(t, 8, c.MaxSessionsPerUser)
	require.Equal(t, 50, c.MaxSessionObjects)
	for _, bad := range []string{"max_sessions_per_user = -1\n", "max_session_objects = -5\n", "max_session_objects = 2000000\n"} {
		_, err := load(bad)
		require.Error(t, err, bad)
	}
}
