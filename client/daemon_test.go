package client

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/connectivity"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// These tests run the client against real hsmd daemons started by
// scripts/cluster.sh (through internal/testcluster).

// startCluster starts a real n-node cluster.
func startCluster(t *testing.T, n int) *testcluster.Cluster {
	t.Helper()
	return testcluster.Start(t, n)
}

// daemonClient dials the cluster with fast health checks and logs in as
// its crypto user.
func daemonClient(t *testing.T, tc *testcluster.Cluster) (*Client, *syncBuffer) {
	t.Helper()
	return daemonClientEvery(t, tc, 200*time.Millisecond)
}

// daemonClientEvery is daemonClient with the given health interval.
func daemonClientEvery(t *testing.T, tc *testcluster.Cluster, interval time.Duration) (*Client, *syncBuffer) {
	t.Helper()
	cfg, err := LoadConfig(tc.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.HealthInterval = interval
	logs := &syncBuffer{}
	c, err := Dial(context.Background(), cfg, WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(context.Background(), tc.Env["P11_TOKEN_LABEL"], tc.Env["P11_PIN"]); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, c, len(cfg.Nodes))
	return c, logs
}

// noSecretsIn checks that the client's log holds neither the password nor
// the session token.
func noSecretsIn(t *testing.T, tc *testcluster.Cluster, c *Client, logs *syncBuffer) {
	t.Helper()
	s := logs.String()
	if strings.Contains(s, tc.Env["P11_PIN"]) {
		t.Error("the client log holds the password")
	}
	if cur := c.current(); cur != nil && strings.Contains(s, cur.token) {
		t.Error("the client log holds the session token")
	}
}

var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// ecKey makes a P-256 token key pair for signing.
func ecKey(t *testing.T, c *Client) (pub, priv uint64) {
	t.Helper()
	pub, priv, err := c.GenerateKeyPair(context.Background(), mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}},
		object.Template{{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}, {Type: ck.CKA_SIGN, Value: object.EncodeBool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func ecSign(c *Client, priv uint64, msg string) ([]byte, error) {
	return c.Sign(context.Background(), priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte(msg))
}

// nodeOf returns the number k of the cluster node at addr.
func nodeOf(t *testing.T, tc *testcluster.Cluster, addr string) int {
	t.Helper()
	for k := 1; k <= 9; k++ {
		b, err := os.ReadFile(filepath.Join(tc.Dir, "node"+strconv.Itoa(k)+".addr"))
		if err == nil && strings.TrimSpace(string(b)) == addr {
			return k
		}
	}
	t.Fatalf("no node listens on %s", addr)
	return 0
}

// calls returns every node's count of answered calls.
func calls(c *Client) []uint64 {
	var out []uint64
	for _, n := range c.Nodes() {
		out = append(out, n.Calls)
	}
	return out
}

func TestDaemonOneNode(t *testing.T) {
	tc := startCluster(t, 1)
	c, logs := daemonClient(t, tc)
	ctx := context.Background()
	pub, priv := ecKey(t, c)
	for i := range 20 {
		sig, err := ecSign(c, priv, "message "+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(ctx, pub, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("message "+strconv.Itoa(i)), sig); err != nil {
			t.Fatal(err)
		}
	}
	// Whether or not the daemon sends x-hsm-index yet, calls work; an index
	// it sends is kept.
	t.Logf("index seen: %d", c.idx().load())
	sess := c.Session()

	// The checker finds a stopped node, and calls fail while it is down.
	for _, kill := range []bool{false, true} {
		tc.Stop(1, kill)
		waitFor(t, 5*time.Second, func() bool { return !c.Nodes()[0].Healthy }, "the stopped node to be unhealthy")
		if _, err := ecSign(c, priv, "down"); RV(err) != ck.CKR_DEVICE_ERROR {
			t.Errorf("sign with the node down: %v", err)
		}
		if out, err := tc.StartNode(1); err != nil {
			t.Fatalf("restart: %v\n%s", err, out)
		}
		waitFor(t, 10*time.Second, func() bool { return c.Nodes()[0].Healthy }, "the restarted node to be healthy")
		if _, err := ecSign(c, priv, "back"); err != nil {
			t.Fatalf("sign after the restart: %v", err)
		}
	}
	if c.Session() != sess {
		t.Errorf("the session changed from %d to %d: the client logged in again", sess, c.Session())
	}
	noSecretsIn(t, tc, c, logs)

	// Close stops the checker.
	c.Close()
	if n := checkerGoroutines(); n != 0 {
		t.Errorf("%d checker goroutines after Close", n)
	}
}

// TestDaemonCluster runs the multi-node cases on one 3-node cluster (it
// takes seconds to start and stop). Each case leaves every node running.
func TestDaemonCluster(t *testing.T) {
	tc := startCluster(t, 3)
	t.Run("Spread", func(t *testing.T) { testSpread(t, tc) })
	t.Run("ReadYourWrites", func(t *testing.T) { testReadYourWrites(t, tc) })
	t.Run("WritesToLeader", func(t *testing.T) { testWritesToLeader(t, tc) })
	t.Run("FailoverSign", func(t *testing.T) { testFailoverSign(t, tc) })
	t.Run("WritesAfterKill", func(t *testing.T) { testWritesAfterKill(t, tc, false) })
	t.Run("WritesAfterLeaderKill", func(t *testing.T) { testWritesAfterKill(t, tc, true) })
	t.Run("UserExistsEveryNode", func(t *testing.T) { testUserExists(t, tc) })
}

// testUserExists: creating a user who exists is refused with
// hsmerr.ErrUserExists on every node: on the leader, where the refusal
// comes from the apply (through the request record), and on a follower,
// where it comes back in the leader's Forward answer. The CKR stays
// CKR_ARGUMENTS_BAD.
func testUserExists(t *testing.T, tc *testcluster.Cluster) {
	ctx := context.Background()
	officer, pw, ok := strings.Cut(tc.Env["P11_SO_PIN"], ":")
	require.True(t, ok)
	cfg, err := LoadConfig(tc.Env["HSM_CONFIG"])
	require.NoError(t, err)
	for i, addr := range cfg.Nodes {
		one, err := LoadConfig(tc.Env["HSM_CONFIG"])
		require.NoError(t, err)
		one.Nodes = []string{addr}
		c, err := Dial(ctx, one)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.Login(ctx, officer, pw))
		if i == 0 {
			require.NoError(t, c.CreateUser(ctx, "twice", "CU", "twice-password"))
		}
		err = c.CreateUser(ctx, "twice", "CU", "twice-password")
		require.ErrorIs(t, err, hsmerr.ErrUserExists, "node %s", addr)
		assert.Equal(t, ck.RVName(ck.CKR_ARGUMENTS_BAD), ck.RVName(RV(err)))
		assert.Contains(t, err.Error(), `user "twice" already exists`)
	}
}

// killNow sends SIGKILL to node k's daemon at once (cluster.sh stop waits
// for it to die, time in which the checker may notice), and starts the
// node again when the test ends.
func killNow(t *testing.T, tc *testcluster.Cluster, k int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tc.Dir, "node"+strconv.Itoa(k)+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tc.Stop(k, true) // waits for it to be gone
		if out, err := tc.StartNode(k); err != nil {
			t.Errorf("restart node%d: %v\n%s", k, err, out)
		}
	})
}

func testFailoverSign(t *testing.T, tc *testcluster.Cluster) {
	// The default interval: the calls find the dead node before the
	// checker does.
	c, logs := daemonClientEvery(t, tc, DefaultHealthInterval)
	pub, priv := ecKey(t, c)
	if _, err := ecSign(c, priv, "first"); err != nil {
		t.Fatal(err)
	}
	victim := nodeOf(t, tc, c.Node())
	sess := c.Session()
	// 4 goroutines sign 50 times each; node victim is killed with SIGKILL
	// after 20 signs, with signs in flight.
	var done sync.WaitGroup
	var mu sync.Mutex
	var signs int
	var errs []error
	killed := make(chan []uint64)
	signed20 := make(chan struct{})
	start := time.Now()
	for g := range 4 {
		done.Go(func() {
			for i := range 50 {
				msg := "after " + strconv.Itoa(g) + "." + strconv.Itoa(i)
				sig, err := ecSign(c, priv, msg)
				if err == nil && i%25 == 0 {
					err = c.Verify(context.Background(), pub, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte(msg), sig)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				signs++
				if signs == 20 {
					close(signed20)
				}
				mu.Unlock()
			}
		})
	}
	go func() {
		<-signed20
		killNow(t, tc, victim)
		killed <- calls(c)
	}()
	atKill := <-killed
	done.Wait()
	after := calls(c)
	retries := strings.Count(logs.String(), "trying another node")
	t.Logf("200 signs in %v, node%d killed after 20; answered per node after the kill: %v; %d retries logged",
		time.Since(start).Round(time.Millisecond), victim, diff(after, atKill), retries)
	for _, err := range errs {
		t.Errorf("sign failed: %v", err)
	}
	if retries == 0 {
		t.Error("no call was moved off the killed node")
	}
	if c.Session() != sess {
		t.Error("the client logged in again after the failover")
	}
	// The survivors share the calls after the kill. A survivor that was a
	// follower of the killed leader refuses calls until it holds a lease
	// from the new one, and on a loaded machine that can outlast the 180
	// calls above; so keep signing, boundedly, until each survivor has
	// answered 10 calls since the kill. Spreading is what is tested, not
	// how soon it starts.
	for deadline, extra := time.Now().Add(30*time.Second), 0; extra < 2000 && time.Now().Before(deadline); extra++ {
		d := diff(calls(c), atKill)
		spread := true
		for i := range d {
			if i+1 != victim && d[i] < 10 {
				spread = false
			}
		}
		if spread {
			break
		}
		if _, err := ecSign(c, priv, "spread "+strconv.Itoa(extra)); err != nil {
			t.Errorf("sign failed: %v", err)
		}
	}
	for i, d := range diff(calls(c), atKill) {
		switch {
		case i+1 == victim && d > 4: // answered just before it died
			t.Errorf("the killed node answered %d calls", d)
		case i+1 != victim && d < 10: // least-in-flight favours the faster node
			t.Errorf("node%d answered %d of the calls after the kill: not spread", i+1, d)
		}
	}
	if c.Nodes()[victim-1].Healthy {
		t.Error("the killed node is healthy")
	}
	// It comes back and gets calls again.
	tc.Stop(victim, true)
	if out, err := tc.StartNode(victim); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	waitHealthy(t, c, 3)
	before := calls(c)
	for range 30 {
		if _, err := ecSign(c, priv, "again"); err != nil {
			t.Fatal(err)
		}
	}
	if calls(c)[victim-1] == before[victim-1] {
		t.Error("the restarted node gets no calls")
	}
	noSecretsIn(t, tc, c, logs)
}

func diff(a, b []uint64) []uint64 {
	out := make([]uint64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func testSpread(t *testing.T, tc *testcluster.Cluster) {
	c, _ := daemonClient(t, tc)
	// The daemons say who answered.
	names := map[string]int{}
	for range 30 {
		in, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		names[in.Node]++
	}
	if len(names) != 3 {
		t.Errorf("Info answered by %v: calls are not spread over the 3 nodes", names)
	}
	_, priv := ecKey(t, c)
	before := calls(c)
	for range 60 {
		if _, err := ecSign(c, priv, "spread"); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range diff(calls(c), before) {
		if d < 10 {
			t.Errorf("node%d answered %d of 60 signs", i+1, d)
		}
	}
}

func testReadYourWrites(t *testing.T, tc *testcluster.Cluster) {
	c, _ := daemonClient(t, tc)
	// Background load, so that least-in-flight moves calls around too.
	_, busy := ecKey(t, c)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ecSign(c, busy, "load")
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	// Every round must read its own write wherever it lands; the rounds go
	// on (up to 150) until they have landed on two nodes, which the spread
	// of calls over healthy nodes must bring about.
	used := map[string]bool{}
	for i := 0; i < 50 || len(used) < 2 && i < 150; i++ {
		pub, priv := ecKey(t, c)
		if _, err := ecSign(c, priv, "fresh"); err != nil {
			t.Fatalf("round %d: sign with the key just made: %v", i, err)
		}
		used[c.Node()] = true
		if _, err := c.GetAttributes(context.Background(), pub, []uint64{ck.CKA_EC_POINT}); err != nil {
			t.Fatalf("round %d: attributes of the key just made: %v", i, err)
		}
		used[c.Node()] = true
	}
	if len(used) < 2 {
		t.Errorf("the fresh keys were used on %d node(s) only", len(used))
	}
}

// testWritesToLeader: a call that writes token objects goes to the leader,
// which the health checks name, so that no follower forwards it and waits
// to hear of its commit; reads still spread, and a call that makes a
// session object stays on the node that holds it.
func testWritesToLeader(t *testing.T, tc *testcluster.Cluster) {
	c, _ := daemonClient(t, tc)
	ctx := context.Background()
	st, err := c.ClusterStatus(ctx)
	require.NoError(t, err)
	leaderNode, err := strconv.Atoi(strings.TrimPrefix(st.Leader, "node"))
	require.NoError(t, err, "leader %q", st.Leader)
	waitFor(t, 5*time.Second, func() bool { return c.nodes[leaderNode-1].leader.Load() }, "a health check to name the leader")
	token := object.Template{{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}, {Type: ck.CKA_LABEL, Value: []byte("to-leader")}}
	before := calls(c)
	var made []uint64
	for range 20 {
		id, err := c.CreateObject(ctx, token)
		require.NoError(t, err)
		made = append(made, id)
		assert.Equal(t, leaderNode, nodeOf(t, tc, c.Node()), "a token object write went to a follower")
	}
	d := diff(calls(c), before)
	assert.EqualValues(t, 20, d[leaderNode-1], "calls answered per node: %v", d)
	// Reads of what was written still spread over the nodes.
	before = calls(c)
	for range 3 {
		for _, id := range made {
			_, err := c.GetAttributes(ctx, id, []uint64{ck.CKA_LABEL})
			require.NoError(t, err)
		}
	}
	spread := 0
	for _, n := range diff(calls(c), before) {
		if n > 0 {
			spread++
		}
	}
	assert.Greater(t, spread, 1, "60 reads went to one node")
	for _, id := range made {
		require.NoError(t, c.DestroyObject(ctx, id))
	}
	// A session object's node becomes the session's home, leader or not.
	session := object.Template{{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(false)}}
	id, err := c.CreateObject(ctx, session)
	require.NoError(t, err)
	home := c.home.Load()
	require.NotNil(t, home, "a session object gave the client no home node")
	tid, err := c.CreateObject(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, home.addr, c.Node(), "with session objects, a token write left the home node")
	require.NoError(t, c.DestroyObject(ctx, tid))
	require.NoError(t, c.DestroyObject(ctx, id))
}

// testWritesAfterKill kills a node (the raft leader, or the node that
// answered the last call) while no call is in flight, then writes. The
// writes that go to the dead node before the checker notices never leave
// the client, so they move on. Killing the leader may fail writes while
// there is none (CKR_DEVICE_ERROR, for at most 15s).
func testWritesAfterKill(t *testing.T, tc *testcluster.Cluster, leader bool) {
	c, logs := daemonClient(t, tc)
	_, priv := ecKey(t, c)
	st, err := c.ClusterStatus(context.Background())
	require.NoError(t, err)
	leaderNode, err := strconv.Atoi(strings.TrimPrefix(st.Leader, "node"))
	require.NoError(t, err, "leader %q", st.Leader)
	victim := leaderNode
	if !leader {
		// A follower that has just answered a call (the key's write went
		// to the leader; signs spread).
		for range 30 {
			_, err := ecSign(c, priv, "find a follower")
			require.NoError(t, err)
			if victim = nodeOf(t, tc, c.Node()); victim != leaderNode {
				break
			}
		}
		require.NotEqual(t, leaderNode, victim, "30 signs all went to the leader")
	}
	killNow(t, tc, victim)
	// A write sent before the client's connection sees the reset may have
	// run, so it fails with CKR_DEVICE_ERROR and is not retried: wait for
	// the connection to notice (the node died while idle).
	conn := c.nodes[victim-1].conn
	waitFor(t, 5*time.Second, func() bool { return conn.GetState() != connectivity.Ready }, "the connection to notice")
	start := time.Now()
	var failed int
	for i := range 10 {
		pub, priv, err := c.GenerateKeyPair(context.Background(), mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
			object.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}},
			object.Template{{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}, {Type: ck.CKA_SIGN, Value: object.EncodeBool(true)}})
		if err != nil {
			// Only while there is no leader, and only as a refusal.
			failed++
			t.Logf("write %d at %v: %v", i, time.Since(start).Round(time.Millisecond), err)
			if !leader || RV(err) != ck.CKR_DEVICE_ERROR || time.Since(start) > 15*time.Second {
				t.Fatalf("write %d after killing node%d: %v", i, victim, err)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if _, err := ecSign(c, priv, "w"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := c.DestroyObject(context.Background(), pub); err != nil {
			t.Fatalf("round %d: destroy: %v", i, err)
		}
	}
	t.Logf("killed node%d (leader: %v); %d writes failed; %d retries logged", victim, leader, failed,
		strings.Count(logs.String(), "trying another node"))
}
