package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// File names of the CA inside its directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Kinds of leaf certificate, stored as the subject's OrganizationalUnit.
const (
	KindNode   = "node"
	KindClient = "client"
)

const (
	caValidityYears = 10
	// LeafValidity is how long node and client certificates are valid: short,
	// so that a lost certificate that nobody revoked still ends soon, and
	// renewal (CA.Renew, `hsm cert renew`) is a routine the operator keeps
	// practising rather than a ceremony every two years.
	LeafValidity = 90 * 24 * time.Hour
	// backdate absorbs small clock differences between cluster members.
	backdate = 5 * time.Minute
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateName reports whether name is acceptable as a leaf name (and so as
// a file name and common name): it must match
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("pki: invalid name %q: must be 1-64 characters of A-Z a-z 0-9 . _ - and start with a letter or digit", name)
	}
	return nil
}

// CertPath and KeyPath give where IssueNode and IssueClient write the
// certificate and key of name in dir.
func CertPath(dir, name string) string { return filepath.Join(dir, name+".pem") }

// KeyPath: see CertPath.
func KeyPath(dir, name string) string { return filepath.Join(dir, name+"-key.pem") }

// ClusterURIPrefix starts the URI SAN that binds a certificate to its
// cluster: openhsm://cluster/<id>. Nodes refuse certificates that name
// another cluster, so one CA key may serve several clusters (or be reused by
// mistake) without a certificate of one opening the others.
const ClusterURIPrefix = "openhsm://cluster/"

// ValidateClusterID reports whether id is acceptable as a cluster ID: the
// same rule as names, so it fits a URI path and a file name unescaped.
func ValidateClusterID(id string) error {
	if !nameRE.MatchString(id) {
		return fmt.Errorf("pki: invalid cluster ID %q: must be 1-64 characters of A-Z a-z 0-9 . _ - and start with a letter or digit", id)
	}
	return nil
}

// NewClusterID returns a fresh random cluster ID in AWS CloudHSM's form,
// "cluster-" and 16 characters of a-z and 2-7 (80 random bits): AWS SDKs
// check a custom key store's CloudHsmClusterId against `cluster-` and 11
// to 16 characters of [2-7a-zA-Z] before they send it. IDs of other forms
// (clusters made before, "c-" and 16 hex digits) stay valid.
func NewClusterID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pki: generate cluster ID: %w", err)
	}
	return "cluster-" + strings.ToLower(base32.StdEncoding.EncodeToString(b)), nil
}

func clusterURI(id string) *url.URL {
	u, _ := url.Parse(ClusterURIPrefix + id)
	return u
}

// ClusterIDOf returns the cluster ID a certificate is bound to. It fails
// unless the certificate carries exactly one openhsm://cluster/ URI with a
// valid ID.
func ClusterIDOf(cert *x509.Certificate) (string, error) {
	var ids []string
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, ClusterURIPrefix) {
			ids = append(ids, strings.TrimPrefix(s, ClusterURIPrefix))
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("pki: certificate %q names %d clusters, want exactly 1 (certificates issued before cluster binding must be reissued)", cert.Subject.CommonName, len(ids))
	}
	if err := ValidateClusterID(ids[0]); err != nil {
		return "", err
	}
	return ids[0], nil
}

// CertFileClusterID reads the cluster ID of the first certificate in a PEM
// file, such as a node's certificate when `hsmd init` stamps the ID into a
// new store.
func CertFileClusterID(path string) (string, error) {
	certs, err := readCerts(path)
	if err != nil {
		return "", err
	}
	id, err := ClusterIDOf(certs[0])
	if err != nil {
		return "", fmt.Errorf("pki: certificate file %q: %w", path, err)
	}
	return id, nil
}

// CA is the cluster certificate authority: its certificate and private key,
// and the cluster ID its leaves are bound to. Its methods are safe for
// concurrent use.
type CA struct {
	cert      *x509.Certificate
	key       *ecdsa.PrivateKey
	clusterID string
}

// ClusterID is the cluster the CA issues certificates for.
func (ca *CA) ClusterID() string { return ca.clusterID }

// ForCluster returns the same CA issuing for another cluster ID. The CA
// certificate still names its own cluster; only the leaves differ. Tests use
// it to play a certificate that the right CA key signed for another cluster.
func (ca *CA) ForCluster(id string) (*CA, error) {
	if err := ValidateClusterID(id); err != nil {
		return nil, err
	}
	return &CA{cert: ca.cert, key: ca.key, clusterID: id}, nil
}

// Certificate returns the CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPool returns a new pool holding only the CA certificate.
func (ca *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// CreateCA is CreateClusterCA with a fresh random cluster ID.
func CreateCA(dir string, name string) (*CA, error) {
	id, err := NewClusterID()
	if err != nil {
		return nil, err
	}
	return CreateClusterCA(dir, name, id)
}

// CreateClusterCA creates a new CA named name for cluster clusterID and
// writes it to dir as ca.pem and ca-key.pem, creating dir (mode 0700) if
// needed. The CA certificate carries the cluster URI too, so LoadCA knows
// which cluster it issues for. It refuses, with an error wrapping
// fs.ErrExist, if either file already exists.
func CreateClusterCA(dir string, name, clusterID string) (*CA, error) {
	if err := ValidateClusterID(clusterID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("pki: CA name is empty")
	}
	if len(name) > 64 {
		return nil, fmt.Errorf("pki: CA name %q is longer than 64 characters", name)
	}
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{clusterURI(clusterID)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(keyPEM)
	if err := writeNew(dir, []newFile{
		{path: keyPath, data: keyPEM, mode: 0o600},
		{path: certPath, data: encodeCert(der), mode: 0o644},
	}); err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, clusterID: clusterID}, nil
}

// LoadCA loads the CA written by CreateCA from dir. It checks that ca.pem is
// a CA certificate and that ca-key.pem is its ECDSA private key.
func LoadCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("pki: CA certificate file %q: holds %d certificates, want exactly 1", certPath, len(certs))
	}
	cert := certs[0]
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("pki: CA certificate file %q: certificate is not a CA", certPath)
	}
	signer, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: CA key file %q: not an ECDSA key", keyPath)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: CA key file %q does not match certificate %q", keyPath, certPath)
	}
	id, err := ClusterIDOf(cert)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate file %q: %w", certPath, err)
	}
	return &CA{cert: cert, key: key, clusterID: id}, nil
}

// IssueNode issues a certificate for daemon node name and writes it to dir
// as <name>.pem and <name>-key.pem (0600). The certificate has CN=name,
// OU="node", extended key usages ServerAuth and ClientAuth, and SANs from
// hosts (IP addresses as IP SANs, anything else as DNS names) plus
// 127.0.0.1 and localhost. It refuses to overwrite existing files.
func (ca *CA) IssueNode(dir, name string, hosts []string) error {
	ips, dns, err := splitHosts(append([]string{"127.0.0.1", "localhost"}, hosts...))
	if err != nil {
		return err
	}
	return ca.issue(dir, name, KindNode,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, ips, dns)
}

// IssueClient issues a client certificate for name and writes it to dir as
// <name>.pem and <name>-key.pem (0600). The certificate has CN=name,
// OU="client" and extended key usage ClientAuth only. It refuses to
// overwrite existing files.
func (ca *CA) IssueClient(dir, name string) error {
	return ca.issue(dir, name, KindClient, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil)
}

func (ca *CA) issue(dir, name, kind string, eku []x509.ExtKeyUsage, ips []net.IP, dns []string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	certPath, keyPath := CertPath(dir, name), KeyPath(dir, name)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	notAfter := now.Add(LeafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !now.Before(notAfter) {
		return fmt.Errorf("pki: CA %q expired on %s", ca.cert.Subject.CommonName, ca.cert.NotAfter.Format(time.RFC3339))
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, OrganizationalUnit: []string{kind}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
		IPAddresses:           ips,
		DNSNames:              dns,
		URIs:                  []*url.URL{clusterURI(ca.clusterID)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("pki: create %s certificate %q: %w", kind, name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	defer clear(keyPEM)
	return writeNew(dir, []newFile{
		{path: keyPath, data: keyPEM, mode: 0o600},
		{path: certPath, data: encodeCert(der), mode: 0o644},
	})
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("pki: generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

var dnsRE = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$`)

// splitHosts sorts hosts into IP and DNS SANs, dropping empty entries and
// duplicates.
func splitHosts(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var dns []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			k := "ip:" + ip.String()
			if !seen[k] {
				seen[k] = true
				ips = append(ips, ip)
			}
			continue
		}
		if len(h) > 253 || !dnsRE.MatchString(h) {
			return nil, nil, fmt.Errorf("pki: invalid host %q: not an IP address or DNS name", h)
		}
		h = strings.TrimSuffix(h, ".")
		k := "dns:" + strings.ToLower(h)
		if !seen[k] {
			seen[k] = true
			dns = append(dns, h)
		}
	}
	return ips, dns, nil
}
