package suites

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/p11build"
)

// TestMessageAPI runs testdata/message.c, the PKCS#11 3.0 message-based
// functions through the real library (github.com/miekg/pkcs11 has no
// message API), against a real one-node cluster, in process and through
// the fork helper. The driver prints "FAIL ..." for each failed check and
// exits with their number; a crash is a signal.
func TestMessageAPI(t *testing.T) {
	build(t)
	driver := filepath.Join(work, "message")
	require.NoError(t, p11build.CProgram("suites/testdata/message.c", driver, "-ldl"))
	_, env := startCluster(t)
	for _, mode := range []string{modeInproc, modeHelper} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(driver, lib)
			cmd.Env = append(cleanEnv(), env...)
			if mode == modeHelper {
				cmd.Env = append(cmd.Env, "OPENHSM_P11_FORCE_HELPER=1")
			}
			out, err := cmd.CombinedOutput()
			t.Logf("message driver (%s):\n%s", mode, out)
			assert.NoError(t, err)
		})
	}
}
