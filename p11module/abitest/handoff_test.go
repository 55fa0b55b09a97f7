package abitest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/testcluster"
)

// Prefork servers that drop privileges (docs/pkcs11-library.md, "Fork"):
// the parent initializes as root, the child becomes nobody (uid 65534)
// before it initializes, as nginx's workers do, and the client
// configuration, certificate and key stay root's.

// needRoot skips a test that drops to nobody.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the child drops to uid 65534 as nginx's workers do")
	}
}

// sharedDir is a temporary folder that a process running as nobody can
// use (t.TempDir's folders are root's, mode 0700).
func sharedDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "openhsm-shared-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	require.NoError(t, os.Chmod(d, 0o777))
	return d
}

// countingHelper wraps helper (or the fake) in a script that notes each
// start in a file, and returns the script and the file.
func countingHelper(t *testing.T, target string) (script, starts string) {
	d := sharedDir(t)
	starts = filepath.Join(d, "starts")
	require.NoError(t, os.WriteFile(starts, nil, 0o666))
	require.NoError(t, os.Chmod(starts, 0o666))
	script = filepath.Join(d, "helper.sh")
	body := fmt.Sprintf("#!/bin/sh\necho started >>'%s'\nexec '%s' \"$@\"\n", starts, target)
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	return script, starts
}

func starts(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Count(string(b), "started\n")
}

// reports is the library's lines on standard error.
func reports(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "openhsm-pkcs11: ") {
			out = append(out, l)
		}
	}
	return out
}

// deniedLine is what the library says when the configuration cannot be
// read as nobody.
func deniedLine(config string) string {
	return "openhsm-pkcs11: cannot read " + config + " as uid 65534 (nobody): permission denied; " +
		"initialize the library in the privileged parent before it forks, or make the file readable by this user"
}

// backoffNote ends a helper's failure on standard error.
const backoffNote = " (in the fork helper; until it is started again, after 1 s at first, doubling up to 30 s, " +
	"C_Initialize answers 0x5 at once; each reason is reported once)"

// TestHandoffToUnprivilegedChild: the parent initializes (in process, or on
// its own helper) as root; its forked child drops to nobody, cannot open
// the configuration, and still logs in and runs AES-GCM through its helper,
// with the credentials the parent kept. The helper writes to the parent's
// log file (root's, 0600) and says where its credentials came from. After
// the child's C_Finalize they are gone, and a new C_Initialize names the
// file it cannot read and the user. A child that closed its inherited
// descriptors (and reused the numbers) passes none of them to its helper.
func TestHandoffToUnprivilegedChild(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	build(t)
	cl := testcluster.Start(t, 1)
	cfg := cl.Env["HSM_CONFIG"]
	for _, forced := range []bool{false, true} {
		t.Run(map[bool]string{false: "parent in process", true: "parent on the helper"}[forced], func(t *testing.T) {
			env := append(baseEnv(t), "HSM_CONFIG="+cfg, "P11_TOKEN_LABEL="+cl.Env["P11_TOKEN_LABEL"],
				"P11_PIN="+cl.Env["P11_PIN"])
			if forced {
				env = append(env, "OPENHSM_P11_FORCE_HELPER=1")
			}
			before, _ := os.ReadFile(filepath.Join(cl.Dir, "p11.log"))
			out, stderr := scenarioOut(t, "handoff", env)
			assert.Contains(t, out, "child as nobody, with the parent's credentials: login, random, AES-GCM round trip ok")
			assert.Contains(t, out, "parent again: login, random, AES-GCM round trip ok")

			m := regexp.MustCompile(`parent pid (\d+)`).FindStringSubmatch(out)
			require.NotNil(t, m, out)
			logb, err := os.ReadFile(filepath.Join(cl.Dir, "p11.log"))
			require.NoError(t, err)
			log := strings.TrimPrefix(string(logb), string(before))
			handed := regexp.MustCompile(`msg=C_Initialize pid=\d+ .*credentials="handed over by pid ` + m[1] + ` \(` +
				regexp.QuoteMeta(cfg) + `\)" uid=65534`)
			assert.Len(t, handed.FindAllString(log, -1), 1, "p11.log:\n%s", log)

			// On standard error: the C_Initialize after the child's
			// C_Finalize, and the one of the child that closed its
			// descriptors (its helper got no log).
			lines := reports(stderr)
			require.Len(t, lines, 2, "stderr:\n%s", stderr)
			assert.Equal(t, deniedLine(cfg)+backoffNote, lines[0])
			assert.Equal(t, "openhsm-pkcs11: cannot open the log file "+filepath.Join(cl.Dir, "p11.log")+
				" for writing as uid 65534 (nobody): permission denied; initialize the library in the privileged parent before it forks, "+
				"or make the file writable by this user"+backoffNote, lines[1])
		})
	}
}

// TestInitFailsClearlyAndBacksOff: a child that drops to nobody before the
// library was ever initialized must read the files itself, and cannot. Every
// C_Initialize fails; standard error says once which file, as which user,
// and what to do; the helper is started once for 20 calls, and once more
// after the first back-off (1 s).
func TestInitFailsClearlyAndBacksOff(t *testing.T) {
	needRoot(t)
	build(t)
	cfg := filepath.Join(t.TempDir(), "client.toml") // root's folder, mode 0700
	require.NoError(t, os.WriteFile(cfg, []byte("nodes = [\"127.0.0.1:1\"]\n"), 0o600))
	script, startsFile := countingHelper(t, helper)
	env := append(baseEnv(t), "HSM_CONFIG="+cfg, "OPENHSM_P11_HELPER="+script)
	out, stderr := scenarioOut(t, "dropfirst", env)
	t.Log(out)

	assert.Equal(t, 2, starts(t, startsFile), "helper starts: 20 quick calls, then 5 after 1.2 s")
	lines := reports(stderr)
	require.Len(t, lines, 1, "stderr:\n%s", stderr)
	assert.Equal(t, deniedLine(cfg)+backoffNote, lines[0])
}

// TestHelperBackoff: a helper whose C_Initialize fails (the fake) is not
// started again for each call: 20 quick calls start it once, a call after
// the first back-off once more, and the reason is written once.
func TestHelperBackoff(t *testing.T) {
	build(t)
	env, log := fakeEnv(t, true)
	env = append(env, "FAKE_FAIL=1")
	out, stderr := scenarioOut(t, "backoff", env)
	t.Log(out)
	assert.Equal(t, 2, count(logLines(t, log), "Initialize"), "helper C_Initialize calls")
	lines := reports(stderr)
	require.Len(t, lines, 1, "stderr:\n%s", stderr)
	assert.Equal(t, "openhsm-pkcs11: C_Initialize: fake failure"+backoffNote, lines[0])
}
