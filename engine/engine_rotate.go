package engine

import (
	"context"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// SetDomainKey submits a rotation: raw is the re-sealed record and mac its
// RecordMAC. Only a crypto officer may.
func (e *Engine) SetDomainKey(ctx context.Context, c Caller, raw, mac []byte) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_TYPE_INVALID, "only a crypto officer may rotate the passphrase")
	}
	return e.submit(ctx, &state.Command{Op: state.OpSetDomainKey, Actor: c.User, Domain: raw, DomainMAC: mac})
}
