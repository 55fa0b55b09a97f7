package core

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// quorumNote explains, in the library's log, an SO's user management that
// the cluster refused for want of quorum approval: PKCS#11 has no way to
// carry a quorum token (docs/quorum.md), so the way out is the hsm CLI.
func (m *Module) quorumNote(fn string, err error) error {
	if hsmerr.RV(err) == ck.CKR_ACTION_PROHIBITED && m.log != nil {
		m.log.Warn(fn+" refused: quorum authentication is on for user management; "+
			"PKCS#11 cannot carry a quorum token: use hsm user create|reset --quorum-token ID", "ckr", ck.RVName(hsmerr.RV(err)))
	}
	return err
}
