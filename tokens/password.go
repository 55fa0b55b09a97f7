package tokens

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

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
		return Errorf(0xA2 /* CKR_PIN_LEN_RANGE */, "password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	if strings.ContainsRune(pw, 0) {
		return Errorf(0xA1 /* CKR_PIN_INVALID */, "password must not contain NUL")
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

// VerifyPassword reports whether pw matches the PHC-form hash. A malformed
// hash never matches.
func VerifyPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	// Refuse parameters no hash of ours has, so a forged row cannot make a
	// login burn unbounded memory or time.
	if m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 || p > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
