package state

import (
	"bytes"
	"crypto/hmac"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
)

// Passphrase rotation re-seals the same domain key under a new
// key-encryption key. The domain key never changes, so nothing else in the
// store does; only the sealed record (meta MetaDomainKey) is replaced, by a
// replicated command, so every node holds the new record. A node's
// passphrase or key file is read only when it starts: after a rotation each
// node needs the new one before its next start (docs/encryption-at-rest.md).

// MetaDomainKeyMAC is the meta key of the MAC, under the domain key, of the
// sealed record in use: it lets a node tell that a record it receives (by a
// rotation or in a snapshot) seals the key it already holds, without a
// passphrase.
const MetaDomainKeyMAC = "domain_key_mac"

// applySetDomainKey replaces the sealed record by one that seals the same
// domain key under another KEK. A crypto officer asks; the record must be
// well formed, for this cluster, with bounded KDF parameters, and carry a
// MAC under the domain key (which a node certificate alone cannot make).
func applySetDomainKey(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	actor, err := userFor(tx, s, c.Actor)
	if err != nil {
		return nil, err
	}
	if actor.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_TYPE_INVALID, "only a crypto officer may rotate the passphrase")
	}
	rec, err := seal.UnmarshalSealedDomainKey(c.Domain)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
	}
	cur, err := tx.Meta(MetaDomainKey)
	if err != nil {
		return nil, err
	}
	old, err := seal.UnmarshalSealedDomainKey(cur)
	if err != nil {
		return nil, err
	}
	if rec.Format != seal.SealedDKFormat || rec.ClusterID != old.ClusterID {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the new record is not for this cluster")
	}
	if err := rec.CheckParams(); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
	}
	if !hmac.Equal(c.DomainMAC, s.RecordMAC(c.Domain)) {
		return nil, hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the new record is not authenticated by the domain key")
	}
	if bytes.Equal(cur, c.Domain) {
		return nil, nil
	}
	if err := tx.PutMeta(MetaDomainKey, c.Domain); err != nil {
		return nil, err
	}
	return nil, tx.PutMeta(MetaDomainKeyMAC, c.DomainMAC)
}
