package state

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
)

// The certificate deny-list is replicated state like users and keys: a
// revocation is a command through the log, so every node refuses the
// certificate once it applied it, a restarted node reads it back from its
// store, and snapshots and backups carry it (docs/certificates.md).

// MetaRevokedCerts is the meta key of the deny-list: a JSON array of
// RevokedCert ordered by fingerprint.
const MetaRevokedCerts = "revoked_certs"

// MaxRevokedCerts bounds the deny-list. Leaf certificates live 90 days, so
// a cluster that needs more than this should make a new CA.
const MaxRevokedCerts = 10000

// RevokedCert is one entry of the deny-list.
type RevokedCert struct {
	Fingerprint string `json:"fingerprint"` // SHA-256 of the DER, 64 lower-case hex digits
	Name        string `json:"name,omitempty"`
	By          string `json:"by"`
	Time        int64  `json:"time"`
}

// RevokedCerts reads the deny-list.
func RevokedCerts(get func(string) ([]byte, error)) ([]RevokedCert, error) {
	b, err := get(MetaRevokedCerts)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []RevokedCert
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("meta %s is malformed", MetaRevokedCerts)
	}
	return list, nil
}

// RevokedFingerprints reads the deny-list as raw fingerprints, for the
// handshake's set.
func RevokedFingerprints(get func(string) ([]byte, error)) ([][32]byte, error) {
	list, err := RevokedCerts(get)
	if err != nil {
		return nil, err
	}
	out := make([][32]byte, 0, len(list))
	for _, r := range list {
		fp, err := ParseFingerprintHex(r.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("meta %s is malformed", MetaRevokedCerts)
		}
		out = append(out, fp)
	}
	return out, nil
}

func ParseFingerprintHex(s string) ([32]byte, error) {
	var fp [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(fp) || hex.EncodeToString(b) != s {
		return fp, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a fingerprint is 64 lower-case hex digits")
	}
	copy(fp[:], b)
	return fp, nil
}

// applyRevokeCert adds a fingerprint to the deny-list. Only a crypto
// officer that exists at this index may; revoking a certificate twice
// changes nothing and succeeds, so a retried command is harmless.
func applyRevokeCert(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := ParseFingerprintHex(c.Fingerprint); err != nil {
		return nil, err
	}
	if len(c.Name) > 64 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "certificate name longer than 64 characters")
	}
	for _, r := range c.Name {
		if r < 0x20 || r == 0x7f {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "certificate name holds control characters")
		}
	}
	actor, err := userFor(tx, s, c.Actor)
	if err != nil {
		return nil, err
	}
	if actor.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only crypto officers may revoke certificates")
	}
	list, err := RevokedCerts(tx.Meta)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(list), func(i int) bool { return list[i].Fingerprint >= c.Fingerprint })
	if i < len(list) && list[i].Fingerprint == c.Fingerprint {
		return nil, nil
	}
	if len(list) >= MaxRevokedCerts {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "the certificate deny-list is full (%d entries)", MaxRevokedCerts)
	}
	list = append(list, RevokedCert{})
	copy(list[i+1:], list[i:])
	list[i] = RevokedCert{Fingerprint: c.Fingerprint, Name: c.Name, By: actor.Name, Time: c.Time}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	return nil, tx.PutMeta(MetaRevokedCerts, b)
}
