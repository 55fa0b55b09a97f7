package pki

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// ServerConfig is NodeServerConfig with an empty deny-list.
func ServerConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	return NodeServerConfig(certFile, keyFile, caFile, nil)
}

// NodeServerConfig returns a TLS 1.3-only server configuration that
// presents the node certificate in certFile/keyFile and requires every
// client to present a certificate that verifies against the CA in caFile
// (and only that CA) for client authentication, names the same cluster as
// the node's own certificate, and is not on deny (read at each handshake,
// so a revocation applies to the next connection without a restart).
//
// It fails if a file is missing or bad, if the key does not match the
// certificate, if the certificate does not verify against the CA for
// server authentication, or if it names no cluster.
func NodeServerConfig(certFile, keyFile, caFile string, deny *DenyList) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile, caFile, pool, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	clusterID, err := ClusterIDOf(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate file %q: %w", certFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("pki: the peer sent no certificate")
			}
			return checkPeer(cs.PeerCertificates[0], clusterID, deny)
		},
	}, nil
}

// ClientConfig returns a TLS 1.3-only client configuration that presents
// the certificate in certFile/keyFile and trusts only the CA in caFile.
// ServerName is left empty for the caller to set (tls.Dial derives it from
// the address); see ClientConfigFor.
//
// It fails if a file is missing or bad, if the key does not match the
// certificate, or if the certificate does not verify against the CA for
// client authentication.
func ClientConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile, caFile, pool, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return clientTLS(cert, pool, certFile)
}

// ClientCredentials are a client's CA, certificate and key files, already
// read: the PEM bytes, and the names of the files they came from (used in
// errors only).
type ClientCredentials struct {
	CAFile, CertFile, KeyFile string
	CA, Cert, Key             []byte
}

// ClientConfigFromCredentials is ClientConfigFor on files already read into
// memory: the same checks, the same configuration, and errors that name the
// files the bytes came from. It keeps none of c's slices.
func ClientConfigFromCredentials(c ClientCredentials, serverName string) (*tls.Config, error) {
	caCerts, err := parseCerts(c.CAFile, c.CA)
	if err != nil {
		return nil, err
	}
	pool, err := poolOf(c.CAFile, caCerts)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(c.CertFile, c.Cert)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(c.KeyFile, c.Key)
	if err != nil {
		return nil, err
	}
	cert, err := pairOf(certs, key, c.CertFile, c.KeyFile, c.CAFile, pool, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	cfg, err := clientTLS(cert, pool, c.CertFile)
	return withServerName(cfg, err, serverName)
}

// withServerName sets the name a client checks the server's certificate
// against: serverName, or "localhost" if it is empty.
func withServerName(cfg *tls.Config, err error, serverName string) (*tls.Config, error) {
	if err != nil {
		return nil, err
	}
	if serverName == "" {
		serverName = "localhost"
	}
	cfg.ServerName = serverName
	return cfg, nil
}

// clientTLS is the client configuration around a checked certificate.
func clientTLS(cert tls.Certificate, pool *x509.CertPool, certFile string) (*tls.Config, error) {
	clusterID, err := ClusterIDOf(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate file %q: %w", certFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		// A server of another cluster under the same CA key is not ours.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("pki: the server sent no certificate")
			}
			return checkPeer(cs.PeerCertificates[0], clusterID, nil)
		},
	}, nil
}

// ClientConfigFor is ClientConfig with ServerName set to serverName, or to
// "localhost" if serverName is empty.
func ClientConfigFor(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	cfg, err := ClientConfig(certFile, keyFile, caFile)
	return withServerName(cfg, err, serverName)
}

// loadPool reads the CA file into a pool. Every certificate in it must be a
// CA certificate, which catches a leaf passed by mistake.
func loadPool(caFile string) (*x509.CertPool, error) {
	certs, err := readCerts(caFile)
	if err != nil {
		return nil, err
	}
	return poolOf(caFile, certs)
}

// poolOf is loadPool on the certificates of the CA file, already parsed.
func poolOf(caFile string, certs []*x509.Certificate) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, c := range certs {
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("pki: CA file %q: certificate %q is not a CA certificate", caFile, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// loadPair loads a certificate (with any chain after it) and its key, and
// checks that they match and that the leaf verifies against pool for usage.
func loadPair(certFile, keyFile, caFile string, pool *x509.CertPool, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	certs, err := readCerts(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return pairOf(certs, key, certFile, keyFile, caFile, pool, usage)
}

// pairOf is loadPair on the certificates and key, already parsed.
func pairOf(certs []*x509.Certificate, key crypto.Signer, certFile, keyFile, caFile string, pool *x509.CertPool, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return tls.Certificate{}, fmt.Errorf("pki: key file %q does not match certificate %q", keyFile, certFile)
	}
	if err := verifyChain(certs, pool, usage); err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: certificate %q does not verify against CA %q for %s: %w", certFile, caFile, usageName(usage), err)
	}
	chain := make([][]byte, len(certs))
	for i, c := range certs {
		chain[i] = c.Raw
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "server authentication"
	case x509.ExtKeyUsageClientAuth:
		return "client authentication"
	}
	return fmt.Sprintf("usage %d", u)
}

// Identity is who the verified peer of a TLS connection is.
type Identity struct {
	CommonName  string
	Kind        string   // KindNode or KindClient
	ClusterID   string   // the cluster its certificate is bound to
	Fingerprint [32]byte // SHA-256 of the leaf certificate DER
}

// String returns "kind/name sha256:hex", suitable for logs.
func (id Identity) String() string {
	return id.Kind + "/" + id.CommonName + " sha256:" + hex.EncodeToString(id.Fingerprint[:])
}

// PeerIdentity returns the identity of the peer of a completed handshake.
// It uses only the verified chain, so it fails if the peer's certificate
// was not verified (or none was sent), if the subject's OrganizationalUnit
// is not exactly one of "node" or "client", if the common name is not a
// valid name, or if the certificate names no cluster.
func PeerIdentity(state tls.ConnectionState) (Identity, error) {
	if !state.HandshakeComplete {
		return Identity{}, errors.New("pki: TLS handshake not complete")
	}
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Identity{}, errors.New("pki: no verified peer certificate")
	}
	leaf := state.VerifiedChains[0][0]
	ou := leaf.Subject.OrganizationalUnit
	if len(ou) == 0 {
		return Identity{}, fmt.Errorf("pki: peer certificate %q has no OrganizationalUnit (kind)", leaf.Subject.CommonName)
	}
	if len(ou) != 1 || (ou[0] != KindNode && ou[0] != KindClient) {
		return Identity{}, fmt.Errorf("pki: peer certificate %q has unknown kind %q", leaf.Subject.CommonName, ou)
	}
	if err := ValidateName(leaf.Subject.CommonName); err != nil {
		return Identity{}, fmt.Errorf("pki: peer certificate common name: %w", err)
	}
	clusterID, err := ClusterIDOf(leaf)
	if err != nil {
		return Identity{}, err
	}
	return Identity{
		CommonName:  leaf.Subject.CommonName,
		Kind:        ou[0],
		ClusterID:   clusterID,
		Fingerprint: sha256.Sum256(leaf.Raw),
	}, nil
}

// NodePeerConfig returns the TLS 1.3 client configuration one node uses to
// reach another (replication and forwarding): it presents the node
// certificate in certFile/keyFile and accepts only a peer whose certificate
// verifies against the CA in caFile for server authentication and whose
// kind is "node", that names this node's cluster and is not on deny. Host
// names are not checked: nodes are named by their certificates, and their
// addresses come from the cluster's membership.
func NodePeerConfig(certFile, keyFile, caFile string, deny *DenyList) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile, caFile, pool, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	if ou := cert.Leaf.Subject.OrganizationalUnit; len(ou) != 1 || ou[0] != KindNode {
		return nil, fmt.Errorf("pki: certificate %q is not a node certificate", certFile)
	}
	clusterID, err := ClusterIDOf(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate file %q: %w", certFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The chain is checked in VerifyConnection instead, without a
		// host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := verifyNodePeer(cs, pool); err != nil {
				return err
			}
			return checkPeer(cs.PeerCertificates[0], clusterID, deny)
		},
	}, nil
}

func verifyNodePeer(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pki: the peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if err := verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth); err != nil {
		return fmt.Errorf("pki: peer certificate does not verify against the cluster CA: %w", err)
	}
	if ou := leaf.Subject.OrganizationalUnit; len(ou) != 1 || ou[0] != KindNode {
		return fmt.Errorf("pki: peer %q is not a node", leaf.Subject.CommonName)
	}
	return nil
}

// verifyChain verifies certs[0] against pool for usage, with the rest of
// certs as intermediates.
func verifyChain(certs []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}
