package seal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
)

// AuditKey is the key of the chain's MACs and of the nodes' batch proofs.
func (s *Sealer) AuditKey() []byte { return s.auditKey }

// BreakGlassWindow bounds, in seconds, how far a proof's time may be from
// the time of the command that carries it.
const BreakGlassWindow = 300

// BreakGlassNonceLen is the length of a proof's nonce.
const BreakGlassNonceLen = 16

// BreakGlass is the proof that whoever asked for an unlock could unseal
// the domain key: a MAC, under a key derived from the domain key, over the
// user name, the time it was made and a random nonce.
type BreakGlass struct {
	Time  int64  `json:"time"`
	Nonce []byte `json:"nonce"`
	MAC   []byte `json:"mac"`
}

func (s *Sealer) breakGlassMAC(name string, t int64, nonce []byte) []byte {
	h := hmac.New(sha256.New, s.glassKey)
	h.Write([]byte("unlock_user\x00"))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(name))))
	h.Write([]byte(name))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(t)))
	h.Write(nonce)
	return h.Sum(nil)
}

// NewBreakGlass makes the proof for unlocking name at time t (Unix
// seconds) with a fresh nonce.
func (s *Sealer) NewBreakGlass(name string, t int64) (*BreakGlass, error) {
	nonce, err := mech.GenerateRandom(BreakGlassNonceLen)
	if err != nil {
		return nil, err
	}
	return &BreakGlass{Time: t, Nonce: nonce, MAC: s.breakGlassMAC(name, t, nonce)}, nil
}

// CheckBreakGlass checks a proof for unlocking name, made within
// BreakGlassWindow of now (Unix seconds). It is deterministic: apply
// calls it with the command's time.
func (s *Sealer) CheckBreakGlass(p *BreakGlass, name string, now int64) error {
	if p == nil || len(p.Nonce) != BreakGlassNonceLen || len(p.MAC) != sha256.Size {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "break-glass unlock without a valid proof")
	}
	if !hmac.Equal(p.MAC, s.breakGlassMAC(name, p.Time, p.Nonce)) {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the break-glass proof does not check out: it was not made with this cluster's passphrase")
	}
	if d := now - p.Time; d > BreakGlassWindow || d < -BreakGlassWindow {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the break-glass proof is too old or from the future (clocks more than %ds apart?)", BreakGlassWindow)
	}
	return nil
}

func (s *Sealer) QuorumMAC(state []byte) []byte {
	h := hmac.New(sha256.New, s.macKey)
	h.Write([]byte("openhsm quorum v1|"))
	h.Write(state)
	return h.Sum(nil)
}

// Reseal seals the domain key this sealer holds under another KEK, with a
// fresh salt and nonce.
func (s *Sealer) Reseal(clusterID string, src KEKSource) (*SealedDomainKey, error) {
	kind, err := src.kind()
	if err != nil {
		return nil, err
	}
	r := &SealedDomainKey{Format: SealedDKFormat, ClusterID: clusterID, KDF: kind, Nonce: make([]byte, 12)}
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

// CheckParams bounds a record's KDF parameters the way derive does.
func (r *SealedDomainKey) CheckParams() error {
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

// RowMAC authenticates a state row kept in the store's meta table (the
// KMS's keys, aliases and principals) bound to its meta key, so that a row
// edited in the store file, or moved to another key, fails its check.
func (s *Sealer) RowMAC(key string, value []byte) []byte {
	h := hmac.New(sha256.New, s.macKey)
	h.Write([]byte("openhsm state row v1|"))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	h.Write(value)
	return h.Sum(nil)
}
