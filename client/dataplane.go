package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/dataplane"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/hsmerr"
)

// The client's side of the data path (package api/dataplane,
// docs/dataplane.md). Sign, Verify, Encrypt, Decrypt and Digest go to a
// node over one multiplexed connection per node, opened on first use with
// ALPN dataplane.ALPN beside "h2"; a node that answers "h2" has no data
// path, and gets these calls over gRPC (asked again after dataReprobe).
//
// A data-path try is an attempt like a gRPC one: it records in the
// attempt what classify needs (whether the request reached a connection,
// the answer's index and the not-executed mark), and its errors are gRPC
// statuses with the same codes and ErrorDetail, so failover, retries,
// re-login and error values are the same on both transports.

// dataReprobe is how long the client uses gRPC for a node that did not
// offer the data path before it asks again.
const dataReprobe = time.Minute

// dataDialTimeout bounds opening a data-path connection.
const dataDialTimeout = 10 * time.Second

// dataLink is a node's data path: its connection, opened when needed.
type dataLink struct {
	addr   string
	tls    *tls.Config
	gather bool // the Writer yields to gather writes (not for HostThreads)

	mu      sync.Mutex
	conn    *dataConn
	closed  bool
	noneTil time.Time // the node did not offer the data path: until then use gRPC
}

// dataConn is one open data-path connection.
type dataConn struct {
	c    net.Conn
	slot chan struct{} // MaxInFlight

	next atomic.Uint64 // request IDs

	pmu     sync.Mutex
	pending map[uint64]chan dataAnswer
	err     error // set when the connection ended: what every call on it gets
	done    chan struct{}

	w *dataplane.Writer
}

type dataAnswer struct {
	resp *dataplane.Response
	err  *dataplane.Error
}

// errNoDataPath: the node speaks gRPC only.
var errNoDataPath = errors.New("the node does not offer the data path")

func newDataLink(addr string, base *tls.Config, gather bool) *dataLink {
	conf := base.Clone()
	conf.NextProtos = []string{dataplane.ALPN, "h2"}
	return &dataLink{addr: addr, tls: conf, gather: gather}
}

// get returns the open connection, opening one if needed. errNoDataPath
// means: use gRPC.
func (l *dataLink) get(ctx context.Context) (*dataConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("client closed")
	}
	if dc := l.conn; dc != nil {
		select {
		case <-dc.done:
			l.conn = nil
		default:
			return dc, nil
		}
	}
	if time.Now().Before(l.noneTil) {
		return nil, errNoDataPath
	}
	dctx, cancel := context.WithTimeout(ctx, dataDialTimeout)
	defer cancel()
	d := tls.Dialer{Config: l.tls, NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}}
	c, err := d.DialContext(dctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	if c.(*tls.Conn).ConnectionState().NegotiatedProtocol != dataplane.ALPN {
		c.Close()
		l.noneTil = time.Now().Add(dataReprobe)
		return nil, errNoDataPath
	}
	dc := &dataConn{c: c, slot: make(chan struct{}, dataplane.MaxInFlight), pending: map[uint64]chan dataAnswer{},
		done: make(chan struct{})}
	dc.w = dataplane.NewWriter(c, dataWriteTimeout, l.gather)
	go dc.readLoop()
	l.conn = dc
	return dc, nil
}

// open reports whether the link has a connection open.
func (l *dataLink) open() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return false
	}
	select {
	case <-l.conn.done:
		return false
	default:
		return true
	}
}

// close ends the link for good.
func (l *dataLink) close() {
	l.mu.Lock()
	l.closed = true
	dc := l.conn
	l.conn = nil
	l.mu.Unlock()
	if dc != nil {
		dc.fail(errClosed)
	}
}

// fail ends the connection: every call waiting on it gets err.
func (dc *dataConn) fail(err error) {
	dc.pmu.Lock()
	if dc.err != nil {
		dc.pmu.Unlock()
		return
	}
	dc.err = err
	close(dc.done)
	dc.pmu.Unlock()
	dc.c.Close()
}

// readLoop hands each answer to its caller.
func (dc *dataConn) readLoop() {
	br := bufio.NewReaderSize(dc.c, 32<<10)
	var buf []byte
	for {
		h, body, err := dataplane.ReadFrame(br, buf)
		if err != nil {
			dc.fail(err)
			return
		}
		if h.Kind == dataplane.KindRequest {
			dc.fail(errors.New("the node sent a request"))
			return
		}
		// The answer's bytes go to the caller: a new buffer each time.
		resp, e, err := dataplane.DecodeAnswer(h, body)
		if err != nil {
			// Not the *hsmerr.Error itself: every call on the connection
			// gets it, and roundTrip takes an *hsmerr.Error for its own
			// request's refusal by the encoder.
			dc.fail(fmt.Errorf("malformed answer: %v", err))
			return
		}
		if h.ID == 0 {
			// The node refused the connection.
			dc.fail(&connRefused{e})
			return
		}
		dc.pmu.Lock()
		ch := dc.pending[h.ID]
		delete(dc.pending, h.ID)
		dc.pmu.Unlock()
		if ch != nil {
			ch <- dataAnswer{resp: resp, err: e}
		}
		buf = nil
	}
}

// connRefused is a node's connection-level refusal.
type connRefused struct{ e *dataplane.Error }

func (r *connRefused) Error() string { return r.e.Msg }

const dataWriteTimeout = 30 * time.Second

// roundTrip sends one request and waits for its answer. sent reports
// whether the request was queued on a connection.
func (dc *dataConn) roundTrip(ctx context.Context, r *dataplane.Request) (ans dataAnswer, sent bool, err error) {
	select {
	case dc.slot <- struct{}{}:
	case <-ctx.Done():
		return ans, false, ctx.Err()
	case <-dc.done:
		return ans, false, dc.err
	}
	defer func() { <-dc.slot }()
	r.ID = dc.next.Add(1)
	ch := make(chan dataAnswer, 1)
	dc.pmu.Lock()
	if dc.err != nil {
		dc.pmu.Unlock()
		return ans, false, dc.err
	}
	dc.pending[r.ID] = ch
	dc.pmu.Unlock()
	if err := dc.w.Request(r); err != nil {
		dc.pmu.Lock()
		delete(dc.pending, r.ID)
		dc.pmu.Unlock()
		var he *hsmerr.Error
		if errors.As(err, &he) {
			return ans, false, err // the encoder refused it: nothing was sent
		}
		dc.fail(err)
		return ans, true, err
	}
	select {
	case ans = <-ch:
		return ans, true, nil
	case <-ctx.Done():
		dc.pmu.Lock()
		delete(dc.pending, r.ID)
		dc.pmu.Unlock()
		return ans, true, ctx.Err()
	case <-dc.done:
		// The answer may have come just before the end.
		select {
		case ans = <-ch:
			return ans, true, nil
		default:
		}
		return ans, true, dc.err
	}
}

// viaData runs a data-path call in an attempt, if the client and the
// attempt's node use the data path; ok false means: use gRPC. The result
// and error are what the gRPC call would give.
func (c *Client) viaData(ctx context.Context, r *dataplane.Request) (out []byte, ok bool, err error) {
	if c.cfg.Transport == TransportGRPC {
		return nil, false, nil
	}
	a := attemptFrom(ctx)
	if a == nil || a.node.data == nil {
		return nil, false, nil
	}
	name := r.Op.String()
	a.begin(name, false)
	dc, err := a.node.data.get(ctx)
	if errors.Is(err, errNoDataPath) {
		a.end(false, nil, nil)
		return nil, false, nil
	}
	if err != nil {
		a.end(false, nil, nil)
		if ctx.Err() != nil {
			return nil, true, status.FromContextError(ctx.Err()).Err()
		}
		return nil, true, status.Error(codes.Unavailable, "data path: connect: "+err.Error())
	}
	r.Token = a.token
	r.MinIndex = c.idx().load()
	ans, sent, err := dc.roundTrip(ctx, r)
	if err != nil {
		a.end(sent, nil, nil)
		var cr *connRefused
		switch {
		case errors.As(err, &cr):
			return nil, true, dataStatus(cr.e)
		case ctx.Err() != nil:
			if errors.Is(context.Cause(ctx), errNodeDown) {
				// The health checker found the node dead: a connection
				// that looks open may be gone without a word (a cut
				// network); the next call opens a new one.
				dc.fail(errNodeDown)
			}
			return nil, true, status.FromContextError(ctx.Err()).Err()
		case errors.Is(err, errClosed):
			return nil, true, status.Error(codes.Canceled, "client closed")
		}
		var he *hsmerr.Error
		if errors.As(err, &he) {
			// The request itself was refused by the encoder.
			return nil, true, api.ToStatus(he).Err()
		}
		return nil, true, status.Error(codes.Unavailable, "data path: connection lost: "+err.Error())
	}
	var index uint64
	if ans.resp != nil {
		index = ans.resp.Index
	} else {
		index = ans.err.Index
	}
	var hdr, trl metadata.MD
	if index > 0 {
		c.idx().observe(index)
		hdr = metadata.Pairs(api.HeaderIndex, strconv.FormatUint(index, 10))
	}
	if ans.err != nil {
		if ans.err.NotExecuted {
			trl = metadata.Pairs(api.TrailerRetry, api.RetryOtherNode)
		}
		a.end(true, hdr, trl)
		return nil, true, dataStatus(ans.err)
	}
	a.end(true, hdr, nil)
	return ans.resp.Data, true, nil
}

var errClosed = errors.New("client closed")

// dataStatus is the gRPC status a refusal would have come as.
func dataStatus(e *dataplane.Error) error {
	st := status.New(hsmerr.CodeFor(e.RV, e.Reason), e.Msg)
	if ds, err := st.WithDetails(&hsmpb.ErrorDetail{Ckr: e.RV, Reason: string(e.Reason)}); err == nil {
		st = ds
	}
	return st.Err()
}
