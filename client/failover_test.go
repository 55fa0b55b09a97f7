package client

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/api"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unit tests of the pure parts of failover: the method table, what a failed
// attempt means, the index, and node choice.

func TestIdempotentTable(t *testing.T) {
	want := []string{"ClusterStatus", "Decrypt", "Digest", "DigestKey", "Encrypt", "FindObjects", "GenerateRandom", "GetAttributes", "Info",
		"KMSDeletePrincipalPolicy", "KMSExplain", "KMSGetPrincipalPolicy", "KMSListHSMClusters", "KMSListPrincipals", "KMSPutPrincipalPolicy",
		"ListClusterSettings", "ListObjects", "ListTokens", "ListUsers", "Refresh", "SetClusterSetting", "Sign", "Verify"}
	wantDeduped := []string{"CopyObject", "CreateObject", "CreateUser", "DecapsulateKey", "DeleteUser", "DeriveKey", "DestroyObject",
		"GenerateKey", "GenerateKeyPair",
		"SetAttributes", "SetPassword", "Share", "UnlockUser", "UnwrapKey",
		"WipeToken"}
	var got, gotDeduped []string
	for _, m := range api.Methods() {
		if idempotent(m.Name) {
			got = append(got, m.Name)
		}
		if deduped(m.Name) {
			gotDeduped = append(gotDeduped, m.Name)
		}
	}
	sort.Strings(got)
	sort.Strings(gotDeduped)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("idempotent methods %v, want %v", got, want)
	}
	if fmt.Sprint(gotDeduped) != fmt.Sprint(wantDeduped) {
		t.Errorf("methods with a request ID %v, want %v", gotDeduped, wantDeduped)
	}
	for _, m := range []string{"Login", "Logout", "Bootstrap", "CreateUser", "DeleteUser", "SetPassword", "UnlockUser",
		"CreateObject", "CopyObject", "DestroyObject", "SetAttributes", "Share", "GenerateKey", "GenerateKeyPair",
		"WrapKey", "UnwrapKey", "DeriveKey", "KMSCreatePrincipal", "KMSDeletePrincipal", "KMSRotatePrincipalKey", "KMSAddHSMCluster", "KMSRemoveHSMCluster", "", "NoSuchMethod"} {
		if idempotent(m) {
			t.Errorf("%q must not be retried after it may have run", m)
		}
	}
	if methodName("/openhsm.v1.HSM/Sign") != "Sign" || methodName("Sign") != "Sign" {
		t.Error("methodName")
	}
}

func withDetail(code codes.Code, rv uint64) error {
	st, err := status.New(code, "from the daemon").WithDetails(&hsmpb.ErrorDetail{Ckr: rv})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestClassify(t *testing.T) {
	refusal := metadata.Pairs(api.TrailerRetry, api.RetryOtherNode)
	transport := status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: connection refused\"")
	for _, tc := range []struct {
		name    string
		err     error
		callErr error
		sent    bool
		cut     bool
		md      metadata.MD
		want    outcome
	}{
		{"success", nil, nil, true, false, nil, outOK},
		{"success although cut late", nil, nil, true, true, nil, outOK},
		{"daemon answer", withDetail(codes.NotFound, ck.CKR_OBJECT_HANDLE_INVALID), nil, true, false, nil, outAnswered},
		{"daemon refuses the session", withDetail(codes.Unauthenticated, ck.CKR_USER_NOT_LOGGED_IN), nil, true, false, nil, outAnswered},
		{"internal error", withDetail(codes.Internal, ck.CKR_GENERAL_ERROR), nil, true, false, nil, outAnswered},
		{"internal without detail is not a lost node", status.Error(codes.Internal, "grpc: failed to unmarshal"), nil, true, false, nil, outAnswered},
		{"unknown is not a lost node", status.Error(codes.Unknown, "?"), nil, true, false, nil, outAnswered},
		{"call deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), context.DeadlineExceeded, true, false, nil, outEnded},
		{"call canceled", status.Error(codes.Canceled, "context canceled"), context.Canceled, true, false, nil, outEnded},
		{"call ended before sending", transport, context.DeadlineExceeded, false, false, nil, outEnded},
		{"deadline from the server", status.Error(codes.DeadlineExceeded, "deadline"), nil, true, false, nil, outAnswered},
		{"canceled by the client closing", status.Error(codes.Canceled, "grpc: the client connection is closing"), nil, false, false, nil, outAnswered},
		{"refused other-node", withDetail(codes.Unavailable, ck.CKR_DEVICE_ERROR), nil, true, false, refusal, outRefused},
		{"refused other-node, no detail", status.Error(codes.Unavailable, "behind"), nil, true, false, refusal, outRefused},
		{"refusal hint needs Unavailable", withDetail(codes.Internal, ck.CKR_GENERAL_ERROR), nil, true, false, refusal, outAnswered},
		{"refusal value is exact", status.Error(codes.Unavailable, "x"), nil, true, false, metadata.Pairs(api.TrailerRetry, "leader"), outLost},
		{"never sent", transport, nil, false, false, nil, outNotSent},
		{"connection lost in flight", status.Error(codes.Unavailable, "error reading from server: EOF"), nil, true, false, nil, outLost},
		{"cut: node found dead", status.Error(codes.Canceled, "context canceled"), nil, true, true, nil, outLost},
		{"daemon unavailable", withDetail(codes.Unavailable, ck.CKR_DEVICE_ERROR), nil, true, false, nil, outBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err, tc.callErr, tc.sent, tc.cut, nil, tc.md); got != tc.want {
				t.Errorf("classify = %v, want %v", got, tc.want)
			}
		})
	}
	// The hint may come in the header or the trailer.
	if classify(status.Error(codes.Unavailable, "x"), nil, true, false, refusal, nil) != outRefused {
		t.Error("refusal in the header not seen")
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		o           outcome
		method      string
		ran, stream bool
		want        bool
	}{
		{outRefused, "CreateObject", false, false, true},
		{outRefused, "Sign", false, false, true},
		{outNotSent, "GenerateKeyPair", false, false, true},
		{outNotSent, "Login", false, false, true},
		{outLost, "Sign", false, false, true},
		{outLost, "Refresh", false, false, true},
		{outLost, "CreateObject", false, false, false},
		{outLost, "Login", false, false, false},
		{outBusy, "FindObjects", false, false, true},
		{outBusy, "DestroyObject", false, false, false},
		{outAnswered, "Sign", false, false, false},
		{outEnded, "Sign", false, false, false},
		{outOK, "Sign", false, false, false},
		// An earlier RPC of the attempt may have changed something.
		{outRefused, "Sign", true, false, false},
		{outLost, "Sign", true, false, false},
		// Streams are never retried.
		{outRefused, "GetBackup", false, true, false},
		// fn failed without making an RPC.
		{outNotSent, "", false, false, false},
	} {
		if got := retryable(tc.o, tc.method, tc.ran, tc.stream); got != tc.want {
			t.Errorf("retryable(%v, %q, ran=%v, stream=%v) = %v, want %v", tc.o, tc.method, tc.ran, tc.stream, got, tc.want)
		}
	}
	for o, want := range map[outcome]bool{outNotSent: true, outLost: true, outRefused: false, outBusy: false, outAnswered: false, outEnded: false, outOK: false} {
		if marksDown(o) != want {
			t.Errorf("marksDown(%v) = %v", o, !want)
		}
	}
}

func TestAttemptRecordsRuns(t *testing.T) {
	a := &attempt{}
	a.begin("Sign", false)
	if !a.cuttable() {
		t.Error("an idempotent RPC in progress can be cut")
	}
	a.end(true, nil, nil)
	if a.cuttable() {
		t.Error("no RPC in progress: nothing to cut")
	}
	a.begin("Verify", false) // after a read: still changed nothing
	if _, ran, _, _, _, _ := a.result(); ran {
		t.Error("a read before does not count as a change")
	}
	a.end(true, nil, nil)
	a.begin("CreateObject", false)
	if a.cuttable() {
		t.Error("a write must not be cut")
	}
	a.end(true, nil, nil)
	a.begin("Sign", false)
	if method, ran, _, _, _, _ := a.result(); method != "Sign" || !ran || a.cuttable() {
		t.Errorf("after a write: method %q ran %v", method, ran)
	}
}

func TestIndexFrom(t *testing.T) {
	for _, tc := range []struct {
		mds  []metadata.MD
		want uint64
		ok   bool
	}{
		{nil, 0, false},
		{[]metadata.MD{{}}, 0, false},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "42")}, 42, true},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, " 42 ")}, 42, true},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "abc")}, 0, false},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "-1")}, 0, false},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "0x10")}, 0, false},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "7", api.HeaderIndex, "9", api.HeaderIndex, "x")}, 9, true},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "18446744073709551615")}, 1<<64 - 1, true},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "18446744073709551616")}, 0, false},
		// header, then trailer
		{[]metadata.MD{nil, metadata.Pairs(api.HeaderIndex, "5")}, 5, true},
		{[]metadata.MD{metadata.Pairs(api.HeaderIndex, "8"), metadata.Pairs(api.HeaderIndex, "5")}, 8, true},
	} {
		got, ok := indexFrom(tc.mds...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("indexFrom(%v) = %d, %v; want %d, %v", tc.mds, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWithMinIndex(t *testing.T) {
	ctx := context.Background()
	if md, ok := metadata.FromOutgoingContext(withMinIndex(ctx, 0)); ok && len(md.Get(api.HeaderMinIndex)) > 0 {
		t.Error("index 0 must not be sent")
	}
	md, _ := metadata.FromOutgoingContext(withMinIndex(ctx, 1234))
	if v := md.Get(api.HeaderMinIndex); len(v) != 1 || v[0] != "1234" {
		t.Errorf("sent %v", v)
	}
}

func TestRaftIndexOnlyGrows(t *testing.T) {
	var x raftIndex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				x.observe(uint64(i*8 + g))
				_ = x.load()
			}
		})
	}
	wg.Wait()
	if x.load() != 999*8+7 {
		t.Errorf("index %d, want %d", x.load(), 999*8+7)
	}
	x.observe(3)
	if x.load() != 999*8+7 {
		t.Error("the index went down")
	}
}

// testNodes makes a client with k nodes that have no connections: enough
// for choose.
func testNodes(k int) *Client {
	c := &Client{}
	for i := range k {
		c.nodes = append(c.nodes, &node{idx: i, addr: fmt.Sprintf("n%d", i)})
	}
	return c
}

func TestChooseSpreadsOverHealthy(t *testing.T) {
	c := testNodes(3)
	for _, n := range c.nodes {
		n.state.Store(stateHealthy)
	}
	c.nodes[1].state.Store(stateUnhealthy)
	seen := map[string]int{}
	for range 100 {
		seen[c.choose(make([]bool, 3), false).addr]++
	}
	if seen["n1"] != 0 || seen["n0"] != 50 || seen["n2"] != 50 {
		t.Errorf("picks %v, want n0 and n2 evenly, never n1", seen)
	}
}

func TestChooseLeastInFlight(t *testing.T) {
	c := testNodes(3)
	for _, n := range c.nodes {
		n.state.Store(stateHealthy)
	}
	c.nodes[0].inflight.Store(5)
	c.nodes[1].inflight.Store(1)
	c.nodes[2].inflight.Store(3)
	for range 10 {
		if n := c.choose(make([]bool, 3), false); n.addr != "n1" {
			t.Fatalf("picked %s, want the least busy n1", n.addr)
		}
	}
	// Ties go round robin.
	c.nodes[2].inflight.Store(1)
	seen := map[string]int{}
	for range 10 {
		seen[c.choose(make([]bool, 3), false).addr]++
	}
	if seen["n1"] == 0 || seen["n2"] == 0 || seen["n0"] != 0 {
		t.Errorf("picks %v", seen)
	}
}

// TestChooseWriteLeader: a write to the log goes to the node the health
// checks named leader, however busy, unless the call has tried it, it is
// unhealthy or known to be behind, or the session has a home; other calls
// ignore the leader.
func TestChooseWriteLeader(t *testing.T) {
	setup := func() *Client {
		c := testNodes(3)
		for _, n := range c.nodes {
			n.state.Store(stateHealthy)
		}
		c.nodes[2].leader.Store(true)
		c.nodes[2].inflight.Store(9)
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(c *Client, tried []bool)
		write  bool
		want   []string // the nodes it may pick
	}{
		{"write goes to the leader", func(*Client, []bool) {}, true, []string{"n2"}},
		{"read ignores the leader", func(*Client, []bool) {}, false, []string{"n0", "n1"}},
		{"leader tried", func(_ *Client, tried []bool) { tried[2] = true }, true, []string{"n0", "n1"}},
		{"leader unhealthy", func(c *Client, _ []bool) { c.nodes[2].state.Store(stateUnhealthy) }, true, []string{"n0", "n1"}},
		{"leader behind", func(c *Client, _ []bool) { c.nodes[2].behindAt.Store(5) }, true, []string{"n0", "n1"}},
		{"leader caught up again", func(c *Client, _ []bool) { c.nodes[2].behindAt.Store(5); c.nodes[2].applied.Store(5) }, true, []string{"n2"}},
		{"no leader known", func(c *Client, _ []bool) { c.nodes[2].leader.Store(false) }, true, []string{"n0", "n1"}},
		{"home wins", func(c *Client, _ []bool) { c.home.Store(c.nodes[0]) }, true, []string{"n0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := setup()
			tried := make([]bool, 3)
			tc.change(c, tried)
			for range 6 {
				n := c.choose(tried, tc.write)
				require.NotNil(t, n)
				assert.Contains(t, tc.want, n.addr)
			}
		})
	}
}

func TestChooseEachNodeOnce(t *testing.T) {
	c := testNodes(4)
	c.nodes[0].state.Store(stateUnhealthy)
	c.nodes[1].state.Store(stateHealthy)
	c.nodes[2].state.Store(stateUnknown)
	c.nodes[3].state.Store(stateHealthy)
	tried := make([]bool, 4)
	var order []string
	for {
		n := c.choose(tried, false)
		if n == nil {
			break
		}
		if tried[n.idx] {
			t.Fatalf("%s chosen twice", n.addr)
		}
		tried[n.idx] = true
		order = append(order, n.addr)
	}
	// The healthy ones first (in either order), then the others in
	// configuration order.
	if len(order) != 4 || (order[0] != "n1" && order[0] != "n3") || (order[1] != "n1" && order[1] != "n3") ||
		order[2] != "n0" || order[3] != "n2" {
		t.Errorf("order %v", order)
	}
}

func TestChooseNoneHealthy(t *testing.T) {
	c := testNodes(3)
	for range 5 {
		if n := c.choose(make([]bool, 3), false); n.addr != "n0" {
			t.Errorf("none healthy: picked %s, want the first in configuration order", n.addr)
		}
	}
	tried := []bool{true, false, false}
	if n := c.choose(tried, false); n.addr != "n1" {
		t.Errorf("picked %s, want n1", n.addr)
	}
	if (&Client{}).choose(nil, false) != nil {
		t.Error("no nodes")
	}
}

func TestHealthTimeout(t *testing.T) {
	for _, tc := range []struct{ interval, timeout, want string }{
		{"200ms", "30s", "1s"},
		{"2s", "30s", "2s"},
		{"1m", "30s", "5s"},
		{"2s", "500ms", "500ms"},
	} {
		c := &Client{}
		c.cfg.HealthInterval, _ = time.ParseDuration(tc.interval)
		c.cfg.Timeout, _ = time.ParseDuration(tc.timeout)
		if got := c.healthTimeout().String(); got != tc.want {
			t.Errorf("interval %s timeout %s: %s, want %s", tc.interval, tc.timeout, got, tc.want)
		}
	}
}
