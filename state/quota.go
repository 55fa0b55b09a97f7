package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// MaxTokenObjectsPerUser caps the token objects one crypto user owns. Apply
// enforces it, so it must be the same on every node at every index: it is a
// constant of the code, not a node setting. It bounds what one CU password
// can make the whole cluster store (every node keeps every object), with
// room above the 10,000-object benchmarks.
const MaxTokenObjectsPerUser = 100000

// metaOwnedPrefix + user name is the meta key of how many token objects the
// user owns. Apply keeps it exact (create_objects adds, destroy_object
// subtracts; a user is deleted only with none), so the quota check costs
// one read rather than a count of the user's objects. A store without the
// key (written before the count existed) counts once.
const metaOwnedPrefix = "owned/"

// ownedCount returns how many token objects the user owns.
func ownedCount(tx Tx, user string) (int, error) {
	b, err := tx.Meta(metaOwnedPrefix + user)
	switch {
	case err == nil && len(b) == 8:
		return int(binary.BigEndian.Uint64(b)), nil
	case err == nil:
		return 0, fmt.Errorf("meta %s%s is malformed", metaOwnedPrefix, user)
	case errors.Is(err, ErrNotFound):
		return tx.CountOwned(user)
	}
	return 0, err
}

// addOwned changes the user's count of token objects by delta, refusing
// to go past MaxTokenObjectsPerUser. Call it before the objects are written
// or deleted.
func addOwned(tx Tx, user string, delta int) error {
	n, err := ownedCount(tx, user)
	if err != nil {
		return err
	}
	n += delta
	if delta > 0 && n > MaxTokenObjectsPerUser {
		return hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "user %q already owns the most token objects allowed (%d)", user, MaxTokenObjectsPerUser)
	}
	if n < 0 {
		n = 0
	}
	return tx.PutMeta(metaOwnedPrefix+user, binary.BigEndian.AppendUint64(nil, uint64(n)))
}
