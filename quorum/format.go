// Package quorum is the format of quorum authentication (M of N crypto
// officer approval, docs/quorum.md): the services, approval keys, tokens,
// the canonical bytes an officer signs, and signing and verifying them. The
// replicated state's rules (who may register, approve and spend) are
// applied in the state machine (state/quorum.go).
package quorum

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Quorum services: each has its own M.
const (
	// ServiceUserManagement covers creating and deleting users, resetting
	// another user's password and unlocking a user.
	ServiceUserManagement = "user-management"
	// ServiceClusterMembership covers adding and removing nodes.
	ServiceClusterMembership = "cluster-membership"
	// ServiceQuorum covers changing any M. Its approvals needed are the
	// largest M of any service, so no service can be lowered with fewer
	// approvals than it needs itself.
	ServiceQuorum = "quorum"
)

// Services lists the services in a fixed order.
var Services = []string{ServiceUserManagement, ServiceClusterMembership}

// Quorum limits.
const (
	// TokenLifetime is how long a token can be approved and used,
	// counted from its command's time (CloudHSM's tokens last 10 minutes).
	TokenLifetime = 600
	// MaxM bounds M (CloudHSM allows up to 8).
	MaxM = 8
	// MaxTokens bounds the live tokens; each officer holds at most
	// one per service, so this is reached only with very many officers.
	MaxTokens = 256
	// MaxSig bounds a signature (an ASN.1 P-256 ECDSA signature is at
	// most 72 bytes, Ed25519 64).
	MaxSig = 128
	// MaxKey bounds a PKIX public key (P-256: 91 bytes).
	MaxKey = 256
)

// MetaQuorum is the meta key of the quorum state.
const MetaQuorum = "quorum"

// Key is an officer's registered approval key.
type Key struct {
	Officer string `json:"officer"`
	Type    string `json:"type"` // "ecdsa-p256" or "ed25519"
	Public  []byte `json:"public"`
}

// Fingerprint is the SHA-256 of the key's PKIX encoding, in hex.
func (k *Key) Fingerprint() string { return KeyFingerprint(k.Public) }

func KeyFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Approval is one officer's signature over a token.
type Approval struct {
	Officer string `json:"officer"`
	// Key is the fingerprint of the key that signed: an approval counts
	// only while that officer still has that key registered.
	Key       string `json:"key"`
	Signature []byte `json:"signature"`
}

// Token is a request for approval of one use of a service.
type Token struct {
	ID        string     `json:"id"`
	Service   string     `json:"service"`
	Requester string     `json:"requester"`
	Issued    int64      `json:"issued"`
	Expires   int64      `json:"expires"`
	Approvals []Approval `json:"approvals,omitempty"`
}

// TokenVersion is the version of the canonical bytes below.
const TokenVersion = "openhsm-quorum-token-v1"

// SigningBytes are the canonical bytes an approver signs. They are plain
// text, one field a line, so that an officer can read what they approve:
//
//	openhsm-quorum-token-v1
//	id=<32 hex digits>
//	service=<service>
//	requester=<user name>
//	issued=<Unix seconds>
//	expires=<Unix seconds>
//
// each line ending in '\n'. No field can hold a newline: IDs are hex,
// services are fixed names and user names are letters, digits, '.', '_'
// and '-'.
func (t *Token) SigningBytes() []byte {
	return []byte(TokenVersion + "\nid=" + t.ID + "\nservice=" + t.Service + "\nrequester=" + t.Requester +
		"\nissued=" + strconv.FormatInt(t.Issued, 10) + "\nexpires=" + strconv.FormatInt(t.Expires, 10) + "\n")
}

// RegistrationBytes are what an officer signs with a new key to show
// they hold its private half.
func RegistrationBytes(officer string, publicDER []byte) []byte {
	return []byte("openhsm-quorum-key-v1\nofficer=" + officer + "\nkey-sha256=" + KeyFingerprint(publicDER) + "\n")
}

// State is the whole replicated quorum state.
type State struct {
	// Policy maps a service to its M; a missing service has M = 1.
	Policy map[string]int `json:"policy,omitempty"`
	Keys   []Key          `json:"keys,omitempty"`   // ordered by officer
	Tokens []Token        `json:"tokens,omitempty"` // ordered by ID
}

// M is the number of approvals a service needs (1: quorum is off).
func (q *State) M(service string) int {
	if service == ServiceQuorum {
		m := 1
		for _, s := range Services {
			m = max(m, q.M(s))
		}
		return m
	}
	if m := q.Policy[service]; m > 1 {
		return m
	}
	return 1
}

func (q *State) KeyOf(officer string) *Key {
	for i := range q.Keys {
		if q.Keys[i].Officer == officer {
			return &q.Keys[i]
		}
	}
	return nil
}

func (q *State) TokenOf(id string) *Token {
	for i := range q.Tokens {
		if q.Tokens[i].ID == id {
			return &q.Tokens[i]
		}
	}
	return nil
}

// pruneTokens drops the tokens expired by now.
func (q *State) PruneTokens(now int64) {
	live := q.Tokens[:0]
	for _, t := range q.Tokens {
		if now <= t.Expires {
			live = append(live, t)
		}
	}
	q.Tokens = live
}

// ParseKey checks a PKIX public key: ECDSA P-256 or Ed25519.
func ParseKey(der []byte) (keyType string, pub any, err error) {
	if len(der) == 0 || len(der) > MaxKey {
		return "", nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the public key must be 1 to %d bytes", MaxKey)
	}
	p, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return "", nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the public key is not a PKIX public key")
	}
	switch k := p.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "an ECDSA approval key must be on P-256")
		}
		return "ecdsa-p256", k, nil
	case ed25519.PublicKey:
		return "ed25519", k, nil
	}
	return "", nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "an approval key must be ECDSA P-256 or Ed25519")
}

// Verify checks sig over msg: ECDSA over SHA-256 (ASN.1), or
// pure Ed25519.
func Verify(der, msg, sig []byte) bool {
	if len(sig) == 0 || len(sig) > MaxSig {
		return false
	}
	_, pub, err := ParseKey(der)
	if err != nil {
		return false
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}

// Sign signs msg with an approval key's private half, as
// Verify expects. The CLI uses it on the officer's machine.
func Sign(priv any, msg []byte) ([]byte, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an ECDSA approval key must be on P-256")
		}
		sum := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, sum[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	}
	return nil, errors.New("an approval key must be ECDSA P-256 or Ed25519")
}

func ValidService(s string) error {
	switch s {
	case ServiceUserManagement, ServiceClusterMembership, ServiceQuorum:
		return nil
	}
	return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown quorum service %q (want %s, %s or %s)", s,
		ServiceUserManagement, ServiceClusterMembership, ServiceQuorum)
}

func ValidTokenID(id string) error {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a quorum token ID is 32 lowercase hex digits")
	}
	return nil
}
