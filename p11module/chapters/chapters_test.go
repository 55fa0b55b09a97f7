package chapters

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/p11build"
	"github.com/openhsm/openhsm/internal/testcluster"
)

// The artifacts, built once per test binary.
var (
	buildOnce sync.Once
	buildErr  error
	work      string
	lib       string // libopenhsm-pkcs11.so, the helper next to it
	driver    string // testdata/rows.c
)

func build(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: neither the library nor the C driver can be built")
	}
	buildOnce.Do(func() {
		work, lib, _, buildErr = p11build.Library("openhsm-chapters-")
		if buildErr != nil {
			return
		}
		driver = filepath.Join(work, "rows")
		buildErr = p11build.CProgram("chapters/testdata/rows.c", driver, "-ldl")
	})
	require.NoError(t, buildErr)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if work != "" {
		os.RemoveAll(work)
	}
	testcluster.RemoveBinaries()
	os.Exit(code)
}

// result is what the driver printed for one row.
type result struct {
	rv      uint64
	absent  bool // a 3.2 function the library does not export
	len     int64
	hasLen  bool
	then    uint64
	thenLen int64
	hasThen bool
}

// runDriver runs the rows in one driver process and returns each row's
// result by index. A driver that dies or stops early fails the test,
// naming the row it was at.
func runDriver(t *testing.T, env []string, rows []row) map[int]result {
	t.Helper()
	args := []string{lib}
	for _, r := range rows {
		args = append(args, r.phase()+" "+r.fn+" "+r.args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, driver, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	got := map[int]result{}
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "done" {
			done = true
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "row" {
			t.Errorf("driver: %s", line)
			continue
		}
		i, _ := strconv.Atoi(f[1])
		var r result
		for _, kv := range f[2:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 0, 64)
			switch k {
			case "rv":
				r.rv = uint64(n)
			case "absent":
				r.absent = true
			case "len":
				r.len, r.hasLen = n, true
			case "then":
				r.then, r.hasThen = uint64(n), true
			case "thenlen":
				r.thenLen = n
			}
		}
		got[i] = r
	}
	if err != nil || !done {
		at := "before the first row"
		if n := len(got); n < len(rows) {
			at = fmt.Sprintf("at row %d (%s: %s)", n, rows[n].fn, rows[n].what)
		}
		t.Fatalf("driver: %v, stopped %s\nstdout:\n%s\nstderr:\n%s", err, at, &stdout, &stderr)
	}
	return got
}

// TestChapters runs every chapter's rows through the C ABI, in process and
// through the fork helper, against a real one-node cluster.
func TestChapters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	build(t)
	cl := testcluster.Start(t, 1)
	rows := ordered()
	for _, mode := range []string{"inproc", "helper"} {
		t.Run(mode, func(t *testing.T) {
			env := cleanEnv()
			env = append(env, "HSM_CONFIG="+cl.Env["HSM_CONFIG"], "P11_TOKEN_LABEL="+cl.Env["P11_TOKEN_LABEL"],
				"P11_PIN="+cl.Env["P11_PIN"])
			if mode == "helper" {
				env = append(env, "OPENHSM_P11_FORCE_HELPER=1")
			}
			got := runDriver(t, env, rows)
			for i, r := range rows {
				res, ok := got[i]
				t.Run(r.chapter+"/"+r.fn+"/"+r.what, func(t *testing.T) {
					require.True(t, ok, "the driver printed no result")
					r.check(t, res)
				})
			}
		})
	}
}

// cleanEnv is the environment without the library's own variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "OPENHSM_P11_FORCE_HELPER", "OPENHSM_P11_HELPER", "HSM_CONFIG", "P11_TOKEN_LABEL", "P11_PIN":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// check asserts one row's result.
func (r row) check(t *testing.T, res result) {
	t.Helper()
	require.False(t, res.absent, "%s is not exported", r.fn)
	accept := append([]uint64{r.want}, r.either...)
	msg := fmt.Sprintf("%s (%s): got %s, the specification asks for %s", r.fn, r.what, ck.RVName(res.rv), ck.RVName(r.want))
	if r.deviation != "" {
		msg += "; known deviation: " + r.deviation
	}
	require.Contains(t, accept, res.rv, msg)
	if r.deviation != "" {
		t.Logf("known deviation: %s answers %s: %s", r.fn, ck.RVName(res.rv), r.deviation)
	}
	if slices.Contains(r.either, res.rv) {
		return
	}
	if r.lenIs != nil {
		require.True(t, res.hasLen, "no length printed")
		assert.Equal(t, *r.lenIs, res.len, "the length written back")
	}
	if r.lenAtLeast > 0 {
		require.True(t, res.hasLen, "no length printed")
		assert.GreaterOrEqual(t, res.len, r.lenAtLeast, "the length written back")
	}
	if r.alive > 0 {
		require.True(t, res.hasThen, "no second call")
		assert.Equal(t, ck.RVName(ck.CKR_OK), ck.RVName(res.then),
			"the second call, with the length the first wrote: the operation must still be alive")
		assert.Equal(t, r.alive, res.thenLen, "the output length of the second call")
		assert.LessOrEqual(t, res.thenLen, res.len, "the first call's length must hold the output")
	}
}
