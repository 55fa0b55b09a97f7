package passwords

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"golang.org/x/crypto/argon2"
)

// Password hashing parameters: argon2id as RFC 9106 and OWASP suggest for
// a server that hashes at login time (19 MiB, two passes, one lane).
const (
	pwTime    = 2
	pwMemory  = 19 * 1024 // KiB
	pwThreads = 1
	pwKeyLen  = 32
	pwSaltLen = 16

	// MinPasswordLen and MaxPasswordLen bound what a user may choose.
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// CheckPassword tells whether a password is acceptable, without saying
// anything about it in the error.
func CheckPassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return hsmerr.Errorf(0xA2 /* CKR_PIN_LEN_RANGE */, "password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	if strings.ContainsRune(pw, 0) {
		return hsmerr.Errorf(0xA1 /* CKR_PIN_INVALID */, "password must not contain NUL")
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in PHC string form.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, pwSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := argon2.IDKey([]byte(pw), salt, pwTime, pwMemory, pwThreads, pwKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, pwMemory, pwTime, pwThreads,
		b64.EncodeToString(salt), b64.EncodeToString(h)), nil
}

// Bounds on the argon2id parameters a stored hash may carry. Hashes reach
// the store inside commands (create_user, set_password, bootstrap), so apply
// refuses any hash outside them, and VerifyPassword refuses to run argon2id
// on one: a forged hash with a huge memory or time cost would otherwise make
// every login of that user exhaust the daemon. The ceilings leave room to
// raise the parameters HashPassword uses (19 MiB, 2 passes, 1 lane) without
// letting one login cost more than 64 MiB and a few hundred milliseconds.
const (
	MaxHashMemoryKiB = 64 * 1024
	MaxHashTime      = 4
	MaxHashThreads   = 4
	minHashSaltLen   = 8
	maxHashSaltLen   = 64
	minHashKeyLen    = 16
	maxHashKeyLen    = 64
	// MaxPasswordHashLen bounds the PHC string itself.
	MaxPasswordHashLen = 256
)

// passwordHash is a parsed argon2id PHC string.
type passwordHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parsePasswordHash parses "$argon2id$v=19$m=M,t=T,p=P$salt$key" and checks
// every parameter against the bounds. It is deterministic, so apply can use
// it; it never says anything about the hash itself in its error.
func parsePasswordHash(h string) (*passwordHash, error) {
	bad := func(why string) error { return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "password hash: %s", why) }
	if len(h) > MaxPasswordHashLen {
		return nil, bad("too long")
	}
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, bad("not an argon2id PHC string")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return nil, bad("unsupported argon2 version")
	}
	var m, t, p uint64
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) {
		return nil, bad("malformed parameters")
	}
	if t < 1 || t > MaxHashTime || p < 1 || p > MaxHashThreads || m < 8*p || m > MaxHashMemoryKiB {
		return nil, bad(fmt.Sprintf("parameters must be t 1..%d, p 1..%d, m 8p..%d KiB", MaxHashTime, MaxHashThreads, MaxHashMemoryKiB))
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return nil, bad("salt or key is not base64")
	}
	if len(salt) < minHashSaltLen || len(salt) > maxHashSaltLen || len(key) < minHashKeyLen || len(key) > maxHashKeyLen {
		return nil, bad("salt or key length out of range")
	}
	return &passwordHash{memory: uint32(m), time: uint32(t), threads: uint8(p), salt: salt, key: key}, nil
}

// CheckPasswordHash tells whether a PHC string is one apply may store.
func CheckPasswordHash(h string) error {
	_, err := parsePasswordHash(h)
	return err
}

// VerifyPassword reports whether pw matches the PHC-form hash. A malformed
// hash, or one whose parameters are out of bounds, never matches, and no
// argon2id work is done for it.
func VerifyPassword(hash, pw string) bool {
	ph, err := parsePasswordHash(hash)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), ph.salt, ph.time, ph.memory, ph.threads, uint32(len(ph.key)))
	return subtle.ConstantTimeCompare(got, ph.key) == 1
}
