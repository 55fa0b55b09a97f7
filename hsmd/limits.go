package hsmd

import (
	"context"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/pki"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"
)

// What a caller can make a node allocate before it is authorized.
//
// gRPC reads a whole request message (up to maxMessage, about 20 MiB)
// before any interceptor runs. So the decision is taken earlier, in a tap
// handle, when only the stream's headers have arrived:
//   - a method that needs a session is read only if its stream carries a
//     session token whose MAC and expiry check out (no store access);
//   - the methods a client certificate alone may call (Login, Bootstrap,
//     Info, ...) share preAuthSlots: at most that many of their requests
//     are being read at once on this node; a slot is held from the headers
//     until the handler starts (or the stream ends), and a stream that
//     finds none free is refused at once as busy;
//   - the peer service is for node certificates only.
//
// With maxStreams per connection, password work bounded in tokens (argon2id
// slots and queue) and this, the memory a caller without a session can
// pin is about preAuthSlots × maxMessage + passwords.ArgonSlots × 19 MiB,
// whatever the number of connections and streams: see docs/cluster.md,
// "Memory ceiling".
const (
	preAuthSlots = 8
	maxStreams   = 64
	// preAuthWait is how long a stream waits for a slot before it is
	// refused as busy. The wait holds up only its own connection's reader
	// (a tap runs there), and the slots' holders are past reading.
	preAuthWait = time.Second
)

type preAuthKey struct{}

type preAuthSlot struct {
	once    sync.Once
	release func()
}

func (p *preAuthSlot) done() { p.once.Do(p.release) }

// releasePreAuth gives back the slot a stream took in the tap, if any.
func releasePreAuth(ctx context.Context) {
	if p, ok := ctx.Value(preAuthKey{}).(*preAuthSlot); ok {
		p.done()
	}
}

func busy(msg string) error {
	return refuse(ck.CKR_DEVICE_MEMORY, msg)
}

// tap decides, from the headers alone, whether a stream's request may be
// read at all.
func (s *Server) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	// The method tables know each method with its service: anything in
	// neither is refused before the stream is read.
	need, ok := methodAccess(info.FullMethodName)
	if !ok {
		return ctx, refuse(ck.CKR_FUNCTION_NOT_SUPPORTED, "method not allowed")
	}
	id, err := tapIdentity(ctx)
	if err != nil {
		return ctx, unauthenticated("no valid client certificate")
	}
	switch need {
	case accessNode:
		if id.Kind != pki.KindNode {
			return ctx, refuse(ck.CKR_USER_NOT_LOGGED_IN, "only nodes may call the peer service")
		}
		return ctx, nil
	case accessSession:
		md := metadata.MD(info.Header)
		vals := md.Get(api.HeaderSession)
		if len(vals) != 1 {
			return ctx, unauthenticated("log in first: no session token")
		}
		key, err := s.engine.TokenKey()
		if err != nil {
			return ctx, refuse(ck.CKR_DEVICE_ERROR, "the domain key is not unsealed")
		}
		cl, err := parseToken(key, vals[0], s.now())
		if err != nil {
			return ctx, unauthenticated(err.Error())
		}
		if cl.Cert != id.Fingerprint {
			return ctx, unauthenticated("the session token belongs to another client certificate")
		}
		return ctx, nil
	}
	select {
	case s.preAuth <- struct{}{}:
	default:
		timer := time.NewTimer(preAuthWait)
		defer timer.Stop()
		select {
		case s.preAuth <- struct{}{}:
		case <-timer.C:
			return ctx, busy("the node is busy with other requests from callers that are not logged in; try again in a moment")
		case <-ctx.Done():
			return ctx, busy("the node is busy with other requests from callers that are not logged in; try again in a moment")
		}
	}
	slot := &preAuthSlot{release: func() { <-s.preAuth }}
	// The stream's context ends with the stream, whatever happens to it
	// before the handler runs.
	context.AfterFunc(ctx, slot.done)
	return context.WithValue(ctx, preAuthKey{}, slot), nil
}

func tapIdentity(ctx context.Context) (pki.Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, errNoPeer
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return pki.Identity{}, errNoPeer
	}
	return pki.PeerIdentity(ti.State)
}

var errNoPeer = unauthenticated("not a TLS connection")

// MemoryCeiling is the peak resident memory a node stays under while
// callers without a session flood it (logins, oversized requests), with
// no authenticated load: the daemon's own base (about 40 MiB), the
// requests being read before authorization (preAuthSlots × maxMessage,
// held at most twice while decoded) and the argon2id slots. docs/cluster.md
// states it; the security suite's TestAttackLoginMemoryCeiling checks it.
const MemoryCeiling = 512 << 20

// memorySoftLimit is the Go runtime's memory limit (unless GOMEMLIMIT
// says otherwise): near it the collector runs more often, so garbage from
// a flood of refused requests does not pile up past the ceiling.
const memorySoftLimit = 384 << 20

// LimitMemory sets the runtime's soft memory limit for a daemon.
func LimitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memorySoftLimit)
	}
}
