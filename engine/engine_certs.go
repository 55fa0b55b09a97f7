package engine

import (
	"context"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// RevokeCert adds a certificate fingerprint (64 lower-case hex digits) to
// the replicated deny-list. The caller must be a crypto officer; apply
// checks it again against the store.
func (e *Engine) RevokeCert(ctx context.Context, c Caller, fingerprint, name string) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only crypto officers may revoke certificates")
	}
	if _, err := state.ParseFingerprintHex(fingerprint); err != nil {
		return err
	}
	return e.submit(ctx, &state.Command{Op: state.OpRevokeCert, Actor: c.User, Role: c.Role, Fingerprint: fingerprint, Name: name})
}

// ListRevokedCerts returns the deny-list. Any logged-in user may read it.
func (e *Engine) ListRevokedCerts(c Caller) ([]state.RevokedCert, error) {
	if c.Role != object.RoleCO && c.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	return state.RevokedCerts(e.store.Meta)
}
