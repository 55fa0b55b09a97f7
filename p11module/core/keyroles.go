package core

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
)

// keyRoleError names a bad key handle by its role. The daemon answers
// CKR_KEY_HANDLE_INVALID for any key of C_WrapKey or C_UnwrapKey it cannot
// find; PKCS#11 gives the wrapping key CKR_WRAPPING_KEY_HANDLE_INVALID and
// the unwrapping key CKR_UNWRAPPING_KEY_HANDLE_INVALID. Only on that error
// does it ask whether the key of the role (key) is the missing one, and
// then answers rv.
func (m *Module) keyRoleError(s *session, c *client.Client, key, rv uint64, err error) error {
	switch hsmerr.RV(err) {
	case ck.CKR_KEY_HANDLE_INVALID, ck.CKR_OBJECT_HANDLE_INVALID:
	default:
		return err
	}
	_, ierr := m.objectInfo(s.slot, c, key)
	switch hsmerr.RV(ierr) {
	case ck.CKR_KEY_HANDLE_INVALID, ck.CKR_OBJECT_HANDLE_INVALID:
		return errorf(rv, "no such key")
	}
	return err
}
