package security

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/stretchr/testify/require"
)

var ctx = context.Background()

// pinned dials node k of c alone and, if user is not empty, logs in.
func pinned(t *testing.T, c *testcluster.Cluster, k int, user, password string) *client.Client {
	t.Helper()
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	require.NoError(t, err)
	cfg.Nodes = []string{c.Addr(k)}
	cl, err := client.Dial(ctx, cfg)
	require.NoError(t, err, "dial node%d", k)
	t.Cleanup(func() { cl.Close() })
	if user != "" {
		require.NoError(t, cl.Login(ctx, user, password), "login %s on node%d", user, k)
	}
	return cl
}

// secret reads a password file the cluster script wrote (co.password,
// cu.password, passphrase).
func secret(t *testing.T, c *testcluster.Cluster, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, name))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}
