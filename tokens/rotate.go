package tokens

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
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

// Reseal seals the domain key this sealer holds under another KEK, with a
// fresh salt and nonce.
func (s *Sealer) Reseal(clusterID string, src KEKSource) (*SealedDomainKey, error) {
	kind, err := src.kind()
	if err != nil {
		return nil, err
	}
	r := &SealedDomainKey{Format: sealedDKFormat, ClusterID: clusterID, KDF: kind, Nonce: make([]byte, 12)}
	if kind == "argon2id" {
		r.Salt, r.Time, r.Memory, r.Threads = make([]byte, 16), kekTime, kekMemory, kekThreads
		if _, err := rand.Read(r.Salt); err != nil {
			return nil, err
		}
	}
	if _, err := rand.Read(r.Nonce); err != nil {
		return nil, err
	}
	kek, err := src.derive(r)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	g, err := NewGCM(kek)
	if err != nil {
		return nil, err
	}
	r.Sealed = g.Seal(nil, r.Nonce, s.dk, dkAAD(clusterID))
	return r, nil
}

// Holds says whether an unsealed sealer holds the same domain key as s.
func (s *Sealer) Holds(other *Sealer) bool { return hmac.Equal(s.dk, other.dk) }

// RecordMAC authenticates a sealed record under the domain key: only a
// holder of the domain key can make one.
func (s *Sealer) RecordMAC(raw []byte) []byte {
	h := hmac.New(sha256.New, s.recordKey)
	h.Write(raw)
	return h.Sum(nil)
}

// Fingerprint names the domain key without revealing it: nodes compare it
// to tell that they hold the same key, whatever passphrase seals it.
func (s *Sealer) Fingerprint() string {
	return s.fingerprint
}

// applySetDomainKey replaces the sealed record by one that seals the same
// domain key under another KEK. A crypto officer asks; the record must be
// well formed, for this cluster, with bounded KDF parameters, and carry a
// MAC under the domain key (which a node certificate alone cannot make).
func applySetDomainKey(tx Tx, s *Sealer, c *Command) ([]uint64, error) {
	actor, err := userFor(tx, s, c.Actor)
	if err != nil {
		return nil, err
	}
	if actor.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_TYPE_INVALID, "only a crypto officer may rotate the passphrase")
	}
	rec, err := UnmarshalSealedDomainKey(c.Domain)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
	}
	cur, err := tx.Meta(MetaDomainKey)
	if err != nil {
		return nil, err
	}
	old, err := UnmarshalSealedDomainKey(cur)
	if err != nil {
		return nil, err
	}
	if rec.Format != sealedDKFormat || rec.ClusterID != old.ClusterID {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the new record is not for this cluster")
	}
	if err := rec.checkParams(); err != nil {
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

// checkParams bounds a record's KDF parameters the way derive does.
func (r *SealedDomainKey) checkParams() error {
	switch r.KDF {
	case "argon2id":
		if r.Time == 0 || r.Time > maxKEKTime || r.Memory == 0 || r.Memory > maxKEKMemory || r.Threads == 0 || r.Threads > maxKEKThreads || len(r.Salt) < 16 {
			return errors.New("sealed domain key: bad argon2id parameters")
		}
	case "keyfile":
	default:
		return errors.New("sealed domain key: unknown KDF")
	}
	if len(r.Nonce) != 12 || len(r.Sealed) != domainKeyLen+16 {
		return errors.New("sealed domain key: bad nonce or length")
	}
	return nil
}

// SetDomainKey submits a rotation: raw is the re-sealed record and mac its
// RecordMAC. Only a crypto officer may.
func (e *Engine) SetDomainKey(ctx context.Context, c Caller, raw, mac []byte) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_TYPE_INVALID, "only a crypto officer may rotate the passphrase")
	}
	return e.submit(ctx, &Command{Op: OpSetDomainKey, Actor: c.User, Domain: raw, DomainMAC: mac})
}
