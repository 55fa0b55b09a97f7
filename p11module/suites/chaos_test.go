package suites

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	mechpkg "github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// TestChaos: a three-node cluster loses a node every few seconds while 16
// threads of an application use it through libopenhsm-pkcs11.so.
//
// The application is a child process of the test binary (as in eachMode),
// with one C_Initialize and one session per thread, logged in as the
// cluster's crypto user. Each thread, in a loop, makes a token key pair
// (EC P-256; every rsaEvery-th one RSA-2048) and signs with a key it made
// earlier, chosen at random; every signature is checked in Go against the
// public key read through the library.
//
// Meanwhile the parent kills a random node with SIGKILL (cluster.sh stop -9)
// 2 to 5 s after the previous kill, and starts it again (cluster.sh start)
// after a pause of 0.2 to 1.5 s, for chaosFor (60 s; 15 s under -short).
// Before each kill it waits until a node reports a leader and every member
// reachable as leader or follower, so at most one node is ever down and a
// majority remains. (A node that is back need not have caught up yet: it is
// up, and Raft counts it.)
//
// Then it checks:
//   - no C_SignInit or C_Sign returned an error, and every signature
//     verified (signing is idempotent: the library must fail it over); nor
//     did reading a new key's public half (C_GetAttributeValue, also
//     idempotent);
//   - every key whose C_GenerateKeyPair returned CKR_OK is on every node:
//     a Go client pinned to each node in turn, caught up to the highest
//     applied index any node reports, reads its public half (the same
//     bytes the application read) and signs with its private half, and
//     the signature verifies.
//
// Every C_GenerateKeyPair uses a label of its own, and none may fail: a
// write whose node or leader died has an unknown outcome, and the client
// retries it with its request ID until it has an answer, which the cluster
// gives from the first execution's record if there was one. Each node must
// then hold, for each label, exactly the key pair the call returned, and no
// key pair with a label of the run whose call the application did not see
// succeed: keygen failures and such duplicates fail the test. The counts
// are logged and printed on one line ("chaos: ...").
//
// The whole test ends within chaosDeadline (4 min): the child is killed at
// the deadline, and testcluster stops every node by its PID.
func TestChaos(t *testing.T) {
	if childMode() != "" {
		if os.Getenv(envChaosOut) != "" {
			chaosChild(t)
		}
		return
	}
	build(t)
	d := chaosFor
	if testing.Short() {
		d = 15 * time.Second
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), chaosDeadline)
	defer cancel()
	cl := testcluster.Start(t, chaosNodes)
	ch := &chaos{t: t, cl: cl, ctx: ctx, start: start}
	ch.run(d)
}

const (
	chaosNodes    = 3
	chaosWorkers  = 16
	chaosFor      = 60 * time.Second
	chaosDeadline = 4 * time.Minute
	// rsaEvery: a thread's every rsaEvery-th key pair is RSA-2048 (which
	// costs the daemon tens of milliseconds of CPU), the others EC P-256.
	rsaEvery = 24
	// keygenOneIn: a thread makes a key pair on one turn in keygenOneIn,
	// and signs on the others (and always makes one when it has none).
	keygenOneIn = 3

	envChaosOut   = "SUITES_CHAOS_OUT"   // where the child writes its chaosResult
	envChaosLabel = "SUITES_CHAOS_LABEL" // CKA_LABEL of every key of the run
	chaosReady    = "chaos child: ready" // the child's line once its sessions are open
)

// ---- what the child reports ----

// chaosKey is a key pair whose C_GenerateKeyPair returned CKR_OK.
type chaosKey struct {
	Worker int       `json:"worker"`
	Label  string    `json:"label"` // unique to this key pair
	RSA    bool      `json:"rsa"`
	Pub    uint      `json:"pub"`
	Priv   uint      `json:"priv"`
	Made   time.Time `json:"made"`
	// The public key as the application read it (CKA_EC_POINT; or
	// CKA_MODULUS and CKA_PUBLIC_EXPONENT); empty if that read failed.
	Point    []byte `json:"point,omitempty"`
	Modulus  []byte `json:"modulus,omitempty"`
	Exponent []byte `json:"exponent,omitempty"`
}

// chaosEvent is a failed call.
type chaosEvent struct {
	At     time.Time `json:"at"`
	Worker int       `json:"worker"`
	Call   string    `json:"call"` // C_GenerateKeyPair, C_SignInit, ...
	Key    uint      `json:"key,omitempty"`
	Label  string    `json:"label,omitempty"` // of the key pair a failed C_GenerateKeyPair was to make
	RV     string    `json:"rv"`
	Err    string    `json:"err"`
}

type chaosResult struct {
	Started    time.Time      `json:"started"`
	Elapsed    time.Duration  `json:"elapsed"`
	Keys       []chaosKey     `json:"keys"`
	KeygenFail map[string]int `json:"keygen_fail"` // by CKR name
	KeygenErrs []chaosEvent   `json:"keygen_errs"`
	SignsOK    int64          `json:"signs_ok"`
	SignErrs   []chaosEvent   `json:"sign_errs"` // C_SignInit or C_Sign failed
	BadSigs    []chaosEvent   `json:"bad_sigs"`  // C_Sign succeeded, Go says the signature is wrong
	ReadErrs   []chaosEvent   `json:"read_errs"` // reading a new key's public half failed
}

// ---- the child: the application ----

type chaosApp struct {
	p     *pkcs11.Ctx
	label string
	stop  atomic.Bool

	signsOK atomic.Int64
	mu      sync.Mutex
	res     chaosResult
}

func chaosChild(t *testing.T) {
	out := os.Getenv(envChaosOut)
	p := loadModule(t)
	slot := tokenSlot(t, p, os.Getenv("P11_TOKEN_LABEL"))
	app := &chaosApp{p: p, label: os.Getenv(envChaosLabel)}
	app.res.KeygenFail = map[string]int{}
	if app.label == "" {
		t.Fatalf("%s is not set", envChaosLabel)
	}

	sessions := make([]pkcs11.SessionHandle, chaosWorkers)
	for i := range sessions {
		var err error
		if sessions[i], err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			t.Fatalf("C_OpenSession %d: %v", i, err)
		}
		// One login for the application; later sessions share it.
		if i == 0 {
			if err := p.Login(sessions[0], pkcs11.CKU_USER, os.Getenv("P11_PIN")); err != nil {
				t.Fatalf("C_Login: %v", err)
			}
		}
	}
	for i, sh := range sessions {
		si, err := p.GetSessionInfo(sh)
		if err != nil || si.State != pkcs11.CKS_RW_USER_FUNCTIONS {
			t.Fatalf("session %d: state %d, %v; want CKS_RW_USER_FUNCTIONS", i, si.State, err)
		}
	}

	// The parent closes our standard input to say the chaos is over; the
	// deadline is a safety net should it never do so.
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	go func() {
		select {
		case <-done:
		case <-time.After(chaosDeadline):
		}
		app.stop.Store(true)
	}()

	app.res.Started = time.Now()
	fmt.Println(chaosReady)
	var wg sync.WaitGroup
	for g := range chaosWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app.work(g, sessions[g])
		}()
	}
	wg.Wait()
	app.res.Elapsed = time.Since(app.res.Started)
	app.res.SignsOK = app.signsOK.Load()
	t.Logf("%d key pairs made, %d failed; %d signatures, %d sign errors, %d bad signatures",
		len(app.res.Keys), len(app.res.KeygenErrs), app.res.SignsOK, len(app.res.SignErrs), len(app.res.BadSigs))

	b, err := json.Marshal(&app.res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, sh := range sessions {
		if err := p.CloseSession(sh); err != nil {
			t.Errorf("C_CloseSession %d: %v", i, err)
		}
	}
}

// ownKey is a key a thread made, with its public key for checking.
type ownKey struct {
	chaosKey
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
}

func (app *chaosApp) work(g int, sh pkcs11.SessionHandle) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))
	var mine []*ownKey
	made := 0
	for !app.stop.Load() {
		if len(mine) == 0 || rng.IntN(keygenOneIn) == 0 {
			made++
			if k := app.keygen(g, sh, made%rsaEvery == 0, fmt.Sprintf("%s/%d/%d", app.label, g, made)); k != nil {
				mine = append(mine, k)
			}
			continue
		}
		app.sign(g, sh, mine[rng.IntN(len(mine))], rng)
	}
}

func (app *chaosApp) event(list *[]chaosEvent, g int, call string, key uint, err error) chaosEvent {
	e := chaosEvent{At: time.Now(), Worker: g, Call: call, Key: key, RV: rvName(rvOf(err)), Err: err.Error()}
	app.mu.Lock()
	*list = append(*list, e)
	app.mu.Unlock()
	return e
}

// keygen makes a token key pair and reads its public half.
func (app *chaosApp) keygen(g int, sh pkcs11.SessionHandle, isRSA bool, label string) *ownKey {
	p, attr := app.p, pkcs11.NewAttribute
	var m []*pkcs11.Mechanism
	pubT := []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_VERIFY, true), attr(pkcs11.CKA_LABEL, label)}
	privT := []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_LABEL, label)}
	if isRSA {
		m = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
		pubT = append(pubT, attr(pkcs11.CKA_MODULUS_BITS, 2048), attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
	} else {
		m = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}
		pubT = append(pubT, attr(pkcs11.CKA_EC_PARAMS, p256Params))
	}
	pub, priv, err := p.GenerateKeyPair(sh, m, pubT, privT)
	if err != nil {
		e := chaosEvent{At: time.Now(), Worker: g, Call: "C_GenerateKeyPair", Label: label, RV: rvName(rvOf(err)), Err: err.Error()}
		app.mu.Lock()
		app.res.KeygenErrs = append(app.res.KeygenErrs, e)
		app.res.KeygenFail[e.RV]++
		app.mu.Unlock()
		return nil
	}
	k := &ownKey{chaosKey: chaosKey{Worker: g, Label: label, RSA: isRSA, Pub: uint(pub), Priv: uint(priv), Made: time.Now()}}
	// The key counts as made whatever happens next.
	defer func() {
		app.mu.Lock()
		app.res.Keys = append(app.res.Keys, k.chaosKey)
		app.mu.Unlock()
	}()
	if isRSA {
		attrs, err := p.GetAttributeValue(sh, pub, []*pkcs11.Attribute{attr(pkcs11.CKA_MODULUS, nil), attr(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err == nil {
			k.rsa, err = rsaPublic(attrs[0].Value, attrs[1].Value)
		}
		if err != nil {
			app.event(&app.res.ReadErrs, g, "C_GetAttributeValue", uint(pub), err)
			return nil
		}
		k.Modulus, k.Exponent = attrs[0].Value, attrs[1].Value
	} else {
		attrs, err := p.GetAttributeValue(sh, pub, []*pkcs11.Attribute{attr(pkcs11.CKA_EC_POINT, nil)})
		if err == nil {
			k.ec, err = ecPublic(attrs[0].Value)
		}
		if err != nil {
			app.event(&app.res.ReadErrs, g, "C_GetAttributeValue", uint(pub), err)
			return nil
		}
		k.Point = attrs[0].Value
	}
	return k
}

// sign signs a random message with k and checks the signature in Go.
func (app *chaosApp) sign(g int, sh pkcs11.SessionHandle, k *ownKey, rng *rand.Rand) {
	msg := make([]byte, 1+rng.IntN(200))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	mechV, data := chaosMech(k.RSA, rng.IntN(2) == 0, msg)
	if err := app.p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mechV, nil)}, pkcs11.ObjectHandle(k.Priv)); err != nil {
		app.event(&app.res.SignErrs, g, "C_SignInit", k.Priv, err)
		return
	}
	sig, err := app.p.Sign(sh, data)
	if err != nil {
		app.event(&app.res.SignErrs, g, "C_Sign", k.Priv, err)
		return
	}
	if err := checkSig(k.ec, k.rsa, msg, sig); err != nil {
		app.event(&app.res.BadSigs, g, "C_Sign", k.Priv, err)
		return
	}
	app.signsOK.Add(1)
}

// chaosMech is the mechanism and the input for signing msg: RSA keys use
// CKM_SHA256_RSA_PKCS; EC keys CKM_ECDSA on msg's SHA-256 hash, or (alt)
// CKM_ECDSA_SHA256 on msg. Every variant's signature checks with checkSig.
func chaosMech(isRSA, alt bool, msg []byte) (uint, []byte) {
	switch {
	case isRSA:
		return pkcs11.CKM_SHA256_RSA_PKCS, msg
	case alt:
		return pkcs11.CKM_ECDSA_SHA256, msg
	}
	h := sha256.Sum256(msg)
	return pkcs11.CKM_ECDSA, h[:]
}

// checkSig checks a signature of msg (SHA-256; ECDSA as raw r||s, which is
// what PKCS#11 returns) with whichever public key is set. Without one
// (the application could not read it) there is nothing to check against.
func checkSig(ecPub *ecdsa.PublicKey, rsaPub *rsa.PublicKey, msg, sig []byte) error {
	h := sha256.Sum256(msg)
	switch {
	case rsaPub != nil:
		if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, h[:], sig); err != nil {
			return fmt.Errorf("the RSA signature does not verify in Go: %v", err)
		}
	case ecPub != nil:
		if len(sig) != 64 || !ecdsa.Verify(ecPub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return fmt.Errorf("the ECDSA signature (%d bytes) does not verify in Go", len(sig))
		}
	}
	return nil
}

// ecPublic parses CKA_EC_POINT (the DER OCTET STRING of an uncompressed
// P-256 point).
func ecPublic(v []byte) (*ecdsa.PublicKey, error) {
	var point []byte
	if rest, err := asn1.Unmarshal(v, &point); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("CKA_EC_POINT %x is not a DER OCTET STRING", v)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT %x is not a P-256 point: %v", point, err)
	}
	return pub, nil
}

func rsaPublic(mod, exp []byte) (*rsa.PublicKey, error) {
	n, e := new(big.Int).SetBytes(mod), new(big.Int).SetBytes(exp)
	if n.BitLen() != 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("not an RSA-2048 public key: %d-bit modulus, exponent %v", n.BitLen(), e)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// ---- the parent: kills, restarts, checks ----

type chaos struct {
	t     *testing.T
	cl    *testcluster.Cluster
	ctx   context.Context // ends at the overall deadline
	start time.Time
	label string

	kills    []chaosKill
	status   *client.Client // for ClusterStatus, no login
	childOut syncBuf
}

type chaosKill struct {
	node int
	// When it was killed, when `cluster.sh stop -9` returned (it waits
	// until the process is gone), when `cluster.sh start` began, and when
	// the node listened again (zero if it did not).
	killed, stopped, starting, started time.Time
}

// syncBuf is the child's output, written by one goroutine and read by the
// test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (ch *chaos) run(d time.Duration) {
	t, cl := ch.t, ch.cl
	ch.label = "chaos-" + randomTag()
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	if ch.status, err = client.Dial(ch.ctx, cfg); err != nil {
		t.Fatalf("dial the cluster: %v", err)
	}
	defer ch.status.Close()

	// The application.
	out := filepath.Join(t.TempDir(), "chaos.json")
	cmd := exec.CommandContext(ch.ctx, os.Args[0], "-test.run=^TestChaos$", "-test.v=true", "-test.count=1",
		fmt.Sprintf("-test.timeout=%s", chaosDeadline))
	cmd.Env = append(cleanEnv(),
		"HSM_CONFIG="+cl.Env["HSM_CONFIG"], "P11_TOKEN_LABEL="+cl.Env["P11_TOKEN_LABEL"], "P11_PIN="+cl.Env["P11_PIN"],
		envMode+"="+modeInproc, envLib+"="+lib, envChaosOut+"="+out, envChaosLabel+"="+ch.label)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	exited := make(chan error, 1)
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			ch.childOut.Write([]byte(line + "\n"))
			if strings.TrimSpace(line) == chaosReady {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, pr)
		pr.Close()
	}()
	go func() {
		<-readDone
		exited <- cmd.Wait()
	}()
	// Whatever happens below, the child does not outlive the test.
	defer func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()

	select {
	case <-ready:
	case err := <-exited:
		exited <- err
		t.Fatalf("the application exited before it was ready (%v):\n%s", err, quiet(ch.childOut.String()))
	case <-ch.ctx.Done():
		t.Fatalf("the application was not ready within %s:\n%s", chaosDeadline, quiet(ch.childOut.String()))
	}

	// The chaos: a kill every 2 to 5 s, counted from the previous kill,
	// but never before the node killed last is back in the cluster.
	chaosStart := time.Now()
	rng := rand.New(rand.NewPCG(uint64(chaosStart.UnixNano()), 0))
	gap := func() time.Duration { return time.Duration(2000+rng.IntN(3001)) * time.Millisecond }
	for next := chaosStart.Add(gap()); next.Sub(chaosStart) < d && ch.sleep(time.Until(next)); {
		// At most one node down: the last one restarted must be back.
		if why := ch.waitHealthy(30 * time.Second); why != "" {
			t.Errorf("before kill %d: the cluster did not become whole again within 30 s: %s", len(ch.kills)+1, why)
			break
		}
		k := 1 + rng.IntN(chaosNodes)
		kill := chaosKill{node: k, killed: time.Now()}
		next = kill.killed.Add(gap())
		cl.Stop(k, true)
		kill.stopped = time.Now()
		ch.sleep(time.Duration(200+rng.IntN(1301)) * time.Millisecond)
		kill.starting = time.Now()
		if out, err := cl.StartNode(k); err != nil {
			ch.kills = append(ch.kills, kill)
			t.Errorf("node%d did not start again after SIGKILL: %v\n%s\nlast lines of its log:\n%s",
				k, err, out, tail(cl.LogFile(k), 30))
			break
		}
		kill.started = time.Now()
		ch.kills = append(ch.kills, kill)
	}
	ch.sleep(time.Until(chaosStart.Add(d)))
	chaosTime := time.Since(chaosStart)

	// The end: the application stops, then every node must be up.
	stdin.Close()
	var childErr error
	select {
	case childErr = <-exited:
		exited <- childErr
	case <-ch.ctx.Done():
		t.Fatalf("the application did not stop by the deadline:\n%s", quiet(ch.childOut.String()))
	}
	if childErr != nil {
		t.Errorf("the application failed (%v):\n%s", childErr, quiet(ch.childOut.String()))
	} else {
		t.Logf("the application's output:\n%s", quiet(ch.childOut.String()))
	}
	for k := 1; k <= chaosNodes; k++ {
		if !cl.Running(k) {
			t.Errorf("node%d is not running after the chaos; last lines of its log:\n%s", k, tail(cl.LogFile(k), 30))
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the application wrote no results: %v", err)
	}
	var res chaosResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("the application's results: %v", err)
	}
	if t.Failed() {
		ch.report(&res, nil, chaosTime)
		return
	}
	if why := ch.waitHealthy(60 * time.Second); why != "" {
		t.Fatalf("after the chaos, the cluster did not become whole again within 60 s: %s", why)
	}
	ch.report(&res, ch.verify(&res), chaosTime)
}

// sleep waits d, or less if the deadline comes first (then false).
func (ch *chaos) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ch.ctx.Done():
		return false
	}
}

// waitHealthy waits until a node reports a leader and every member
// reachable as leader or follower; it returns why not if that does not
// happen within d.
func (ch *chaos) waitHealthy(d time.Duration) string {
	_, why := ch.clusterState(d)
	return why
}

// clusterState waits (up to d) for a whole cluster and returns the highest
// index any member has applied.
func (ch *chaos) clusterState(d time.Duration) (maxApplied uint64, why string) {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(ch.ctx, 5*time.Second)
		st, err := ch.status.ClusterStatus(ctx)
		cancel()
		switch {
		case err != nil:
			why = err.Error()
		case st.Leader == "":
			why = "no leader"
		case len(st.Nodes) != chaosNodes:
			why = fmt.Sprintf("%d members", len(st.Nodes))
		default:
			why, maxApplied = "", 0
			for _, n := range st.Nodes {
				if !n.Reachable || (n.State != "leader" && n.State != "follower") {
					why = fmt.Sprintf("%s is %s (reachable %v, %s)", n.Name, n.State, n.Reachable, n.Error)
				}
				maxApplied = max(maxApplied, n.AppliedIndex)
			}
		}
		if why == "" {
			return maxApplied, ""
		}
		if time.Now().After(deadline) || ch.ctx.Err() != nil {
			return 0, why
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nodeCheck is what one node showed of the keys.
type nodeCheck struct {
	node     int
	index    uint64 // the index it was caught up to
	ok       int    // keys whose public half matched and whose signature verified
	found    int    // the run's private keys ListObjects lists on the node
	problems []string
	// dups are what the node shows that a request was applied other than
	// once: a label (one per C_GenerateKeyPair) on more than one key pair,
	// a key pair the application was never told of (its call failed, or it
	// was told of other handles), or an OK key pair missing.
	dups []string
}

// verify checks every key made with CKR_OK on every node, each through a
// client pinned to that node.
func (ch *chaos) verify(res *chaosResult) []nodeCheck {
	t := ch.t
	idx, why := ch.clusterState(30 * time.Second)
	if why != "" {
		t.Fatalf("cluster status: %s", why)
	}
	var checks []nodeCheck
	for k := 1; k <= chaosNodes; k++ {
		nc := ch.verifyNode(k, idx, res.Keys)
		for i, p := range nc.problems {
			if i == 20 {
				t.Errorf("node%d: ... and %d more", k, len(nc.problems)-20)
				break
			}
			t.Errorf("node%d: %s", k, p)
		}
		checks = append(checks, nc)
	}
	return checks
}

func (ch *chaos) verifyNode(k int, idx uint64, keys []chaosKey) nodeCheck {
	t, cl := ch.t, ch.cl
	nc := nodeCheck{node: k, index: idx}
	began := time.Now()
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Nodes = []string{cl.Addr(k)}
	c, err := client.Dial(ch.ctx, cfg)
	if err != nil {
		nc.problems = append(nc.problems, fmt.Sprintf("dial: %v", err))
		return nc
	}
	defer c.Close()
	if err := c.Login(ch.ctx, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"]); err != nil {
		nc.problems = append(nc.problems, fmt.Sprintf("login: %v", err))
		return nc
	}
	// Catch up: with the index raised, a node that has not applied it
	// refuses (after waiting 2 s); a pinned client has nowhere else to go.
	c.AdvanceIndex(idx)
	var objs []client.ObjectInfo
	for deadline := time.Now().Add(30 * time.Second); ; {
		objs, err = c.ListObjects(ch.ctx, nil, 100000)
		if hsmerr.RV(err) != ck.CKR_DEVICE_ERROR || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		nc.problems = append(nc.problems, fmt.Sprintf("listing the run's keys, caught up to index %d (30 s allowed): %v", idx, err))
		return nc
	}
	nc.dups = chaosDuplicates(ch.label, objs, keys)
	for _, o := range objs {
		if l, _ := o.Attr(ck.CKA_LABEL); strings.HasPrefix(string(l), ch.label+"/") && objClass(o) == ck.CKO_PRIVATE_KEY {
			nc.found++
		}
	}
	nc.index = max(idx, c.Index())

	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) || ch.ctx.Err() != nil {
					return
				}
				problem := checkKeyOn(ch.ctx, c, keys[i])
				mu.Lock()
				if problem == "" {
					nc.ok++
				} else {
					nc.problems = append(nc.problems, problem)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ch.ctx.Err() != nil {
		nc.problems = append(nc.problems, "the deadline came during the check")
	}
	sort.Strings(nc.problems)
	t.Logf("node%d: %d of %d key pairs checked in %.1f s", k, nc.ok, len(keys), time.Since(began).Seconds())
	return nc
}

func objClass(o client.ObjectInfo) uint64 {
	v, _ := o.Attr(ck.CKA_CLASS)
	c, _ := object.Attrs{ck.CKA_CLASS: v}.Ulong(ck.CKA_CLASS)
	return c
}

// chaosDuplicates compares the run's objects on a node with the key pairs
// the application was told of: every label (one per C_GenerateKeyPair)
// must name exactly the public and private key the call returned, and no
// other object may carry the run's labels.
func chaosDuplicates(label string, objs []client.ObjectInfo, keys []chaosKey) []string {
	type pair struct{ pub, priv []uint64 }
	onNode := map[string]*pair{}
	for _, o := range objs {
		l, _ := o.Attr(ck.CKA_LABEL)
		if !strings.HasPrefix(string(l), label+"/") {
			continue
		}
		p := onNode[string(l)]
		if p == nil {
			p = &pair{}
			onNode[string(l)] = p
		}
		switch objClass(o) {
		case ck.CKO_PUBLIC_KEY:
			p.pub = append(p.pub, o.ID)
		case ck.CKO_PRIVATE_KEY:
			p.priv = append(p.priv, o.ID)
		}
	}
	var dups []string
	told := map[string]bool{}
	for _, k := range keys {
		if told[k.Label] {
			dups = append(dups, fmt.Sprintf("%s: the application was told of two key pairs", k.Label))
			continue
		}
		told[k.Label] = true
		p := onNode[k.Label]
		switch {
		case p == nil:
			dups = append(dups, fmt.Sprintf("%s: made OK (%d/%d) but not on the node", k.Label, k.Pub, k.Priv))
		case len(p.pub) != 1 || len(p.priv) != 1:
			dups = append(dups, fmt.Sprintf("%s: created more than once: public keys %v, private keys %v (the application got %d/%d)",
				k.Label, p.pub, p.priv, k.Pub, k.Priv))
		case p.pub[0] != uint64(k.Pub) || p.priv[0] != uint64(k.Priv):
			dups = append(dups, fmt.Sprintf("%s: the node holds %d/%d, the application was told %d/%d", k.Label, p.pub[0], p.priv[0], k.Pub, k.Priv))
		}
	}
	var untold []string
	for l, p := range onNode {
		if !told[l] {
			untold = append(untold, fmt.Sprintf("%s: on the node (public %v, private %v) but the application was not told of it", l, p.pub, p.priv))
		}
	}
	sort.Strings(untold)
	return append(dups, untold...)
}

// checkKeyOn reads k's public half through c and compares it with what the
// application read, then signs with its private half and checks the
// signature in Go. It returns "" or what is wrong.
func checkKeyOn(ctx context.Context, c *client.Client, k chaosKey) string {
	what := fmt.Sprintf("key pair %d/%d (thread %d, made %s)", k.Pub, k.Priv, k.Worker, k.Made.Format("15:04:05.000"))
	types := []uint64{ck.CKA_EC_POINT}
	if k.RSA {
		types = []uint64{ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT}
	}
	av, err := c.GetAttributes(ctx, uint64(k.Pub), types)
	if err != nil {
		return fmt.Sprintf("%s: reading the public key: %v", what, err)
	}
	for _, a := range av {
		if a.RV != ck.CKR_OK {
			return fmt.Sprintf("%s: public key attribute %s: %s", what, ck.AttrName(a.Type), ck.RVName(a.RV))
		}
	}
	var ecPub *ecdsa.PublicKey
	var rsaPub *rsa.PublicKey
	if k.RSA {
		if k.Modulus != nil && (!bytes.Equal(av[0].Value, k.Modulus) || !bytes.Equal(av[1].Value, k.Exponent)) {
			return what + ": the public key differs from the one the application read"
		}
		rsaPub, err = rsaPublic(av[0].Value, av[1].Value)
	} else {
		if k.Point != nil && !bytes.Equal(av[0].Value, k.Point) {
			return what + ": the public key differs from the one the application read"
		}
		ecPub, err = ecPublic(av[0].Value)
	}
	if err != nil {
		return fmt.Sprintf("%s: %v", what, err)
	}
	msg := []byte(fmt.Sprintf("chaos check of %d", k.Priv))
	m, data := chaosMech(k.RSA, false, msg)
	sig, err := c.Sign(ctx, uint64(k.Priv), clientMech(uint64(m)), data)
	if err != nil {
		return fmt.Sprintf("%s: signing: %v", what, err)
	}
	if err := checkSig(ecPub, rsaPub, msg, sig); err != nil {
		return fmt.Sprintf("%s: %v", what, err)
	}
	return ""
}

// report fails the test for errors the application saw, and logs and
// prints the counts.
func (ch *chaos) report(res *chaosResult, checks []nodeCheck, chaosTime time.Duration) {
	t := ch.t
	kills := make([]string, len(ch.kills))
	for i, k := range ch.kills {
		down := "not started again"
		if !k.started.IsZero() {
			down = fmt.Sprintf("down %.1f s: stop %.1f s, pause %.1f s, start %.1f s", k.started.Sub(k.killed).Seconds(),
				k.stopped.Sub(k.killed).Seconds(), k.starting.Sub(k.stopped).Seconds(), k.started.Sub(k.starting).Seconds())
		}
		kills[i] = fmt.Sprintf("node%d at +%.1f s (%s)", k.node, k.killed.Sub(res.Started).Seconds(), down)
	}
	t.Logf("kills (times from the application's start): %s", strings.Join(kills, ", "))
	for _, list := range []struct {
		what string
		evs  []chaosEvent
	}{{"sign error", res.SignErrs}, {"bad signature", res.BadSigs}, {"error reading a new key's public half", res.ReadErrs}} {
		for i, e := range list.evs {
			if i == 20 {
				t.Errorf("... and %d more of them", len(list.evs)-20)
				break
			}
			t.Errorf("%s at +%.3f s, thread %d, key %d, %s: %s (%s)", list.what, e.At.Sub(res.Started).Seconds(),
				e.Worker, e.Key, e.Call, e.RV, e.Err)
		}
	}
	// With request IDs every write is retried until it has an answer, so
	// a key generation may not fail for a node dying, nor be applied twice.
	for i, e := range res.KeygenErrs {
		if i == 10 {
			t.Errorf("... and %d more failed key generations", len(res.KeygenErrs)-10)
			break
		}
		t.Errorf("key generation failed at +%.3f s, thread %d, label %s: %s", e.At.Sub(res.Started).Seconds(), e.Worker, e.Label, e.Err)
	}
	dups := 0
	for _, nc := range checks {
		for i, d := range nc.dups {
			if i == 10 {
				t.Errorf("node%d: ... and %d more duplicates", nc.node, len(nc.dups)-10)
				break
			}
			t.Errorf("node%d: duplicate: %s", nc.node, d)
		}
		dups = max(dups, len(nc.dups))
	}

	nRSA := 0
	for _, k := range res.Keys {
		if k.RSA {
			nRSA++
		}
	}
	var fails []string
	for rv, n := range res.KeygenFail {
		fails = append(fails, fmt.Sprintf("%s %d", strings.Fields(rv)[0], n))
	}
	sort.Strings(fails)
	if len(fails) == 0 {
		fails = []string{"none"}
	}
	// A key pair whose C_GenerateKeyPair failed may exist all the same (the
	// outcome of a write whose leader died is unknown): the nodes list
	// the run's private keys, and those beyond the ones made OK are such.
	var nodes []string
	for _, nc := range checks {
		nodes = append(nodes, fmt.Sprintf("node%d %d/%d ok (index %d; lists %d, %+d; duplicates %d)", nc.node, nc.ok, len(res.Keys),
			nc.index, nc.found, nc.found-len(res.Keys), len(nc.dups)))
	}
	if checks == nil {
		nodes = []string{"not checked"}
	}
	// How often a key generation's outcome was unknown and the library
	// retried it with its request ID (the library logs each retry).
	retried := 0
	if b, err := os.ReadFile(filepath.Join(ch.cl.Dir, "p11.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "trying another node") && strings.Contains(l, "method=GenerateKeyPair") &&
				(strings.Contains(l, `reason="connection lost"`) || strings.Contains(l, `reason="node unavailable"`)) {
				retried++
			}
		}
	}
	line := fmt.Sprintf("chaos: %d nodes, %d threads, %.0f s of chaos, %d kills; keys created OK %d (%d RSA); "+
		"keygen failures %d (%s); duplicates %d; keygen tries of unknown outcome retried %d; signs OK %d, sign errors %d, bad signatures %d, read errors %d; per node: %s; duration %.0f s",
		chaosNodes, chaosWorkers, chaosTime.Seconds(), len(ch.kills), len(res.Keys), nRSA, len(res.KeygenErrs), strings.Join(fails, ", "), dups, retried,
		res.SignsOK, len(res.SignErrs), len(res.BadSigs), len(res.ReadErrs), strings.Join(nodes, "; "), time.Since(ch.start).Seconds())
	t.Log(line)
	fmt.Println(line)
	// go test hides a passing package's output: make test prints this file.
	if f := os.Getenv("OPENHSM_TEST_SUMMARY"); f != "" {
		if w, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(w, line)
			w.Close()
		}
	}
	if t.Failed() {
		t.Logf("last lines of the library's log (p11.log):\n%s", tail(filepath.Join(ch.cl.Dir, "p11.log"), 20))
		// What the nodes said around the first failed call of the
		// application (they log every call they refuse).
		var first time.Time
		for _, evs := range [][]chaosEvent{res.SignErrs, res.BadSigs, res.ReadErrs, res.KeygenErrs} {
			for _, e := range evs {
				if first.IsZero() || e.At.Before(first) {
					first = e.At
				}
			}
		}
		if !first.IsZero() {
			for k := 1; k <= chaosNodes; k++ {
				t.Logf("node%d's log from 3 s before to 1 s after the first failed call (+%.3f s), warnings, errors and refusals:\n%s",
					k, first.Sub(res.Started).Seconds(), logsAround(ch.cl.LogFile(k), first.Add(-3*time.Second), first.Add(time.Second), 60))
			}
		}
	}
	if len(res.Keys) == 0 || res.SignsOK == 0 {
		t.Errorf("the application made %d keys and %d signatures: the test tested nothing", len(res.Keys), res.SignsOK)
	}
	if len(ch.kills) == 0 {
		t.Error("no node was killed")
	}
}

// logsAround returns at most max lines of a node's log (JSON lines, with
// "time" or, from Raft, "@timestamp") between from and to: Raft's from info
// up, the daemon's warnings, errors and refused calls.
func logsAround(path string, from, to time.Time, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Time   time.Time `json:"time"`
			RTime  time.Time `json:"@timestamp"`
			Level  string    `json:"level"`
			RLevel string    `json:"@level"`
			Msg    string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		at, level := l.Time, strings.ToLower(l.Level+l.RLevel)
		if at.IsZero() {
			at = l.RTime
		}
		quiet := level == "debug" || level == "trace" || (l.Level == "INFO" && l.Msg != "refused")
		if at.Before(from) || at.After(to) || quiet {
			continue
		}
		line := sc.Text()
		if len(line) > 400 {
			line = line[:400] + "..."
		}
		out = append(out, line)
	}
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("... and %d more", len(out)-max))
	}
	if len(out) == 0 {
		return "(nothing)"
	}
	return strings.Join(out, "\n")
}

// clientMech is a mechanism without parameters, for the Go client (this
// package's own mech helper builds miekg/pkcs11 ones).
func clientMech(t uint64) mechpkg.Mech { return mechpkg.Mech{Type: t} }
