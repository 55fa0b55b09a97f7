package suites

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/p11build"
	"github.com/openhsm/openhsm/internal/testcluster"
)

// How the suites run (see doc.go): the parent test builds the artifacts and
// starts a cluster, then runs itself again as a child process once per
// transport. The child knows it is one by SUITES_MODE and finds everything
// else in its environment:
//
//	SUITES_MODE        "inproc" or "helper" (then OPENHSM_P11_FORCE_HELPER=1)
//	SUITES_LIB         libopenhsm-pkcs11.so (the helper is next to it)
//	SUITES_HARNESS     the C harness (testdata/badinput.c), for TestBadInput
//	HSM_CONFIG         the cluster's client configuration (read by the library)
//	P11_TOKEN_LABEL, P11_PIN        the crypto user's token and password
//	SUITES_OTHER_LABEL, SUITES_OTHER_PIN  a second crypto user (TestBadInput)
//	SUITES_DURATION    how long TestStress works
const (
	envMode     = "SUITES_MODE"
	envLib      = "SUITES_LIB"
	envHarness  = "SUITES_HARNESS"
	envDuration = "SUITES_DURATION"
	envOther    = "SUITES_OTHER_LABEL"
	envOtherPIN = "SUITES_OTHER_PIN"

	modeInproc = "inproc"
	modeHelper = "helper"
)

// The artifacts, built once per test binary into one temporary folder.
var (
	buildOnce sync.Once
	buildErr  error
	work      string
	lib       string // libopenhsm-pkcs11.so
	helper    string // openhsm-p11-helper, next to lib, where the library looks
	harness   string // testdata/badinput.c, compiled
)

// build makes the library, the helper and the C harness.
func build(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: neither the library nor the C harness can be built")
	}
	buildOnce.Do(func() {
		work, lib, helper, buildErr = p11build.Library("openhsm-suites-")
		if buildErr != nil {
			return
		}
		harness = filepath.Join(work, "badinput")
		buildErr = p11build.CProgram("suites/testdata/badinput.c", harness, "-ldl")
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

// childMode is the transport this process tests, or "" in the parent.
func childMode() string { return os.Getenv(envMode) }

// cleanEnv is this process's environment without the variables the suites
// and the library read.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "OPENHSM_P11_FORCE_HELPER", "OPENHSM_P11_HELPER", "HSM_CONFIG", "P11_TOKEN_LABEL",
			"P11_PIN", "P11_SO_PIN", "HSM_USER", "HSM_PASSWORD", envMode, envLib, envHarness,
			envDuration, envOther, envOtherPIN:
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startCluster starts a one-node cluster and returns the environment a
// child needs to reach it as the crypto user.
func startCluster(t *testing.T) (*testcluster.Cluster, []string) {
	t.Helper()
	cl := testcluster.Start(t, 1)
	return cl, []string{
		"HSM_CONFIG=" + cl.Env["HSM_CONFIG"],
		"P11_TOKEN_LABEL=" + cl.Env["P11_TOKEN_LABEL"],
		"P11_PIN=" + cl.Env["P11_PIN"],
	}
}

// eachMode runs the calling top-level test again in a child process of the
// test binary, once per transport, and fails if a child fails or dies. The
// child's output is logged; on failure, so are the ends of the library's and
// the daemon's logs.
func eachMode(t *testing.T, cl *testcluster.Cluster, env []string, timeout time.Duration) {
	t.Helper()
	name := t.Name()
	for _, mode := range []string{modeInproc, modeHelper} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.v=true",
				"-test.count=1", fmt.Sprintf("-test.timeout=%s", timeout))
			cmd.Env = append(cleanEnv(), env...)
			cmd.Env = append(cmd.Env, envMode+"="+mode, envLib+"="+lib, envHarness+"="+harness)
			if mode == modeHelper {
				cmd.Env = append(cmd.Env, "OPENHSM_P11_FORCE_HELPER=1")
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			t.Logf("child (%s transport) output:\n%s", mode, quiet(out.String()))
			if err == nil {
				return
			}
			var ee *exec.ExitError
			switch {
			case ctx.Err() != nil:
				t.Errorf("the %s child did not finish within %s", mode, timeout)
			case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled():
				t.Errorf("the %s child died: %v", mode, err)
			case errors.As(err, &ee) && ee.ExitCode() == 1:
				t.Errorf("the %s child's tests failed", mode)
				return
			default:
				t.Errorf("the %s child failed: %v", mode, err)
			}
			// Died, hung or did not run its tests: the logs may say why.
			for _, f := range []string{"p11.log", "node1.log"} {
				t.Logf("last lines of %s:\n%s", f, tail(filepath.Join(cl.Dir, f), 20))
			}
		})
	}
}

// cDriver builds the C driver testdata/name.c into the work directory and
// returns its path.
func cDriver(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(work, name)
	require.NoError(t, p11build.CProgram("suites/testdata/"+name+".c", path, "-ldl"))
	return path
}

// runDriver runs a C driver against the library once per transport; the
// driver prints "FAIL ..." for each failed check and exits with their
// number, so any other exit status than 0 fails the subtest.
func runDriver(t *testing.T, driver string, env []string) {
	t.Helper()
	name := filepath.Base(driver)
	for _, mode := range []string{modeInproc, modeHelper} {
		t.Run(name+".c/"+mode, func(t *testing.T) {
			cmd := exec.Command(driver, lib)
			cmd.Env = append(cleanEnv(), env...)
			if mode == modeHelper {
				cmd.Env = append(cmd.Env, "OPENHSM_P11_FORCE_HELPER=1")
			}
			out, err := cmd.CombinedOutput()
			t.Logf("%s driver (%s):\n%s", name, mode, out)
			assert.NoError(t, err)
		})
	}
}

// quiet drops the lines of passing subtests from a child's verbose output.
func quiet(out string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "=== RUN") || strings.HasPrefix(s, "=== NAME") || strings.HasPrefix(s, "--- PASS") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- in the child ----

// loadModule loads and initializes the library (never unloaded: a Go
// runtime cannot be), checks that the transport is the one this child
// tests, and finalizes it when the test ends.
func loadModule(t *testing.T) *pkcs11.Ctx {
	t.Helper()
	path := os.Getenv(envLib)
	p := pkcs11.New(path)
	if p == nil {
		t.Fatalf("cannot load %s", path)
	}
	if err := p.Initialize(); err != nil {
		t.Fatalf("C_Initialize: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Finalize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED) {
			t.Errorf("C_Finalize: %v", err)
		}
	})
	helpers := helperChildren(filepath.Join(filepath.Dir(path), "openhsm-p11-helper"))
	switch mode := childMode(); {
	case mode == modeHelper && helpers != 1:
		t.Fatalf("forced helper mode, but %d helper processes run for this process", helpers)
	case mode == modeInproc && helpers != 0:
		t.Fatalf("in-process mode, but %d helper processes run for this process", helpers)
	}
	t.Logf("C_Initialize: ok, %s transport", childMode())
	return p
}

// helperChildren counts this process's children that run the helper.
func helperChildren(helperPath string) int {
	want, err := filepath.EvalSymlinks(helperPath)
	if err != nil {
		return -1
	}
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == want {
			n++
		}
	}
	return n
}

// tokenSlot finds the slot whose token has the label.
func tokenSlot(t *testing.T, p *pkcs11.Ctx, label string) uint {
	t.Helper()
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatalf("C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			t.Fatalf("C_GetTokenInfo(%d): %v", s, err)
		}
		if strings.TrimRight(ti.Label, " ") == label {
			return s
		}
	}
	t.Fatalf("no token labelled %q among slots %v", label, slots)
	return 0
}

// rvOf is the CK_RV of an error from miekg/pkcs11 (CKR_OK for nil).
func rvOf(err error) uint {
	if err == nil {
		return pkcs11.CKR_OK
	}
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e)
	}
	return ^uint(0)
}

func isRV(err error, rv uint) bool { return rvOf(err) == rv }

// rvName names a CK_RV.
func rvName(rv uint) string {
	if rv == ^uint(0) {
		return "not a CK_RV"
	}
	// miekg/pkcs11 says "pkcs11: 0x7: CKR_ARGUMENTS_BAD".
	name := pkcs11.Error(rv).Error()
	if i := strings.LastIndex(name, ": "); i >= 0 {
		name = name[i+2:]
	}
	return fmt.Sprintf("%s (%#x)", name, rv)
}

// randomTag makes labels unique to one run.
func randomTag() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// p256Params is the DER OID of P-256, for CKA_EC_PARAMS.
var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// keys is the set of keys a suite works with.
type keys struct {
	ecPub, ecPriv   pkcs11.ObjectHandle
	rsaPub, rsaPriv pkcs11.ObjectHandle
	aes, hmac       pkcs11.ObjectHandle
}

// makeKeys makes an EC P-256 and an RSA-2048 key pair, an AES-256 key and a
// 32-byte HMAC key, labelled prefix-ec, prefix-rsa, ...
func makeKeys(t *testing.T, p *pkcs11.Ctx, sh pkcs11.SessionHandle, token bool, prefix string) keys {
	t.Helper()
	var k keys
	var err error
	attr := pkcs11.NewAttribute
	k.ecPub, k.ecPriv, err = p.GenerateKeyPair(sh,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_EC_PARAMS, p256Params),
			attr(pkcs11.CKA_VERIFY, true), attr(pkcs11.CKA_LABEL, prefix+"-ec")},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_SIGN, true),
			attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_LABEL, prefix+"-ec")})
	if err != nil {
		t.Fatalf("C_GenerateKeyPair (EC P-256): %v", err)
	}
	k.rsaPub, k.rsaPriv, err = p.GenerateKeyPair(sh,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_MODULUS_BITS, 2048),
			attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}), attr(pkcs11.CKA_VERIFY, true),
			attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_LABEL, prefix+"-rsa")},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_SIGN, true),
			attr(pkcs11.CKA_DECRYPT, true), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true),
			attr(pkcs11.CKA_LABEL, prefix+"-rsa")})
	if err != nil {
		t.Fatalf("C_GenerateKeyPair (RSA-2048): %v", err)
	}
	k.aes, err = p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_ENCRYPT, true),
			attr(pkcs11.CKA_DECRYPT, true), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_LABEL, prefix+"-aes")})
	if err != nil {
		t.Fatalf("C_GenerateKey (AES-256): %v", err)
	}
	k.hmac, err = p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, token), attr(pkcs11.CKA_SIGN, true),
			attr(pkcs11.CKA_VERIFY, true), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_LABEL, prefix+"-hmac")})
	if err != nil {
		t.Fatalf("C_GenerateKey (generic secret for HMAC): %v", err)
	}
	return k
}

func (k keys) all() []pkcs11.ObjectHandle {
	return []pkcs11.ObjectHandle{k.ecPub, k.ecPriv, k.rsaPub, k.rsaPriv, k.aes, k.hmac}
}
