package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
)

type result struct {
	code           int
	stdout, stderr string
}

// runHSM runs the command with the given environment and standard input.
func runHSM(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	sio := &stdio{
		in:     strings.NewReader(stdin),
		out:    &out,
		err:    &errb,
		getenv: func(k string) string { return env[k] },
	}
	code := run(context.Background(), args, sio)
	return result{code, out.String(), errb.String()}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret-one\n"), 0o600)
	env := map[string]string{"HSM_USER": "admin", "HSM_PASSWORD": "pw-from-env", client.EnvConfig: filepath.Join(dir, "none.toml")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"usr", "list"}, `unknown command "usr"; did you mean user?`},
		{[]string{"--bogus", "info"}, "bogus"},
		{[]string{"cluster"}, "missing subcommand"},
		{[]string{"cluster", "explode"}, `unknown subcommand "explode"`},
		{[]string{"cluster", "init"}, "--dir is required"},
		{[]string{"cluster", "init", "--dir", dir, "--nodes", "0"}, "--nodes"},
		{[]string{"cluster", "init", "--dir", dir, "--nodes", "x"}, `invalid argument "x" for "--nodes"`},
		{[]string{"cluster", "init", "-dir", dir, "-nodes", "x"}, `invalid argument "x" for "--nodes"`},
		{[]string{"cluster", "init", "--dir", dir, "--client", "bad name"}, "--client"},
		{[]string{"cluster", "init", "--dir", dir, "--client", "node2"}, "also a node name"},
		{[]string{"cluster", "init", "--dir", dir, "--node-addrs", "10.0.0.1"}, "--node-addrs"},
		{[]string{"cluster", "init", "--dir", dir, "extra"}, "too many arguments"},
		{[]string{"info", "extra"}, "too many arguments"},
		{[]string{"user"}, "missing subcommand"},
		{[]string{"user", "--json"}, "missing subcommand"},
		{[]string{"user", "--json", "frob"}, `unknown subcommand "frob"`},
		{[]string{"user", "--nope", "list"}, "user: unknown flag: --nope"},
		{[]string{"user", "list", "-nope"}, "user list: unknown shorthand flag: 'n' in -nope"},
		{[]string{"user", "create"}, "missing NAME"},
		{[]string{"user", "create", "bob"}, "--role"},
		{[]string{"user", "create", "bob", "--role", "boss", "--new-password-file", pw}, "unknown role"},
		{[]string{"user", "create", "bob", "--role", "CU"}, "--new-password-file is required"},
		{[]string{"user", "create", "bob", "alice", "--role", "CU", "--new-password-file", pw}, "too many arguments"},
		{[]string{"user", "create", "", "--role", "CU", "--new-password-file", pw}, "NAME is empty"},
		{[]string{"user", "delete"}, "missing NAME"},
		{[]string{"user", "unlock", "a", "b"}, "too many arguments"},
		{[]string{"user", "reset", "bob"}, "--new-password-file is required"},
		{[]string{"user", "passwd"}, "--new-password-file is required"},
		{[]string{"user", "passwd", "bob", "--new-password-file", pw}, "too many arguments"},
		{[]string{"user", "list", "--password-file", "-", "--new-password-file", "-"}, "unknown flag: --new-password-file"},
		{[]string{"--password-file", "-", "user", "reset", "bob", "--new-password-file", "-"}, "standard input is already used"},
		{[]string{"key"}, "missing subcommand"},
		{[]string{"key", "rotate"}, `unknown subcommand "rotate"`},
		{[]string{"key", "delete"}, "missing ID"},
		{[]string{"key", "delete", "abc"}, `bad object ID "abc"`},
		{[]string{"key", "delete", "0"}, `bad object ID "0"`},
		{[]string{"key", "delete", "-5"}, "unknown shorthand flag: '5' in -5"},
		{[]string{"key", "delete", "--", "-5"}, `bad object ID "-5"`},
		{[]string{"key", "share", "12"}, "missing USER"},
		{[]string{"key", "unshare", "12", "bob", "carol"}, "too many arguments"},
		{[]string{"key", "list", "--class", "secrets"}, `--class "secrets"`},
		{[]string{"key", "list", "stray"}, "too many arguments"},
	} {
		r := runHSM(t, env, "stdin-pw\n", tc.args...)
		if r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", tc.args, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: stderr %q does not say %q", tc.args, r.stderr, tc.want)
		}
		for _, secret := range []string{"secret-one", "pw-from-env", "stdin-pw"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%q: output holds a password", tc.args)
			}
		}
	}
}

func TestMissingCredentials(t *testing.T) {
	env := map[string]string{client.EnvConfig: "/nonexistent/client.toml"}
	r := runHSM(t, env, "", "user", "list")
	if r.code != 2 || !strings.Contains(r.stderr, "HSM_USER") {
		t.Errorf("no user: %+v", r)
	}
	r = runHSM(t, env, "", "--user", "admin", "user", "list")
	if r.code != 2 || !strings.Contains(r.stderr, "HSM_PASSWORD") {
		t.Errorf("no password: %+v", r)
	}
	r = runHSM(t, env, "", "cluster", "activate", "--user", "admin")
	if r.code != 2 || !strings.Contains(r.stderr, "--password-file") {
		t.Errorf("activate without password: %+v", r)
	}
}

func TestHelp(t *testing.T) {
	// hsm --help lists every command; help, -h and -help do the same.
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}} {
		r := runHSM(t, nil, "", args...)
		require.Equal(t, 0, r.code, "%q: %+v", args, r)
		for _, cmd := range []string{"cluster", "info", "user", "key", "backup", "quorum", "audit", "cert", "completion"} {
			assert.Regexp(t, `(?m)^  `+cmd+` +[A-Z]`, r.stdout, "%q does not list %s", args, cmd)
		}
		assert.NotContains(t, r.stdout, "gen-docs", "the hidden command is listed")
	}
	// A command's help shows its usage and flags.
	for _, args := range [][]string{{"user", "list", "-h"}, {"help", "user", "list"}, {"user", "list", "--help"}} {
		r := runHSM(t, nil, "", args...)
		require.Equal(t, 0, r.code, "%q: %+v", args, r)
		assert.Contains(t, r.stdout, "hsm user list", "%q", args)
		assert.Contains(t, r.stdout, "--password-file", "%q", args)
	}
	r := runHSM(t, nil, "", "backup", "--help")
	for _, sub := range []string{"create", "list", "get", "restore"} {
		assert.Regexp(t, `(?m)^  `+sub+` +[A-Z]`, r.stdout)
	}
	// No command: the usage on standard error, exit status 2.
	r = runHSM(t, nil, "")
	assert.Equal(t, 2, r.code, "%+v", r)
	assert.Contains(t, r.stderr, "no command")
	assert.Contains(t, r.stderr, "backup ")
	assert.Empty(t, r.stdout)
}

// Global flags go anywhere, and flags may follow the positional arguments.
func TestFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--json", "key", "share", "12", "bob", "--user", "admin"},
		{"key", "--json", "share", "12", "--user", "admin", "bob"},
		{"key", "share", "12", "bob", "--json", "--user=admin"},
		{"-json", "key", "share", "-user", "admin", "12", "bob"},
		{"key", "share", "12", "bob", "-json=true", "-user=admin"},
	} {
		c := &cli{io: &stdio{getenv: func(string) string { return "" }}}
		var got []string
		root := c.newRoot()
		share, _, err := root.Find([]string{"key", "share"})
		require.NoError(t, err)
		share.RunE = func(_ *cobra.Command, pos []string) error { got = pos; return nil }
		root.SetArgs(normalizeArgs(root, args))
		require.NoError(t, root.Execute(), "%q", args)
		assert.Equal(t, []string{"12", "bob"}, got, "%q", args)
		assert.True(t, c.g.json, "%q", args)
		assert.Equal(t, "admin", c.g.user, "%q", args)
	}
	// After --, a word is an argument even when it looks like a flag.
	c := &cli{io: &stdio{getenv: func(string) string { return "" }}}
	root := c.newRoot()
	share, _, _ := root.Find([]string{"key", "share"})
	var got []string
	share.RunE = func(_ *cobra.Command, pos []string) error { got = pos; return nil }
	root.SetArgs(normalizeArgs(root, []string{"key", "share", "12", "--", "-odd-user"}))
	require.NoError(t, root.Execute())
	assert.Equal(t, []string{"12", "-odd-user"}, got)
}

func TestNormalizeArgs(t *testing.T) {
	root := (&cli{io: &stdio{}}).newRoot()
	for _, tc := range []struct{ in, want []string }{
		// Long flags with one dash, global or the command's own.
		{[]string{"-json", "user", "list"}, []string{"--json", "user", "list"}},
		{[]string{"user", "-json", "list"}, []string{"user", "--json", "list"}},
		{[]string{"user", "create", "bob", "-role", "CU", "-new-password-file=pw"}, []string{"user", "create", "bob", "--role", "CU", "--new-password-file=pw"}},
		{[]string{"cluster", "init", "-dir", "d", "-nodes", "1"}, []string{"cluster", "init", "--dir", "d", "--nodes", "1"}},
		{[]string{"quorum", "set", "-service", "user-management", "-m", "2"}, []string{"quorum", "set", "--service", "user-management", "--m", "2"}},
		{[]string{"-help"}, []string{"--help"}},
		// A value is copied as it is, whatever it looks like.
		{[]string{"key", "list", "-label", "-json"}, []string{"key", "list", "--label", "-json"}},
		{[]string{"key", "list", "--label", "-json"}, []string{"key", "list", "--label", "-json"}},
		{[]string{"-password-file", "-", "user", "list"}, []string{"--password-file", "-", "user", "list"}},
		{[]string{"backup", "get", "X", "-o", "-json"}, []string{"backup", "get", "X", "-o", "-json"}},
		// Shorthands, unknown flags and whatever follows -- stay.
		{[]string{"backup", "create", "-o", "f"}, []string{"backup", "create", "-o", "f"}},
		{[]string{"backup", "create", "-o=f"}, []string{"backup", "create", "-o=f"}},
		{[]string{"user", "list", "-nope"}, []string{"user", "list", "-nope"}},
		{[]string{"key", "share", "1", "--", "-json"}, []string{"key", "share", "1", "--", "-json"}},
		{[]string{"key", "delete", "-5"}, []string{"key", "delete", "-5"}},
		// A flag of another command is not one here.
		{[]string{"user", "list", "-dir", "x"}, []string{"user", "list", "-dir", "x"}},
		{[]string{}, []string{}},
	} {
		assert.Equal(t, tc.want, normalizeArgs(root, tc.in), "%q", tc.in)
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	c := &cli{io: &stdio{in: strings.NewReader("from stdin\r\nsecond line\n")}}
	for name, tc := range map[string]struct{ content, want string }{
		"newline":   {"pass word\n", "pass word"},
		"crlf":      {"pw\r\nignored\n", "pw"},
		"no-eol":    {"pw", "pw"},
		"two-lines": {"first\nsecond\n", "first"},
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(tc.content), 0o600)
		got, err := c.readSecret("--password-file", p)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	got, err := c.readSecret("--password-file", "-")
	if err != nil || got != "from stdin" {
		t.Errorf("stdin: %q, %v", got, err)
	}
	if _, err := c.readSecret("--new-password-file", "-"); err == nil {
		t.Error("standard input read twice")
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\nsecond\n"), 0o600)
	if _, err := c.readSecret("--password-file", empty); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("empty first line: %v", err)
	}
	if _, err := c.readSecret("--password-file", filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestClusterInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	r := runHSM(t, nil, "", "cluster", "init", "--dir", dir, "--nodes", "2", "--hosts", "hsm1.example.com,10.0.0.7", "--client", "app1", "--node-addrs", "10.0.0.7:4001,hsm1.example.com:4001")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := map[string]os.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600,
		"node1.pem": 0o644, "node1-key.pem": 0o600,
		"node2.pem": 0o644, "node2-key.pem": 0o600,
		"app1.pem": 0o644, "app1-key.pem": 0o600,
		"client.toml": 0o644,
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Errorf("made %d files, want %d: %v", len(ents), len(want), ents)
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", name, fi.Mode().Perm(), mode)
		}
		if !strings.Contains(r.stdout, filepath.Join(dir, name)) {
			t.Errorf("output does not mention %s:\n%s", name, r.stdout)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %o", fi.Mode().Perm())
	}

	cfg, err := client.LoadConfig(filepath.Join(dir, "client.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Nodes, ",") != "10.0.0.7:4001,hsm1.example.com:4001" || cfg.Cert != filepath.Join(dir, "app1.pem") || cfg.Key != filepath.Join(dir, "app1-key.pem") || cfg.CA != filepath.Join(dir, "ca.pem") {
		t.Errorf("config %+v", cfg)
	}
	// The certificates work together: TLS configurations load, and the
	// node certificate names the given hosts.
	if _, err := pki.ClientConfigFor(cfg.Cert, cfg.Key, cfg.CA, cfg.ServerName); err != nil {
		t.Error(err)
	}
	srv, err := pki.ServerConfig(pki.CertPath(dir, "node2"), pki.KeyPath(dir, "node2"), cfg.CA)
	if err != nil {
		t.Fatal(err)
	}
	leaf := srv.Certificates[0].Leaf
	if err := leaf.VerifyHostname("hsm1.example.com"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("10.0.0.7"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}

	// A second run refuses and changes nothing.
	before := snapshot(t, dir)
	r = runHSM(t, nil, "", "cluster", "init", "--dir", dir, "--nodes", "3")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Errorf("second run: %+v", r)
	}
	if after := snapshot(t, dir); !equalMaps(before, after) {
		t.Error("second run changed the directory")
	}
}

func TestClusterInitDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	r := runHSM(t, nil, "", "--json", "cluster", "init", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res initResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if len(res.Nodes) != 3 || res.Client.Name != "client" || res.Config != filepath.Join(dir, "client.toml") {
		t.Errorf("%+v", res)
	}
	cfg, err := client.LoadConfig(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Nodes, ",") != "127.0.0.1:4001,127.0.0.1:4002,127.0.0.1:4003" || cfg.ServerName != "localhost" {
		t.Errorf("%+v", cfg)
	}
}

func TestClusterInitRefusesPartial(t *testing.T) {
	// One clashing file anywhere stops everything before anything is made.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "client.toml"), []byte("mine"), 0o644)
	r := runHSM(t, nil, "", "cluster", "init", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "client.toml") {
		t.Errorf("%+v", r)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files made: %v", ents)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An operation error: exit 1 with the CKR name on stderr, and no secret.
func TestOperationErrorExit1(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	if r := runHSM(t, nil, "", "cluster", "init", "--dir", dir, "--nodes", "1", "--node-addrs", dead); r.code != 0 {
		t.Fatal(r.stderr)
	}
	env := map[string]string{client.EnvConfig: filepath.Join(dir, "client.toml"), "HSM_USER": "admin", "HSM_PASSWORD": "very-secret-pw"}
	for _, args := range [][]string{{"info"}, {"user", "list"}, {"key", "list", "--json"}, {"key", "delete", "42"}} {
		r := runHSM(t, env, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "CKR_DEVICE_ERROR") {
			t.Errorf("%q: %+v", args, r)
		}
		if strings.Contains(r.stdout+r.stderr, "very-secret-pw") {
			t.Errorf("%q: output holds the password", args)
		}
	}
	// A configuration problem is an operation error too.
	r := runHSM(t, env, "", "--config", filepath.Join(dir, "nope.toml"), "info")
	if r.code != 1 || !strings.Contains(r.stderr, "nope.toml") {
		t.Errorf("bad config: %+v", r)
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain label": "plain label",
		"日本":          "日本",
		"a\x1b[2Jb":   `a\x1b[2Jb`,
		"tab\there":   `tab\there`,
		"\xff":        `\xff`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyRows(t *testing.T) {
	o := &client.ObjectInfo{
		ID:    1<<62 + 5,
		Owner: "alice",
		Attributes: object.Template{
			{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
			{Type: ck.CKA_KEY_TYPE, Value: object.EncodeUlong(ck.CKK_AES)},
			{Type: ck.CKA_LABEL, Value: []byte("db key")},
			{Type: ck.CKA_ID, Value: []byte{0xca, 0xfe}},
		},
		SharedWith: []string{"bob", "carol"},
	}
	r := rowOf(o)
	want := keyRow{ID: 1<<62 + 5, Class: "secret", KeyType: "AES", Label: "db key", CKAID: "cafe", Owner: "alice", SharedWith: []string{"bob", "carol"}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v", r)
	}
	b, _ := json.Marshal(rowOf(&client.ObjectInfo{ID: 7, Owner: "x"}))
	if string(b) != `{"id":7,"class":"","key_type":"","label":"","cka_id":"","owner":"x","shared_with":[]}` {
		t.Errorf("json %s", b)
	}
	b, _ = json.Marshal(r)
	if !strings.Contains(string(b), `"id":4611686018427387909`) {
		t.Errorf("ID not a JSON number: %s", b)
	}
}

// Every command and flag of the flag-based CLI is still there, under the
// same name (the flag package also took each long flag with one dash:
// normalizeArgs keeps that working).
func TestCommandsPreserved(t *testing.T) {
	root := (&cli{io: &stdio{}}).newRoot()
	global := []string{"config", "json", "user", "password-file", "quorum-token"}
	for path, flags := range map[string][]string{
		"info":                      nil,
		"cluster init":              {"dir", "nodes", "hosts", "client", "node-addrs", "cluster-id", "backup"},
		"cluster activate":          nil,
		"cluster status":            nil,
		"cluster add-node":          nil,
		"cluster remove-node":       nil,
		"cluster issue-node":        {"dir", "hosts"},
		"cluster rotate-passphrase": {"old", "new"},
		"user create":               {"role", "new-password-file"},
		"user list":                 nil,
		"user delete":               nil,
		"user reset":                {"new-password-file"},
		"user unlock":               nil,
		"user passwd":               {"new-password-file"},
		"user wipe":                 nil,
		"key list":                  {"label", "class"},
		"key delete":                nil,
		"key share":                 nil,
		"key unshare":               nil,
		"backup create":             {"o"},
		"backup list":               nil,
		"backup get":                {"o"},
		"backup restore":            nil,
		"quorum keygen":             {"o", "type"},
		"quorum register-key":       {"key"},
		"quorum status":             nil,
		"quorum set":                {"service", "m"},
		"quorum token create":       {"service"},
		"quorum token approve":      {"key"},
		"quorum token list":         nil,
		"audit list":                {"since", "filter-user", "object", "node", "principal", "key", "kind"},
		"audit verify":              {"node"},
		"cert revoke":               {"name"},
		"cert list":                 nil,
		"cert renew":                {"dir", "revoke"},
	} {
		cmd, rest, err := root.Find(strings.Fields(path))
		require.NoError(t, err, path)
		require.Empty(t, rest, path)
		require.Equal(t, path, name(cmd))
		require.True(t, cmd.Runnable(), path)
		for _, f := range append(flags, global...) {
			assert.NotNil(t, lookupFlag(cmd, f), "%s --%s", path, f)
			if len(f) > 1 {
				assert.Equal(t, []string{"--" + f}, normalizeArgs(cmd, []string{"-" + f}), "%s -%s", path, f)
			}
		}
	}
	// -o, --o, -o=F and --output all name the output file.
	dir := t.TempDir()
	for i, args := range [][]string{{"-o", "k0"}, {"--o", "k1"}, {"-o=k2"}, {"--output", "k3"}, {"--o=k4"}} {
		for j := range args {
			if strings.HasPrefix(args[j], "k") {
				args[j] = filepath.Join(dir, args[j])
			} else if k := strings.Index(args[j], "=k"); k > 0 {
				args[j] = args[j][:k+1] + filepath.Join(dir, args[j][k+1:])
			}
		}
		r := runHSM(t, nil, "", append([]string{"quorum", "keygen"}, args...)...)
		require.Equal(t, 0, r.code, "%q: %s", args, r.stderr)
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("k%d", i)))
		assert.NoError(t, err, "%q", args)
	}
}
