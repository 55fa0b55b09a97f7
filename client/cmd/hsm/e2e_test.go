package main

// The CLI end to end: the real cobra root command (in process, through
// run) and the built binary (on a pseudo-terminal) against a real local
// cluster (internal/testcluster: hsmd processes on loopback ports).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
)

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := testcluster.Start(t, 1)
	secrets := []string{cl.Env["HSM_PASSWORD"], cl.Env["P11_PIN"], "not-the-password-7"}
	env := func(user, password string) map[string]string {
		return map[string]string{client.EnvConfig: cl.Env["HSM_CONFIG"], envUser: user, envPassword: password}
	}
	co := env(cl.Env["HSM_USER"], cl.Env["HSM_PASSWORD"])
	cu := env("cu1", cl.Env["P11_PIN"])
	hsm := func(env map[string]string, args ...string) result {
		t.Helper()
		r := runHSM(t, env, "", args...)
		for _, s := range secrets {
			require.NotContains(t, r.stdout+r.stderr, s, "hsm %q printed a password", args)
		}
		return r
	}

	r := hsm(co, "--json", "user", "list")
	require.Equal(t, 0, r.code, r.stderr)
	var users []userJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &users))
	assert.Contains(t, r.stdout, `"cu1"`)
	r = hsm(co, "cluster", "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "leader")
	// audit list on a real node: the kind filter, the KMS filters (no KMS
	// request reached this cluster, so none match), refusals.
	r = hsm(co, "--json", "audit", "list", "--kind", "command", "--since", "1h")
	require.Equal(t, 0, r.code, r.stderr)
	var trail struct {
		Records []client.AuditRecord `json:"records"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &trail))
	require.NotEmpty(t, trail.Records)
	for _, rec := range trail.Records {
		assert.Equal(t, "command", rec.Kind)
		assert.Empty(t, rec.Detail)
	}
	r = hsm(co, "--json", "audit", "list", "--kind", "kms", "--key", "1234abcd-12ab-34cd-56ef-1234567890ab",
		"--principal", "arn:aws:iam::123456789012:user/alice")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, `{"records":[]}`, r.stdout)
	r = hsm(co, "audit", "list", "--key", "alias/mine")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "key")
	r = hsm(co, "audit", "list", "--kind", "secrets")
	assert.Equal(t, 2, r.code)
	r = hsm(cu, "audit", "list", "--kind", "kms")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "CKR_USER_NOT_LOGGED_IN")

	// Single-dash long flags, as the flag package took them.
	r = hsm(cu, "key", "list", "-json", "-class", "secret")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, "[]", r.stdout)

	// backup create -o, standard error not a terminal: plain lines, one
	// step after the other, each to its end.
	dir := t.TempDir()
	file := filepath.Join(dir, "b.hsmbak")
	r = hsm(co, "backup", "create", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "took backup")
	assert.NotContains(t, r.stderr, "\r")
	for _, re := range []string{`(?m)^write: \d+/\d+ \(100%\)$`, `(?m)^download: \d+/\d+ bytes \(100%\)$`} {
		assert.Regexp(t, re, r.stderr)
	}
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Contains(t, r.stderr, " "+itoa(st.Size())+"/"+itoa(st.Size())+" bytes")

	// backup get copies the same bytes, with the size as the total.
	r = hsm(co, "--json", "backup", "list")
	require.Equal(t, 0, r.code, r.stderr)
	var list struct {
		Backups []client.BackupInfo `json:"backups"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	var id string
	for _, b := range list.Backups {
		if b.Size == st.Size() {
			id = b.ID
		}
	}
	require.NotEmpty(t, id, "backup list: %s", r.stdout)
	copyFile := filepath.Join(dir, "copy.hsmbak")
	r = hsm(co, "backup", "get", id, "--output", copyFile)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "download: "+itoa(st.Size())+"/"+itoa(st.Size())+" bytes (100%)")
	a, _ := os.ReadFile(file)
	b, _ := os.ReadFile(copyFile)
	assert.Equal(t, a, b)
	r = hsm(co, "backup", "get", id, "-o", copyFile)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "refusing to overwrite")

	// Failures say what to do next.
	r = hsm(env("nobody", "not-the-password-7"), "user", "list")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `log in as "nobody"`)
	assert.Contains(t, r.stderr, `next: check the user name and the password of "nobody"`)
	r = hsm(cu, "backup", "create")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "CKR_USER_NOT_LOGGED_IN")
	assert.Contains(t, r.stderr, `next: you are logged in as "cu1", a crypto user; this command needs a crypto officer`)
	r = hsm(env("", ""), "backup", "list")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "log in first: set HSM_USER and HSM_PASSWORD, or pass --user NAME and --password-file FILE")
	r = hsm(co, "--config", filepath.Join(dir, "none.toml"), "info")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "next: point --config or HSM_CONFIG at the client.toml")

	// On a terminal, the binary draws bars.
	out := onTerminal(t, cl, co, "backup", "create", "-o", filepath.Join(dir, "tty.hsmbak"))
	assert.Contains(t, out, "took backup")
	for _, label := range []string{"writing the backup", "downloading"} {
		assert.Regexp(t, regexp.QuoteMeta(label)+` +100% \|█+\|`, out, "no full %q bar", label)
	}
	assert.Contains(t, out, "\r", "the bars are not redrawn in place")
	assert.NotRegexp(t, `(?m)^write: `, out, "plain lines on a terminal")

	// The restore, into a new cluster that was never activated: the copy
	// is sent, then the node checks, decrypts and restores it. A truncated
	// copy starts that cluster (with the backup's cluster ID) and is
	// refused.
	bad := filepath.Join(dir, "truncated.hsmbak")
	require.NoError(t, os.WriteFile(bad, a[:len(a)-100], 0o600))
	fresh, out2, err := testcluster.StartRestore(t, bad, filepath.Join(cl.Dir, "passphrase"))
	require.Error(t, err, "a truncated backup restored: %s", out2)
	r = hsm(map[string]string{client.EnvConfig: fresh.Env["HSM_CONFIG"]}, "backup", "restore", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "restored the backup")
	for _, re := range []string{`(?m)^upload: \d+/\d+ bytes \(100%\)$`, `(?m)^receive: \d+/\d+ \(100%\)$`, `(?m)^decrypt: \d+/\d+ \(100%\)$`, `(?m)^restore: \d+/\d+ \(100%\)$`} {
		assert.Regexp(t, re, r.stderr)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// onTerminal runs the built hsm with its standard output and error on a
// pseudo-terminal and returns what it wrote there.
func onTerminal(t *testing.T, cl *testcluster.Cluster, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cl.BinDir(), "hsm"), args...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	require.NoError(t, err)
	defer tty.Close()
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&buf, tty) // ends with EIO once the command exits
		close(copied)
	}()
	err = cmd.Wait()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	require.NoError(t, err, "hsm %q on a terminal:\n%s", args, buf.String())
	return buf.String()
}
