package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nobody = 65534

// startAsNobody starts cmd as uid/gid nobody with fd 0 given, and stops it
// by its PID when the test ends.
func startAsNobody(t *testing.T, cmd *exec.Cmd, stdin *os.File) int {
	t.Helper()
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return pid
}

// waitBlocked waits until the process sleeps (it has run its init and is
// waiting for input).
func waitBlocked(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		return i > 0 && len(s) > i+2 && s[i+2] == 'S'
	}, 10*time.Second, 10*time.Millisecond)
}

// asNobody runs a command on a /proc entry of pid as uid nobody, as
// another process of the same unprivileged user would.
func asNobody(pid int, command, entry string) (string, error) {
	out, err := exec.Command("setpriv", "--reuid="+strconv.Itoa(nobody), "--regid="+strconv.Itoa(nobody), "--clear-groups",
		command, "/proc/"+strconv.Itoa(pid)+"/"+entry).CombinedOutput()
	return string(out), err
}

// TestAttackSameUserReadsHelper plays the attack the helper's non-dumpable
// flag stops: a prefork server's worker runs as nobody and its helper holds
// the client key the privileged parent handed over; another process of the
// same user tries to read the helper's memory, descriptors and environment
// through /proc. A plain process of that user is readable the same way, so
// the refusal is the flag's doing.
func TestAttackSameUserReadsHelper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run processes as nobody")
	}
	_, err := exec.LookPath("setpriv")
	require.NoError(t, err, "setpriv (util-linux) runs the attacker as nobody")
	// t.TempDir's parent is root's alone; nobody must be able to run it.
	dir, err := os.MkdirTemp("", "p11helper-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "openhsm-p11-helper")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	ours, theirs := os.NewFile(uintptr(pair[0]), "ours"), os.NewFile(uintptr(pair[1]), "theirs")
	t.Cleanup(func() { ours.Close() })
	helper := startAsNobody(t, exec.Command(bin), theirs)
	theirs.Close()
	waitBlocked(t, helper)

	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	plain := startAsNobody(t, exec.Command("cat"), r)
	r.Close()
	waitBlocked(t, plain)

	// environ stands for the memory (both need ptrace access to read);
	// fd lists the descriptors, the kept log's among them.
	for _, c := range []struct{ command, entry string }{{"cat", "environ"}, {"ls", "fd"}} {
		_, err := asNobody(plain, c.command, c.entry)
		assert.NoError(t, err, "a plain process of nobody: %s /proc/PID/%s works for nobody", c.command, c.entry)
		out, err := asNobody(helper, c.command, c.entry)
		assert.Error(t, err, "the helper's /proc/PID/%s must not be readable by nobody", c.entry)
		assert.Contains(t, out, "Permission denied", c.entry)
	}
}
