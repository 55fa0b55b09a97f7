package hsmd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/dataplane"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/workers"
	"github.com/openhsm/openhsm/metrics"
	"github.com/openhsm/openhsm/pki"
)

// The data path (package api/dataplane, docs/dataplane.md): Sign, Verify,
// Encrypt, Decrypt and Digest over a multiplexed binary protocol on the
// node's port, beside gRPC. A call gets exactly the checks it gets over
// gRPC (the same handlers run it), but what is the same for every call of
// a session on a connection is done once: the certificate is read at the
// handshake, and a session token's MAC is checked at its first use on the
// connection. Later calls with the same token check only what can change:
// the token's expiry, the logout list and the user's number, generation
// and lock (CheckUser, from the engine's verified cache). Successful calls
// are not logged.

const (
	// dataWriteTimeout bounds one write to a data-path connection: a
	// client that does not read its answers loses the connection.
	dataWriteTimeout = 30 * time.Second
	// dataDiscardMax is the most body bytes the daemon reads past a
	// request it refused before reading it (no valid session): more, and
	// it closes the connection instead.
	dataDiscardMax = 64 << 10
	// dataSessionsPerConn bounds the sessions a connection caches.
	dataSessionsPerConn = 16
	// dataTouchEvery is how often a session's last use is recorded for the
	// idle sweep.
	dataTouchEvery = time.Second
)

// dataSession is a session whose token was verified on a connection.
type dataSession struct {
	cl      *claims
	ctx     context.Context // the connection's, with identity, claims and caller
	touched time.Time       // guarded by the connection's mu
}

// dataConn is one data-path connection.
type dataConn struct {
	s    *Server
	c    net.Conn
	id   pki.Identity
	ctx  context.Context // ends with the connection
	stop context.CancelFunc

	inflight chan struct{} // a slot per request running
	wg       sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*dataSession

	w *dataplane.Writer
}

// ServeData serves the data path on l until l is closed or ctx ends; then
// it stops reading requests, lets those running answer, and closes the
// connections before it returns.
func (s *Server) ServeData(ctx context.Context, l net.Listener) {
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveDataConn(ctx, c)
		}()
	}
	wg.Wait()
}

func (s *Server) serveDataConn(life context.Context, c net.Conn) {
	defer c.Close()
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return
	}
	id, err := pki.PeerIdentity(tc.ConnectionState())
	if err != nil || id.Kind != pki.KindClient {
		// The handshake required a certificate of the cluster's CA; a
		// node's may not call the client API.
		s.dataRefuseConn(c, "only client certificates may use the data path")
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	dc := &dataConn{s: s, c: c, id: id, ctx: ctx, stop: stop,
		inflight: make(chan struct{}, dataplane.MaxInFlight), sessions: map[string]*dataSession{},
		w: dataplane.NewWriter(c, dataWriteTimeout, true)}
	// The daemon stopping ends the reading; the requests running answer.
	cancelLife := context.AfterFunc(life, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer cancelLife()
	dc.readLoop()
	dc.wg.Wait()
	stop()
}

// dataRefuseConn answers a connection-level error and gives up on it.
func (s *Server) dataRefuseConn(c net.Conn, msg string) {
	b := dataplane.AppendError(nil, &dataplane.Error{RV: ck.CKR_USER_NOT_LOGGED_IN, Msg: "CKR_USER_NOT_LOGGED_IN: " + msg})
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(b)
}

// readLoop reads requests until the connection ends or breaks the
// protocol, and starts each one's handler.
func (dc *dataConn) readLoop() {
	br := bufio.NewReaderSize(dc.c, 32<<10)
	var hb [dataplane.HeaderSize]byte
	for {
		if _, err := io.ReadFull(br, hb[:]); err != nil {
			return
		}
		h, err := dataplane.ParseHeader(hb[:])
		if err == nil && h.Kind != dataplane.KindRequest {
			err = &dataplane.ProtocolError{Msg: "a client sends only requests"}
		}
		if err != nil {
			dc.fatal(h, err)
			return
		}
		// A slot first: a connection with MaxInFlight requests running
		// is not read further until one answers.
		select {
		case dc.inflight <- struct{}{}:
		case <-dc.ctx.Done():
			return
		}
		body, sess, ok := dc.readBody(br, h)
		if !ok {
			<-dc.inflight
			return
		}
		if sess == nil {
			<-dc.inflight
			continue
		}
		dc.wg.Add(1)
		dataWorkers.Run(func() { dc.handle(h, body, sess) })
	}
}

// fatal answers a frame that breaks the framing, and the connection ends.
func (dc *dataConn) fatal(h dataplane.Header, err error) {
	var pe *dataplane.ProtocolError
	msg := "malformed frame"
	if errors.As(err, &pe) {
		msg = pe.Msg
	}
	dc.send(&dataplane.Error{ID: h.ID, Op: h.Op, RV: ck.CKR_ARGUMENTS_BAD, Msg: "CKR_ARGUMENTS_BAD: " + msg})
	dc.s.log.Info("data path: closed a connection that broke the protocol", "peer", dc.id.CommonName, "error", msg)
}

// readBody reads a request's body: first the session token, which is
// checked before anything else is read (as gRPC's tap does). ok false: the
// connection must end. sess nil with ok: the request was refused and
// answered.
func (dc *dataConn) readBody(br *bufio.Reader, h dataplane.Header) (body []byte, sess *dataSession, ok bool) {
	if h.Len < 2 {
		dc.fatal(h, &dataplane.ProtocolError{Msg: "the frame ends inside the token"})
		return nil, nil, false
	}
	var lb [2]byte
	if _, err := io.ReadFull(br, lb[:]); err != nil {
		return nil, nil, false
	}
	n := int(lb[0])<<8 | int(lb[1])
	if n > dataplane.MaxToken || 2+n > int(h.Len) {
		dc.fatal(h, &dataplane.ProtocolError{Msg: fmt.Sprintf("token of %d bytes does not fit (at most %d, inside the frame)", n, dataplane.MaxToken)})
		return nil, nil, false
	}
	// The token first, in a buffer of its own: nothing of the frame's
	// size is allocated before its session checks out.
	var tb [dataplane.MaxToken]byte
	if _, err := io.ReadFull(br, tb[:n]); err != nil {
		return nil, nil, false
	}
	sess, err := dc.session(string(tb[:n]))
	if err != nil {
		dc.refuse(h, err)
		rest := int64(h.Len) - int64(2+n)
		if rest > dataDiscardMax {
			return nil, nil, false
		}
		_, err := io.CopyN(io.Discard, br, rest)
		return nil, nil, err == nil
	}
	body = make([]byte, h.Len)
	copy(body, lb[:])
	copy(body[2:], tb[:n])
	if _, err := io.ReadFull(br, body[2+n:]); err != nil {
		return nil, nil, false
	}
	return body, sess, true
}

// session returns the verified session of a token: from the connection's
// cache after its first use, re-checking what may have changed since.
func (dc *dataConn) session(tok string) (*dataSession, error) {
	s := dc.s
	// The certificate first, as the gRPC path checks it: a revoked
	// certificate's call touches no session.
	if s.deny.Revoked(dc.id.Fingerprint) {
		return nil, unauthenticated("the certificate is revoked")
	}
	if tok == "" {
		return nil, unauthenticated("log in first: no session token")
	}
	now := s.now()
	dc.mu.Lock()
	ds := dc.sessions[tok]
	dc.mu.Unlock()
	if ds == nil {
		cl, u, err := s.checkSession(tok, dc.id.Fingerprint)
		if err != nil {
			return nil, err
		}
		ctx := context.WithValue(dc.ctx, keyIdentity, dc.id)
		ctx = context.WithValue(ctx, keyClaims, cl)
		ctx = context.WithValue(ctx, keyCaller, callerOf(cl, u))
		ds = &dataSession{cl: cl, ctx: ctx}
		dc.mu.Lock()
		if len(dc.sessions) >= dataSessionsPerConn {
			clear(dc.sessions)
		}
		dc.sessions[tok] = ds
		dc.mu.Unlock()
	} else if err := dc.recheck(ds, now); err != nil {
		dc.mu.Lock()
		delete(dc.sessions, tok)
		dc.mu.Unlock()
		return nil, err
	}
	// The idle sweep and the session quota see the session, at most once
	// a second.
	dc.mu.Lock()
	touch := now.Sub(ds.touched) >= dataTouchEvery
	if touch {
		ds.touched = now
	}
	dc.mu.Unlock()
	if touch {
		if err := s.seen(ds.cl); err != nil {
			dc.mu.Lock()
			ds.touched = time.Time{}
			dc.mu.Unlock()
			return nil, err
		}
	}
	return ds, nil
}

// recheck is checkSession without the token's MAC and certificate binding,
// which cannot change: the expiry, a logout, the user's credentials.
func (dc *dataConn) recheck(ds *dataSession, now time.Time) error {
	cl := ds.cl
	if cl.expired(now) {
		return unauthenticated("session token has expired")
	}
	_, err := dc.s.checkLive(cl)
	return err
}

// dataWorkers runs the data path's requests: a signature needs more stack
// than a new goroutine has, and growing it on every call cost a tenth of
// the node's CPU in the profile.
var dataWorkers = workers.New()

// handle runs one request and answers it.
func (dc *dataConn) handle(h dataplane.Header, body []byte, ds *dataSession) {
	defer func() {
		<-dc.inflight
		dc.wg.Done()
	}()
	s := dc.s
	var out []byte
	start, mechType := time.Now(), uint64(metrics.NoMechanism)
	err := s.guard(h.Op.String(), func() error {
		req, err := dataplane.DecodeRequest(h, body)
		if err != nil {
			return err
		}
		if req.Mech != nil {
			mechType = req.Mech.GetType()
		}
		if err := dc.admit(ds.ctx, req.MinIndex); err != nil {
			return err
		}
		out, err = s.dataCall(ds.ctx, req)
		return err
	})
	if err != nil {
		rv, msg := dc.refuse(h, err)
		s.metrics.HSMCall(h.Op.String(), mechType, rv, time.Since(start))
		s.log.Info("refused", "method", h.Op.String(), "transport", "data", "peer", dc.id.CommonName, "user", ds.cl.User, "error", msg)
		return
	}
	s.metrics.HSMCall(h.Op.String(), mechType, ck.CKR_OK, time.Since(start))
	dc.answer(h, out)
}

// admit is authorize's part for a call whose session is known (session
// checked the certificate deny-list): the node's lease, read-your-writes.
func (dc *dataConn) admit(ctx context.Context, minIndex uint64) error {
	s := dc.s
	if err := s.inLease(ctx); err != nil {
		return notExecuted(err)
	}
	if err := s.caughtUp(ctx, minIndex); err != nil {
		return notExecuted(err)
	}
	return nil
}

// errNotRun marks a refusal of a call that did not run.
type errNotRun struct{ error }

func (e errNotRun) Unwrap() error { return e.error }

func notExecuted(err error) error { return errNotRun{err} }

// dataCall runs a request through the gRPC handler of its method: the same
// checks, the same engine call, and counts the key use.
func (s *Server) dataCall(ctx context.Context, r *dataplane.Request) ([]byte, error) {
	var resp *hsmpb.DataResponse
	var err error
	cr := &hsmpb.CryptoRequest{Mechanism: r.Mech, Key: r.Key, Data: r.Data}
	var req any = cr
	switch r.Op {
	case dataplane.OpSign:
		resp, err = s.Sign(ctx, cr)
	case dataplane.OpEncrypt:
		resp, err = s.Encrypt(ctx, cr)
	case dataplane.OpDecrypt:
		resp, err = s.Decrypt(ctx, cr)
	case dataplane.OpVerify:
		vr := &hsmpb.VerifyRequest{Mechanism: r.Mech, Key: r.Key, Data: r.Data, Signature: r.Sig}
		req = vr
		_, err = s.Verify(ctx, vr)
	case dataplane.OpDigest:
		dr := &hsmpb.DigestRequest{Mechanism: r.Mech, Data: r.Data}
		req = dr
		resp, err = s.Digest(ctx, dr)
	default:
		return nil, refuse(ck.CKR_FUNCTION_NOT_SUPPORTED, "method not allowed")
	}
	// The key use, as the interceptor counts it for gRPC.
	s.countUse(ctx, api.ServicePrefix+r.Op.String(), req, err)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, nil
	}
	return resp.Data, nil
}

// dataErr is what the data path answers for err: as toStatus does for
// gRPC, an error that is no engine error is logged and answered as
// "internal error"; a refusal of a call that did not run says so.
func dataErr(s *Server, ctx context.Context, err error) dataplane.Error {
	var nr errNotRun
	notRun := errors.As(err, &nr) || errors.Is(err, cluster.ErrNotExecuted)
	switch {
	case isEngineError(err):
		if rv := hsmerr.RV(err); rv == ck.CKR_GENERAL_ERROR || rv == ck.CKR_FUNCTION_FAILED {
			s.log.ErrorContext(ctx, "operation failed", "err", err.Error())
		}
	case api.HasDetail(err):
		// A refusal made here (refuse, unauthenticated): a status.
		err = api.FromStatus(err)
	default:
		s.log.ErrorContext(ctx, "internal error", "err", err.Error())
	}
	e := dataplane.ErrorFor(err)
	e.NotExecuted = notRun
	return e
}

// refuse answers a request with an error, and returns its CKR and message.
func (dc *dataConn) refuse(h dataplane.Header, err error) (uint64, string) {
	e := dataErr(dc.s, dc.ctx, err)
	e.ID, e.Op = h.ID, h.Op
	if dc.s.replica != nil {
		e.Index = dc.s.replica.Applied()
	}
	dc.send(&e)
	return e.RV, e.Msg
}

// answer sends a success.
func (dc *dataConn) answer(h dataplane.Header, data []byte) {
	var index uint64
	if dc.s.replica != nil {
		index = dc.s.replica.Applied()
	}
	dc.check(dc.w.Response(h.Op, h.ID, index, data))
}

func (dc *dataConn) send(e *dataplane.Error) { dc.check(dc.w.Error(e)) }

// check ends a connection that cannot be written to.
func (dc *dataConn) check(err error) {
	if err != nil {
		dc.c.Close()
		dc.stop()
	}
}
