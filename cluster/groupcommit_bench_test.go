package cluster_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// aesTemplate is an AES-256 token key labelled label.
func aesTemplate(label string) object.Template {
	return object.Template{
		attr(ck.CKA_TOKEN, object.EncodeBool(true)),
		attr(ck.CKA_VALUE_LEN, object.EncodeUlong(32)),
		attr(ck.CKA_LABEL, []byte(label)),
	}
}

// BenchmarkKeygen3Nodes is AES-256 token key generation on a 3-node
// cluster with fsync on (the default), at 16 client goroutines over one
// client that spreads nothing: every call goes to node 1. With
// OPENHSM_BENCH_STRACE=1 it counts every node's fsync and fdatasync calls
// during the timed part (strace -c on each hsmd process) and reports them
// per key.
//
//	go test ./cluster -run '^$' -bench Keygen3Nodes -benchtime 2000x
func BenchmarkKeygen3Nodes(b *testing.B) {
	c := testcluster.Start(b, 3)
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	if err != nil {
		b.Fatal(err)
	}
	cfg.Nodes = []string{c.Addr(1)}
	cl, err := client.Dial(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Login(ctx, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"]); err != nil {
		b.Fatal(err)
	}
	// Warm up: connections, the leader's lease.
	for i := 0; i < 20; i++ {
		if _, err := cl.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("warm")); err != nil {
			b.Fatal(err)
		}
	}
	var straces []*exec.Cmd
	var outs []string
	mode := os.Getenv("OPENHSM_BENCH_STRACE")
	if mode != "" {
		for k := 1; k <= 3; k++ {
			pid := c.PID(k)
			if pid == 0 {
				b.Fatalf("node%d has no pid file", k)
			}
			out := filepath.Join(b.TempDir(), fmt.Sprintf("strace%d", k))
			args := []string{"-f", "-c", "-e", "trace=fsync,fdatasync", "-o", out, "-p", strconv.Itoa(pid)}
			if mode == "files" {
				args[1] = "-y" // every call, with its file's path
			}
			cmd := exec.Command("strace", args...)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			straces, outs = append(straces, cmd), append(outs, out)
		}
		time.Sleep(time.Second) // strace attaches to every thread
	}
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("bench")); err != nil {
				b.Error(err)
				return
			}
			n.Add(1)
		}
	})
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n.Load())/el.Seconds(), "keys/s")
	for k, cmd := range straces {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		if mode == "files" {
			for path, calls := range straceFiles(b, outs[k]) {
				b.ReportMetric(float64(calls)/float64(n.Load()), fmt.Sprintf("fsyncs/key/node%d:%s", k+1, path))
			}
			continue
		}
		calls := straceCalls(b, outs[k])
		b.ReportMetric(float64(calls)/float64(n.Load()), fmt.Sprintf("fsyncs/key/node%d", k+1))
	}
}

// straceCalls sums the calls column of strace -c's summary.
func straceCalls(t testing.TB, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 5 && (fs[len(fs)-1] == "fsync" || fs[len(fs)-1] == "fdatasync") {
			// % time, seconds, usecs/call, calls, [errors,] syscall
			if v, err := strconv.Atoi(fs[3]); err == nil {
				total += v
			}
		}
	}
	return total
}

// straceFiles counts strace -y's calls by the base name of their file.
func straceFiles(t testing.TB, path string) map[string]int {
	t.Helper()
	bs, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(bs), "\n") {
		i := strings.Index(line, "sync(")
		if i < 0 {
			continue // also "<... fsync resumed>", counted at its start
		}
		f := line[i:]
		k := strings.Index(f, "<")
		j := strings.Index(f, ">")
		if k >= 0 && j > k {
			m[filepath.Base(f[k+1:j])]++
		}
	}
	return m
}
