package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmd/hsmpb"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/tokens"
)

// MetadataSession is the gRPC metadata key that carries the session token.
const MetadataSession = "x-hsm-session"

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
	// pickSem serializes node selection (a channel, so waiters honour
	// their contexts).
	pickSem chan struct{}
	nodeMu  sync.Mutex
	cur     *node // the node calls go to; nil: pick one

	// authSem serializes the calls that change the session: Login,
	// Refresh, Logout and automatic re-login.
	authSem chan struct{}
	mu      sync.Mutex // guards sess and creds
	sess    *session
	creds   *savedCreds

	closeOnce sync.Once
}

// node is one daemon of the cluster and our connection to it.
type node struct {
	addr string
	conn *grpc.ClientConn
	api  hsmpb.HSMClient
}

// Option changes how Dial sets up a Client.
type Option func(*Client)

// WithLogger makes the client log to l (connection changes, session
// refreshes and re-logins, at debug and warn level; never credentials or
// tokens). Without it the client does not log.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// withClock replaces time.Now; for tests.
func withClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// Dial connects to the cluster: it sets up mutual TLS 1.3 with the
// configured CA and client certificate (pki.ClientConfigFor), opens a
// connection to every node, and picks the first node, in configuration
// order, that answers Info within cfg.Timeout. Errors are *tokens.Error:
// CKR_ARGUMENTS_BAD for a bad configuration, CKR_GENERAL_ERROR for bad
// certificate files, CKR_DEVICE_ERROR when no node answers.
//
// Calls go to the picked node. When a call finds it unreachable, the next
// call picks again (calls are not retried on another node, since they may
// already have taken effect).
func Dial(ctx context.Context, cfg *Config, opts ...Option) (*Client, error) {
	if cfg == nil {
		return nil, argErr("no configuration")
	}
	c := &Client{
		cfg:     *cfg,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     time.Now,
		pickSem: make(chan struct{}, 1),
		authSem: make(chan struct{}, 1),
	}
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
	tlsCfg, err := pki.ClientConfigFor(c.cfg.Cert, c.cfg.Key, c.cfg.CA, c.cfg.ServerName)
	if err != nil {
		return nil, &tokens.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "client TLS setup failed", Err: err}
	}
	if err := c.connect(tlsCfg); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.pick(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) connect(tlsCfg *tls.Config) error {
	creds := credentials.NewTLS(tlsCfg)
	for _, addr := range c.cfg.Nodes {
		conn, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
			// Notice a dead node on an idle connection (hsmd allows pings
			// every 10s).
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		)
		if err != nil {
			return &tokens.Error{RV: ck.CKR_ARGUMENTS_BAD, Msg: fmt.Sprintf("node %q", addr), Err: err}
		}
		c.nodes = append(c.nodes, &node{addr: addr, conn: conn, api: hsmpb.NewHSMClient(conn)})
	}
	return nil
}

// Close closes the connections. It does not log out: call Logout first to
// end the session on the server at once (otherwise it lapses on its own).
// Calls after Close fail.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		for _, n := range c.nodes {
			n.conn.Close()
		}
		c.mu.Lock()
		c.forgetCredsLocked()
		c.mu.Unlock()
	})
	return nil
}

// Node returns the address of the node calls currently go to, or "" if
// none is picked.
func (c *Client) Node() string {
	c.nodeMu.Lock()
	defer c.nodeMu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.addr
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
		return FromStatus(ctx.Err())
	}
}

func release(sem chan struct{}) { <-sem }

// pick returns the node calls go to, choosing one if there is none: the
// first in configuration order that answers Info within the timeout. An
// answer that is an error from the daemon still shows the node is up.
//
// This is the one place that decides where calls go; health checks and
// smarter failover belong here.
func (c *Client) pick(ctx context.Context) (*node, error) {
	c.nodeMu.Lock()
	n := c.cur
	c.nodeMu.Unlock()
	if n != nil {
		return n, nil
	}
	if err := acquire(ctx, c.pickSem); err != nil {
		return nil, err
	}
	defer release(c.pickSem)
	c.nodeMu.Lock()
	n = c.cur
	c.nodeMu.Unlock()
	if n != nil {
		return n, nil
	}
	var fails []string
	for _, n := range c.nodes {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		_, err := n.api.Info(pctx, &hsmpb.Empty{})
		cancel()
		if !nodeDown(err) {
			c.nodeMu.Lock()
			c.cur = n
			c.nodeMu.Unlock()
			c.log.Debug("hsm client: using node", "node", n.addr)
			return n, nil
		}
		if ctx.Err() != nil {
			return nil, FromStatus(ctx.Err())
		}
		c.log.Warn("hsm client: node did not answer", "node", n.addr, "error", status.Convert(err).Message())
		fails = append(fails, fmt.Sprintf("%s: %s", n.addr, status.Convert(err).Message()))
	}
	return nil, &tokens.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "no HSM node answered (" + strings.Join(fails, "; ") + ")"}
}

// markDown forgets n as the current node, so the next call picks again.
func (c *Client) markDown(n *node) {
	c.nodeMu.Lock()
	defer c.nodeMu.Unlock()
	if c.cur == n {
		c.cur = nil
		c.log.Warn("hsm client: node unreachable; will pick again", "node", n.addr)
	}
}

// withTimeout bounds ctx by the configured timeout unless it already has a
// deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// rpc runs one call on the current node with the given token ("" for
// none), and converts its error.
func (c *Client) rpc(ctx context.Context, token string, fn func(ctx context.Context, api hsmpb.HSMClient) error) error {
	_, err := c.rpcCode(ctx, token, fn)
	return err
}

// rpcCode is rpc that also gives the gRPC status code of a failure.
func (c *Client) rpcCode(ctx context.Context, token string, fn func(ctx context.Context, api hsmpb.HSMClient) error) (codes.Code, error) {
	n, err := c.pick(ctx)
	if err != nil {
		return codes.Unavailable, err
	}
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, MetadataSession, token)
	}
	err = fn(ctx, n.api)
	if err == nil {
		return codes.OK, nil
	}
	code := status.Code(err)
	if code == codes.Unavailable {
		c.markDown(n)
	}
	return code, FromStatus(err)
}

// call runs fn as a call of the current session: it refreshes the token
// when half its life has passed, logs in again (once) when it has expired
// or the server says the session is gone, and retries fn once after such a
// re-login.
func (c *Client) call(ctx context.Context, fn func(ctx context.Context, api hsmpb.HSMClient) error) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
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
		var code codes.Code
		code, err = c.rpcCode(ctx, token, fn)
		// CKR_USER_NOT_LOGGED_IN with PermissionDenied means the wrong
		// role, not a lapsed session.
		if err == nil || s == nil || st.relogged || code == codes.PermissionDenied ||
			tokens.RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
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
