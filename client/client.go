package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/pki"
)

// MaxMessageSize is the largest gRPC message the client sends or accepts,
// as docs/rpc-api.md says: data fields hold at most 16 MiB.
const MaxMessageSize = 20 << 20

// Client talks to an HSM cluster. It is safe for concurrent use by many
// goroutines. Make one with Dial; Close it when done.
type Client struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	nodes []*node
	rr    atomic.Uint64        // round-robin start for choose
	home  atomic.Pointer[node] // where the session's session objects live, if any
	last  atomic.Pointer[node] // the node that answered the latest call
	// index is the highest applied raft index seen: the client's own,
	// or, once it knows the cluster id, the one the process's open
	// Clients of the cluster share (joinIndex).
	index     indexRef
	indexOnce sync.Once
	indexKey  string // in sharedIndexes; guarded by its lock
	closed    bool   // guarded by sharedIndexes' lock

	// life ends at Close; it stops the health checker, whose goroutines
	// wg counts.
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	// authSem serializes the calls that change the session: Login,
	// Refresh, Logout and automatic re-login.
	authSem chan struct{}
	mu      sync.Mutex // guards sess and creds
	sess    *session
	creds   *savedCreds

	closeOnce sync.Once

	quorumToken atomic.Pointer[string] // SetQuorumToken
}

// node is one daemon of the cluster and our connection to it.
type node struct {
	idx  int // in Client.nodes
	addr string
	conn *grpc.ClientConn
	api  hsmpb.HSMClient
	data *dataLink // nil when the client uses gRPC only

	state    atomic.Int32  // stateUnknown, stateHealthy or stateUnhealthy
	inflight atomic.Int64  // attempts in progress
	served   atomic.Uint64 // calls it answered successfully
	applied  atomic.Uint64 // the highest index it reported applying
	behindAt atomic.Uint64 // the index it last refused a call for not having
	leader   atomic.Bool   // it said it was the Raft leader in its last check

	mu       sync.Mutex
	attempts map[*attempt]struct{} // in progress, to end if the node dies
	lastErr  string                // why it was last found down
}

// Option changes how Dial sets up a Client.
type Option func(*Client)

// WithLogger makes the client log to l (node health changes, calls moved to
// another node, session refreshes and re-logins, at debug, info and warn
// level; never credentials or tokens). Without it the client does not log.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// withClock replaces time.Now for sessions; for tests.
func withClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// Dial connects to the cluster: it sets up mutual TLS 1.3 with the
// configured CA and client certificate (pki.ClientConfigFor, or the bytes
// in cfg.Creds when set), opens a
// connection to every node, starts the health checker, and returns once a
// node answers Info (each node has cfg.Timeout to answer). Errors are
// *hsmerr.Error: CKR_ARGUMENTS_BAD for a bad configuration,
// CKR_GENERAL_ERROR for bad certificate files, CKR_DEVICE_ERROR when no
// node answers.
//
// Calls are spread over the healthy nodes and moved to another node when
// theirs fails, as far as that is safe; see the package documentation.
func Dial(ctx context.Context, cfg *Config, opts ...Option) (*Client, error) {
	if cfg == nil {
		return nil, argErr("no configuration")
	}
	c := &Client{
		cfg:     *cfg,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     time.Now,
		authSem: make(chan struct{}, 1),
	}
	c.life, c.stop = context.WithCancel(context.Background())
	c.index.p.Store(&raftIndex{})
	c.cfg.Nodes = append([]string(nil), cfg.Nodes...)
	c.cfg.setDefaults()
	for _, o := range opts {
		o(c)
	}
	if len(c.cfg.Nodes) == 0 {
		return nil, argErr("client config: no nodes")
	}
	for _, n := range c.cfg.Nodes {
		if err := CheckNodeAddr(n); err != nil {
			return nil, argErr("client config: %v", err)
		}
	}
	if c.cfg.Timeout < 0 {
		return nil, argErr("client config: timeout must be positive")
	}
	if err := c.cfg.checkHealthInterval(""); err != nil {
		return nil, argErr("%v", err)
	}
	if err := checkTransport(c.cfg.Transport); err != nil {
		return nil, argErr("client config: transport: %v", err)
	}
	var tlsCfg *tls.Config
	var err error
	if cr := c.cfg.Creds; cr != nil {
		tlsCfg, err = pki.ClientConfigFromCredentials(pki.ClientCredentials{
			CAFile: c.cfg.CA, CertFile: c.cfg.Cert, KeyFile: c.cfg.Key,
			CA: cr.CA, Cert: cr.Cert, Key: cr.Key,
		}, c.cfg.ServerName)
	} else {
		tlsCfg, err = pki.ClientConfigFor(c.cfg.Cert, c.cfg.Key, c.cfg.CA, c.cfg.ServerName)
	}
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "client TLS setup failed", Err: err}
	}
	if err := c.connect(tlsCfg); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.startHealth(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) connect(tlsCfg *tls.Config) error {
	creds := credentials.NewTLS(tlsCfg)
	for i, addr := range c.cfg.Nodes {
		conn, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
			// Notice a dead node on an idle connection (hsmd allows pings
			// every 10s).
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
			grpc.WithUnaryInterceptor(c.unaryInterceptor),
			grpc.WithStreamInterceptor(c.streamInterceptor),
		)
		if err != nil {
			return &hsmerr.Error{RV: ck.CKR_ARGUMENTS_BAD, Msg: fmt.Sprintf("node %q", addr), Err: err}
		}
		n := &node{idx: i, addr: addr, conn: conn, api: hsmpb.NewHSMClient(conn), attempts: map[*attempt]struct{}{}}
		if c.cfg.Transport != TransportGRPC {
			n.data = newDataLink(addr, tlsCfg, !c.cfg.HostThreads)
		}
		c.nodes = append(c.nodes, n)
	}
	return nil
}

// startHealth starts the health checker and waits until a node answers or
// every node has failed its first check.
func (c *Client) startHealth(ctx context.Context) error {
	first := make(chan probeResult, len(c.nodes))
	for _, n := range c.nodes {
		c.wg.Add(1)
		go c.healthLoop(n, first)
	}
	fails := make([]string, len(c.nodes))
	for range c.nodes {
		select {
		case r := <-first:
			if !nodeDown(r.err) {
				return nil
			}
			fails[r.n.idx] = fmt.Sprintf("%s: %s", r.n.addr, status.Convert(r.err).Message())
		case <-ctx.Done():
			return api.FromStatus(ctx.Err())
		}
	}
	return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "no HSM node answered (" + strings.Join(fails, "; ") + ")"}
}

// Close stops the health checker (waiting for it) and closes the
// connections. It does not log out: call Logout first to end the session on
// the server at once (otherwise it lapses on its own). Calls after Close
// fail.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.stop()
		c.wg.Wait()
		c.leaveIndex()
		for _, n := range c.nodes {
			n.conn.Close()
			if n.data != nil {
				n.data.close()
			}
		}
		c.mu.Lock()
		c.forgetCredsLocked()
		c.mu.Unlock()
	})
	return nil
}

// Node returns the address of the node that answered the latest call or,
// before any call, of the first healthy node in configuration order; ""
// if there is none.
func (c *Client) Node() string {
	if n := c.last.Load(); n != nil {
		return n.addr
	}
	for _, n := range c.nodes {
		if n.state.Load() == stateHealthy {
			return n.addr
		}
	}
	return ""
}

// NodeStatus is what the client knows of one node.
type NodeStatus struct {
	Addr    string
	Healthy bool   // answered its last health check or call
	Checked bool   // has been checked at least once
	Error   string // why it was last found down ("" if never)
	// InFlight is the number of calls in progress on it.
	InFlight int
	// Calls is the number of calls it has answered successfully.
	Calls uint64
	// Transport is "data" while a data-path connection to the node is
	// open (docs/dataplane.md), else "grpc".
	Transport string
}

// Nodes returns the state of every configured node, in configuration
// order.
func (c *Client) Nodes() []NodeStatus {
	out := make([]NodeStatus, len(c.nodes))
	for i, n := range c.nodes {
		st := n.state.Load()
		n.mu.Lock()
		e := n.lastErr
		n.mu.Unlock()
		out[i] = NodeStatus{Addr: n.addr, Healthy: st == stateHealthy, Checked: st != stateUnknown, Error: e,
			InFlight: int(n.inflight.Load()), Calls: n.served.Load(), Transport: TransportGRPC}
		if n.data.open() {
			out[i].Transport = "data"
		}
	}
	return out
}

// Config returns a copy of the configuration the client uses.
func (c *Client) Config() Config {
	cfg := c.cfg
	cfg.Nodes = append([]string(nil), c.cfg.Nodes...)
	return cfg
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return api.FromStatus(ctx.Err())
	}
}

func release(sem chan struct{}) { <-sem }

// withTimeout bounds ctx by the configured timeout unless it already has a
// deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// rpc runs one call with the given token ("" for none), and converts its
// error (api.FromStatus).
//
// It runs fn on the node choose picks. When the attempt fails without an
// answer from the daemon, the call goes on to another node, each node at
// most once and within ctx, if the call certainly did not run there
// (refused with RetryOtherNode, or never sent) or its method is idempotent
// (see classify and retryable). A node found unreachable is marked
// unhealthy at once. When every node has been tried, the error names each
// node's failure.
func (c *Client) rpc(ctx context.Context, token string, fn func(ctx context.Context, hc hsmpb.HSMClient) error) error {
	var fails []string
	var err error
	unknown := false // a write with a request ID may have run
	write := writesLog(ctx)
	// Rounds: when the nodes that answered all refused because they had
	// not caught up (a leader election, a node just restarted), try them
	// all again after a pause, until the call's deadline.
	for round, pause := 0, roundPause; ; round++ {
		tried := make([]bool, len(c.nodes))
		refused := false // a node answered that it had not caught up
		for {
			n := c.choose(tried, write)
			if n == nil {
				break
			}
			tried[n.idx] = true
			r := c.try(ctx, n, token, fn)
			if r.o == outOK {
				return nil
			}
			err = r.err
			if marksDown(r.o) {
				c.setUnhealthy(n, r.method, err)
			}
			if !r.retry {
				// The call's own deadline ended it: say so, whatever a
				// node that was cut off answered (unless the daemon itself
				// gave an answer with its return value).
				if ctx.Err() != nil && !api.HasDetail(err) {
					return api.FromStatus(ctx.Err())
				}
				return api.FromStatus(err)
			}
			msg := status.Convert(err).Message()
			if round == 0 {
				fails = append(fails, fmt.Sprintf("%s: %s", n.addr, msg))
			}
			unknown = unknown || r.unknown
			if r.o == outRefused {
				refused = true
				if x := c.idx(); x != nil {
					raiseTo(&n.behindAt, x.load())
				}
				c.log.Debug("hsm client: node has not caught up; trying another", "node", n.addr, "method", r.method)
			} else {
				c.log.Warn("hsm client: call failed; trying another node", "node", n.addr, "method", r.method, "reason", r.o.String(), "error", msg)
			}
		}
		if err == nil {
			return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "no HSM node configured")
		}
		// Only nodes that are up but behind are worth waiting for; with
		// every node unreachable the call fails at once. A write of
		// unknown outcome is the exception: until it gets an answer it
		// keeps trying (a new leader, a node back), since the answer is
		// the only way to learn what it did.
		if dl, ok := ctx.Deadline(); !refused && !unknown || !ok || time.Until(dl) < pause {
			break
		}
		c.log.Debug("hsm client: no node could serve the call; trying again", "round", round+1)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		if ctx.Err() != nil {
			break
		}
		pause = min(2*pause, maxRoundPause)
	}
	if len(fails) <= 1 {
		return api.FromStatus(err)
	}
	last := api.FromStatus(err)
	return &hsmerr.Error{RV: RV(last), Reason: hsmerr.ReasonOf(last), Msg: "no HSM node could serve the call (" + strings.Join(fails, "; ") + ")"}
}

// The pauses between rounds of a call that no node could serve.
const (
	roundPause    = 100 * time.Millisecond
	maxRoundPause = time.Second
)

// tryResult is what became of one attempt of a call.
type tryResult struct {
	err    error
	o      outcome
	method string // the RPC that failed ("" if fn made none)
	retry  bool   // the call may go to another node
	// unknown: a write that carried a request ID may have run; it is
	// tried again, round after round, until the call's deadline.
	unknown bool
}

// try runs fn once on n, with an attempt in its context for the
// interceptors to fill in.
func (c *Client) try(ctx context.Context, n *node, token string, fn func(ctx context.Context, hc hsmpb.HSMClient) error) tryResult {
	a := &attempt{node: n, token: token}
	actx, cancel := context.WithCancelCause(ctx)
	a.cancel = cancel
	actx = context.WithValue(actx, attemptKey{}, a)
	if token != "" {
		actx = metadata.AppendToOutgoingContext(actx, api.HeaderSession, token)
	}
	n.inflight.Add(1)
	n.mu.Lock()
	n.attempts[a] = struct{}{}
	n.mu.Unlock()
	err := fn(actx, n.api)
	cut := errors.Is(context.Cause(actx), errNodeDown)
	n.mu.Lock()
	delete(n.attempts, a)
	n.mu.Unlock()
	n.inflight.Add(-1)
	cancel(nil)

	method, ran, stream, sent, hdr, trl := a.result()
	if idx, ok := indexFrom(hdr, trl); ok {
		raiseTo(&n.applied, idx)
	}
	o := classify(err, ctx.Err(), sent, cut, hdr, trl)
	if o == outOK {
		n.served.Add(1)
		c.last.Store(n)
		if ctx.Value(sessionObjectsKey{}) != nil {
			c.home.Store(n)
		}
		if n.state.Load() != stateHealthy {
			c.setHealthy(n)
		}
	}
	withID := a.carriedID()
	retry := retryable(o, method, ran, stream) || withID && retryableWithID(o, ran, stream)
	return tryResult{err: err, o: o, method: method, retry: retry,
		unknown: withID && retry && (o == outLost || o == outBusy)}
}

// call runs fn as a call of the current session: it refreshes the token
// when half its life has passed, logs in again (once) when it has expired
// or the server says the session is gone, and retries fn once after such a
// re-login.
func (c *Client) call(ctx context.Context, fn func(ctx context.Context, hc hsmpb.HSMClient) error) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	// One request ID for the whole call: every node tried, every round
	// and the try after a re-login send the same one.
	ctx = withCallID(ctx)
	st := &callState{}
	for {
		s, err := c.sessionFor(ctx, st)
		if err != nil {
			return err
		}
		token := ""
		if s != nil {
			token = s.token
		}
		err = c.rpc(ctx, token, fn)
		// Only a lapsed session is worth a new login: CKR_USER_NOT_LOGGED_IN
		// without hsmerr.ReasonNoSession means the wrong role.
		if err == nil || s == nil || st.relogged || !errors.Is(err, hsmerr.ErrNoSession) {
			return err
		}
		retry, rerr := c.recover(ctx, s, st)
		if rerr != nil {
			return rerr
		}
		if !retry {
			return err
		}
		c.log.Debug("hsm client: retrying after re-login")
	}
}
