package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/client"
)

// Bad command lines are usage errors (exit 2) before any configuration
// is read or any login made: the configuration here does not exist.
func TestKMSPrincipalUsageErrors(t *testing.T) {
	env := map[string]string{envUser: "admin", envPassword: "pw-from-env", client.EnvConfig: filepath.Join(t.TempDir(), "none.toml")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"kms"}, "kms: missing subcommand"},
		{[]string{"kms", "principals"}, `unknown subcommand "principals"; did you mean principal?`},
		{[]string{"kms", "principal"}, "kms principal: missing subcommand"},
		{[]string{"kms", "principal", "rotate"}, `unknown subcommand "rotate"`},
		{[]string{"kms", "principal", "create"}, "missing NAME"},
		{[]string{"kms", "principal", "create", ""}, "NAME is empty"},
		{[]string{"kms", "principal", "create", "a", "b"}, "too many arguments"},
		{[]string{"kms", "principal", "create", "has space"}, `kms principal create: NAME: a KMS principal name holds only ASCII letters, digits and +=,.@_-; character 4, ' ', is not one`},
		{[]string{"kms", "principal", "create", "a/b"}, "character 2, '/'"},
		{[]string{"kms", "principal", "create", "--json", "arn:aws:iam::1:user/x"}, "character 4, ':'"},
		{[]string{"kms", "principal", "create", strings.Repeat("n", 65)}, "1 to 64 characters, not 65"},
		{[]string{"kms", "principal", "delete"}, "missing NAME"},
		{[]string{"kms", "principal", "delete", "ünï"}, "kms principal delete: NAME"},
		{[]string{"kms", "principal", "rotate-key", "x*"}, "kms principal rotate-key: NAME"},
		{[]string{"kms", "principal", "rotate-key"}, "missing NAME"},
		{[]string{"kms", "principal", "list", "alice"}, "too many arguments"},
		{[]string{"kms", "principal", "create", "alice", "--secret", "x"}, "unknown flag: --secret"},
	} {
		r := runHSM(t, env, "", tc.args...)
		assert.Equal(t, 2, r.code, "%q: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
		assert.Empty(t, r.stdout, "%q", tc.args)
		assert.NotContains(t, r.stderr, "pw-from-env")
	}
	// A good name gets past the checks to the configuration.
	r := runHSM(t, env, "", "kms", "principal", "create", strings.Repeat("n", 64))
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "none.toml")
	r = runHSM(t, env, "", "kms", "principal", "create", "Ci.Deployer+1=a,b@c_d-e")
	assert.Equal(t, 1, r.code, r.stderr)
}

var testCreds = &client.KMSCredentials{
	KMSPrincipal: client.KMSPrincipal{Name: "ci", ARN: "arn:aws:iam::123456789012:user/ci", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
		Created: time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))},
	SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}

// The human output shows the secret once, in a line a shell takes as
// it is, with the warning that it is not shown again.
func TestCredentialsText(t *testing.T) {
	out := credentialsText(testCreds)
	assert.Equal(t, 1, strings.Count(out, testCreds.SecretAccessKey), out)
	assert.Contains(t, out, "access key ID:  AKIAIOSFODNN7EXAMPLE\n")
	assert.Contains(t, out, "shown this once and never again")
	assert.Contains(t, out, "'hsm kms principal rotate-key ci'")
	assert.Contains(t, out, "\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nexport AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")

	// The export lines set exactly those values in a real shell.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	odd := *testCreds
	odd.SecretAccessKey = `a'b"c $(touch pwned) ` + "`x`;\\"
	var lines []string
	for _, l := range strings.Split(credentialsText(&odd), "\n") {
		if strings.HasPrefix(l, "export ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 2)
	dir := t.TempDir()
	cmd := exec.Command(sh, "-c", strings.Join(lines, "\n")+"\nprintf '%s\\n%s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\"")
	cmd.Dir = dir
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, odd.AccessKeyID+"\n"+odd.SecretAccessKey, string(got))
	assert.NoFileExists(t, filepath.Join(dir, "pwned"))
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"AKIAIOSFODNN7EXAMPLE": "AKIAIOSFODNN7EXAMPLE",
		"a/b+c=d":              "a/b+c=d",
		"":                     "''",
		"a b":                  "'a b'",
		"it's":                 `'it'\''s'`,
		"$HOME":                "'$HOME'",
	} {
		assert.Equal(t, want, shellQuote(in), "%q", in)
	}
}

// --json of create and rotate-key has exactly these members, which
// scripts/cluster.sh reads; list's the same without the secret.
func TestPrincipalJSONShape(t *testing.T) {
	b, err := json.Marshal(credentialsJSON{Name: testCreds.Name, Arn: testCreds.ARN, AccessKeyId: testCreds.AccessKeyID,
		SecretAccessKey: testCreds.SecretAccessKey, Created: rfc3339(testCreds.Created)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Name":"ci","Arn":"arn:aws:iam::123456789012:user/ci","AccessKeyId":"AKIAIOSFODNN7EXAMPLE",
		"SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","Created":"2025-03-04T04:06:07Z"}`, string(b))
	b, err = json.Marshal(principalJSON{Name: "ci"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Name":"ci","Arn":"","AccessKeyId":"","Created":""}`, string(b))
}

// kms cluster and cluster issue-client: bad command lines are usage
// errors (exit 2), and unreadable or mismatched files are named before
// any login; the key's content is never printed.
func TestKMSClusterUsageErrors(t *testing.T) {
	env := map[string]string{envUser: "admin", envPassword: "pw-from-env", client.EnvConfig: filepath.Join(t.TempDir(), "none.toml")}
	const id = "cluster-abcdefghijk2"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"kms", "cluster"}, "kms cluster: missing subcommand"},
		{[]string{"kms", "cluster", "add"}, "missing CLUSTER-ID"},
		{[]string{"kms", "cluster", "add", id}, "missing NODE-ADDRESS"},
		{[]string{"kms", "cluster", "add", "a/b", "h:1", "--cert", "c", "--key", "k"}, `CLUSTER-ID: "a/b" is not a cluster ID`},
		{[]string{"kms", "cluster", "add", id, "h", "--cert", "c", "--key", "k"}, "NODE-ADDRESS: bad node address"},
		{[]string{"kms", "cluster", "add", id, "h:1"}, "--cert and --key are required"},
		{[]string{"kms", "cluster", "add", id, "h:1", "--cert", "c"}, "--cert and --key are required"},
		{[]string{"kms", "cluster", "remove"}, "missing CLUSTER-ID"},
		{[]string{"kms", "cluster", "remove", "x y"}, "is not a cluster ID"},
		{[]string{"kms", "cluster", "list", "x"}, "too many arguments"},
		{[]string{"cluster", "issue-client", "n"}, "--dir is required"},
		{[]string{"cluster", "issue-client", "--dir", "d", "a/b"}, "cluster issue-client: NAME"},
		{[]string{"cluster", "issue-client", "--dir", "d"}, "missing NAME"},
	} {
		r := runHSM(t, env, "", tc.args...)
		assert.Equal(t, 2, r.code, "%q: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
		assert.Empty(t, r.stdout, "%q", tc.args)
	}

	// issue-client writes a client certificate bound to the CA's cluster;
	// a mismatched pair and another cluster's certificate are refused by
	// path, before the configuration is read.
	dir := t.TempDir()
	r := runHSM(t, nil, "", "cluster", "init", "--dir", dir, "--nodes", "1", "--cluster-id", id)
	require.Equal(t, 0, r.code, r.stderr)
	r = runHSM(t, nil, "", "--json", "cluster", "issue-client", "--dir", dir, "kms-a")
	require.Equal(t, 0, r.code, r.stderr)
	var out map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, id, out["cluster_id"])
	cert, key := out["cert"], out["key"]
	r = runHSM(t, nil, "", "cluster", "issue-client", "--dir", dir, "kms-a")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "cluster issue-client: refusing to overwrite existing file")
	r = runHSM(t, env, "", "kms", "cluster", "add", id, "h:1", "--cert", cert, "--key", filepath.Join(dir, "node1-key.pem"))
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "are not a certificate and its key")
	r = runHSM(t, env, "", "kms", "cluster", "add", "cluster-zzzzzzzzzzz2", "h:1", "--cert", cert, "--key", key)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "is bound to cluster "+id+", not cluster-zzzzzzzzzzz2")
	r = runHSM(t, env, "", "kms", "cluster", "add", id, "h:1", "--cert", cert, "--key", filepath.Join(dir, "nope.pem"))
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--key: open ")
	r = runHSM(t, env, "", "kms", "cluster", "add", id, "h:1", "--cert", cert, "--key", key)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "none.toml", "a good pair gets as far as the configuration")
	assert.NotContains(t, r.stdout+r.stderr, "PRIVATE KEY")
}
