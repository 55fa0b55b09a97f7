// Package testcluster starts real local clusters for tests, through the same
// scripts/cluster.sh that `make run` and people use: real hsmd processes on
// loopback ports, in a temporary directory, stopped by their PIDs when the
// test ends.
package testcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is a running local cluster.
type Cluster struct {
	Dir string
	// Env holds the variables the script printed (HSM_CONFIG, P11_PIN, ...).
	Env map[string]string
	t   testing.TB
	bin string   // the binaries' folder; "" is Bin's
	env []string // extra environment of every cluster.sh run
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Bin builds hsmd and hsm once per test binary and returns their folder.
func Bin(t testing.TB) string {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "openhsm-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./hsmd/cmd/hsmd", "./client/cmd/hsm")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Start runs `cluster.sh up -n N` in a fresh temporary directory and stops
// the cluster when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartOpts(t, n, Options{})
}

// Options change what StartOpts runs; the zero value is Start.
type Options struct {
	// Tags builds hsmd and hsm with these build tags (say "faultinject")
	// into a folder of their own, so the default binaries stay as they are.
	Tags string
	// NoKMS starts nodes without the KMS API (cluster.sh's HSM_NO_KMS=1),
	// as the store cluster of a custom key store is run; the other
	// clusters of the same test keep theirs.
	NoKMS bool
}

var (
	tagMu   sync.Mutex
	tagBins = map[string]string{}
)

// BinTags builds hsmd and hsm with the given build tags, once per test
// binary and tag set, and returns their folder.
func BinTags(t testing.TB, tags string) string {
	t.Helper()
	tagMu.Lock()
	defer tagMu.Unlock()
	if dir, ok := tagBins[tags]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "openhsm-bin-tags-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-tags", tags, "-o", dir+"/", "./hsmd/cmd/hsmd", "./client/cmd/hsm")
	cmd.Dir = Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", tags, err, out)
	}
	tagBins[tags] = dir
	return dir
}

// RemoveBinaries removes the folders Bin and BinTags built into. They serve
// every test of the test binary, so no test can remove them; a package
// that starts clusters removes them in its TestMain once m.Run returns
// (Main does it), or each run of its tests would leave some 60 MB in the
// temporary folder. Bin and BinTags must not be called after it.
func RemoveBinaries() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	tagMu.Lock()
	defer tagMu.Unlock()
	for tags, dir := range tagBins {
		os.RemoveAll(dir)
		delete(tagBins, tags)
	}
}

// Main is the TestMain of a package that starts clusters: it runs the
// tests, removes the binaries they built, and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	RemoveBinaries()
	os.Exit(code)
}

// StartOpts is Start with options.
func StartOpts(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	dir := t.TempDir()
	c := &Cluster{Dir: dir, t: t, Env: map[string]string{}}
	if opts.Tags != "" {
		c.bin = BinTags(t, opts.Tags)
	}
	if opts.NoKMS {
		c.env = append(c.env, "HSM_NO_KMS=1")
	}
	out, err := c.script("up", "-n", fmt.Sprint(n), dir)
	t.Cleanup(func() { c.script("down", dir) })
	if err != nil {
		t.Fatalf("cluster.sh up: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "export ") {
			continue
		}
		kv := strings.SplitN(strings.TrimPrefix(line, "export "), "=", 2)
		if len(kv) == 2 {
			c.Env[kv[0]] = strings.Trim(kv[1], "'")
		}
	}
	for _, k := range []string{"HSM_CONFIG", "P11_PIN", "P11_SO_PIN", "P11_TOKEN_LABEL", "HSM_USER", "HSM_PASSWORD"} {
		if c.Env[k] == "" {
			t.Fatalf("cluster.sh up printed no %s:\n%s", k, out)
		}
	}
	return c
}

// BinDir is the folder of the binaries this cluster runs.
func (c *Cluster) BinDir() string {
	if c.bin != "" {
		return c.bin
	}
	return Bin(c.t)
}

func (c *Cluster) script(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(Root(), "scripts", "cluster.sh"), args...)
	cmd.Env = append(os.Environ(), "HSM_BIN="+c.BinDir())
	cmd.Env = append(cmd.Env, c.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// Stop stops node k; kill uses SIGKILL instead of SIGTERM.
func (c *Cluster) Stop(k int, kill bool) {
	c.t.Helper()
	args := []string{"stop"}
	if kill {
		args = append(args, "-9")
	}
	if out, err := c.script(append(args, c.Dir, fmt.Sprint(k))...); err != nil {
		c.t.Fatalf("cluster.sh stop: %v\n%s", err, out)
	}
}

// StartNode starts node k again and returns the script's error, if any, with
// its output (a node that refuses to start is an error here).
func (c *Cluster) StartNode(k int) ([]byte, error) {
	return c.script("start", c.Dir, fmt.Sprint(k))
}

// LogFile is node k's log.
func (c *Cluster) LogFile(k int) string { return filepath.Join(c.Dir, fmt.Sprintf("node%d.log", k)) }

// HSM runs the hsm CLI with the cluster's settings and extra environment.
func (c *Cluster) HSM(env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.BinDir(), "hsm"), args...)
	cmd.Env = append(os.Environ(), "HSM_CONFIG="+c.Env["HSM_CONFIG"])
	cmd.Env = append(cmd.Env, env...)
	return cmd.CombinedOutput()
}

// StartEmpty starts a one-node cluster that has no users yet, as a new
// cluster is before `hsm cluster activate` (cluster.sh with HSM_NO_USERS).
// Only HSM_CONFIG is set in Env.
func StartEmpty(t testing.TB) *Cluster {
	t.Helper()
	t.Setenv("HSM_NO_USERS", "1")
	dir := t.TempDir()
	c := &Cluster{Dir: dir, t: t, Env: map[string]string{"HSM_CONFIG": filepath.Join(dir, "client.toml")}}
	out, err := c.script("up", "-n", "1", dir)
	t.Cleanup(func() { c.script("down", dir) })
	if err != nil {
		t.Fatalf("cluster.sh up: %v\n%s", err, out)
	}
	return c
}

// StartWith is Start with extra lines appended to every node's
// configuration file (HSM_NODE_CONFIG), e.g. to make Raft snapshot often.
func StartWith(t testing.TB, n int, nodeConfig string) *Cluster {
	t.Setenv("HSM_NODE_CONFIG", nodeConfig)
	return Start(t, n)
}

// Add starts one more node and adds it to the cluster; it returns the new
// node's number.
func (c *Cluster) Add() int {
	c.t.Helper()
	out, err := c.script("add", c.Dir)
	if err != nil {
		c.t.Fatalf("cluster.sh add: %v\n%s", err, out)
	}
	var k int
	if _, err := fmt.Sscanf(string(out), "node%d ", &k); err != nil {
		c.t.Fatalf("cluster.sh add printed %q", out)
	}
	return k
}

// Addr is node k's address.
func (c *Cluster) Addr(k int) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.addr", k)))
	if err != nil {
		c.t.Fatalf("node%d has no address: %v", k, err)
	}
	return strings.TrimSpace(string(b))
}

// Script runs scripts/cluster.sh with the test's binaries.
func (c *Cluster) Script(args ...string) ([]byte, error) { return c.script(args...) }

// PID is node k's process ID from its pid file, or 0 when it has none (a
// node that cluster.sh stopped).
func (c *Cluster) PID(k int) int {
	b, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", k)))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Running reports whether node k's process, by the PID in its pid file, is
// alive. A node that cluster.sh stopped has no pid file.
func (c *Cluster) Running(k int) bool {
	pid := c.PID(k)
	if pid == 0 {
		return false
	}
	// Signal 0 checks that the process exists; a zombie (exited, not yet
	// reaped by its parent) does not count.
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust the signal
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) == 0 || fields[0] != "Z"
}

// StartRestore runs `cluster.sh up -r BACKUP -p PASSPHRASE_FILE` in a fresh
// temporary directory: a new one-node cluster that restores the backup. It
// returns the cluster even when the restore failed (its node runs; the
// test's end stops it), with the script's output and error.
func StartRestore(t testing.TB, backupFile, passphraseFile string) (*Cluster, []byte, error) {
	t.Helper()
	dir := t.TempDir()
	c := &Cluster{Dir: dir, t: t, Env: map[string]string{"HSM_CONFIG": filepath.Join(dir, "client.toml")}}
	out, err := c.script("up", "-r", backupFile, "-p", passphraseFile, dir)
	t.Cleanup(func() { c.script("down", dir) })
	return c, out, err
}

// Proc is a node process the test started itself (RunNode), so that it can
// see how the process ends.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// RunNode starts node k of a stopped node's configuration as a child of the
// test, with extra environment (say, OPENHSM_FAULT), and waits until it
// listens. Its output goes to DIR/node<K>.out as with cluster.sh, its PID to
// DIR/node<K>.pid, so Stop and the cleanup stop it as any other node.
func (c *Cluster) RunNode(k int, env []string) *Proc {
	c.t.Helper()
	addr := filepath.Join(c.Dir, fmt.Sprintf("node%d.addr", k))
	os.Remove(addr)
	out, err := os.OpenFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.out", k)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(filepath.Join(c.BinDir(), "hsmd"), "serve", "-config", filepath.Join(c.Dir, fmt.Sprintf("node%d.toml", k)))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start node%d: %v", k, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	if err := os.WriteFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", k)), []byte(fmt.Sprintf("%d\n", cmd.Process.Pid)), 0o600); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addr); err == nil && len(b) > 0 {
			return p
		}
		select {
		case <-p.done:
			c.t.Fatalf("node%d exited while starting: %v", k, p.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node%d did not start within a minute", k)
		}
	}
}

// Wait waits up to limit for the process to end and returns its exit code
// (-1 if it was killed by a signal); ok is false if it still runs.
func (p *Proc) Wait(limit time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
	case <-time.After(limit):
		return 0, false
	}
	if p.err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	return -1, true
}
