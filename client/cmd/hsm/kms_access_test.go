package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/openhsm/openhsm/client"
)

// Bad command lines of the access-control commands are usage errors (exit
// 2) before any configuration is read or any login made.
func TestKMSAccessUsageErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envUser: "admin", envPassword: "pw-from-env", client.EnvConfig: filepath.Join(dir, "none.toml")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"kms", "principal", "policy"}, "kms principal policy: missing subcommand"},
		{[]string{"kms", "principal", "policy", "put", "app"}, "missing FILE"},
		{[]string{"kms", "principal", "policy", "put", "a b", "f"}, "kms principal policy put: NAME"},
		{[]string{"kms", "principal", "policy", "put", "app", filepath.Join(dir, "absent.json")}, "cannot read the policy file"},
		{[]string{"kms", "principal", "policy", "put", "app", empty}, "is empty"},
		{[]string{"kms", "principal", "policy", "get"}, "missing NAME"},
		{[]string{"kms", "principal", "policy", "delete", "x/y"}, "kms principal policy delete: NAME"},
		{[]string{"kms", "principal", "create", "app", "--admin", "--policy", empty}, "give --policy or --admin, not both"},
		{[]string{"kms", "principal", "create", "app", "--policy", empty}, "is empty"},
		{[]string{"kms", "explain"}, "--principal is required"},
		{[]string{"kms", "explain", "--principal", "app"}, "--key is required"},
		{[]string{"kms", "explain", "--principal", "app", "--key", "alias/x"}, "--action is required"},
		{[]string{"kms", "explain", "--principal", "a:b", "--key", "alias/x", "--action", "kms:Encrypt"}, "NAME"},
		{[]string{"kms", "explain", "--principal", "app", "--key", "alias/x", "--action", "kms:Encrypt", "--context", "novalue"}, "--context takes KEY=VALUE"},
		{[]string{"kms", "explain", "extra"}, "too many arguments"},
	} {
		r := runHSM(t, env, "", tc.args...)
		assert.Equal(t, 2, r.code, "%q: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
		assert.Empty(t, r.stdout, "%q", tc.args)
		assert.NotContains(t, r.stderr, "pw-from-env")
	}
	// Good command lines get past the checks to the configuration.
	for _, args := range [][]string{
		{"kms", "explain", "--principal", "app", "--key", "alias/x", "--action", "kms:Encrypt", "--context", "a=b", "--source-ip", "10.0.0.1"},
		{"kms", "principal", "policy", "get", "app"},
		{"kms", "principal", "create", "app", "--admin"},
	} {
		r := runHSM(t, env, "", args...)
		assert.Equal(t, 1, r.code, "%q: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "none.toml", "%q", args)
	}
}
