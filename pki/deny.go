package pki

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// ParseFingerprint reads a SHA-256 certificate fingerprint written as 64 hex
// digits, in either case, optionally prefixed "sha256:" and optionally with
// colons between bytes (as openssl x509 -fingerprint prints it).
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	t := strings.TrimSpace(s)
	if len(t) > 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	if strings.HasPrefix(strings.ToLower(t), "sha256 fingerprint=") {
		t = t[len("sha256 fingerprint="):]
	}
	t = strings.ReplaceAll(t, ":", "")
	if len(t) != 64 {
		return fp, errors.New("pki: a fingerprint is 64 hex digits (SHA-256 of the certificate DER)")
	}
	b, err := hex.DecodeString(t)
	if err != nil {
		return fp, errors.New("pki: a fingerprint is 64 hex digits (SHA-256 of the certificate DER)")
	}
	copy(fp[:], b)
	return fp, nil
}

// DenyList is the set of revoked certificate fingerprints a node checks at
// every handshake and call. The set is replaced whole (Set) after the
// replicated list changes, so readers never lock: a handshake costs one
// atomic load and a map lookup. The zero value denies nothing.
type DenyList struct {
	set atomic.Pointer[map[[32]byte]struct{}]
}

// Set replaces the list.
func (d *DenyList) Set(fps [][32]byte) {
	m := make(map[[32]byte]struct{}, len(fps))
	for _, fp := range fps {
		m[fp] = struct{}{}
	}
	d.set.Store(&m)
}

// Revoked reports whether fp is on the list. A nil list revokes nothing.
func (d *DenyList) Revoked(fp [32]byte) bool {
	if d == nil {
		return false
	}
	m := d.set.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[fp]
	return ok
}

// Len is the number of revoked fingerprints.
func (d *DenyList) Len() int {
	if d == nil {
		return 0
	}
	if m := d.set.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// checkPeer is what every node checks of a verified peer leaf beyond the
// chain: it names this node's cluster and is not revoked.
func checkPeer(leaf *x509.Certificate, clusterID string, deny *DenyList) error {
	id, err := ClusterIDOf(leaf)
	if err != nil {
		return err
	}
	if id != clusterID {
		return fmt.Errorf("pki: peer certificate %q belongs to cluster %q, not %q", leaf.Subject.CommonName, id, clusterID)
	}
	if deny.Revoked(Fingerprint(leaf)) {
		return fmt.Errorf("pki: peer certificate %q is revoked", leaf.Subject.CommonName)
	}
	return nil
}
