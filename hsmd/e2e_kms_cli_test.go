package hsmd_test

// `hsm kms principal ...` against real nodes (scripts/cluster.sh through
// internal/testcluster): a node without [kms] refuses clearly, a crypto
// user is refused, and on a node that serves KMS the principal's life
// cycle runs end to end.

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/hsmd"
	"github.com/openhsm/openhsm/internal/testcluster"
)

type cliRun struct {
	code           int
	stdout, stderr string
}

// hsmCLI runs the built hsm of cl as user with password.
func hsmCLI(t *testing.T, cl *testcluster.Cluster, user, password string, args ...string) cliRun {
	t.Helper()
	cmd := exec.Command(filepath.Join(cl.BinDir(), "hsm"), args...)
	cmd.Env = append(os.Environ(), "HSM_CONFIG="+cl.Env["HSM_CONFIG"], "HSM_USER="+user, "HSM_PASSWORD="+password)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	for _, pw := range []string{cl.Env["HSM_PASSWORD"], cl.Env["P11_PIN"]} {
		require.NotContains(t, r.stdout+r.stderr, pw, "hsm %q printed a password", args)
	}
	return r
}

const noKMS = "the KMS service is not enabled on this node: set [kms] in the node config"

// A node whose config has no [kms] section refuses every principal call
// with CKR_FUNCTION_NOT_SUPPORTED and says why, --json or not, and prints
// nothing on standard output; a crypto user is refused for its role.
func TestKMSPrincipalCLIWithoutKMS(t *testing.T) {
	// Asks cluster.sh for nodes without [kms], once it gives them one by
	// default.
	t.Setenv("HSM_NO_KMS", "1")
	cl := testcluster.Start(t, 1)
	co, coPW := cl.Env["HSM_USER"], cl.Env["HSM_PASSWORD"]
	for _, args := range [][]string{
		{"kms", "principal", "create", "ci"},
		{"kms", "principal", "create", "ci", "--json"},
		{"kms", "principal", "list"},
		{"--json", "kms", "principal", "list"},
		{"kms", "principal", "delete", "ci"},
		{"kms", "principal", "rotate-key", "ci"},
		{"kms", "principal", "rotate-key", "ci", "--json"},
	} {
		r := hsmCLI(t, cl, co, coPW, args...)
		assert.Equal(t, 1, r.code, "%q: %s", args, r.stderr)
		assert.Empty(t, r.stdout, "%q", args)
		assert.Contains(t, r.stderr, "CKR_FUNCTION_NOT_SUPPORTED", "%q", args)
		require.Contains(t, r.stderr, noKMS, "%q: this test needs a node without [kms]", args)

		r = hsmCLI(t, cl, "cu1", cl.Env["P11_PIN"], args...)
		assert.Equal(t, 1, r.code, "%q: %s", args, r.stderr)
		assert.Empty(t, r.stdout, "%q", args)
		assert.Contains(t, r.stderr, "CKR_USER_NOT_LOGGED_IN", "%q", args)
		assert.Contains(t, r.stderr, "only a crypto officer may", "%q", args)
		assert.Contains(t, r.stderr, `next: you are logged in as "cu1", a crypto user; this command needs a crypto officer`, "%q", args)
		assert.NotContains(t, r.stderr, noKMS, "%q: a crypto user learns nothing of the node's KMS", args)
	}
	// A bad name is a usage error; nothing is sent.
	r := hsmCLI(t, cl, co, coPW, "kms", "principal", "create", "no/slash")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "NAME: a KMS principal name holds only")
}

// nodeConfigHasKMS reports whether hsmd's node config has a [kms] section
// (the KMS listener's wiring adds it): without one no node serves KMS.
func nodeConfigHasKMS() bool {
	ct := reflect.TypeFor[hsmd.Config]()
	for i := range ct.NumField() {
		if tag, _, _ := strings.Cut(ct.Field(i).Tag.Get("toml"), ","); tag == "kms" {
			return true
		}
	}
	return false
}

// The life cycle of a principal through the CLI on a node that serves KMS
// (cluster.sh configures [kms] on every node): create prints the key once,
// list shows it without the secret, rotate-key gives a new key, delete
// removes it.
func TestKMSPrincipalCLI(t *testing.T) {
	if !nodeConfigHasKMS() {
		t.Skip("hsmd's node config has no [kms] section yet (the KMS listener is not wired): no node can serve KMS")
	}
	cl := testcluster.Start(t, 1)
	co, coPW := cl.Env["HSM_USER"], cl.Env["HSM_PASSWORD"]
	hsm := func(args ...string) cliRun { t.Helper(); return hsmCLI(t, cl, co, coPW, args...) }

	r := hsm("kms", "principal", "create", "alice", "--json")
	if r.code != 0 {
		require.NotContains(t, r.stderr, noKMS, "cluster.sh started the node without [kms]")
		t.Fatalf("kms principal create: exit %d: %s", r.code, r.stderr)
	}
	var members map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &members))
	assert.ElementsMatch(t, []string{"Name", "Arn", "AccessKeyId", "SecretAccessKey", "Created"}, slices.Collect(maps.Keys(members)))
	var alice struct{ Name, Arn, AccessKeyId, SecretAccessKey, Created string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &alice))
	assert.Equal(t, "alice", alice.Name)
	assert.Contains(t, alice.Arn, "alice")
	require.NotEmpty(t, alice.AccessKeyId)
	require.NotEmpty(t, alice.SecretAccessKey)
	created, err := time.Parse(time.RFC3339, alice.Created)
	require.NoError(t, err, alice.Created)
	assert.WithinDuration(t, time.Now(), created, time.Hour)
	secrets := []string{alice.SecretAccessKey}

	// list shows it, never the secret.
	list := func() []map[string]string {
		t.Helper()
		r := hsm("kms", "principal", "list", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		for _, s := range secrets {
			require.NotContains(t, r.stdout, s, "list shows a secret")
		}
		var all []map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &all), r.stdout)
		// cluster.sh made the principal it prints (KMS_PRINCIPAL, "app").
		var rows []map[string]string
		for _, row := range all {
			if row["Name"] != "app" {
				rows = append(rows, row)
			}
		}
		return rows
	}
	rows := list()
	require.Len(t, rows, 1)
	assert.Equal(t, map[string]string{"Name": "alice", "Arn": alice.Arn, "AccessKeyId": alice.AccessKeyId, "Created": alice.Created}, rows[0])
	r = hsm("kms", "principal", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, alice.AccessKeyId)
	assert.NotContains(t, r.stdout, alice.SecretAccessKey)

	// A second principal of the same name is refused; a crypto user may
	// not even list.
	r = hsm("kms", "principal", "create", "alice")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	r = hsmCLI(t, cl, "cu1", cl.Env["P11_PIN"], "kms", "principal", "list")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "CKR_USER_NOT_LOGGED_IN")

	// rotate-key, human output: a new key, its secret once, export lines.
	r = hsm("kms", "principal", "rotate-key", "alice")
	require.Equal(t, 0, r.code, r.stderr)
	exports := map[string]string{}
	for _, l := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok && strings.HasPrefix(l, "export ") {
			exports[k] = strings.Trim(v, "'")
		}
	}
	newID, newSecret := exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]
	require.NotEmpty(t, newID, r.stdout)
	require.NotEmpty(t, newSecret, r.stdout)
	assert.NotEqual(t, alice.AccessKeyId, newID)
	assert.NotEqual(t, alice.SecretAccessKey, newSecret)
	assert.Equal(t, 1, strings.Count(r.stdout, newSecret), "the secret is printed once")
	assert.Contains(t, r.stdout, "shown this once and never again")
	secrets = append(secrets, newSecret)
	rows = list()
	require.Len(t, rows, 1)
	assert.Equal(t, newID, rows[0]["AccessKeyId"])

	// delete: gone from the list; a second delete is refused.
	r = hsm("kms", "principal", "delete", "alice")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, list())
	r = hsm("kms", "principal", "delete", "alice")
	assert.Equal(t, 1, r.code, r.stderr)
	r = hsm("kms", "principal", "rotate-key", "alice")
	assert.Equal(t, 1, r.code, r.stderr)

	// No secret reached the node's log.
	log, err := os.ReadFile(cl.LogFile(1))
	require.NoError(t, err)
	for _, s := range secrets {
		assert.NotContains(t, string(log), s, "the node logged a secret access key")
	}
}
