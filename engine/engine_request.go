package engine

import (
	"context"

	"github.com/openhsm/openhsm/state"
)

type requestIDKey struct{}

// WithRequestID gives the engine the request ID of the call ctx belongs
// to; its writes carry it. The daemon has checked it with ValidRequestID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request ID given with WithRequestID, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Request returns the record of actor's request id in the local store, or
// nil if there is none (yet).
func (e *Engine) Request(actor, id string) (*state.RequestRecord, error) {
	return state.ReadRequest(e.store, actor, id)
}

// replayed returns the outcome this node has recorded for the call's
// request ID, if any. A write whose first try was applied answers its
// retry from the record before any check that the first try's own effect
// would now fail (a destroyed object is gone; a created user exists).
func (e *Engine) replayed(ctx context.Context, c Caller, op state.Op) (*state.RequestRecord, bool) {
	id := RequestIDFrom(ctx)
	if id == "" {
		return nil, false
	}
	r, err := e.Request(c.User, id)
	if err != nil || r == nil || r.Op != op {
		return nil, false
	}
	return r, true
}
