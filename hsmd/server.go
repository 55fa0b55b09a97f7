// Package hsmd is the HSM daemon: it serves the tokens engine over gRPC with
// mutual TLS 1.3, authenticates callers by client certificate and session
// token, checks every request field, and logs who did what (never key
// material, passwords or tokens). One daemon serves one tenant.
package hsmd

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmd/hsmpb"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/tokens"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Version is the daemon's version string.
const Version = "0.1.0"

// SessionHeader is the metadata key that carries the session token.
const SessionHeader = "x-hsm-session"

// maxMessage bounds a request or response on the wire.
const maxMessage = tokens.MaxDataLen + 4<<20

// Server is the gRPC service of one node.
type Server struct {
	hsmpb.UnimplementedHSMServer
	engine    *tokens.Engine
	node      string
	clusterID string
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu       sync.Mutex
	revoked  map[uint64]int64     // session -> expiry, for logged-out sessions
	lastSeen map[uint64]time.Time // session -> last call, to drop session objects
}

// NewServer makes the service for an engine.
func NewServer(e *tokens.Engine, node, clusterID string, ttl time.Duration, log *slog.Logger) *Server {
	return &Server{engine: e, node: node, clusterID: clusterID, ttl: ttl, log: log, now: time.Now,
		revoked: map[uint64]int64{}, lastSeen: map[uint64]time.Time{}}
}

// access says what a method needs. Methods not in the table are refused:
// deny by default.
type access int

const (
	accessCert    access = iota + 1 // a client certificate from the cluster CA
	accessSession                   // and a valid session token
)

var methodAccess = map[string]access{
	"Login": accessCert, "Bootstrap": accessCert, "Info": accessCert, "ListTokens": accessCert,
	"Refresh": accessSession, "Logout": accessSession,
	"CreateUser": accessSession, "DeleteUser": accessSession, "SetPassword": accessSession,
	"UnlockUser": accessSession, "ListUsers": accessSession,
	"CreateObject": accessSession, "CopyObject": accessSession, "DestroyObject": accessSession,
	"FindObjects": accessSession, "ListObjects": accessSession, "GetAttributes": accessSession,
	"SetAttributes": accessSession, "Share": accessSession,
	"GenerateKey": accessSession, "GenerateKeyPair": accessSession, "WrapKey": accessSession,
	"UnwrapKey": accessSession, "DeriveKey": accessSession,
	"Sign": accessSession, "Verify": accessSession, "Encrypt": accessSession, "Decrypt": accessSession,
	"OutputLength": accessSession, "Digest": accessSession, "GenerateRandom": accessSession,
}

type ctxKey int

const (
	keyCaller ctxKey = iota
	keyIdentity
	keyClaims
)

func callerFrom(ctx context.Context) tokens.Caller {
	c, _ := ctx.Value(keyCaller).(tokens.Caller)
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

func unauthenticated(msg string) error {
	return statusWith(codes.Unauthenticated, ck.CKR_USER_NOT_LOGGED_IN, msg)
}

// authenticate is the one interceptor: it finds the caller's certificate
// identity, checks the session token where the method needs one, and logs
// the outcome.
func (s *Server) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := s.now()
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	resp, err := s.authorize(ctx, method, req, h)
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
	return resp, st
}

func (s *Server) authorize(ctx context.Context, method string, req any, h grpc.UnaryHandler) (any, error) {
	need, ok := methodAccess[method]
	if !ok {
		return nil, statusWith(codes.PermissionDenied, ck.CKR_FUNCTION_NOT_SUPPORTED, "method not allowed")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, unauthenticated("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, unauthenticated("not a TLS connection")
	}
	id, err := pki.PeerIdentity(ti.State)
	if err != nil {
		return nil, unauthenticated("no valid client certificate")
	}
	if id.Kind != pki.KindClient {
		return nil, statusWith(codes.PermissionDenied, ck.CKR_USER_NOT_LOGGED_IN, "only client certificates may call the API")
	}
	ctx = context.WithValue(ctx, keyIdentity, id)
	if need == accessCert {
		return h(ctx, req)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(SessionHeader)
	if len(vals) != 1 {
		return nil, unauthenticated("log in first: no session token")
	}
	key, err := s.engine.TokenKey()
	if err != nil {
		return nil, err
	}
	cl, err := parseToken(key, vals[0], s.now())
	if err != nil {
		return nil, unauthenticated(err.Error())
	}
	if cl.Cert != id.Fingerprint {
		return nil, unauthenticated("the session token belongs to another client certificate")
	}
	s.mu.Lock()
	_, gone := s.revoked[cl.Session]
	if !gone {
		s.lastSeen[cl.Session] = s.now()
	}
	s.mu.Unlock()
	if gone {
		return nil, unauthenticated("the session has been logged out")
	}
	u, err := s.engine.CheckUser(cl.User, cl.Generation)
	if err != nil {
		return nil, unauthenticated(err.(*tokens.Error).Msg)
	}
	ctx = context.WithValue(ctx, keyClaims, cl)
	ctx = context.WithValue(ctx, keyCaller, tokens.Caller{User: u.Name, Role: u.Role, Session: cl.Session})
	return h(ctx, req)
}

// GRPCServer builds the gRPC server with mTLS credentials.
func (s *Server) GRPCServer(tlsConfig *tls.Config) *grpc.Server {
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConfig)),
		grpc.UnaryInterceptor(s.authenticate),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	hsmpb.RegisterHSMServer(g, s)
	return g
}

// Janitor drops the session objects of sessions idle past the token
// lifetime, and forgets expired logouts, until ctx ends.
func (s *Server) Janitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
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
	for id, exp := range s.revoked {
		if now.Unix() > exp {
			delete(s.revoked, id)
		}
	}
	s.mu.Unlock()
	for _, id := range idle {
		s.engine.EndSession(id)
	}
}
