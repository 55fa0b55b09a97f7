package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
)

// Renew replaces the certificate and key of name in dir with fresh ones of
// the same kind and host names, bound to the CA's cluster and valid for
// LeafValidity from now. The old certificate must have been signed by this
// CA (expired or not: renewing a lapsed certificate is the point) and may
// not name another cluster. It returns the SHA-256 fingerprints of
// the old and new certificates, so the caller can revoke the old one.
//
// The new pair is written to a scratch directory inside dir and renamed
// over the old files, certificate last, so a reader sees either the old
// pair or the new one except for the instant between the two renames.
func (ca *CA) Renew(dir, name string) (oldFP, newFP [32]byte, err error) {
	if err := ValidateName(name); err != nil {
		return oldFP, newFP, err
	}
	certPath, keyPath := CertPath(dir, name), KeyPath(dir, name)
	certs, err := readCerts(certPath)
	if err != nil {
		return oldFP, newFP, err
	}
	old := certs[0]
	if err := old.CheckSignatureFrom(ca.cert); err != nil {
		return oldFP, newFP, fmt.Errorf("pki: certificate %q was not issued by this CA", certPath)
	}
	if id, err := ClusterIDOf(old); err == nil && id != ca.clusterID {
		return oldFP, newFP, fmt.Errorf("pki: certificate %q belongs to cluster %q, the CA issues for %q", certPath, id, ca.clusterID)
	}
	if _, err := os.Stat(keyPath); err != nil {
		return oldFP, newFP, fmt.Errorf("pki: key file %q: %w", keyPath, err)
	}
	ou := old.Subject.OrganizationalUnit
	if len(ou) != 1 || (ou[0] != KindNode && ou[0] != KindClient) {
		return oldFP, newFP, fmt.Errorf("pki: certificate %q has unknown kind %q", certPath, ou)
	}
	if old.Subject.CommonName != name {
		return oldFP, newFP, fmt.Errorf("pki: certificate %q is for %q, not %q", certPath, old.Subject.CommonName, name)
	}
	tmp, err := os.MkdirTemp(dir, ".renew-")
	if err != nil {
		return oldFP, newFP, fmt.Errorf("pki: renew: %w", err)
	}
	defer os.RemoveAll(tmp)
	switch ou[0] {
	case KindNode:
		var hosts []string
		for _, ip := range old.IPAddresses {
			hosts = append(hosts, ip.String())
		}
		hosts = append(hosts, old.DNSNames...)
		err = ca.IssueNode(tmp, name, hosts)
	default:
		err = ca.IssueClient(tmp, name)
	}
	if err != nil {
		return oldFP, newFP, err
	}
	fresh, err := readCerts(CertPath(tmp, name))
	if err != nil {
		return oldFP, newFP, err
	}
	if err := os.Rename(KeyPath(tmp, name), keyPath); err != nil {
		return oldFP, newFP, fmt.Errorf("pki: renew: replace %q: %w", keyPath, err)
	}
	if err := os.Rename(CertPath(tmp, name), certPath); err != nil {
		return oldFP, newFP, fmt.Errorf("pki: renew: replace %q (its key is already the new one: renew again): %w", certPath, err)
	}
	return sha256.Sum256(old.Raw), sha256.Sum256(fresh[0].Raw), nil
}

// Fingerprint is the SHA-256 of a certificate's DER, the deny-list's key.
func Fingerprint(cert *x509.Certificate) [32]byte { return sha256.Sum256(cert.Raw) }

// CertFileFingerprint reads the first certificate of a PEM file and returns
// its fingerprint and common name.
func CertFileFingerprint(path string) ([32]byte, string, error) {
	certs, err := readCerts(path)
	if err != nil {
		return [32]byte{}, "", err
	}
	return Fingerprint(certs[0]), certs[0].Subject.CommonName, nil
}
