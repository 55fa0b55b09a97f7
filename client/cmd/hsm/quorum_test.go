package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openhsm/openhsm/client"
	"github.com/stretchr/testify/require"
)

func TestQuorumUsageErrors(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HSM_USER": "admin", "HSM_PASSWORD": "pw-from-env", client.EnvConfig: filepath.Join(dir, "none.toml")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"quorum"}, "missing subcommand"},
		{[]string{"quorum", "explode"}, `unknown subcommand "explode"`},
		{[]string{"quorum", "token"}, "missing subcommand"},
		{[]string{"quorum", "token", "burn"}, `unknown subcommand "burn"`},
		{[]string{"quorum", "keygen"}, "-o FILE is required"},
		{[]string{"quorum", "keygen", "-o", filepath.Join(dir, "k"), "--type", "rsa"}, "--type"},
		{[]string{"quorum", "register-key"}, "--key FILE is required"},
		{[]string{"quorum", "set", "--service", "backups", "--m", "2"}, "--service"},
		{[]string{"quorum", "set", "--service", "user-management", "--m", "9"}, "--m"},
		{[]string{"quorum", "set", "--service", "user-management"}, "--m"},
		{[]string{"quorum", "token", "create"}, "--service"},
		{[]string{"quorum", "token", "approve"}, "missing ID"},
	} {
		r := runHSM(t, env, "", tc.args...)
		require.Equal(t, 2, r.code, "%v: %+v", tc.args, r)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
}

// keygen writes a private key only its owner can read, never over an
// existing file, and register-key reads it back.
func TestQuorumKeygen(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "approver.pem")
	for _, typ := range []string{"ecdsa-p256", "ed25519"} {
		os.Remove(f)
		r := runHSM(t, nil, "", "quorum", "keygen", "-o", f, "--type", typ)
		require.Equal(t, 0, r.code, "%+v", r)
		st, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		priv, err := readQuorumKey(f)
		require.NoError(t, err)
		fp, err := quorumFingerprint(priv)
		require.NoError(t, err)
		require.Contains(t, r.stdout, fp)
		before, err := os.ReadFile(f)
		require.NoError(t, err)
		r = runHSM(t, nil, "", "quorum", "keygen", "-o", f)
		require.Equal(t, 1, r.code, "keygen overwrote a key file")
		after, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Equal(t, before, after)
	}
	// Not a key.
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600))
	_, err := readQuorumKey(bad)
	require.Error(t, err)
}
