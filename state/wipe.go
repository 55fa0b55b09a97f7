package state

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/quorum"
	"github.com/openhsm/openhsm/seal"
)

// applyWipeToken is C_InitToken on a crypto user's token slot
// (docs/pkcs11-library.md, "C_InitToken"): one command destroys every
// object the user owns that can be destroyed (PKCS#11: "all objects that
// can be destroyed are destroyed"; CKA_DESTROYABLE false stays), with
// their shares. The user, their password and their slot stay. Only a
// crypto officer stands behind it (commandAuthority, checked again here at
// the command's index), the same quorum as deleting a user applies, and
// the KMS's own user is never wiped: its objects are the KMS keys.
func applyWipeToken(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if err := notKMSUser(tx, s, c.Name); err != nil {
		return nil, err
	}
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	if u.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "only a crypto user has a token to wipe")
	}
	if err := quorumCheck(tx, s, c, quorum.ServiceUserManagement); err != nil {
		return nil, err
	}
	ids, err := tx.OwnedIDs(u.Name)
	if err != nil {
		return nil, err
	}
	var gone []uint64
	for _, id := range ids {
		o, err := loadObject(tx, s, id)
		if err != nil {
			return nil, err
		}
		if o.Owner != u.Name || !o.Attrs.Bool(ck.CKA_DESTROYABLE) {
			continue
		}
		if err := tx.DeleteObject(id); err != nil {
			return nil, err
		}
		gone = append(gone, id)
	}
	if err := addOwned(tx, u.Name, -len(gone)); err != nil {
		return nil, err
	}
	return gone, nil
}
