package engine

import (
	"context"

	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// WipeToken destroys every object a crypto user owns (C_InitToken on the
// user's token slot; state/wipe.go). Only a crypto officer may; apply
// checks that again. The officer never sees or uses the keys it destroys.
func (e *Engine) WipeToken(ctx context.Context, c Caller, name string) error {
	if err := object.Allowed(c.Role, object.ActManageUsers, object.RelNone); err != nil {
		return err
	}
	if r, ok := e.replayed(ctx, c, state.OpWipeToken); ok {
		return r.Err()
	}
	return e.submit(ctx, &state.Command{Op: state.OpWipeToken, Actor: c.User, Name: name})
}
