package client

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/internal/testcluster"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/pki"
)

// This file tests the client's own session logic against a real gRPC server
// over real mutual TLS. The server implements only Login, Refresh and Sign,
// with just enough session handling to exercise the client; everything else
// answers Unimplemented (which also shows Dial that the node is up).

// clock is a settable clock shared by the test server and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeSession struct {
	id      uint64
	expires time.Time
}

// Special keys of the fake Sign.
const (
	keyWrongRole = 666 // PermissionDenied + CKR_USER_NOT_LOGGED_IN (a CO using a key)
	keyRefused   = 667 // Unauthenticated + CKR_USER_NOT_LOGGED_IN although the session is alive
)

type fakeHSM struct {
	hsmpb.UnimplementedHSMServer
	clock *clock
	life  time.Duration

	mu        sync.Mutex
	password  string
	sessions  map[string]fakeSession // token -> session
	rejectAll bool                   // Sign and Refresh refuse every token
	n         int
	logins    int // attempts, good or bad
	refreshes int
	signs     int
	objects   int
	signToks  []string
	badMeta   []string // calls that carried a token they should not have
}

func newFakeHSM(c *clock, life time.Duration) *fakeHSM {
	return &fakeHSM{clock: c, life: life, password: "s3cret-pw", sessions: map[string]fakeSession{}}
}

func rvErr(code codes.Code, rv uint64, msg string) error {
	st, err := status.New(code, msg).WithDetails(&hsmpb.ErrorDetail{Ckr: rv})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func tokenOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(api.HeaderSession); len(v) == 1 {
		return v[0]
	}
	return ""
}

func (f *fakeHSM) issueLocked(id uint64) *hsmpb.LoginResponse {
	f.n++
	tok := fmt.Sprintf("tok-%d", f.n)
	exp := f.clock.Now().Add(f.life)
	f.sessions[tok] = fakeSession{id: id, expires: exp}
	return &hsmpb.LoginResponse{Token: tok, Role: "CU", ExpiresUnix: exp.Unix(), Session: id}
}

// checkLocked returns the session of the call's token.
func (f *fakeHSM) checkLocked(ctx context.Context) (fakeSession, error) {
	s, ok := f.sessions[tokenOf(ctx)]
	if !ok || f.rejectAll || !f.clock.Now().Before(s.expires) {
		return fakeSession{}, rvErr(codes.Unauthenticated, ck.CKR_USER_NOT_LOGGED_IN, "no valid session")
	}
	return s, nil
}

func (f *fakeHSM) Login(ctx context.Context, r *hsmpb.LoginRequest) (*hsmpb.LoginResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	if tokenOf(ctx) != "" {
		f.badMeta = append(f.badMeta, "Login")
	}
	if r.User != "alice" || r.Password != f.password {
		return nil, rvErr(codes.Unauthenticated, ck.CKR_PIN_INCORRECT, "wrong user name or password")
	}
	return f.issueLocked(uint64(100 + f.n + 1)), nil
}

func (f *fakeHSM) Refresh(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.LoginResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	s, err := f.checkLocked(ctx)
	if err != nil {
		return nil, err
	}
	return f.issueLocked(s.id), nil
}

func (f *fakeHSM) Sign(ctx context.Context, r *hsmpb.CryptoRequest) (*hsmpb.DataResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signs++
	f.signToks = append(f.signToks, tokenOf(ctx))
	if _, err := f.checkLocked(ctx); err != nil {
		return nil, err
	}
	switch r.Key {
	case keyWrongRole:
		return nil, rvErr(codes.PermissionDenied, ck.CKR_USER_NOT_LOGGED_IN, "a crypto officer cannot use keys")
	case keyRefused:
		return nil, rvErr(codes.Unauthenticated, ck.CKR_USER_NOT_LOGGED_IN, "refused")
	}
	return &hsmpb.DataResponse{Data: append([]byte("sig:"), r.Data...)}, nil
}

// Info names the fake's cluster.
func (f *fakeHSM) Info(context.Context, *hsmpb.Empty) (*hsmpb.InfoResponse, error) {
	return &hsmpb.InfoResponse{ClusterId: "fake-cluster", Node: "fake"}, nil
}

// CreateObject is the fake's one write: it needs a session and returns a
// new handle.
func (f *fakeHSM) CreateObject(ctx context.Context, _ *hsmpb.CreateObjectRequest) (*hsmpb.ObjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.checkLocked(ctx); err != nil {
		return nil, err
	}
	f.objects++
	return &hsmpb.ObjectResponse{Object: uint64(1000 + f.objects)}, nil
}

// revoke ends every session on the server, as a restart or reset would.
func (f *fakeHSM) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.sessions)
}

func (f *fakeHSM) counts() (logins, refreshes, signs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.refreshes, f.signs
}

func (f *fakeHSM) lastSignToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signToks[len(f.signToks)-1]
}

// testPKI makes a CA, a node and a client certificate in a temporary
// directory, once per test binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if pkiDir != "" {
		os.RemoveAll(pkiDir)
	}
	testcluster.RemoveBinaries()
	os.Exit(code)
}

func mkTempDir() (string, error) { return os.MkdirTemp("", "openhsm-client-test-") }

var (
	pkiOnce sync.Once
	pkiDir  string
	pkiErr  error
)

func testPKI(t *testing.T) string {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := mkTempDir()
		if err != nil {
			pkiErr = err
			return
		}
		ca, err := pki.CreateCA(dir, "test CA")
		if err == nil {
			err = ca.IssueNode(dir, "node1", nil)
		}
		if err == nil {
			err = ca.IssueClient(dir, "client")
		}
		pkiDir, pkiErr = dir, err
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiDir
}

type env struct {
	srv   *grpc.Server
	f     *fakeHSM
	clock *clock
	cfg   *Config
	addr  string
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServer(t *testing.T, life time.Duration) *env {
	t.Helper()
	dir := testPKI(t)
	clk := &clock{t: time.Unix(time.Now().Unix(), 0)}
	e := &env{f: newFakeHSM(clk, life), clock: clk, logs: &syncBuffer{}}
	e.srv, e.addr = e.serveNode(t)
	e.cfg = &Config{
		Nodes:   []string{e.addr},
		CA:      filepath.Join(dir, pki.CACertFile),
		Cert:    pki.CertPath(dir, "client"),
		Key:     pki.KeyPath(dir, "client"),
		Timeout: 10 * time.Second,
	}
	return e
}

// serveNode serves e's fake on another port: one more node of the same
// cluster, whose session tokens are valid on every node.
func (e *env) serveNode(t *testing.T, opts ...grpc.ServerOption) (*grpc.Server, string) {
	t.Helper()
	dir := testPKI(t)
	tlsCfg, err := pki.ServerConfig(pki.CertPath(dir, "node1"), pki.KeyPath(dir, "node1"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(tlsCfg))}, opts...)...)
	hsmpb.RegisterHSMServer(srv, e.f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

func (e *env) dial(t *testing.T) *Client {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := Dial(context.Background(), e.cfg, WithLogger(logger), withClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) login(t *testing.T) *Client {
	t.Helper()
	c := e.dial(t)
	if err := c.Login(context.Background(), "alice", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	return c
}

func sign(t *testing.T, c *Client, key uint64) error {
	t.Helper()
	sig, err := c.Sign(context.Background(), key, mech.Mech{Type: ck.CKM_SHA256_HMAC}, []byte("msg"))
	if err == nil && string(sig) != "sig:msg" {
		t.Errorf("signature %q", sig)
	}
	return err
}

func wantCounts(t *testing.T, f *fakeHSM, logins, refreshes int) {
	t.Helper()
	l, r, _ := f.counts()
	if l != logins || r != refreshes {
		t.Errorf("server saw %d logins and %d refreshes, want %d and %d", l, r, logins, refreshes)
	}
}

func TestLoginSendsToken(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	if c.Role() != "CU" || c.Session() != 101 || c.User() != "alice" || !c.LoggedIn() {
		t.Errorf("role %q session %d user %q", c.Role(), c.Session(), c.User())
	}
	if c.Node() != e.addr {
		t.Errorf("node %q, want %q", c.Node(), e.addr)
	}
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	if tok := e.f.lastSignToken(); tok != "tok-1" {
		t.Errorf("Sign carried token %q", tok)
	}
	if len(e.f.badMeta) != 0 {
		t.Errorf("token sent on %v", e.f.badMeta)
	}
	wantCounts(t, e.f, 1, 0)
}

func TestLoginWrongPassword(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.dial(t)
	err := c.Login(context.Background(), "alice", "nope")
	if RV(err) != ck.CKR_PIN_INCORRECT {
		t.Errorf("err = %v", err)
	}
	if c.LoggedIn() || c.Role() != "" || c.Session() != 0 {
		t.Error("logged in after a failed login")
	}
}

func TestCallWithoutLogin(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.dial(t)
	if err := sign(t, c, 1); RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
		t.Errorf("err = %v", err)
	}
	if e.f.lastSignToken() != "" {
		t.Error("a token was sent without a login")
	}
	wantCounts(t, e.f, 0, 0)
}

func TestRefreshAfterHalfLife(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.clock.Advance(29 * time.Second)
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, e.f, 1, 0)

	e.clock.Advance(2 * time.Second) // 31s: past half
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, e.f, 1, 1)
	if tok := e.f.lastSignToken(); tok != "tok-2" {
		t.Errorf("call after refresh carried %q, want the new token", tok)
	}
	if c.Session() != 101 {
		t.Errorf("refresh changed the session id to %d", c.Session())
	}

	e.clock.Advance(20 * time.Second) // the new token is 20s old
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, e.f, 1, 1)
}

func TestExplicitRefresh(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	if tok := e.f.lastSignToken(); tok != "tok-2" {
		t.Errorf("token %q", tok)
	}
}

func TestReloginAfterExpiry(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.clock.Advance(61 * time.Second)
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	// Expired by our own clock: log in again at once, no refresh attempt,
	// and the stale token is never sent.
	wantCounts(t, e.f, 2, 0)
	if _, _, signs := e.f.counts(); signs != 1 {
		t.Errorf("%d signs", signs)
	}
	if c.Session() != 102 {
		t.Errorf("session %d after re-login", c.Session())
	}
}

func TestReloginWhenServerEndsSession(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.f.revoke()
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	// Sign refused, Refresh confirms the session is gone, Login, Sign again.
	wantCounts(t, e.f, 2, 1)
	if _, _, signs := e.f.counts(); signs != 2 {
		t.Errorf("%d signs, want 2", signs)
	}
}

func TestWrongRoleIsNotExpiry(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	if err := sign(t, c, keyWrongRole); RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
		t.Errorf("err = %v", err)
	}
	wantCounts(t, e.f, 1, 0)
}

func TestRefusedButAlive(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	sess := c.Session()
	err := sign(t, c, keyRefused)
	if RV(err) != ck.CKR_USER_NOT_LOGGED_IN || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v", err)
	}
	// A refresh showed the session alive, so no re-login and no retry.
	wantCounts(t, e.f, 1, 1)
	if c.Session() != sess {
		t.Error("session changed")
	}
}

func TestReloginOncePerCall(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.f.mu.Lock()
	e.f.rejectAll = true
	e.f.mu.Unlock()
	for i := 1; i <= 3; i++ {
		if err := sign(t, c, 1); RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
			t.Errorf("call %d: err = %v", i, err)
		}
		l, _, s := e.f.counts()
		if l != 1+i || s != 2*i {
			t.Errorf("after call %d: %d logins, %d signs; want %d, %d", i, l, s, 1+i, 2*i)
		}
	}
}

func TestReloginRefusedForgetsCredentials(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.f.mu.Lock()
	e.f.password = "changed-by-an-officer"
	e.f.mu.Unlock()
	e.f.revoke()
	err := sign(t, c, 1)
	if RV(err) != ck.CKR_USER_NOT_LOGGED_IN || !strings.Contains(err.Error(), "CKR_PIN_INCORRECT") {
		t.Errorf("err = %v", err)
	}
	wantCounts(t, e.f, 2, 1)
	if c.LoggedIn() {
		t.Error("still logged in")
	}
	// No further attempts with the stale password.
	for range 6 {
		if err := sign(t, c, 1); RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
			t.Errorf("err = %v", err)
		}
	}
	wantCounts(t, e.f, 2, 1)
	// An explicit login works again.
	if err := c.Login(context.Background(), "alice", "changed-by-an-officer"); err != nil {
		t.Fatal(err)
	}
	if err := sign(t, c, 1); err != nil {
		t.Error(err)
	}
}

func TestSetPasswordUpdatesCredentials(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	// SetPassword is Unimplemented on the fake server; mimic a success.
	c.passwordChanged("alice", "new-pw")
	c.passwordChanged("bob", "other")
	e.f.mu.Lock()
	e.f.password = "new-pw"
	e.f.mu.Unlock()
	e.f.revoke()
	if err := sign(t, c, 1); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, e.f, 2, 1)
}

func TestLogoutForgetsSession(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	// Logout is Unimplemented here; the client forgets the session anyway.
	_ = c.Logout(context.Background())
	if c.LoggedIn() {
		t.Error("still logged in")
	}
	e.f.revoke()
	if err := sign(t, c, 1); RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
		t.Errorf("err = %v", err)
	}
	wantCounts(t, e.f, 1, 0)
	if err := c.Logout(context.Background()); RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
		t.Errorf("second logout: %v", err)
	}
}

func TestConcurrentRefresh(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.clock.Advance(40 * time.Second)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := sign(t, c, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantCounts(t, e.f, 1, 1)
}

func TestConcurrentRelogin(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.f.revoke()
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if err := sign(t, c, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if l, _, _ := e.f.counts(); l != 2 {
		t.Errorf("%d logins, want 2", l)
	}
}

func TestConcurrentExpiry(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.clock.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if err := sign(t, c, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantCounts(t, e.f, 2, 0)
}

func TestSecretsNotLogged(t *testing.T) {
	e := startServer(t, time.Minute)
	c := e.login(t)
	e.clock.Advance(31 * time.Second)
	sign(t, c, 1) // refresh
	e.f.revoke()
	sign(t, c, 1) // re-login
	e.f.mu.Lock()
	e.f.password = "other"
	e.f.mu.Unlock()
	e.f.revoke()
	sign(t, c, 1) // failed re-login
	logs := e.logs.String()
	if !strings.Contains(logs, "logging in again") {
		t.Errorf("expected re-login in the log:\n%s", logs)
	}
	for _, secret := range []string{"s3cret-pw", "tok-"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestDialSkipsDeadNode(t *testing.T) {
	e := startServer(t, time.Minute)
	dead := closedAddr(t)
	e.cfg.Nodes = []string{dead, e.addr}
	c := e.login(t)
	if c.Node() != e.addr {
		t.Errorf("node %q, want %q", c.Node(), e.addr)
	}
	if err := sign(t, c, 1); err != nil {
		t.Error(err)
	}
}

func TestDialNoNode(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.Nodes = []string{closedAddr(t), closedAddr(t)}
	e.cfg.Timeout = 3 * time.Second
	_, err := Dial(context.Background(), e.cfg)
	if RV(err) != ck.CKR_DEVICE_ERROR || !strings.Contains(err.Error(), e.cfg.Nodes[1]) {
		t.Errorf("err = %v", err)
	}
}

func TestDialBadCertificates(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.Cert = e.cfg.CA
	_, err := Dial(context.Background(), e.cfg)
	if RV(err) != ck.CKR_GENERAL_ERROR {
		t.Errorf("err = %v", err)
	}
	if _, err := Dial(context.Background(), nil); RV(err) != ck.CKR_ARGUMENTS_BAD {
		t.Errorf("nil config: %v", err)
	}
}

func TestServerNameChecked(t *testing.T) {
	e := startServer(t, time.Minute)
	e.cfg.ServerName = "not-in-the-certificate.example"
	e.cfg.Timeout = 3 * time.Second
	if _, err := Dial(context.Background(), e.cfg); RV(err) != ck.CKR_DEVICE_ERROR {
		t.Errorf("err = %v", err)
	}
}

func TestNodeFailover(t *testing.T) {
	e := startServer(t, time.Minute)
	srv2, addr2 := e.serveNode(t)
	e.cfg.Nodes = []string{e.addr, addr2}
	c := e.login(t)
	// Stop the node the login went to: the next signs go to the other one
	// with the same session (Sign may run twice, so the call that finds the
	// node gone is retried there).
	gone, other := e.srv, addr2
	if c.Node() == addr2 {
		gone, other = srv2, e.addr
	}
	gone.Stop()
	for range 10 {
		if err := sign(t, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	if c.Node() != other {
		t.Errorf("node %q, want %q", c.Node(), other)
	}
	wantCounts(t, e.f, 1, 0)
}
