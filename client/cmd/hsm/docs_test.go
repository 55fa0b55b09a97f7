package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docsDir is docs/cli/ of the repository (go test runs in this folder).
const docsDir = "../../../docs/cli"

// docs/cli/ is what gen-docs writes now: a command or flag changed without
// "go generate ./client/cmd/hsm" fails here.
func TestDocsFresh(t *testing.T) {
	fresh := t.TempDir()
	r := runHSM(t, nil, "", "gen-docs", fresh)
	require.Equal(t, 0, r.code, r.stderr)
	want := readDir(t, fresh)
	require.Contains(t, want, "hsm.md")
	require.Contains(t, want, "hsm_backup_create.md")
	require.Contains(t, want, "hsm_completion_bash.md")
	require.NotContains(t, want, "hsm_gen-docs.md", "the hidden command has a page")
	got := readDir(t, docsDir)
	for name, text := range want {
		if got[name] != text {
			t.Errorf("docs/cli/%s is stale or missing: run 'go generate ./client/cmd/hsm'", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/cli/%s documents no command: run 'go generate ./client/cmd/hsm'", name)
		}
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	m := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		m[e.Name()] = string(b)
	}
	return m
}

// hsm completion bash|zsh print scripts the shells accept.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		r := runHSM(t, nil, "", "completion", shell)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "hsm", shell)
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("no %s here: its script is not checked with %s -n", shell, shell)
			continue
		}
		script := filepath.Join(t.TempDir(), "hsm."+shell)
		require.NoError(t, os.WriteFile(script, []byte(r.stdout), 0o600))
		out, err := exec.Command(path, "-n", script).CombinedOutput()
		assert.NoError(t, err, "%s -n: %s", shell, out)
	}
	// The script completes through the hidden __complete command, which
	// knows the commands and the values of fixed flags.
	r := runHSM(t, nil, "", "__complete", "us")
	assert.Contains(t, r.stdout, "user")
	r = runHSM(t, nil, "", "__complete", "key", "list", "--class", "")
	for _, c := range []string{"private", "public", "secret", "certificate", "data"} {
		assert.Contains(t, r.stdout, c)
	}
	r = runHSM(t, nil, "", "completion", "tcsh")
	assert.NotEqual(t, 0, r.code)
}
