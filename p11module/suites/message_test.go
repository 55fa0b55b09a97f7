package suites

import (
	"testing"
)

// TestMessageAPI runs testdata/message.c, the PKCS#11 3.0 message-based
// functions through the real library (github.com/miekg/pkcs11 has no
// message API), against a real one-node cluster, in process and through
// the fork helper. The driver prints "FAIL ..." for each failed check and
// exits with their number; a crash is a signal.
func TestMessageAPI(t *testing.T) {
	build(t)
	driver := cDriver(t, "message")
	_, env := startCluster(t)
	runDriver(t, driver, env)
}
