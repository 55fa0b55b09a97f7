// Package hsmd is the HSM daemon: it serves the tokens engine over gRPC with
// mutual TLS 1.3, authenticates callers by client certificate and session
// token, checks every request field, and logs who did what (never key
// material, passwords or tokens). One daemon serves one tenant.
package hsmd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/metrics"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/state"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Version is the daemon's version string.
const Version = "0.1.0"

// maxMessage bounds a request or response on the wire.
const maxMessage = mech.MaxDataLen + 4<<20

// Server is the gRPC service of one node.
type Server struct {
	hsmpb.UnimplementedHSMServer
	engine *engine.Engine
	node   string
	ttl    time.Duration
	log    *slog.Logger
	now    func() time.Time

	// replica is the cluster node: read-your-writes and the cluster RPCs
	// need it. domain is the domain key in use. Both are nil only in unit
	// tests of the server alone.
	replica   *cluster.Node
	domain    *domainKey
	backups   *backups
	restoring atomic.Bool // a restore upload is being received
	rotating  atomic.Bool // a passphrase rotation is running

	sessions *sessionQuota // login sessions per user on this node
	uses     *useCounter   // key uses, once the node serves

	// maxLife is a login session's absolute lifetime; sweepEvery how
	// often the janitor runs.
	maxLife    time.Duration
	sweepEvery time.Duration
	throttle   *throttle
	// preAuth holds the slots of requests being read before they are
	// authorized (see tap).
	preAuth chan struct{}

	mu       sync.Mutex
	revoked  map[uint64]int64     // session -> its absolute end, for logged-out sessions
	lastSeen map[uint64]time.Time // session -> last call, to drop session objects
	// bgNonces holds the nonces of recent break-glass unlocks (nonce ->
	// when to forget it), so a captured request cannot be played again.
	bgNonces map[string]int64

	// deny is the node's certificate deny-list: checked on every call, so
	// a connection opened before a revocation gets no further answer.
	deny *pki.DenyList

	// KMS is the KMS service, nil when the node serves no KMS API.
	KMS *kms.Service

	metrics *metrics.Metrics // nil records nothing
}

// ServerConfig is what a Server is built from, besides its engine.
type ServerConfig struct {
	Node               string        // this node's name
	TTL                time.Duration // a session token's lifetime before refresh
	MaxLifetime        time.Duration // a login session's absolute lifetime (0: the default)
	SweepEvery         time.Duration // how often the janitor runs (0: the default)
	MaxSessionsPerUser int           // login sessions per user on this node (0: the default)
	Log                *slog.Logger

	Replica *cluster.Node
	Domain  *domainKey
	Backups *backups
	Uses    *useCounter
	Deny    *pki.DenyList
	// KMS is the KMS service when the node serves the KMS API ([kms]),
	// else nil; the principal RPCs use it.
	KMS *kms.Service
	// Metrics counts the HSM API's calls; nil counts none.
	Metrics *metrics.Metrics
}

// NewServer makes the service for an engine.
func NewServer(e *engine.Engine, c ServerConfig) *Server {
	s := &Server{engine: e, node: c.Node, ttl: c.TTL, log: c.Log, now: time.Now,
		maxLife: max(DefaultSessionMaxLifetime, c.TTL), sweepEvery: DefaultSweepInterval,
		replica: c.Replica, domain: c.Domain, backups: c.Backups, uses: c.Uses, deny: c.Deny, KMS: c.KMS, metrics: c.Metrics,
		throttle: newThrottle(), preAuth: make(chan struct{}, preAuthSlots),
		revoked: map[uint64]int64{}, lastSeen: map[uint64]time.Time{}, bgNonces: map[string]int64{},
		sessions: newSessionQuota(DefaultMaxSessionsPerUser)}
	if c.MaxLifetime > 0 {
		s.maxLife = c.MaxLifetime
	}
	if c.SweepEvery > 0 {
		s.sweepEvery = c.SweepEvery
	}
	if c.MaxSessionsPerUser > 0 {
		s.sessions.setMax(c.MaxSessionsPerUser)
	}
	return s
}

// revoke refuses a session's tokens from now on, until the session's
// absolute end (after which no token of it can be valid).
func (s *Server) revoke(session uint64, expires int64) {
	s.mu.Lock()
	s.revoked[session] = expires
	delete(s.lastSeen, session)
	s.mu.Unlock()
	s.sessions.drop(session)
	s.engine.EndSession(session)
}

// loadLoggedOut reads the logged-out sessions the store holds.
func (s *Server) loadLoggedOut() error {
	list, err := state.LoggedOut(s.engine.Store().Meta)
	if err != nil {
		return err
	}
	for id, exp := range list {
		s.revoke(id, exp)
	}
	return nil
}

// cluster is the ID of the cluster this node serves.
func (s *Server) cluster() string {
	if s.domain == nil {
		return ""
	}
	return s.domain.cluster()
}

// access says what a method needs.
type access int

const (
	accessCert    access = iota + 1 // a client certificate from the cluster CA
	accessSession                   // and a valid session token
	accessNode                      // a node certificate (the Peer service)
	accessHealth                    // any certificate of the cluster's CA, in or out of the lease (grpc.health.v1)
)

// methodAccess says what a full method name needs, from the HSM API's
// method table (api.Methods) and the Peer service's (cluster.PeerMethods).
// Methods in neither are refused: deny by default.
func methodAccess(fullMethod string) (access, bool) {
	if m, ok := api.MethodOf(fullMethod); ok {
		if m.Access == api.Session {
			return accessSession, true
		}
		return accessCert, true
	}
	if _, ok := cluster.PeerMethodOf(fullMethod); ok {
		return accessNode, true
	}
	if healthMethod(fullMethod) {
		return accessHealth, true
	}
	return 0, false
}

// freshWait bounds how long a request waits for its node to become fresh.
const freshWait = time.Second

// catchUpWait bounds how long a request waits for its node to apply the
// index it asks for (api.HeaderMinIndex): read-your-writes.
const catchUpWait = 2 * time.Second

type ctxKey int

const (
	keyCaller ctxKey = iota
	keyIdentity
	keyClaims
)

func callerFrom(ctx context.Context) engine.Caller {
	c, _ := ctx.Value(keyCaller).(engine.Caller)
	return c
}

func identityFrom(ctx context.Context) pki.Identity {
	id, _ := ctx.Value(keyIdentity).(pki.Identity)
	return id
}

func claimsFrom(ctx context.Context) *claims {
	c, _ := ctx.Value(keyClaims).(*claims)
	return c
}

// authenticate is the one unary interceptor: it finds the caller's
// certificate identity, checks the session token where the method needs
// one, waits for read-your-writes, and logs the outcome.
func (s *Server) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	var resp any
	start := time.Now()
	err := s.intercept(ctx, info.FullMethod, func(ctx context.Context) (err error) {
		resp, err = h(ctx, req)
		s.countUse(ctx, info.FullMethod, req, err)
		return err
	})
	s.recordCall(info.FullMethod, req, err, time.Since(start))
	return resp, err
}

// authenticateStream is authenticate for streaming methods.
func (s *Server) authenticateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := s.intercept(ss.Context(), info.FullMethod, func(ctx context.Context) error {
		return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	})
	s.recordCall(info.FullMethod, nil, err, time.Since(start))
	return err
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }

// guard runs fn; a panic in it ends the call with an internal error, not
// the daemon. Only the method, the panic's type and the stack are logged:
// the panic's value may hold request contents.
func (s *Server) guard(method string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("internal error: a handler panicked", "method", method, "panic", fmt.Sprintf("%T", r),
				"stack", string(debug.Stack()))
			err = refuse(ck.CKR_GENERAL_ERROR, "internal error")
		}
	}()
	return fn()
}

func (s *Server) intercept(ctx context.Context, fullMethod string, run func(ctx context.Context) error) error {
	// The request has been read: its pre-authorization slot is free.
	releasePreAuth(ctx)
	start := s.now()
	method := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	err := s.guard(method, func() error {
		var err error
		ctx, err = s.authorize(ctx, fullMethod)
		if err == nil {
			err = run(ctx)
		}
		return err
	})
	if _, hsmAPI := api.MethodOf(fullMethod); hsmAPI && s.replica != nil {
		grpc.SetHeader(ctx, metadata.Pairs(api.HeaderIndex, strconv.FormatUint(s.replica.Applied(), 10)))
	}
	st := toStatus(ctx, s.log, err)
	c := callerFrom(ctx)
	attrs := []any{"method", method, "peer", identityFrom(ctx).CommonName}
	if cl := claimsFrom(ctx); cl != nil {
		attrs = append(attrs, "user", cl.User)
	} else if c.User != "" {
		attrs = append(attrs, "user", c.User)
	}
	attrs = append(attrs, "ms", float64(s.now().Sub(start).Microseconds())/1000)
	if st != nil {
		attrs = append(attrs, "error", st.Error())
		s.log.Info("refused", attrs...)
	} else {
		s.log.Debug("ok", attrs...)
	}
	return st
}

// authorize checks the caller of fullMethod and returns the context
// handlers read it from.
func (s *Server) authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	need, ok := methodAccess(fullMethod)
	if !ok {
		return ctx, refuse(ck.CKR_FUNCTION_NOT_SUPPORTED, "method not allowed")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ctx, unauthenticated("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ctx, unauthenticated("not a TLS connection")
	}
	id, err := pki.PeerIdentity(ti.State)
	if err != nil {
		return ctx, unauthenticated("no valid client certificate")
	}
	if s.deny.Revoked(id.Fingerprint) {
		return ctx, unauthenticated("the certificate is revoked")
	}
	ctx = context.WithValue(ctx, keyIdentity, id)
	if need == accessHealth {
		return ctx, nil
	}
	if need == accessNode {
		if id.Kind != pki.KindNode {
			return ctx, refuse(ck.CKR_USER_NOT_LOGGED_IN, "only nodes may call the peer service")
		}
		if pm, _ := cluster.PeerMethodOf(fullMethod); !pm.Joiner && (s.replica == nil || !s.replica.IsMember(id.CommonName)) {
			return ctx, refuse(ck.CKR_USER_NOT_LOGGED_IN, "only members of the cluster may call this")
		}
		return ctx, nil
	}
	if id.Kind != pki.KindClient {
		return ctx, refuse(ck.CKR_USER_NOT_LOGGED_IN, "only client certificates may call the API")
	}
	if m, _ := api.MethodOf(fullMethod); !m.OutOfLease {
		if err := s.inLease(ctx); err != nil {
			markNotExecuted(ctx)
			return ctx, err
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if err := s.catchUp(ctx, md); err != nil {
		return ctx, err
	}
	if vals := md.Get(api.HeaderRequestID); len(vals) > 0 {
		if len(vals) != 1 || !state.ValidRequestID(vals[0]) {
			return ctx, refuse(ck.CKR_ARGUMENTS_BAD, api.HeaderRequestID+" must be 32 lowercase hex digits")
		}
		ctx = engine.WithRequestID(ctx, vals[0])
	}
	if need == accessCert {
		return ctx, nil
	}
	vals := md.Get(api.HeaderSession)
	if len(vals) != 1 {
		return ctx, unauthenticated("log in first: no session token")
	}
	cl, u, err := s.checkSession(vals[0], id.Fingerprint)
	if err != nil {
		return ctx, err
	}
	if m, _ := api.MethodOf(fullMethod); cl.Role == object.RolePublic && !m.Public {
		return ctx, refuse(ck.CKR_USER_NOT_LOGGED_IN, "log in first: a public session cannot call this")
	}
	if err := s.seen(cl); err != nil {
		return ctx, err
	}
	ctx = context.WithValue(ctx, keyClaims, cl)
	ctx = context.WithValue(ctx, keyCaller, callerOf(cl, u))
	return ctx, nil
}

// callerOf is who a verified session token speaks for. A public session's
// role is the token's (object.RolePublic), never its user's: the user's
// role comes from the store only for a login's token.
func callerOf(cl *claims, u *object.User) engine.Caller {
	if cl.Role == object.RolePublic {
		return engine.Caller{User: u.Name, Role: object.RolePublic, Session: cl.Session, Cert: cl.Cert}
	}
	return engine.Caller{User: u.Name, Role: u.Role, Session: cl.Session}
}

// quotaKey is what a session counts against in the per-node session
// quota: its user for a login, its client certificate for a public session
// (which must not use up its token user's logins).
func quotaKey(cl *claims) string {
	if cl.Role == object.RolePublic {
		return "\x00public:" + hex.EncodeToString(cl.Cert[:])
	}
	return cl.User
}

// checkSession checks a session token that came with a client certificate
// of fingerprint cert: its MAC and expiry, its binding to the certificate,
// that it is not logged out, and that its user still exists with the same
// credentials and is not locked.
func (s *Server) checkSession(tok string, cert [32]byte) (*claims, *object.User, error) {
	key, err := s.engine.TokenKey()
	if err != nil {
		return nil, nil, err
	}
	cl, err := parseToken(key, tok, s.now())
	if err != nil {
		return nil, nil, unauthenticated(err.Error())
	}
	if cl.Cert != cert {
		return nil, nil, unauthenticated("the session token belongs to another client certificate")
	}
	u, err := s.checkLive(cl)
	if err != nil {
		return nil, nil, err
	}
	return cl, u, nil
}

// checkLive is the part of checkSession that can change after a token was
// verified: a logout, and the user's number, generation and lock. The data
// path re-checks a cached session with it.
func (s *Server) checkLive(cl *claims) (*object.User, error) {
	s.mu.Lock()
	_, gone := s.revoked[cl.Session]
	s.mu.Unlock()
	if gone {
		return nil, unauthenticated("the session has been logged out")
	}
	u, err := s.engine.CheckUser(cl.User, cl.Number, cl.Generation)
	if err != nil {
		var te *hsmerr.Error
		if errors.As(err, &te) && te.RV == ck.CKR_USER_NOT_LOGGED_IN {
			return nil, unauthenticated(te.Msg)
		}
		return nil, err
	}
	return u, nil
}

// seen records a use of a verified session: its last use for the idle
// sweep, and its place in the per-user session quota (a token issued by
// another node, after a failover, is counted from its first use here).
func (s *Server) seen(cl *claims) error {
	s.mu.Lock()
	if _, gone := s.revoked[cl.Session]; !gone {
		s.lastSeen[cl.Session] = s.now()
	}
	s.mu.Unlock()
	return s.sessions.admit(cl.Session, quotaKey(cl))
}

// inLease refuses a call on a node that is joining, lagging or out of
// contact with a leader: what it holds may miss a revocation the cluster
// has acknowledged. The refusal is of a call that did not run.
func (s *Server) inLease(ctx context.Context) error {
	if s.replica == nil || s.replica.WaitFresh(ctx, freshWait) {
		return nil
	}
	return refuse(ck.CKR_DEVICE_ERROR, "this node is not in contact with the cluster's leader (or has not caught up); try another node")
}

// caughtUp waits until this node applied index min (read-your-writes; 0:
// none); a node that cannot in time refuses a call that did not run.
func (s *Server) caughtUp(ctx context.Context, min uint64) error {
	if s.replica == nil || min == 0 || s.replica.Applied() >= min {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	if err := s.replica.WaitApplied(wctx, min); err != nil {
		return refuse(ck.CKR_DEVICE_ERROR, "this node has not caught up with the cluster yet")
	}
	return nil
}

// catchUp waits until this node applied the index the client asks for, so
// the client reads its own writes; a node that cannot catch up in time
// refuses before doing anything, and the client tries another.
func (s *Server) catchUp(ctx context.Context, md metadata.MD) error {
	vals := md.Get(api.HeaderMinIndex)
	if len(vals) == 0 || s.replica == nil {
		return nil
	}
	min, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil || len(vals) != 1 {
		return refuse(ck.CKR_ARGUMENTS_BAD, api.HeaderMinIndex+" must be one decimal number")
	}
	if err := s.caughtUp(ctx, min); err != nil {
		markNotExecuted(ctx)
		return err
	}
	return nil
}

// GRPCServer builds the gRPC server over connections the cluster port has
// already authenticated (cluster.Creds), with the client API and, when
// peer is not nil, the node-to-node service.
func (s *Server) GRPCServer(creds credentials.TransportCredentials, peer peerpb.PeerServer) *grpc.Server {
	g := grpc.NewServer(
		grpc.Creds(creds),
		grpc.UnaryInterceptor(s.authenticate),
		grpc.StreamInterceptor(s.authenticateStream),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.InTapHandle(s.tap),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	hsmpb.RegisterHSMServer(g, s)
	if peer != nil {
		peerpb.RegisterPeerServer(g, peer)
	}
	return g
}

// Janitor drops the session objects of sessions idle past the token
// lifetime, and forgets expired logouts, until ctx ends.
func (s *Server) Janitor(ctx context.Context) {
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

func (s *Server) sweep() {
	now := s.now()
	var idle []uint64
	s.mu.Lock()
	for id, seen := range s.lastSeen {
		if now.Sub(seen) > s.ttl {
			idle = append(idle, id)
			delete(s.lastSeen, id)
		}
	}
	forgot := 0
	for id, end := range s.revoked {
		// end is the session's absolute end: no token of it is valid
		// after it, so the record is no longer needed.
		if now.Unix() > end {
			delete(s.revoked, id)
			forgot++
		}
	}
	kept := len(s.revoked)
	s.mu.Unlock()
	s.throttle.sweep(now)
	s.log.Debug("session sweep", "idle_sessions", len(idle), "logouts_forgotten", forgot, "logouts_kept", kept)
	for _, id := range idle {
		s.sessions.drop(id)
		s.engine.EndSession(id)
	}
}
