package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/pki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClusterInitClusterID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	r := runHSM(t, nil, "", "--json", "cluster", "init", "--dir", dir, "--nodes", "1", "--cluster-id", "prod-7")
	require.Equal(t, 0, r.code, r.stderr)
	var res initResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, "prod-7", res.ClusterID)
	for _, f := range []string{pki.CACertFile, "node1.pem", "client.pem"} {
		id, err := pki.CertFileClusterID(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, "prod-7", id, f)
	}

	// A random one by default.
	r = runHSM(t, nil, "", "--json", "cluster", "init", "--dir", filepath.Join(t.TempDir(), "pki"), "--nodes", "1")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.NoError(t, pki.ValidateClusterID(res.ClusterID))
	assert.NotEqual(t, "prod-7", res.ClusterID)

	for _, args := range [][]string{
		{"--cluster-id", "a/b"},
		{"--cluster-id", "x", "--backup", "f"},
	} {
		r := runHSM(t, nil, "", append([]string{"cluster", "init", "--dir", filepath.Join(t.TempDir(), "p")}, args...)...)
		assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
	}
	notBackup := filepath.Join(t.TempDir(), "nb")
	require.NoError(t, os.WriteFile(notBackup, []byte("not a backup"), 0o600))
	r = runHSM(t, nil, "", "cluster", "init", "--dir", filepath.Join(t.TempDir(), "p"), "--backup", notBackup)
	assert.Equal(t, 1, r.code, r.stderr)
}

func TestCertRenewCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	r := runHSM(t, nil, "", "cluster", "init", "--dir", dir, "--nodes", "1")
	require.Equal(t, 0, r.code, r.stderr)
	old, _, err := pki.CertFileFingerprint(pki.CertPath(dir, "client"))
	require.NoError(t, err)

	r = runHSM(t, nil, "", "--json", "cert", "renew", "--dir", dir, "client")
	require.Equal(t, 0, r.code, r.stderr)
	var out map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, hex.EncodeToString(old[:]), out["old"])
	fresh, _, err := pki.CertFileFingerprint(pki.CertPath(dir, "client"))
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(fresh[:]), out["new"])
	assert.NotEqual(t, old, fresh)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cert", "renew", "client"}, 2, "--dir is required"},
		{[]string{"cert", "renew", "--dir", dir, "../x"}, 2, "NAME"},
		{[]string{"cert", "renew", "--dir", dir, "nobody"}, 1, "nobody.pem"},
		{[]string{"cert", "revoke", "not-a-fingerprint"}, 2, "neither a certificate file nor a fingerprint"},
		{[]string{"cert", "revoke"}, 2, "missing"},
		{[]string{"cert", "frob"}, 2, `unknown subcommand "frob"`},
	} {
		r := runHSM(t, nil, "", tc.args...)
		assert.Equal(t, tc.code, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
}

func TestFingerprintArg(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	r := runHSM(t, nil, "", "cluster", "init", "--dir", dir, "--nodes", "1")
	require.Equal(t, 0, r.code, r.stderr)
	fp, cn, err := fingerprintArg("x", pki.CertPath(dir, "node1"))
	require.NoError(t, err)
	assert.Equal(t, "node1", cn)
	again, cn, err := fingerprintArg("x", "SHA256:"+strings.ToUpper(fp))
	require.NoError(t, err)
	assert.Equal(t, fp, again)
	assert.Empty(t, cn)
	_, _, err = fingerprintArg("x", pki.KeyPath(dir, "node1"))
	assert.Error(t, err, "a key file is not a certificate")
}
