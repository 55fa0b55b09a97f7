package hsmd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/openhsm/openhsm/object"
)

// A session token is "v2." + base64url(claims) + "." + base64url(HMAC-SHA256
// of the claims). The key is derived from the domain key, so every node of
// the cluster accepts a token any node issued, and no state is needed to
// check one. It is bound to the client certificate the login came over, to
// the user's number (never reused, so a user deleted and created again
// under the same name does not inherit it) and to the user's credential
// generation, so a password reset or an unlock ends it.
//
// Expires is when this token lapses; Refresh issues a later one, but
// never past MaxExpires, fixed at login. A logout is remembered until
// MaxExpires, so no token of a logged-out session can outlive the record
// that refuses it.
type claims struct {
	User       string
	Role       object.Role
	Number     uint64
	Generation uint64
	Session    uint64
	Expires    int64    // Unix seconds
	MaxExpires int64    // Unix seconds: the session's absolute end
	Cert       [32]byte // SHA-256 of the client certificate
}

const tokenPrefix = "v2."

var errBadToken = errors.New("invalid session token")

func (c *claims) marshal() []byte {
	b := []byte{2}
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.User)))
	b = append(b, c.User...)
	b = append(b, byte(c.Role))
	b = binary.BigEndian.AppendUint64(b, c.Number)
	b = binary.BigEndian.AppendUint64(b, c.Generation)
	b = binary.BigEndian.AppendUint64(b, c.Session)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires))
	b = binary.BigEndian.AppendUint64(b, uint64(c.MaxExpires))
	return append(b, c.Cert[:]...)
}

func unmarshalClaims(b []byte) (*claims, error) {
	if len(b) < 3 || b[0] != 2 {
		return nil, errBadToken
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	b = b[3:]
	if len(b) != n+1+5*8+32 {
		return nil, errBadToken
	}
	c := &claims{User: string(b[:n]), Role: object.Role(b[n])}
	b = b[n+1:]
	c.Number = binary.BigEndian.Uint64(b)
	c.Generation = binary.BigEndian.Uint64(b[8:])
	c.Session = binary.BigEndian.Uint64(b[16:])
	c.Expires = int64(binary.BigEndian.Uint64(b[24:]))
	c.MaxExpires = int64(binary.BigEndian.Uint64(b[32:]))
	copy(c.Cert[:], b[40:])
	return c, nil
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(tokenPrefix))
	h.Write(msg)
	return h.Sum(nil)
}

func mintToken(key []byte, c *claims) string {
	p := c.marshal()
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(p) + "." + enc.EncodeToString(mac(key, p))
}

// parseToken checks a token's MAC and expiry and returns its claims.
func parseToken(key []byte, tok string, now time.Time) (*claims, error) {
	if len(tok) > 1024 || !strings.HasPrefix(tok, tokenPrefix) {
		return nil, errBadToken
	}
	parts := strings.Split(tok[len(tokenPrefix):], ".")
	if len(parts) != 2 {
		return nil, errBadToken
	}
	// Strict: a token has one spelling; other trailing bits in the last
	// character would decode to the same bytes.
	enc := base64.RawURLEncoding.Strict()
	p, err1 := enc.DecodeString(parts[0])
	sig, err2 := enc.DecodeString(parts[1])
	if err1 != nil || err2 != nil || !hmac.Equal(sig, mac(key, p)) {
		return nil, errBadToken
	}
	c, err := unmarshalClaims(p)
	if err != nil {
		return nil, err
	}
	if c.expired(now) || c.Expires > c.MaxExpires {
		return nil, errors.New("session token has expired")
	}
	return c, nil
}

// expired says whether the token has lapsed at now, or its session has.
func (c *claims) expired(now time.Time) bool {
	return now.Unix() >= c.Expires || now.Unix() >= c.MaxExpires
}

func newSessionID() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return binary.BigEndian.Uint64(b[:]) >> 1
}
