// Command openhsm-p11-helper serves the PKCS#11 library in a forked child
// (docs/pkcs11-library.md, "Fork"). The library starts it with one end of a
// socketpair as fd 0 and speaks frames on it, each preceded by its u32
// little-endian length; the helper answers each with core.Default, which
// holds the child's slots, sessions and handles. It exits 0 when the socket
// closes. Nothing but replies is ever written to fd 0: the dispatcher logs
// to the configured log file or to standard error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/openhsm/openhsm/p11module/core"
)

func main() {
	sock := os.NewFile(0, "pkcs11-socket")
	if sock == nil {
		fmt.Fprintln(os.Stderr, "openhsm-p11-helper: no socket on fd 0")
		os.Exit(2)
	}
	core.InHelper()
	// fd 0 is the socket, for reading and writing both.
	err := core.Default.Serve(sock, sock)
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "openhsm-p11-helper:", err)
		os.Exit(1)
	}
}
