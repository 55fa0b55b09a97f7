//go:build bench

package kmsbench_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/internal/testcluster"
)

var (
	flagDuration   = flag.Duration("kmsbench.duration", 3*time.Second, "how long each cell runs, after its warm-up")
	flagWarmup     = flag.Duration("kmsbench.warmup", 300*time.Millisecond, "the untimed warm-up of each cell")
	flagMax        = flag.Int64("kmsbench.max", 100000, "at most this many timed requests per cell")
	flagGoroutines = flag.String("kmsbench.goroutines", "1,16", "client goroutine counts, comma-separated")
	flagTargets    = flag.String("kmsbench.targets", "moto,inprocess,node1,nodes3", "targets, comma-separated: moto, moto-tls, inprocess, node1, nodes3, env")
	flagOps        = flag.String("kmsbench.ops", "Encrypt,Decrypt,GenerateDataKey", "operations, comma-separated")
	flagTSV        = flag.String("kmsbench.tsv", "", "also write the results to this file, tab-separated: operation, goroutines, target key, req/s, requests, failed (for bench.sh)")
)

// target is one endpoint and the settings the SDK needs for it.
type target struct {
	key, label       string
	endpoint, region string
	akid, secret     string
	roots            *x509.CertPool // nil: the system's
}

type result struct {
	op, target string
	key        string // the target's key in -kmsbench.targets
	goroutines int
	n, errs    int64
	elapsed    time.Duration
	firstErr   error
	note       string // why a target has no number
}

var allOps = []string{"Encrypt", "Decrypt", "GenerateDataKey"}

// ops is -kmsbench.ops, checked.
func opList(t *testing.T) []string {
	var out []string
	for _, op := range strings.Split(*flagOps, ",") {
		op = strings.TrimSpace(op)
		found := false
		for _, k := range allOps {
			found = found || k == op
		}
		if !found {
			t.Fatalf("-kmsbench.ops: unknown operation %q (%s)", op, strings.Join(allOps, ", "))
		}
		out = append(out, op)
	}
	return out
}

// newClient is the unchanged aws-sdk-go-v2 KMS client for tg: its
// endpoint, region and static credentials, and the SDK's own HTTP client
// with tg's CA and room for one idle connection per goroutine (the SDK's
// default keeps 10 per host; with 16 goroutines it would make new TLS
// connections all the time, as any program would without this setting).
func newClient(tg target, conns int) *kms.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tg.roots != nil {
			tr.TLSClientConfig.RootCAs = tg.roots
		}
		if tr.MaxIdleConnsPerHost < conns {
			tr.MaxIdleConnsPerHost = conns
		}
	})
	return kms.New(kms.Options{
		Region:       tg.region,
		BaseEndpoint: aws.String(tg.endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: tg.akid, SecretAccessKey: tg.secret, Source: "kmsbench"}, nil
		}),
		HTTPClient: hc,
	})
}

// fixture is what the operations need: a key, a plaintext, its
// ciphertext under the context.
type fixture struct {
	keyID string
	pt    []byte
	ct    []byte
	ctx   map[string]string
}

func setup(ctx context.Context, c *kms.Client) (*fixture, error) {
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kmsbench")})
	if err != nil {
		return nil, fmt.Errorf("CreateKey: %w", err)
	}
	f := &fixture{keyID: *k.KeyMetadata.KeyId, pt: make([]byte, 32), ctx: map[string]string{"bench": "kms"}}
	rand.Read(f.pt)
	e, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &f.keyID, Plaintext: f.pt, EncryptionContext: f.ctx})
	if err != nil {
		return nil, fmt.Errorf("Encrypt: %w", err)
	}
	f.ct = e.CiphertextBlob
	return f, nil
}

// do runs one request of op and checks its answer.
func do(ctx context.Context, c *kms.Client, f *fixture, op string) error {
	switch op {
	case "Encrypt":
		out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &f.keyID, Plaintext: f.pt, EncryptionContext: f.ctx})
		if err != nil {
			return err
		}
		if len(out.CiphertextBlob) <= len(f.pt) {
			return errors.New("Encrypt: a short ciphertext")
		}
	case "Decrypt":
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.ct, EncryptionContext: f.ctx})
		if err != nil {
			return err
		}
		if !bytes.Equal(out.Plaintext, f.pt) {
			return errors.New("Decrypt: not the plaintext")
		}
	case "GenerateDataKey":
		out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &f.keyID, KeySpec: types.DataKeySpecAes256, EncryptionContext: f.ctx})
		if err != nil {
			return err
		}
		if len(out.Plaintext) != 32 || len(out.CiphertextBlob) == 0 {
			return errors.New("GenerateDataKey: not a 32-byte data key")
		}
	default:
		return fmt.Errorf("unknown operation %s", op)
	}
	return nil
}

// measure runs op from g goroutines: an untimed warm-up, then until the
// duration ends or -kmsbench.max requests were started. Only requests that
// finished count, failed or not; a request still unanswered 30 s after
// its phase's end is abandoned (and counts as failed).
func measure(c *kms.Client, f *fixture, op string, g int) result {
	phase := func(d time.Duration, limit int64) result {
		var started, finished, failed atomic.Int64
		var once sync.Once
		var first error
		start := time.Now()
		deadline := start.Add(d)
		ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(30*time.Second))
		defer cancel()
		var wg sync.WaitGroup
		for range g {
			wg.Go(func() {
				for time.Now().Before(deadline) && started.Add(1) <= limit {
					if err := do(ctx, c, f, op); err != nil {
						failed.Add(1)
						once.Do(func() { first = err })
					}
					finished.Add(1)
				}
			})
		}
		wg.Wait()
		return result{op: op, goroutines: g, n: finished.Load(), errs: failed.Load(), elapsed: time.Since(start), firstErr: first}
	}
	phase(*flagWarmup, 1<<62)
	return phase(*flagDuration, *flagMax)
}

func goroutineCounts(t *testing.T) []int {
	var gs []int
	for _, s := range strings.Split(*flagGoroutines, ",") {
		g, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || g < 1 || g > 256 {
			t.Fatalf("-kmsbench.goroutines: %q is not a count from 1 to 256", s)
		}
		gs = append(gs, g)
	}
	return gs
}

// bench measures every operation at every goroutine count against tg.
func bench(t *testing.T, tg target) []result {
	var out []result
	maxG := 1
	gs := goroutineCounts(t)
	for _, g := range gs {
		maxG = max(maxG, g)
	}
	c := newClient(tg, maxG)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	f, err := setup(ctx, c)
	cancel()
	if err != nil {
		t.Errorf("%s: %v", tg.label, err)
		return []result{{target: tg.label, note: "set-up failed: " + err.Error()}}
	}
	for _, op := range opList(t) {
		for _, g := range gs {
			r := measure(c, f, op, g)
			r.target = tg.label
			r.key = tg.key
			t.Logf("%-16s %3d goroutines  %-28s %8.0f req/s  (%d requests, %d failed)", op, g, tg.label,
				float64(r.n)/r.elapsed.Seconds(), r.n, r.errs)
			out = append(out, r)
		}
	}
	return out
}

// TestKMSBench measures every target of -kmsbench.targets and prints the
// table.
func TestKMSBench(t *testing.T) {
	loadBefore := loadAverage()
	var results []result
	var labels []string
	for _, key := range strings.Split(*flagTargets, ",") {
		key = strings.TrimSpace(key)
		t.Run(key, func(t *testing.T) {
			var tg target
			switch key {
			case "moto":
				tg = startMoto(t, false)
			case "moto-tls":
				tg = startMoto(t, true)
			case "inprocess":
				srv := kmstest.Start(t)
				tg = target{label: "in-process, not a node", endpoint: srv.URL, region: srv.Region,
					akid: srv.AccessKeyID, secret: srv.SecretAccessKey, roots: srv.Client.Transport.(*http.Transport).TLSClientConfig.RootCAs}
			case "env":
				tg = envTarget(t)
			case "node1", "nodes3":
				n := 1
				if key == "nodes3" {
					n = 3
				}
				var note string
				tg, note = startCluster(t, n)
				if note != "" {
					results = append(results, result{target: tg.label, note: note})
					labels = append(labels, tg.label)
					t.Skip(note)
				}
			default:
				t.Fatalf("-kmsbench.targets: unknown target %q (moto, moto-tls, inprocess, node1, nodes3, env)", key)
			}
			tg.key = key
			labels = append(labels, tg.label)
			results = append(results, bench(t, tg)...)
		})
	}
	printTable(results, labels, goroutineCounts(t), opList(t))
	if *flagTSV != "" {
		writeTSV(t, results)
	}
	fmt.Printf("\nload average (1, 5, 15 min) before: %s; after: %s (the numbers are only as steady as this machine is quiet)\n",
		loadBefore, loadAverage())
}

// envTarget is an endpoint already running, from the environment that
// scripts/cluster.sh prints: AWS_ENDPOINT_URL_KMS, AWS_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_CA_BUNDLE (optional).
// bench.sh points AWS_ENDPOINT_URL_KMS at one node's KMS port.
func envTarget(t *testing.T) target {
	tg := target{endpoint: os.Getenv("AWS_ENDPOINT_URL_KMS"), region: os.Getenv("AWS_REGION"),
		akid: os.Getenv("AWS_ACCESS_KEY_ID"), secret: os.Getenv("AWS_SECRET_ACCESS_KEY")}
	if tg.endpoint == "" || tg.region == "" || tg.akid == "" || tg.secret == "" {
		t.Fatal("target env needs AWS_ENDPOINT_URL_KMS, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	tg.label = tg.endpoint
	if ca := os.Getenv("AWS_CA_BUNDLE"); ca != "" {
		pemBytes, err := os.ReadFile(ca)
		if err != nil {
			t.Fatalf("AWS_CA_BUNDLE: %v", err)
		}
		tg.roots = x509.NewCertPool()
		if !tg.roots.AppendCertsFromPEM(pemBytes) {
			t.Fatalf("AWS_CA_BUNDLE %s holds no certificate", ca)
		}
	}
	return tg
}

// writeTSV writes -kmsbench.tsv: a line per measured cell.
func writeTSV(t *testing.T, results []result) {
	var b strings.Builder
	for _, r := range results {
		if r.note != "" {
			continue
		}
		fmt.Fprintf(&b, "%s\t%d\t%s\t%.1f\t%d\t%d\n", r.op, r.goroutines, r.key, float64(r.n)/r.elapsed.Seconds(), r.n, r.errs)
	}
	if err := os.WriteFile(*flagTSV, []byte(b.String()), 0o600); err != nil {
		t.Errorf("-kmsbench.tsv: %v", err)
	}
}

// startCluster starts an n-node cluster through scripts/cluster.sh and
// returns the endpoint it printed, or why there is none.
func startCluster(t *testing.T, n int) (target, string) {
	label := "1 node"
	if n > 1 {
		label = fmt.Sprintf("%d nodes, printed endpoint", n)
	}
	cl := testcluster.Start(t, n)
	env := cl.Env
	tg := target{label: label, endpoint: env["AWS_ENDPOINT_URL_KMS"], region: env["AWS_REGION"],
		akid: env["AWS_ACCESS_KEY_ID"], secret: env["AWS_SECRET_ACCESS_KEY"]}
	if tg.endpoint == "" || tg.akid == "" || tg.secret == "" || tg.region == "" {
		return tg, "cluster.sh printed no KMS endpoint or principal (AWS_ENDPOINT_URL_KMS, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)"
	}
	if ca := env["AWS_CA_BUNDLE"]; ca != "" {
		pemBytes, err := os.ReadFile(ca)
		if err != nil {
			t.Fatalf("AWS_CA_BUNDLE: %v", err)
		}
		tg.roots = x509.NewCertPool()
		if !tg.roots.AppendCertsFromPEM(pemBytes) {
			t.Fatalf("AWS_CA_BUNDLE %s holds no certificate", ca)
		}
	}
	return tg, ""
}

// startMoto starts `python3 -m moto.server` on 127.0.0.1 at a free port,
// over plain HTTP or (withTLS) HTTPS with a certificate made here, and
// stops it by its PID when the test ends.
func startMoto(t *testing.T, withTLS bool) target {
	dir := t.TempDir()
	port := freePort(t)
	args := []string{"-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port)}
	scheme := "http"
	var roots *x509.CertPool
	if withTLS {
		cert, key := selfSigned(t, dir)
		args = append(args, "-c", cert, "-k", key)
		scheme = "https"
		roots = x509.NewCertPool()
		pemBytes, _ := os.ReadFile(cert)
		roots.AppendCertsFromPEM(pemBytes)
	}
	logf, err := os.Create(filepath.Join(dir, "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("python3 -m moto.server: %v", err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; ; i++ {
		select {
		case <-done:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("moto.server exited:\n%s", log)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			break
		}
		if i > 300 {
			t.Fatal("moto.server did not listen within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	version, _ := exec.Command("python3", "-c", "import moto; print(moto.__version__)").Output()
	label := "moto " + strings.TrimSpace(string(version)) + ", plain HTTP"
	if withTLS {
		label = "moto " + strings.TrimSpace(string(version)) + ", HTTPS"
	}
	return target{label: label, endpoint: scheme + "://" + addr, region: "us-east-1",
		akid: "AKIAMOTOBENCH0000000", secret: "moto-takes-any-secret", roots: roots}
}

// loadAverage is the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a P-256 certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "moto on 127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "moto.pem"), filepath.Join(dir, "moto-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// printTable prints the results as one Markdown table, each row's rate
// beside moto's (over plain HTTP, as `python3 -m moto.server` serves by
// default) for the same operation and goroutine count.
func printTable(results []result, labels []string, gs []int, ops []string) {
	moto := map[string]float64{}
	for _, r := range results {
		if strings.HasPrefix(r.target, "moto") && strings.HasSuffix(r.target, "plain HTTP") && r.note == "" && r.errs == 0 {
			moto[fmt.Sprint(r.op, r.goroutines)] = float64(r.n) / r.elapsed.Seconds()
		}
	}
	fmt.Printf("\nKMS API through SigV4, the unchanged aws-sdk-go-v2 KMS client (service/kms), %s, %d CPUs, GOMAXPROCS %d\n",
		runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Println("openhsm's API over HTTPS (kept-alive connections, one per goroutine); moto over plain HTTP or HTTPS, as labelled; all on this machine")
	fmt.Printf("each cell: %v after a %v warm-up, at most %d requests; 32-byte plaintext, one-pair encryption context; AES_256 data keys\n\n",
		*flagDuration, *flagWarmup, *flagMax)
	fmt.Println("| operation | goroutines | target | req/s | ratio vs moto | requests | failed |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|")
	for _, op := range ops {
		for _, g := range gs {
			for _, label := range labels {
				for _, r := range results {
					if r.target != label || r.note != "" || r.op != op || r.goroutines != g {
						continue
					}
					rate := float64(r.n) / r.elapsed.Seconds()
					ratio := "-"
					if m, ok := moto[fmt.Sprint(op, g)]; ok && m > 0 {
						ratio = fmt.Sprintf("%.2f", rate/m)
					}
					failed := strconv.FormatInt(r.errs, 10)
					if r.firstErr != nil {
						failed += " (" + r.firstErr.Error() + ")"
					}
					fmt.Printf("| %s | %d | %s | %.0f | %s | %d | %s |\n", op, g, label, rate, ratio, r.n, failed)
				}
			}
		}
	}
	for _, r := range results {
		if r.note != "" {
			fmt.Printf("\n%s: not measured: %s\n", r.target, r.note)
		}
	}
}
