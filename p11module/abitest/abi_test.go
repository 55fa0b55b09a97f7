package abitest

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/p11build"
	"github.com/openhsm/openhsm/internal/testcluster"
)

// The artifacts, built once per test binary into one temporary folder: the
// library, the real helper next to it (where the library looks for it),
// the fake helper and the C driver.
var (
	buildOnce sync.Once
	buildErr  error
	work      string
	lib       string // libopenhsm-pkcs11.so
	helper    string // openhsm-p11-helper, next to lib
	fake      string // testdata/fakehelper
	driver    string // testdata/p11test.c
)

func build(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: the C driver cannot be built")
	}
	buildOnce.Do(func() {
		work, lib, helper, buildErr = p11build.Library("openhsm-abitest-")
		if buildErr != nil {
			return
		}
		// The folder is searchable by all, so that a child that drops
		// to nobody (handoff_test.go) can start the helper in it.
		if buildErr = os.Chmod(work, 0o755); buildErr != nil {
			return
		}
		fake = filepath.Join(work, "fakehelper")
		driver = filepath.Join(work, "p11test")
		if buildErr = p11build.GoProgram("./abitest/testdata/fakehelper", fake); buildErr != nil {
			return
		}
		buildErr = p11build.CProgram("abitest/testdata/p11test.c", driver, "-ldl", "-lpthread")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if work != "" {
		os.RemoveAll(work)
	}
	testcluster.RemoveBinaries()
	os.Exit(code)
}

// baseEnv is the test's environment without the library's own variables,
// and with a client configuration that does not exist, so that the real
// module's C_Initialize fails at once without a cluster.
func baseEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "OPENHSM_P11_FORCE_HELPER", "OPENHSM_P11_HELPER", "FAKE_LOG", "FAKE_FAIL", "HSM_CONFIG",
			"P11_TOKEN_LABEL", "P11_PIN":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HSM_CONFIG="+filepath.Join(t.TempDir(), "missing.toml"))
}

// fakeEnv runs the library on the fake helper; force selects the helper
// transport from the first C_Initialize. It returns the environment and the
// fake helper's log file.
func fakeEnv(t *testing.T, force bool) ([]string, string) {
	log := filepath.Join(t.TempDir(), "fake.log")
	env := append(baseEnv(t), "OPENHSM_P11_HELPER="+fake, "FAKE_LOG="+log)
	if force {
		env = append(env, "OPENHSM_P11_FORCE_HELPER=1")
	}
	return env, log
}

// scenario runs the C driver and fails the test on any failed check.
func scenario(t *testing.T, name string, env []string) string {
	t.Helper()
	out, _ := scenarioOut(t, name, env)
	return out
}

// scenarioOut is scenario, returning standard output and standard error.
func scenarioOut(t *testing.T, name string, env []string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, driver, lib, name)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("scenario %s hung\nstdout:\n%s\nstderr:\n%s", name, &stdout, &stderr)
	}
	if err != nil {
		t.Fatalf("scenario %s: %v\nstdout:\n%s\nstderr:\n%s", name, err, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "ok "+name) {
		t.Fatalf("scenario %s did not finish\nstdout:\n%s\nstderr:\n%s", name, &stdout, &stderr)
	}
	t.Logf("%s", strings.TrimSpace(stdout.String()))
	return stdout.String(), stderr.String()
}

func logLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func sameLines(t *testing.T, got []string, want string) {
	t.Helper()
	w := strings.Split(strings.TrimSpace(want), "\n")
	for i := range w {
		w[i] = strings.TrimSpace(w[i])
	}
	for i := 0; i < len(got) || i < len(w); i++ {
		var g, e string
		if i < len(got) {
			g = got[i]
		}
		if i < len(w) {
			e = w[i]
		}
		if g != e {
			t.Errorf("backend call %d:\n got  %q\n want %q", i+1, g, e)
		}
	}
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestCWarnings compiles the library's C files with gcc -Wall -Wextra.
func TestCWarnings(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	for _, f := range []string{"frame.c", "pkcs11.c", "transport.c"} {
		if err := p11build.Run(p11build.Dir(), "gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2",
			"-I/usr/include/p11-kit-1", "-fsyntax-only", f); err != nil {
			t.Error(err)
		}
	}
}

// TestABI: the function lists and interfaces, calls before C_Initialize and
// C_Initialize's argument checks. Nothing here reaches Go.
func TestABI(t *testing.T) {
	build(t)
	scenario(t, "abi", baseEnv(t))
}

// TestWire: every item kind, both ways, through the real frame codec of the
// fake helper; the Backend calls are what the C caller passed.
func TestWire(t *testing.T) {
	build(t)
	env, log := fakeEnv(t, true)
	scenario(t, "wire", env)
	sameLines(t, logLines(t, log), `
		Initialize flags=0x2
		Finalize
		Initialize flags=0x0
		GetInfo
		GetSlotInfo slot=1
		GetSlotInfo slot=99
		GetTokenInfo slot=17
		GetMechanismInfo slot=17 mech=0x1087
		GetSlotList present=true
		GetSlotList present=false
		GetSlotList present=false
		GetMechanismList slot=17
		OpenSession slot=1 flags=0x6
		GetSessionInfo sh=0x1234
		Login sh=0x1234 ut=1 pin="user:pw" null=false
		Login sh=0x1234 ut=0 pin="" null=true
		Login sh=0x1234 ut=1 pin="" null=false
		LoginUser sh=0x1234 ut=1 pin="pw" user="alice"
		SessionCancel sh=0x1234 flags=0x3
		InitToken slot=17 so="so:pw" label="my token                        "
		Verify sh=0x1234 data="data" sig="sig"
		Encrypt sh=0x1234 data=0102030405 present=false cap=1234
		Encrypt sh=0x1234 data=0102030405 present=true cap=3
		Encrypt sh=0x1234 data=0102030405 present=true cap=16
		Encrypt sh=0x1234 data= present=true cap=0
		SignFinal sh=0x1234 present=true cap=16
		EncryptInit sh=0x1234 type=0x1087 kind=2 iv=000102030405060708090a0b ivbits=96 aad=0a0b0c tagbits=128 key=0x9
		DecryptInit sh=0x1234 type=0x1087 kind=2 iv=000102030405060708090a0b ivbits=96 aad=0a0b0c tagbits=128 key=0x9
		EncryptInit sh=0x1234 type=0x9 kind=3 hash=0x250 mgf=0x2 source=0x1 data=6c6162656c key=0xa
		EncryptInit sh=0x1234 type=0x9 kind=3 hash=0x250 mgf=0x2 source=0x1 data= key=0xa
		DeriveKey sh=0x1234 type=0x1050 kind=4 kdf=0x1 shared= public=040506 base=0xb t=[0x0=0400000000000000]
		DeriveKey sh=0x1234 type=0x1051 kind=4 kdf=0x1 shared= public=040506 base=0xb t=[]
		SignInit sh=0x1234 type=0x1057 kind=5 ph=true context=637478 key=0xc
		SignInit sh=0x1234 type=0x1057 kind=0 key=0xc
		EncryptInit sh=0x1234 type=0x1085 kind=1 raw=f0f10000000000000000000000000000 key=0xd
		DigestInit sh=0x1234 type=0x250 kind=0
		CreateObject sh=0x1234 t=[0x0=0000000000000000 0x3=6c626c 0x1=01 0x102=NULL]
		FindObjectsInit sh=0x1234 t=[]
		GenerateKeyPair sh=0x1234 type=0x1040 kind=0 pub=[0x0=0000000000000000] priv=[0x3=6c626c 0x1=01]
		WrapKey sh=0x1234 type=0x210b kind=0 wrapping=0x15 key=0x16 present=true cap=5
		WrapKey sh=0x1234 type=0x210b kind=0 wrapping=0x15 key=0x16 present=true cap=32
		UnwrapKey sh=0x1234 type=0x210b kind=0 unwrapping=0x15 wrapped=77726170 t=[0x0=0000000000000000]
		GetAttributeValue sh=0x1234 obj=0x99 n=3
		GetAttributeValue sh=0x1234 obj=0x99 n=5
		GetAttributeValue sh=0x1234 obj=0x99 n=2
		GetAttributeValue sh=0x1234 obj=0x99 n=0
		FindObjects sh=0x1234 max=2
		FindObjects sh=0x1234 max=4
		CloseSession sh=0x1234
		Finalize
	`)
}

// TestNullArgs: after C_Initialize, NULL pointers are CKR_ARGUMENTS_BAD
// from C, and no frame is sent for them.
func TestNullArgs(t *testing.T) {
	build(t)
	env, log := fakeEnv(t, true)
	scenario(t, "nullargs", env)
	sameLines(t, logLines(t, log), `
		Initialize flags=0x0
		OpenSession slot=1 flags=0x6
		SeedRandom sh=0x1234 seed="MARK1"
		SeedRandom sh=0x1234 seed="MARK2"
		Finalize
	`)
}

// TestBrokenReplies: malformed replies are CKR_DEVICE_ERROR and write
// nothing; a helper that dies makes every call CKR_DEVICE_ERROR until
// C_Finalize, after which C_Initialize starts a new one.
func TestBrokenReplies(t *testing.T) {
	build(t)
	env, log := fakeEnv(t, true)
	scenario(t, "broken", env)
	sameLines(t, logLines(t, log), `
		Initialize flags=0x0
		GetInfo
		exit
		Initialize flags=0x0
		GetInfo
		Finalize
	`)
}

// TestThreads: concurrent calls share the helper socket; every answer
// reaches the thread that asked.
func TestThreads(t *testing.T) {
	build(t)
	env, _ := fakeEnv(t, true)
	scenario(t, "threads", env)
}

// TestFork: the parent has called into Go in process; the forked child (and
// its own child) get CKR_CRYPTOKI_NOT_INITIALIZED until C_Initialize, which
// starts a helper. A child that called into Go would hang (and be killed).
func TestFork(t *testing.T) {
	build(t)
	env, log := fakeEnv(t, false)
	scenario(t, "fork", env)
	lines := logLines(t, log)
	if n := count(lines, "Initialize"); n != 2 {
		t.Errorf("%d helper C_Initialize calls, want 2 (child and grandchild):\n%s", n, strings.Join(lines, "\n"))
	}
	if n := count(lines, "Finalize"); n != 2 {
		t.Errorf("%d helper C_Finalize calls, want 2:\n%s", n, strings.Join(lines, "\n"))
	}
}

// TestForkParentHelper: a parent on the helper forks; the child's helper
// and the parent's do not disturb each other, and a child that never
// initializes does not keep the parent's helper alive.
func TestForkParentHelper(t *testing.T) {
	build(t)
	env, log := fakeEnv(t, true)
	scenario(t, "forkparent", env)
	lines := logLines(t, log)
	if count(lines, "Initialize") != 2 || count(lines, "Finalize") != 2 {
		t.Errorf("want two helpers initialized and finalized:\n%s", strings.Join(lines, "\n"))
	}
}

// TestForkRealHelper: the real helper, found next to the library, answers a
// forked child's C_Initialize as the module answers in process (here,
// without a configuration file, the same error).
func TestForkRealHelper(t *testing.T) {
	build(t)
	out := scenario(t, "forkreal", baseEnv(t))
	if !strings.Contains(out, "C_Initialize in both") {
		t.Errorf("no C_Initialize result:\n%s", out)
	}
}

// TestInProcess: the goCall transport with the real module.
func TestInProcess(t *testing.T) {
	build(t)
	scenario(t, "inproc", baseEnv(t))
}

// TestNoHelper: a helper that cannot be started is CKR_DEVICE_ERROR, with
// the reason on standard error, and leaves the library uninitialized.
func TestNoHelper(t *testing.T) {
	build(t)
	env := append(baseEnv(t), "OPENHSM_P11_FORCE_HELPER=1",
		"OPENHSM_P11_HELPER="+filepath.Join(t.TempDir(), "no-such-helper"))
	scenario(t, "nohelper", env)
}

// TestHelperEOF: the real helper answers frames on fd 0 and exits 0 when the
// socket closes.
func TestHelperEOF(t *testing.T) {
	build(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	ours := os.NewFile(uintptr(fds[0]), "ours")
	theirs := os.NewFile(uintptr(fds[1]), "theirs")
	conn, err := net.FileConn(ours)
	ours.Close()
	require.NoError(t, err)
	defer conn.Close()

	cmd := exec.Command(helper)
	cmd.Stdin = theirs
	cmd.Env = baseEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	theirs.Close()

	// C_GetInfo before C_Initialize: CKR_CRYPTOKI_NOT_INITIALIZED and a
	// zero CK_INFO (76 bytes).
	frame := binary.LittleEndian.AppendUint32(nil, 4)
	frame = binary.LittleEndian.AppendUint32(frame, 3)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = conn.Write(frame)
	require.NoError(t, err)
	var hdr [4]byte
	_, err = readFull(conn, hdr[:])
	require.NoError(t, err)
	reply := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
	_, err = readFull(conn, reply)
	require.NoError(t, err)
	require.Len(t, reply, 8+76, "CKR_CRYPTOKI_NOT_INITIALIZED and a zero CK_INFO")
	assert.Equal(t, uint64(0x190), binary.LittleEndian.Uint64(reply), "CKR_CRYPTOKI_NOT_INITIALIZED")
	conn.Close()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "helper exit\n%s", &stderr)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("helper did not exit when its socket closed")
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestRealCluster: with a running cluster, the same session work (login,
// random bytes, an AES-GCM round trip with the two-call rule) in the parent
// in process, in a forked child through the real helper, and in the parent
// again.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	build(t)
	cl := testcluster.Start(t, 1)
	env := baseEnv(t)
	env = append(env, "HSM_CONFIG="+cl.Env["HSM_CONFIG"], "P11_TOKEN_LABEL="+cl.Env["P11_TOKEN_LABEL"],
		"P11_PIN="+cl.Env["P11_PIN"])
	scenario(t, "real", env)
}
