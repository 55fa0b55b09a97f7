package state

import (
	"errors"

	"github.com/openhsm/openhsm/seal"
)

// kmsUserClaimMeta is the row that says this cluster's KMS made KMSUser
// (its first principal did) and owns it: from then on apply refuses to
// make, delete or set the password of a user of that name (notKMSUser).
const kmsUserClaimMeta = "kms/kmsuser_claim"

// kmsUserClaim is the claim row: when the claim was made.
type kmsUserClaim struct {
	Time int64 `json:"time"`
}

func claimKMSUser(tx Tx, s *seal.Sealer, t int64) error {
	return putKMSRow(tx, s, kmsUserClaimMeta, kmsUserClaim{Time: t})
}

// kmsUserClaimed says whether this cluster's KMS owns KMSUser: the claim
// row exists, or (a state written before claims were recorded) the KMS
// has a principal or a key, which only a claimed kmsuser allows.
func kmsUserClaimed(tx Tx, s *seal.Sealer) (bool, error) {
	var cl kmsUserClaim
	err := readRow(tx, s, kmsUserClaimMeta, &cl)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	for _, prefix := range []string{KMSPrincipalPrefix, KMSKeyPrefix} {
		keys, err := tx.MetaKeys(prefix, 1)
		if err != nil {
			return false, err
		}
		if len(keys) > 0 {
			return true, nil
		}
	}
	return false, nil
}
