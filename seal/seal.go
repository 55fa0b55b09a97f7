package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/openhsm/openhsm/object"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/hkdf"
)

// The encryption-at-rest scheme; docs/encryption-at-rest.md is its
// description and must stay true to this file.
//
//   - A random 256-bit domain key (DK) protects everything. It is made once,
//     when the cluster is initialized, and is the same on every node.
//   - The DK is stored sealed: AES-256-GCM under a key-encryption key (KEK)
//     taken from a passphrase with argon2id, or read from a 32-byte key file.
//   - Each secret blob is AES-256-GCM under its own key, HKDF-SHA256(DK,
//     random 32-byte salt, "openhsm object key v1"), with a random nonce and
//     the object's ID and owner as additional data.
//   - Non-secret attributes are stored in clear for lookups, with an
//     HMAC-SHA256 under HKDF(DK, "openhsm attribute mac v1") that binds them
//     to the object's ID, owner, sealed blob and shares. User rows carry an
//     HMAC under the same key.
//   - Session tokens are MACed under HKDF(DK, "openhsm session token v1"),
//     and node-to-node requests under HKDF(DK, "openhsm peer proof v1").

const (
	domainKeyLen   = 32
	blobVersion    = 1
	blobSaltLen    = 32
	blobNonceLen   = 12
	blobHeaderLen  = 1 + blobSaltLen + blobNonceLen
	kekTime        = 3
	kekMemory      = 64 * 1024 // KiB
	kekThreads     = 2
	SealedDKFormat = 1
	maxKEKTime     = 8
	maxKEKMemory   = 256 * 1024 // KiB
	maxKEKThreads  = 8
)

// SealedDomainKey is the stored form of the domain key.
type SealedDomainKey struct {
	Format    int    `json:"format"`
	ClusterID string `json:"cluster_id"`
	KDF       string `json:"kdf"` // "argon2id" or "keyfile"
	Salt      []byte `json:"salt,omitempty"`
	Time      uint32 `json:"time,omitempty"`
	Memory    uint32 `json:"memory,omitempty"`
	Threads   uint8  `json:"threads,omitempty"`
	Nonce     []byte `json:"nonce"`
	Sealed    []byte `json:"sealed"`
}

// KEKSource is where the key-encryption key comes from: exactly one of
// Passphrase or KeyFile (32 raw bytes) is set.
type KEKSource struct {
	Passphrase []byte
	KeyFile    []byte
}

// ErrWrongKEK means the passphrase or key file does not open the domain key.
var ErrWrongKEK = errors.New("the passphrase or key file does not unseal the domain key")

func (s KEKSource) kind() (string, error) {
	switch {
	case len(s.Passphrase) > 0 && len(s.KeyFile) == 0:
		return "argon2id", nil
	case len(s.KeyFile) == domainKeyLen && len(s.Passphrase) == 0:
		return "keyfile", nil
	case len(s.KeyFile) > 0 && len(s.KeyFile) != domainKeyLen:
		return "", fmt.Errorf("key file must hold exactly %d bytes", domainKeyLen)
	}
	return "", errors.New("exactly one of passphrase or key file is needed")
}

func (s KEKSource) derive(r *SealedDomainKey) ([]byte, error) {
	switch r.KDF {
	case "argon2id":
		if len(s.Passphrase) == 0 {
			return nil, errors.New("the domain key is sealed with a passphrase; none was given")
		}
		// Bounded near what NewDomainKey uses, so a forged record (say, in
		// an uploaded backup) cannot make this node spend gigabytes.
		if r.Time == 0 || r.Time > maxKEKTime || r.Memory == 0 || r.Memory > maxKEKMemory || r.Threads == 0 || r.Threads > maxKEKThreads || len(r.Salt) < 16 {
			return nil, errors.New("sealed domain key: bad argon2id parameters")
		}
		return argon2.IDKey(s.Passphrase, r.Salt, r.Time, r.Memory, r.Threads, 32), nil
	case "keyfile":
		if len(s.KeyFile) != domainKeyLen {
			return nil, errors.New("the domain key is sealed with a key file; none was given")
		}
		return append([]byte(nil), s.KeyFile...), nil
	}
	return nil, fmt.Errorf("sealed domain key: unknown KDF %q", r.KDF)
}

func dkAAD(clusterID string) []byte { return []byte("openhsm domain key v1|" + clusterID) }

// NewDomainKey makes a fresh domain key and seals it under the KEK.
func NewDomainKey(clusterID string, src KEKSource) (*Sealer, *SealedDomainKey, error) {
	kind, err := src.kind()
	if err != nil {
		return nil, nil, err
	}
	dk := make([]byte, domainKeyLen)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, err
	}
	r := &SealedDomainKey{Format: SealedDKFormat, ClusterID: clusterID, KDF: kind, Nonce: make([]byte, 12)}
	if kind == "argon2id" {
		r.Salt, r.Time, r.Memory, r.Threads = make([]byte, 16), kekTime, kekMemory, kekThreads
		if _, err := rand.Read(r.Salt); err != nil {
			return nil, nil, err
		}
	}
	if _, err := rand.Read(r.Nonce); err != nil {
		return nil, nil, err
	}
	kek, err := src.derive(r)
	if err != nil {
		return nil, nil, err
	}
	g, err := NewGCM(kek)
	if err != nil {
		return nil, nil, err
	}
	r.Sealed = g.Seal(nil, r.Nonce, dk, dkAAD(clusterID))
	s, err := NewSealer(dk)
	return s, r, err
}

// Unseal opens a sealed domain key. A wrong passphrase or key file is
// ErrWrongKEK; nothing is ever made anew here.
func (r *SealedDomainKey) Unseal(src KEKSource) (*Sealer, error) {
	if r.Format != SealedDKFormat {
		return nil, fmt.Errorf("sealed domain key: unknown format %d", r.Format)
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
	if len(r.Nonce) != g.NonceSize() {
		return nil, errors.New("sealed domain key: bad nonce")
	}
	dk, err := g.Open(nil, r.Nonce, r.Sealed, dkAAD(r.ClusterID))
	if err != nil {
		return nil, ErrWrongKEK
	}
	defer clear(dk) // NewSealer keeps its own copy
	return NewSealer(dk)
}

// Marshal and UnmarshalSealedDomainKey give the stored form.
func (r *SealedDomainKey) Marshal() []byte {
	b, _ := json.Marshal(r)
	return b
}

// UnmarshalSealedDomainKey parses the stored form.
func UnmarshalSealedDomainKey(b []byte) (*SealedDomainKey, error) {
	var r SealedDomainKey
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("sealed domain key: %w", err)
	}
	return &r, nil
}

// Sealer encrypts and authenticates what the store keeps, under the domain
// key. It is safe for concurrent use.
type Sealer struct {
	dk     []byte
	macKey []byte
	tokKey []byte
	fwdKey []byte
	// Derived once here, not at each use: the audit chain's key is used
	// by every applied command, the fingerprint by every status answer.
	auditKey    []byte
	recordKey   []byte
	glassKey    []byte
	fingerprint string
}

// Lock passes each secret the sealer holds (the domain key and the keys
// derived from it at creation) to lock, which a daemon sets to mlock so
// they never reach swap; tokens itself makes no system calls. It returns
// the first error.
func (s *Sealer) Lock(lock func([]byte) error) error {
	for _, b := range [][]byte{s.dk, s.macKey, s.tokKey, s.fwdKey, s.auditKey, s.recordKey, s.glassKey} {
		if len(b) == 0 {
			continue
		}
		if err := lock(b); err != nil {
			return err
		}
	}
	return nil
}

// NewSealer makes a sealer from a clear domain key.
func NewSealer(dk []byte) (*Sealer, error) {
	if len(dk) != domainKeyLen {
		return nil, errors.New("domain key must be 32 bytes")
	}
	return &Sealer{
		dk:          append([]byte(nil), dk...),
		macKey:      hkdfKey(dk, nil, "openhsm attribute mac v1"),
		tokKey:      hkdfKey(dk, nil, "openhsm session token v1"),
		fwdKey:      hkdfKey(dk, nil, "openhsm peer proof v1"),
		auditKey:    hkdfKey(dk, nil, "openhsm audit chain v1"),
		recordKey:   hkdfKey(dk, nil, "openhsm domain key record v1"),
		glassKey:    hkdfKey(dk, nil, "openhsm break-glass unlock v1"),
		fingerprint: hex.EncodeToString(hkdfKey(dk, nil, "openhsm domain key fingerprint v1")[:16]),
	}, nil
}

func hkdfKey(secret, salt []byte, info string) []byte {
	k := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, salt, []byte(info)), k); err != nil {
		panic(err) // cannot happen: HKDF-SHA256 gives far more than 32 bytes
	}
	return k
}

// NewGCM is AES-GCM (128, 192 or 256 by the key's length) with the
// standard nonce and tag sizes.
func NewGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func objectAAD(id uint64, owner string) []byte {
	b := []byte("openhsm object v1")
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(owner)))
	return append(b, owner...)
}

// Seal encrypts secret material for the object with the given ID and owner.
func (s *Sealer) Seal(id uint64, owner string, plaintext []byte) ([]byte, error) {
	out := make([]byte, blobHeaderLen, blobHeaderLen+len(plaintext)+16)
	out[0] = blobVersion
	if _, err := rand.Read(out[1:blobHeaderLen]); err != nil {
		return nil, err
	}
	g, err := NewGCM(hkdfKey(s.dk, out[1:1+blobSaltLen], "openhsm object key v1"))
	if err != nil {
		return nil, err
	}
	return g.Seal(out, out[1+blobSaltLen:blobHeaderLen], plaintext, objectAAD(id, owner)), nil
}

// Open decrypts a blob sealed for the given object and owner. A blob moved
// to another object or owner fails here.
func (s *Sealer) Open(id uint64, owner string, blob []byte) ([]byte, error) {
	if len(blob) < blobHeaderLen+16 || blob[0] != blobVersion {
		return nil, errors.New("sealed blob: bad format")
	}
	g, err := NewGCM(hkdfKey(s.dk, blob[1:1+blobSaltLen], "openhsm object key v1"))
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, blob[1+blobSaltLen:blobHeaderLen], blob[blobHeaderLen:], objectAAD(id, owner))
	if err != nil {
		return nil, errors.New("sealed blob: authentication failed (wrong object, owner or domain key)")
	}
	return pt, nil
}

// AttrMAC is the MAC that binds an object's clear attributes to it. It is
// deterministic, so apply computes it on every node.
func (s *Sealer) AttrMAC(o *object.Object) []byte {
	h := hmac.New(sha256.New, s.macKey)
	h.Write(objectAAD(o.ID, o.Owner))
	sum := sha256.Sum256(o.Sealed)
	h.Write(sum[:])
	h.Write(object.MarshalAttrs(o.Attrs))
	for _, u := range o.SharedWith {
		h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(u))))
		h.Write([]byte(u))
	}
	return h.Sum(nil)
}

// UserMAC binds a user's row (role, password hash, lockout state and
// generation) so that a row edited in the file is refused.
func (s *Sealer) UserMAC(u *object.User) []byte {
	h := hmac.New(sha256.New, s.macKey)
	fmt.Fprintf(h, "openhsm user v1|%d|%s|%d|%s|%d|%t|%d|%d|%d", len(u.Name), u.Name, u.Role, u.PasswordHash,
		u.FailedLogins, u.Locked, u.Generation, u.Created, u.Number)
	return h.Sum(nil)
}

// CheckUserMAC verifies User.MAC.
func (s *Sealer) CheckUserMAC(u *object.User) bool { return hmac.Equal(u.MAC, s.UserMAC(u)) }

// CheckAttrMAC verifies Object.MAC.
func (s *Sealer) CheckAttrMAC(o *object.Object) bool { return hmac.Equal(o.MAC, s.AttrMAC(o)) }

// TokenKey is the key that authenticates session tokens, the same on every
// node of the cluster.
func (s *Sealer) TokenKey() []byte { return s.tokKey }

// PeerProofKey is the key under which a node proves to the leader that a
// command it forwards (or a membership change it asks for) came from a node
// that holds the domain key, and so from an API call it authorized. A node
// certificate alone does not give it: the domain key is sealed under the
// passphrase. docs/cluster.md describes the proof.
func (s *Sealer) PeerProofKey() []byte { return s.fwdKey }
