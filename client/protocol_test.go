package client

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhsm/openhsm/api"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// These tests run the client against fake nodes that speak the cluster
// protocol of docs/client.md on the wire (x-hsm-index, x-hsm-min-index,
// x-hsm-retry), in front of the session fake of session_test.go, so that
// every path of failover is exercised before hsmd sends the headers. The
// tests against real daemons are in daemon_test.go.

// protoNode is one fake node: it answers with its applied index, refuses a
// call whose x-hsm-min-index it has not applied, and can hold calls of
// chosen methods until they are canceled (a frozen node).
type protoNode struct {
	srv       *grpc.Server
	addr      string
	applied   atomic.Uint64
	sendIndex bool

	mu      sync.Mutex
	done    map[string]int // calls executed, by method
	refused map[string]int
	mins    []string // "Method:min-index" of every call
	ids     []string // "Method:request-id" of every call that carried one
	hold    map[string]bool
	entered chan string // a held call has arrived
}

func (e *env) protoNode(t *testing.T, applied uint64, sendIndex bool) *protoNode {
	t.Helper()
	p := &protoNode{sendIndex: sendIndex, done: map[string]int{}, refused: map[string]int{}, hold: map[string]bool{},
		entered: make(chan string, 100)}
	p.applied.Store(applied)
	p.srv, p.addr = e.serveNode(t, grpc.UnaryInterceptor(p.intercept))
	return p
}

func (p *protoNode) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	method := methodName(info.FullMethod)
	md, _ := metadata.FromIncomingContext(ctx)
	minIdx := ""
	if v := md.Get(api.HeaderMinIndex); len(v) > 0 {
		minIdx = v[0]
	}
	p.mu.Lock()
	p.mins = append(p.mins, method+":"+minIdx)
	for _, id := range md.Get(api.HeaderRequestID) {
		p.ids = append(p.ids, method+":"+id)
	}
	hold := p.hold[method]
	p.mu.Unlock()
	if minIdx != "" {
		n, err := strconv.ParseUint(minIdx, 10, 64)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "bad min index")
		}
		if n > p.applied.Load() {
			p.mu.Lock()
			p.refused[method]++
			p.mu.Unlock()
			grpc.SetTrailer(ctx, metadata.Pairs(api.TrailerRetry, api.RetryOtherNode))
			return nil, rvErr(codes.Unavailable, ck.CKR_DEVICE_ERROR, "this node has not caught up")
		}
	}
	if hold {
		p.entered <- method
		<-ctx.Done()
		return nil, status.Error(codes.Canceled, "held")
	}
	resp, err := h(ctx, req)
	p.mu.Lock()
	p.done[method]++
	p.mu.Unlock()
	if method == "CreateObject" && err == nil {
		p.applied.Add(1) // a write raises the index
	}
	if p.sendIndex {
		grpc.SetHeader(ctx, metadata.Pairs(api.HeaderIndex, strconv.FormatUint(p.applied.Load(), 10)))
	}
	return resp, err
}

func (p *protoNode) setHold(methods ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.hold)
	for _, m := range methods {
		p.hold[m] = true
	}
}

func (p *protoNode) count(method string) (done, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done[method], p.refused[method]
}

func (p *protoNode) requestIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}

func (p *protoNode) minIndexes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mins...)
}

// protoCluster serves e's fake on k protocol nodes and dials them.
func protoCluster(t *testing.T, e *env, applied []uint64, sendIndex bool) ([]*protoNode, *Client) {
	t.Helper()
	var ps []*protoNode
	e.cfg.Nodes = nil
	for _, a := range applied {
		p := e.protoNode(t, a, sendIndex)
		ps = append(ps, p)
		e.cfg.Nodes = append(e.cfg.Nodes, p.addr)
	}
	c := e.login(t)
	waitHealthy(t, c, len(ps))
	return ps, c
}

// waitHealthy waits until k nodes are healthy.
func waitHealthy(t *testing.T, c *Client, k int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		h := 0
		for _, n := range c.Nodes() {
			if n.Healthy {
				h++
			}
		}
		return h == k
	}, "nodes healthy")
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createObject makes a token object (a session object would tie the
// client to the node that holds it).
func createObject(c *Client) error {
	_, err := c.CreateObject(context.Background(), object.Template{{Type: ck.CKA_TOKEN, Value: []byte{1}}})
	return err
}

// A session object ties the client's calls to the node that holds it,
// while that node is healthy; a token object does not.
func TestSessionObjectsHome(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{1, 1}, true)
	if _, err := c.CreateObject(context.Background(), object.Template{}); err != nil {
		t.Fatal(err)
	}
	home := c.home.Load()
	if home == nil {
		t.Fatal("no home after making a session object")
	}
	for range 10 {
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	if other, _ := ps[1-home.idx].count("Sign"); other != 0 {
		t.Errorf("%d signs went elsewhere than the session objects' node", other)
	}
	if err := c.Login(context.Background(), "alice", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	if c.home.Load() != nil {
		t.Error("the home outlived the session")
	}
}

func TestIndexSentAndRaised(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{7}, true)
	if got := c.idx().load(); got != 7 {
		t.Fatalf("after login the index is %d, want the node's 7", got)
	}
	if err := createObject(c); err != nil {
		t.Fatal(err)
	}
	if got := c.idx().load(); got != 8 {
		t.Errorf("after a write the index is %d, want 8", got)
	}
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, m := range ps[0].minIndexes() {
		if strings.HasPrefix(m, "Info:") {
			if m != "Info:" {
				t.Errorf("a health check sent a min index: %s", m)
			}
			continue
		}
		calls = append(calls, m)
	}
	if strings.Join(calls, " ") != "Login: CreateObject:7 Sign:8" {
		t.Errorf("calls and their min index: %v", calls)
	}
}

func TestIndexSharedByClientsOfACluster(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c1 := protoCluster(t, e, []uint64{7}, true)
	if err := createObject(c1); err != nil {
		t.Fatal(err)
	}
	// Another client of the same cluster reads what c1 wrote from its
	// first call on.
	c2 := e.dial(t)
	if got := c2.index.load(); got != 8 {
		t.Errorf("a new client of the cluster starts at index %d, want 8", got)
	}
	if err := c2.Login(context.Background(), "alice", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	mins := ps[0].minIndexes()
	if last := mins[len(mins)-1]; last != "Login:8" {
		t.Errorf("the new client's login went with %q", last)
	}
	// What c2 sees, c1 uses.
	c2.index.observe(9)
	if c1.index.load() != 9 {
		t.Error("the index is not shared")
	}
	// A client of other nodes does not share it.
	cfg := *e.cfg
	cfg.Nodes = []string{ps[0].addr, e.addr}
	c3, err := Dial(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if c3.index.load() != 0 {
		t.Errorf("a client of another node list starts at %d", c3.index.load())
	}
	// The entry goes with the last client.
	key := "fake-cluster\x00" + ps[0].addr
	c1.Close()
	sharedIndexes.Lock()
	refs := sharedIndexes.m[key].refs
	sharedIndexes.Unlock()
	c2.Close()
	sharedIndexes.Lock()
	_, left := sharedIndexes.m[key]
	sharedIndexes.Unlock()
	if refs != 1 || left {
		t.Errorf("after closing: %d refs, then entry left: %v", refs, left)
	}
}

func TestNoIndexFromServer(t *testing.T) {
	// A node that sends no index (hsmd before the cluster): no min index is
	// ever sent, and calls work.
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{7}, false)
	for range 3 {
		if err := createObject(c); err != nil {
			t.Fatal(err)
		}
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	if c.idx().load() != 0 {
		t.Errorf("index %d", c.idx().load())
	}
	for _, m := range ps[0].minIndexes() {
		if !strings.HasSuffix(m, ":") {
			t.Errorf("min index sent: %s", m)
		}
	}
}

func TestRefusedCallsGoElsewhere(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{10, 3}, true)
	ahead, behind := ps[0], ps[1]
	// Learn index 10 from the node ahead.
	for c.idx().load() < 10 {
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	signsBehind, _ := behind.count("Sign")
	for range 20 {
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		if err := createObject(c); err != nil {
			t.Fatal(err)
		}
	}
	// The node behind either refused them or, known to be behind from its
	// answers and health checks, was not asked.
	done, _ := behind.count("Sign")
	if done != signsBehind {
		t.Errorf("the node behind executed %d more signs", done-signsBehind)
	}
	if done, _ := behind.count("CreateObject"); done != 0 {
		t.Errorf("the node behind executed %d writes", done)
	}
	if done, _ := ahead.count("CreateObject"); done != 6 {
		t.Errorf("the node ahead executed %d writes, want 6", done)
	}
	// A refusal does not make the node unhealthy, and no re-login happened.
	if !c.Nodes()[1].Healthy {
		t.Error("the node behind was marked unhealthy")
	}
	wantCounts(t, e.f, 1, 0)
	// Once it has caught up, it serves again.
	behind.applied.Store(ahead.applied.Load())
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
		if done2, _ := behind.count("Sign"); done2 > done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node that caught up got no calls")
		}
	}
	for _, secret := range []string{"s3cret-pw", "tok-"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func TestAllNodesBehind(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{3, 3}, true)
	c.idx().observe(10)
	// Nodes that are up but behind are asked again, round after round,
	// until the call's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := c.Sign(ctx, 1, mech.Mech{Type: ck.CKM_SHA256_HMAC}, []byte("msg"))
	if RV(err) != ck.CKR_DEVICE_ERROR || !strings.Contains(err.Error(), ps[0].addr) || !strings.Contains(err.Error(), ps[1].addr) {
		t.Errorf("err = %v", err)
	}
	for _, p := range ps {
		if _, refused := p.count("Sign"); refused < 2 {
			t.Errorf("%s refused %d signs, want one a round, several rounds", p.addr, refused)
		}
	}
	// Once one catches up, the call succeeds.
	ps[1].applied.Store(10)
	if err := sign(t, c, 1); err != nil {
		t.Errorf("sign once a node caught up: %v", err)
	}
}

// holdOn makes p hold method too, and makes calls until one is held there.
// call runs in a goroutine; the result comes on the returned channel.
func holdOn(t *testing.T, p *protoNode, method string, call func() error) <-chan error {
	t.Helper()
	p.mu.Lock()
	p.hold[method] = true
	p.mu.Unlock()
	timeout := time.After(10 * time.Second)
	for range 10 {
		res := make(chan error, 1)
		go func() { res <- call() }()
	wait:
		for {
			select {
			case m := <-p.entered:
				if m == method {
					return res
				}
				// a held health check
			case err := <-res:
				if err != nil {
					t.Fatalf("call on the other node: %v", err)
				}
				break wait
			case <-timeout:
				t.Fatal("no call arrived")
			}
		}
	}
	t.Fatal("no call went to the held node")
	return nil
}

func TestSignLostInFlightIsRetried(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{1, 1}, true)
	res := holdOn(t, ps[0], "Sign", func() error { return sign(t, c, 1) })
	ps[0].srv.Stop() // the node dies with the sign in flight
	if err := <-res; err != nil {
		t.Fatalf("sign: %v", err)
	}
	if done, _ := ps[1].count("Sign"); done == 0 {
		t.Error("the sign was not retried on the other node")
	}
	if c.Nodes()[0].Healthy {
		t.Error("the dead node is still healthy")
	}
	wantCounts(t, e.f, 1, 0)
}

// createObjectNoID is a write without a request ID (as an older client
// sends): it goes through rpc, not call, so no ID is made for it.
func createObjectNoID(c *Client) error {
	ctx, cancel := c.withTimeout(context.Background())
	defer cancel()
	return c.rpc(ctx, c.current().token, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.CreateObject(ctx, &hsmpb.CreateObjectRequest{Template: []*hsmpb.Attribute{{Type: ck.CKA_TOKEN, Value: []byte{1}}}})
		return err
	})
}

// A write lost in flight is retried on another node with the same request
// ID (the cluster applies it at most once); without an ID it is not.
func TestWriteLostInFlightIsRetriedWithItsID(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{1, 1}, true)
	before, _ := ps[1].count("CreateObject")
	res := holdOn(t, ps[0], "CreateObject", func() error { return createObject(c) })
	ps[0].srv.Stop()
	if err := <-res; err != nil {
		t.Fatalf("write lost in flight: %v, want it retried", err)
	}
	if after, _ := ps[1].count("CreateObject"); after != before+1 {
		t.Errorf("the live node executed %d writes, want 1", after-before)
	}
	held, retried := ps[0].requestIDs(), ps[1].requestIDs()
	if len(held) == 0 || len(retried) == 0 || held[len(held)-1] != retried[len(retried)-1] {
		t.Errorf("request IDs: held %v, retried %v; want the same", held, retried)
	} else if id := strings.TrimPrefix(held[len(held)-1], "CreateObject:"); len(id) != 32 {
		t.Errorf("request ID %q is not 128 bits in hex", id)
	}
}

func TestWriteWithoutIDLostInFlightIsNotRetried(t *testing.T) {
	e := startServer(t, time.Minute)
	ps, c := protoCluster(t, e, []uint64{1, 1}, true)
	before, _ := ps[1].count("CreateObject")
	res := holdOn(t, ps[0], "CreateObject", func() error { return createObjectNoID(c) })
	ps[0].srv.Stop()
	if err := <-res; RV(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("write lost in flight: %v, want CKR_DEVICE_ERROR", err)
	}
	if after, _ := ps[1].count("CreateObject"); after != before {
		t.Error("a write that may have run was retried")
	}
	if ids := ps[0].requestIDs(); len(ids) != 0 {
		t.Errorf("request IDs sent: %v", ids)
	}
	// The next write goes to the live node.
	if err := createObject(c); err != nil {
		t.Error(err)
	}
}

func TestWriteNeverSentIsRetried(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.HealthInterval = time.Minute // the checker will not notice
	ps, c := protoCluster(t, e, []uint64{1, 1}, true)
	ps[0].srv.Stop()
	conn := c.nodes[0].conn
	waitFor(t, 5*time.Second, func() bool { return conn.GetState() != connectivity.Ready }, "the connection to close")
	if !c.Nodes()[0].Healthy {
		t.Fatal("the checker noticed; the test needs it not to")
	}
	for range 6 {
		if err := createObject(c); err != nil {
			t.Fatal(err)
		}
	}
	if done, _ := ps[1].count("CreateObject"); done != 6 {
		t.Errorf("the live node executed %d writes, want 6", done)
	}
	if c.Nodes()[0].Healthy {
		t.Error("a call found the node unreachable but it is still healthy")
	}
}

func TestFrozenNodeCallsMoved(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.HealthInterval = 200 * time.Millisecond // checks wait 1s
	ps, c := protoCluster(t, e, []uint64{1, 1}, true)
	// The node stops answering anything: its health check times out, and
	// the sign held there moves to the other node (held there, it would
	// fail at its deadline).
	ps[0].setHold("Info")
	res := holdOn(t, ps[0], "Sign", func() error { return sign(t, c, 1) })
	if err := <-res; err != nil {
		t.Fatalf("sign: %v", err)
	}
	if c.Nodes()[0].Healthy {
		t.Error("the frozen node is healthy")
	}
	if !strings.Contains(e.logs.String(), "moving calls off a dead node") {
		t.Error("no log of the moved call")
	}
	// It answers again: the checker brings it back.
	ps[0].setHold()
	waitHealthy(t, c, 2)
}

func TestFrozenNodeWrites(t *testing.T) {
	for _, withID := range []bool{true, false} {
		t.Run(map[bool]string{true: "WithID", false: "WithoutID"}[withID], func(t *testing.T) {
			e := startServer(t, time.Minute)
			e.cfg.HealthInterval = 200 * time.Millisecond
			e.cfg.Timeout = 3 * time.Second
			ps, c := protoCluster(t, e, []uint64{1, 1}, true)
			before, _ := ps[1].count("CreateObject")
			ps[0].setHold("Info")
			write := createObjectNoID
			if withID {
				write = createObject
			}
			res := holdOn(t, ps[0], "CreateObject", func() error { return write(c) })
			err := <-res
			after, _ := ps[1].count("CreateObject")
			if withID {
				// Moved off the frozen node like a read, with its ID.
				if err != nil || after != before+1 {
					t.Fatalf("write on a frozen node: %v, %d executed elsewhere; want it moved", err, after-before)
				}
				return
			}
			if err == nil {
				t.Fatal("a write held on a frozen node succeeded")
			}
			if after != before {
				t.Error("a write in flight was moved")
			}
		})
	}
}

// checkerGoroutines counts the goroutines of the health checker.
func checkerGoroutines() int {
	n, _ := checkerStacks()
	return n
}

// checkerStacks counts the goroutines running a health loop (a frame of
// healthLoop, not a goroutine it created) and returns their stacks.
func checkerStacks() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var stacks []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "client.(*Client).healthLoop(") {
			stacks = append(stacks, g)
		}
	}
	return len(stacks), strings.Join(stacks, "\n\n")
}

func TestCloseStopsChecker(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.HealthInterval = 200 * time.Millisecond
	base := checkerGoroutines()
	frozen := e.protoNode(t, 1, false)
	e.cfg.Nodes = []string{e.addr, closedAddr(t), frozen.addr}
	for range 3 {
		frozen.setHold()
		c := e.dial(t)
		waitHealthy(t, c, 2)
		if n := checkerGoroutines() - base; n != 3 {
			t.Errorf("%d checker goroutines, want 3", n)
		}
		// Close with a check in flight on the frozen node.
		frozen.setHold("Info")
		<-frozen.entered
		// Close does not wait for the frozen check (which never ends by
		// itself).
		closed := make(chan struct{})
		go func() { c.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("Close waits for a frozen health check")
		}
		if n, stacks := checkerStacks(); n-base != 0 {
			t.Fatalf("%d checker goroutines left after Close:\n%s", n-base, stacks)
		}
		c.Close() // twice is fine
	}
}

func TestDialWaitsForOneNode(t *testing.T) {
	// Dial returns once a node answers, though another is frozen; the
	// frozen one is not used.
	e := startServer(t, time.Minute)
	frozen := e.protoNode(t, 1, false)
	frozen.setHold("Info", "Sign")
	e.cfg.Nodes = []string{frozen.addr, e.addr}
	c := e.login(t)
	for range 4 {
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Nodes(); st[0].Healthy || st[0].Calls != 0 || st[1].Calls != 5 {
		t.Errorf("nodes %+v", st)
	}
	if c.Node() != e.addr {
		t.Errorf("Node() = %q", c.Node())
	}
}

func TestDialBadHealthInterval(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.HealthInterval = 10 * time.Millisecond
	_, err := Dial(context.Background(), e.cfg)
	if RV(err) != ck.CKR_ARGUMENTS_BAD || !strings.Contains(err.Error(), "health_interval") {
		t.Errorf("err = %v", err)
	}
}

// Compile-time check that the fake implements what the tests call.
var _ hsmpb.HSMServer = (*fakeHSM)(nil)
