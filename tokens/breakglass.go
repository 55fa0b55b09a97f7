package tokens

import (
	"context"

	"github.com/openhsm/openhsm/seal"
)

// BreakGlassActor is the Actor of an unlock_user command that no officer
// sent: `hsmd unlock-user` on a node's host, by someone who holds the
// cluster passphrase. Apply accepts this actor only for unlock_user, and
// only with a BreakGlass proof that checks out under the domain key, so
// a node certificate alone (which can put commands into the log) cannot
// use it. The '!' keeps it apart from every user name (ValidUserName).
const BreakGlassActor = "!break-glass"

// BreakGlassUnlock unlocks a user on the authority of a break-glass
// proof instead of an officer's session: it is checked here, so a bad one
// never reaches the log, and again in apply at the command's time.
func (e *Engine) BreakGlassUnlock(ctx context.Context, name string, p *seal.BreakGlass) error {
	if err := ValidUserName(name); err != nil {
		return err
	}
	s, err := e.sealer()
	if err != nil {
		return err
	}
	c := &Command{Op: OpUnlockUser, Actor: BreakGlassActor, Name: name, BreakGlass: p}
	c.Time = e.now().Unix()
	if err := s.CheckBreakGlass(p, name, c.Time); err != nil {
		return err
	}
	return e.applier.Submit(ctx, c)
}
