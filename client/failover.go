package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/object"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api"
)

// This file holds the cluster side of a call: which methods may run twice,
// what a failed attempt means, the raft index that gives read-your-writes,
// and which node an attempt goes to. docs/client.md describes it.

// The metadata names, and which methods may run twice or carry a request
// ID, are the API's: package api (api/metadata.go, api/methods.go).

// deduped reports whether a method (by its short name) is a write the
// daemon deduplicates by request ID (api.RetryWithID). It carries one, and
// a try of it whose outcome is unknown (the node died, the leader changed,
// the connection broke after sending) is retried like an idempotent call,
// with the same ID, until the call's deadline.
func deduped(method string) bool {
	m, ok := api.MethodOf(api.ServicePrefix + method)
	return ok && m.Deduped()
}

// idempotent reports whether a method (by its short name) may run twice
// without harm (api.RetryIdempotent): it reads, or computes without
// changing anything (Refresh only issues a token). A call of one of them
// that fails because its node is unreachable or dying is retried on
// another node. Every other method is retried only when it certainly did
// not run: it never left the client, or the node refused it with
// api.RetryOtherNode.
func idempotent(method string) bool {
	m, ok := api.MethodOf(api.ServicePrefix + method)
	return ok && m.Idempotent()
}

// callID is a call's request ID, made the first time an RPC of the call
// needs it (reads never do), then the same for every try.
type callID struct {
	once sync.Once
	id   string
}

type callIDKey struct{}

func (c *callID) get() string {
	c.once.Do(func() {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			// crypto/rand does not fail on supported platforms; without an
			// ID the write is simply not retried after an unknown outcome.
			return
		}
		c.id = hex.EncodeToString(b[:])
	})
	return c.id
}

// WithRequestID makes the write call made with ctx send id as its request
// ID instead of a fresh one. An application that retries a write itself
// (after its own timeout or restart) passes the ID of the first attempt,
// so the cluster answers with that attempt's outcome rather than applying
// the write again. id must be 32 lowercase hex digits (128 random bits);
// the daemon refuses anything else. Use a new ID for every new write.
func WithRequestID(ctx context.Context, id string) context.Context {
	c := &callID{}
	c.once.Do(func() { c.id = id })
	return context.WithValue(ctx, callIDKey{}, c)
}

// NewRequestID returns a fresh random request ID for WithRequestID.
func NewRequestID() string { return (&callID{}).get() }

// withCallID gives ctx a request ID for the call, unless it has one.
func withCallID(ctx context.Context) context.Context {
	if ctx.Value(callIDKey{}) != nil {
		return ctx
	}
	return context.WithValue(ctx, callIDKey{}, &callID{})
}

// requestIDFor returns the ID an RPC of method sends, or "".
func requestIDFor(ctx context.Context, method string) string {
	if !deduped(method) {
		return ""
	}
	if c, ok := ctx.Value(callIDKey{}).(*callID); ok {
		return c.get()
	}
	return ""
}

// methodName is the last element of a full gRPC method name
// ("/openhsm.v1.HSM/Sign" gives "Sign").
func methodName(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

// ---- read-your-writes ----

// raftIndex is the highest applied raft index the client has seen in a
// response. It only grows.
type raftIndex struct{ v atomic.Uint64 }

func (x *raftIndex) load() uint64 { return x.v.Load() }

// observe raises the index to v if v is higher.
func (x *raftIndex) observe(v uint64) {
	for {
		cur := x.v.Load()
		if v <= cur || x.v.CompareAndSwap(cur, v) {
			return
		}
	}
}

// sharedIndexes lets the open Clients of one cluster in a process share
// their index, so that what one writes another reads (the PKCS#11 library
// holds a Client per logged-in slot, and one more). A cluster is known by
// its id and the configured node list; an entry lives while a Client uses
// it, so a cluster rebuilt later with the same id starts afresh.
var sharedIndexes = struct {
	sync.Mutex
	m map[string]*sharedIndex
}{m: map[string]*sharedIndex{}}

type sharedIndex struct {
	idx  raftIndex
	refs int
}

// joinIndex makes c use the index shared by the open Clients of cluster
// clusterID (learned from a node's Info), keeping what c has seen. Only the
// first call does anything.
func (c *Client) joinIndex(clusterID string) {
	if clusterID == "" {
		return
	}
	c.indexOnce.Do(func() {
		key := clusterID + "\x00" + strings.Join(c.cfg.Nodes, ",")
		sharedIndexes.Lock()
		defer sharedIndexes.Unlock()
		if c.closed {
			return
		}
		e := sharedIndexes.m[key]
		if e == nil {
			e = &sharedIndex{}
			sharedIndexes.m[key] = e
		}
		e.refs++
		e.idx.observe(c.idx().load())
		c.indexKey = key
		c.index.p.Store(&e.idx)
	})
}

// leaveIndex drops c's use of a shared index (at Close).
func (c *Client) leaveIndex() {
	sharedIndexes.Lock()
	defer sharedIndexes.Unlock()
	c.closed = true
	if c.indexKey == "" {
		return
	}
	if e := sharedIndexes.m[c.indexKey]; e != nil {
		if e.refs--; e.refs <= 0 {
			delete(sharedIndexes.m, c.indexKey)
		}
	}
	c.indexKey = ""
}

// indexRef is the index a Client uses: its own until it learns the
// cluster id, then the one it shares.
type indexRef struct{ p atomic.Pointer[raftIndex] }

func (r *indexRef) load() uint64     { return r.p.Load().load() }
func (r *indexRef) observe(v uint64) { r.p.Load().observe(v) }

// idx returns the index c uses now.
func (c *Client) idx() *raftIndex { return c.index.p.Load() }

// indexFrom returns the highest valid api.HeaderIndex value in mds; ok is
// false when there is none (a node that does not send it, or garbage).
func indexFrom(mds ...metadata.MD) (idx uint64, ok bool) {
	for _, md := range mds {
		for _, v := range md.Get(api.HeaderIndex) {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				continue
			}
			if !ok || n > idx {
				idx, ok = n, true
			}
		}
	}
	return idx, ok
}

// withMinIndex adds api.HeaderMinIndex to an outgoing context, unless the
// index is 0 (nothing seen yet).
func withMinIndex(ctx context.Context, idx uint64) context.Context {
	if idx == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, api.HeaderMinIndex, strconv.FormatUint(idx, 10))
}

// otherNode reports whether the metadata say api.RetryOtherNode.
func otherNode(mds ...metadata.MD) bool {
	for _, md := range mds {
		for _, v := range md.Get(api.TrailerRetry) {
			if strings.EqualFold(strings.TrimSpace(v), api.RetryOtherNode) {
				return true
			}
		}
	}
	return false
}

// ---- what a failed attempt means ----

// outcome is what became of one attempt of a call on one node.
type outcome int

const (
	// outOK: the call succeeded.
	outOK outcome = iota
	// outAnswered: the node answered with an error; that is the call's
	// answer. Never retried.
	outAnswered
	// outEnded: the call's own context ended (its deadline, or the caller
	// canceled it). Never retried: there is no time left.
	outEnded
	// outRefused: the node refused with api.RetryOtherNode (status
	// Unavailable) before executing anything. Any method may be retried.
	outRefused
	// outNotSent: Unavailable before the request reached any connection
	// (the node could not be connected to). Any method may be retried.
	outNotSent
	// outLost: the request was sent (or may have been) and the connection
	// broke or the node is going away: Unavailable without a daemon
	// answer, or the attempt was ended because the health checker found
	// the node dead. It may have run: only idempotent methods are retried.
	outLost
	// outBusy: the daemon itself answered Unavailable (with a PKCS#11
	// return value) without api.RetryOtherNode, for instance a node that lost
	// its quorum. It may have run: only idempotent methods are retried;
	// the node stays healthy.
	outBusy
)

var outcomeNames = [...]string{"ok", "answered", "call ended", "refused: node behind", "node unreachable", "connection lost", "node unavailable"}

func (o outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// errNodeDown is the cause with which in-flight idempotent attempts on a
// node are ended when the node is found dead.
var errNodeDown = errors.New("the node stopped answering")

// classify says what an attempt's error means. callErr is the call's own
// context's error; sent whether the request reached a connection; cut
// whether the attempt was ended with errNodeDown; hint the response's
// header and trailer metadata.
func classify(err error, callErr error, sent, cut bool, hint ...metadata.MD) outcome {
	if err == nil {
		return outOK
	}
	if callErr != nil {
		return outEnded
	}
	code := status.Code(err)
	switch {
	case cut && (code == codes.Canceled || code == codes.DeadlineExceeded):
		return outLost
	case code != codes.Unavailable:
		return outAnswered
	case otherNode(hint...):
		return outRefused
	case !sent:
		return outNotSent
	case api.HasDetail(err):
		return outBusy
	}
	return outLost
}

// retryable says whether a call whose attempt ended with o in method may
// be tried on another node. ran tells that an earlier RPC of the same
// attempt may have changed something (the call then never runs twice);
// stream that the failed RPC was a stream (never retried: its input may
// have been consumed).
func retryable(o outcome, method string, ran, stream bool) bool {
	if method == "" || ran || stream {
		return false
	}
	switch o {
	case outRefused, outNotSent:
		return true
	case outLost, outBusy:
		return idempotent(method)
	}
	return false
}

// retryableWithID says whether a failed try of a write that carried a
// request ID may be tried again: whatever became of it, the retry cannot
// apply it twice.
func retryableWithID(o outcome, ran, stream bool) bool {
	if ran || stream {
		return false
	}
	switch o {
	case outRefused, outNotSent, outLost, outBusy:
		return true
	}
	return false
}

// marksDown says whether an outcome shows the node is unreachable.
func marksDown(o outcome) bool { return o == outNotSent || o == outLost }

// ---- attempts ----

// attempt is one try of a call on one node. The interceptors find it in the
// context and record what the RPCs made in it did.
type attempt struct {
	node   *node
	cancel context.CancelCauseFunc
	token  string // the session token the attempt carries ("" for none)

	mu     sync.Mutex
	method string // the RPC in progress, or the last one
	inRPC  bool
	ran    bool // an earlier RPC of this attempt may have changed something
	stream bool // the last RPC was a stream
	sent   bool // the last RPC's request reached a connection
	withID bool // the last RPC carried a request ID
	hdr    metadata.MD
	trl    metadata.MD
}

type attemptKey struct{}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

func (a *attempt) begin(method string, stream bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.method != "" && (a.stream || !idempotent(a.method)) {
		a.ran = true
	}
	a.method, a.stream, a.inRPC = method, stream, true
	a.sent, a.hdr, a.trl, a.withID = false, nil, nil, false
}

func (a *attempt) markID() {
	a.mu.Lock()
	a.withID = true
	a.mu.Unlock()
}

func (a *attempt) end(sent bool, hdr, trl metadata.MD) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inRPC, a.sent, a.hdr, a.trl = false, sent, hdr, trl
}

// cuttable reports whether the attempt may be ended because its node was
// found dead: it is in an idempotent unary RPC and has changed nothing.
func (a *attempt) cuttable() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inRPC && !a.stream && !a.ran && (idempotent(a.method) || a.withID)
}

// carriedID reports whether the last RPC carried a request ID.
func (a *attempt) carriedID() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.withID
}

// result returns what the last RPC recorded.
func (a *attempt) result() (method string, ran, stream, sent bool, hdr, trl metadata.MD) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.method, a.ran, a.stream, a.sent, a.hdr, a.trl
}

// unaryInterceptor is on every node connection. For the RPCs of a call
// (those with an attempt in their context) it sends the highest index
// seen, collects the response's index, and records the method, whether the
// request reached the connection (a peer is known only then) and the
// refusal trailer. Health checks pass through untouched: they neither
// wait for an index nor raise it.
func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	a := attemptFrom(ctx)
	if a == nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	ctx = withMinIndex(ctx, c.idx().load())
	name := methodName(method)
	a.begin(name, false)
	if id := requestIDFor(ctx, name); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, api.HeaderRequestID, id)
		a.markID()
	}
	var hdr, trl metadata.MD
	var p peer.Peer
	o := make([]grpc.CallOption, 0, len(opts)+3)
	o = append(o, opts...)
	o = append(o, grpc.Header(&hdr), grpc.Trailer(&trl), grpc.Peer(&p))
	err := invoker(ctx, method, req, reply, cc, o...)
	if idx, ok := indexFrom(hdr, trl); ok {
		c.idx().observe(idx)
	}
	a.end(p.Addr != nil, hdr, trl)
	return err
}

// streamInterceptor does for streams what unaryInterceptor does, except
// that a stream is never retried (the caller may have consumed its input),
// so only the index matters.
func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	a := attemptFrom(ctx)
	if a == nil {
		return streamer(ctx, desc, cc, method, opts...)
	}
	ctx = withMinIndex(ctx, c.idx().load())
	a.begin(methodName(method), true)
	s, err := streamer(ctx, desc, cc, method, opts...)
	a.end(true, nil, nil)
	if err != nil {
		return nil, err
	}
	return &indexedStream{ClientStream: s, index: c.idx()}, nil
}

// indexedStream collects the index of a stream's response when it ends.
type indexedStream struct {
	grpc.ClientStream
	index *raftIndex
}

func (s *indexedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		// The stream is over: the header and trailer are there.
		hdr, _ := s.ClientStream.Header()
		if idx, ok := indexFrom(hdr, s.ClientStream.Trailer()); ok {
			s.index.observe(idx)
		}
	}
	return err
}

// ---- choosing a node ----

// Node health states.
const (
	stateUnknown   int32 = iota // not checked yet
	stateHealthy                // answered its last check or call
	stateUnhealthy              // failed its last check, or a call found it unreachable
)

// choose returns the node for the next attempt of a call. tried marks the
// nodes (by index) the call has already tried; each is tried at most once
// a round. A client whose session holds session objects goes to their node
// (home) while it is healthy. A write to the log (write) goes next to the
// node that said in its last health check that it leads, if that node is
// healthy, untried and not known to be behind: any other node would
// forward the write to it and then wait to learn of the commit before it
// answered. Otherwise, among the untried healthy nodes it
// avoids those that refused a call for being behind until they show they
// have caught up (in an answer or a health check), and among the others
// takes the fewest calls in flight, going round robin among ties; when no untried node is healthy it takes the
// first untried one in configuration order (a node may be back before the
// checker notices); nil when every node has been tried.
func (c *Client) choose(tried []bool, write bool) *node {
	if h := c.home.Load(); h != nil && !tried[h.idx] && h.state.Load() == stateHealthy {
		return h
	}
	if write {
		for _, n := range c.nodes {
			if n.leader.Load() && !tried[n.idx] && n.state.Load() == stateHealthy && n.caughtUp() {
				return n
			}
		}
	}
	var buf [8]*node
	cand := buf[:0]
	var least int64
	caughtUp := false
	for _, n := range c.nodes {
		if tried[n.idx] || n.state.Load() != stateHealthy {
			continue
		}
		up := n.caughtUp()
		l := n.inflight.Load()
		switch {
		case len(cand) == 0 || up && !caughtUp || up == caughtUp && l < least:
			cand, least, caughtUp = append(cand[:0], n), l, up
		case up == caughtUp && l == least:
			cand = append(cand, n)
		}
	}
	if len(cand) > 0 {
		return cand[c.rr.Add(1)%uint64(len(cand))]
	}
	for _, n := range c.nodes {
		if !tried[n.idx] {
			return n
		}
	}
	return nil
}

// caughtUp says whether n has shown (in an answer or a health check) that
// it applied the index it last refused a call for not having.
func (n *node) caughtUp() bool { return n.applied.Load() >= n.behindAt.Load() }

// raiseTo raises x to v if v is higher.
func raiseTo(x *atomic.Uint64, v uint64) {
	for {
		old := x.Load()
		if v <= old || x.CompareAndSwap(old, v) {
			return
		}
	}
}

// sessionObjectsKey marks a call that may create session objects.
type sessionObjectsKey struct{}

// tokenObjectsKey marks a call that creates token objects only: a write to
// the Raft log.
type tokenObjectsKey struct{}

// makesObjects marks ctx for a call that creates objects from templates.
// If one of them is a session object (CKA_TOKEN not true), the node that
// makes it becomes the client's home: session objects live in that node's
// memory only, so the session's calls go there while it is healthy. If all
// are token objects, the call is a write to the cluster's log, which goes
// to the leader first (see choose).
func makesObjects(ctx context.Context, tmpls ...object.Template) context.Context {
	for _, t := range tmpls {
		if !isToken(t) {
			return context.WithValue(ctx, sessionObjectsKey{}, true)
		}
	}
	return context.WithValue(ctx, tokenObjectsKey{}, true)
}

// writesLog reports whether ctx is marked for a write to the log.
func writesLog(ctx context.Context) bool { return ctx.Value(tokenObjectsKey{}) != nil }

func isToken(t object.Template) bool {
	for _, a := range t {
		if a.Type == ck.CKA_TOKEN {
			return len(a.Value) == 1 && a.Value[0] != 0
		}
	}
	return false
}
