package passwords

import (
	"context"
	"runtime"
	"sync/atomic"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Password hashing is the one thing a caller without a session can make a
// node do that costs real memory: argon2id takes pwMemory (19 MiB) for
// every hash or check while it runs. So at most ArgonSlots run at once,
// at most ArgonQueue more wait for a slot, and any beyond those are
// refused at once as busy, without hashing. The peak memory of password
// work is then ArgonSlots × 19 MiB, whatever the load.
var (
	ArgonSlots = min(max(runtime.NumCPU(), 1), 4)
	ArgonQueue = 128
)

// errBusyMsg is the answer when the password queue is full.
var errBusyMsg = "the node is busy checking other passwords; try again in a moment"

// ArgonLimiter bounds concurrent argon2id work (see Argon).
type ArgonLimiter struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
	// Runs counts the argon2id computations started, for tests and
	// metrics: how many passwords this node actually checked or hashed.
	runs atomic.Int64
}

// Argon is the process's one limiter: every password hash and check
// goes through it.
var Argon = &ArgonLimiter{slots: make(chan struct{}, ArgonSlots), queue: int64(ArgonQueue)}

// ArgonRuns is how many argon2id computations this process started.
func ArgonRuns() int64 { return Argon.runs.Load() }

// enter takes a slot, waiting in the bounded queue for one; release
// gives it back.
func (l *ArgonLimiter) Enter(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
	default:
		if l.waiting.Add(1) > l.queue {
			l.waiting.Add(-1)
			return nil, hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "%s", errBusyMsg)
		}
		select {
		case l.slots <- struct{}{}:
			l.waiting.Add(-1)
		case <-ctx.Done():
			l.waiting.Add(-1)
			return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "%s", errBusyMsg)
		}
	}
	return func() { <-l.slots }, nil
}

// do runs fn in a slot.
func (l *ArgonLimiter) do(ctx context.Context, fn func()) error {
	release, err := l.Enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	l.runs.Add(1)
	fn()
	return nil
}

// verify checks a password within the limit.
func (l *ArgonLimiter) Verify(ctx context.Context, hash, pw string) (ok bool, err error) {
	err = l.do(ctx, func() { ok = VerifyPassword(hash, pw) })
	return ok, err
}

// hash hashes a password within the limit.
func (l *ArgonLimiter) Hash(ctx context.Context, pw string) (h string, err error) {
	if lerr := l.do(ctx, func() { h, err = HashPassword(pw) }); lerr != nil {
		return "", lerr
	}
	return h, err
}

// Counted counts an argon2id computation run outside the limiter's own
// methods (by a caller already holding a slot from Enter).
func (l *ArgonLimiter) Counted() { l.runs.Add(1) }
