package engine

import (
	"context"

	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// BreakGlassUnlock unlocks a user on the authority of a break-glass
// proof instead of an officer's session: it is checked here, so a bad one
// never reaches the log, and again in apply at the command's time.
func (e *Engine) BreakGlassUnlock(ctx context.Context, name string, p *seal.BreakGlass) error {
	if err := state.ValidUserName(name); err != nil {
		return err
	}
	s, err := e.sealer()
	if err != nil {
		return err
	}
	c := &state.Command{Op: state.OpUnlockUser, Actor: state.BreakGlassActor, Name: name, BreakGlass: p}
	c.Time = e.now().Unix()
	if err := s.CheckBreakGlass(p, name, c.Time); err != nil {
		return err
	}
	return e.applier.Submit(ctx, c)
}
