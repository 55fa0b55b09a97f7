package hsmd_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// Benchmarks of the daemon through the client library over loopback mTLS:
// one real hsmd process, one logged-in client, b.N calls (run in parallel
// with -cpu to use several client goroutines).
//
//	go test ./hsmd -run '^$' -bench . -benchtime 3s -cpu 1,16
func BenchmarkThroughClient(b *testing.B) {
	cl := testcluster.Start(b, 1)
	c := dial(b, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	rsaPub, rsaPriv := rsaPair(b, c, 2048, true)
	ecPub, ecPriv := must2(b)(c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{by(ck.CKA_EC_PARAMS, curveParams["P-256"]), bo(ck.CKA_TOKEN, true)}, object.Template{bo(ck.CKA_TOKEN, true)}))
	aes := must(c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true)}))(b)
	msg := make([]byte, 32)
	rsaSig := must(c.Sign(ctx, rsaPriv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg))(b)
	ecSig := must(c.Sign(ctx, ecPriv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, msg))(b)
	block := make([]byte, 4096)
	gcm := mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 128}}

	run := func(name string, op func() error) {
		b.Run(name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	run("SignRSA2048", func() error {
		_, err := c.Sign(ctx, rsaPriv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg)
		return err
	})
	run("SignECDSAP256", func() error { _, err := c.Sign(ctx, ecPriv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, msg); return err })
	run("VerifyRSA2048", func() error { return c.Verify(ctx, rsaPub, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg, rsaSig) })
	run("VerifyECDSAP256", func() error { return c.Verify(ctx, ecPub, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, msg, ecSig) })
	run("EncryptAESGCM4K", func() error { _, err := c.Encrypt(ctx, aes, gcm, block); return err })
}

// BenchmarkSignECDSATransport compares the client's two transports for one
// ECDSA P-256 sign on the same node, the data path (docs/dataplane.md)
// and gRPC:
//
//	go test ./hsmd -run '^$' -bench SignECDSATransport -benchtime 3s -cpu 1,16
func BenchmarkSignECDSATransport(b *testing.B) {
	cl := testcluster.Start(b, 1)
	data := dial(b, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	if err != nil {
		b.Fatal(err)
	}
	cfg.Transport = client.TransportGRPC
	grpcOnly, err := client.Dial(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer grpcOnly.Close()
	if err := grpcOnly.Login(ctx, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"]); err != nil {
		b.Fatal(err)
	}
	priv := ecKey(b, data)
	msg := make([]byte, 32)
	for _, round := range []string{"", "-again"} {
		for _, c := range []struct {
			name string
			c    *client.Client
		}{{"grpc", grpcOnly}, {"data", data}} {
			b.Run(c.name+round, func(b *testing.B) {
				node0, self0 := cpuOf(b, cl), selfCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := c.c.Sign(ctx, priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, msg); err != nil {
							b.Error(err)
							return
						}
					}
				})
				// CPU per call, on each side: what the 2 shared cores pay
				// for a sign, whatever else runs beside the benchmark.
				n := float64(b.N)
				b.ReportMetric(float64((cpuOf(b, cl)-node0).Microseconds())/n, "node-cpu-us/op")
				b.ReportMetric(float64((selfCPU()-self0).Microseconds())/n, "client-cpu-us/op")
			})
		}
	}
}

// cpuOf is node 1's CPU time so far (user and system), from /proc.
func cpuOf(b *testing.B, cl *testcluster.Cluster) time.Duration {
	pid := cl.PID(1)
	if pid == 0 {
		b.Fatal("node1 has no pid")
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 12th and 13th of them, in clock ticks (100 a second).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
