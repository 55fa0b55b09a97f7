package seal

import (
	"crypto/aes"
	"errors"

	"github.com/openhsm/openhsm/mech"
)

// The persistent backup key (PBK) protects the data key of each backup
// (see package backup and docs/backups.md):
//
//	PBK = HKDF-SHA256(domain key, no salt, info "openhsm backup key v1")
//
// Each backup is encrypted under a fresh random 32-byte data key, which is
// stored in the backup's header wrapped under the PBK with AES key wrap with
// padding (RFC 5649, AES-256). Whoever can unseal the cluster's domain key
// can therefore open its backups; nobody else can.

const (
	backupKeyInfo = "openhsm backup key v1"
	// BackupDataKeyLen is the length of a backup's data key.
	BackupDataKeyLen = 32
)

// ErrBackupKey is returned by UnwrapBackupKey when the wrapped key does not
// open under this sealer's domain key: the backup was made by another
// cluster (another domain key), or its wrapped key was altered.
var ErrBackupKey = errors.New("the backup's data key does not unwrap under this domain key (a backup of another cluster, or a modified file)")

// backupKey derives the PBK. It is derived on each call, not kept: it is
// cheap, and a backup needs it once.
func (s *Sealer) backupKey() []byte { return hkdfKey(s.dk, nil, backupKeyInfo) }

// WrapBackupKey wraps a backup's 32-byte data key under the persistent
// backup key (RFC 5649). The result is 40 bytes.
func (s *Sealer) WrapBackupKey(dataKey []byte) ([]byte, error) {
	if len(dataKey) != BackupDataKeyLen {
		return nil, errors.New("a backup data key must be 32 bytes")
	}
	pbk := s.backupKey()
	defer clear(pbk)
	b, err := aes.NewCipher(pbk)
	if err != nil {
		return nil, err
	}
	return mech.WrapKWP(b, mech.KWPDefaultAIV, dataKey)
}

// UnwrapBackupKey recovers a data key wrapped by WrapBackupKey. Any failure
// (a wrong domain key, a wrapped key that was changed, a bad length) is
// ErrBackupKey.
func (s *Sealer) UnwrapBackupKey(wrapped []byte) ([]byte, error) {
	pbk := s.backupKey()
	defer clear(pbk)
	b, err := aes.NewCipher(pbk)
	if err != nil {
		return nil, err
	}
	k, err := mech.UnwrapKWP(b, mech.KWPDefaultAIV, wrapped)
	if err != nil {
		return nil, ErrBackupKey
	}
	if len(k) != BackupDataKeyLen {
		clear(k)
		return nil, ErrBackupKey
	}
	return k, nil
}
