package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClusterIDInEveryCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := CreateClusterCA(dir, "cluster", "prod-1")
	require.NoError(t, err)
	require.NoError(t, ca.IssueNode(dir, "node1", nil))
	require.NoError(t, ca.IssueClient(dir, "app"))
	for _, f := range []string{filepath.Join(dir, CACertFile), CertPath(dir, "node1"), CertPath(dir, "app")} {
		id, err := CertFileClusterID(f)
		require.NoError(t, err, f)
		assert.Equal(t, "prod-1", id, f)
	}
	loaded, err := LoadCA(dir)
	require.NoError(t, err)
	assert.Equal(t, "prod-1", loaded.ClusterID())

	for _, bad := range []string{"", "a/b", "-x", "a b", strings.Repeat("x", 65)} {
		_, err := CreateClusterCA(t.TempDir(), "cluster", bad)
		assert.Error(t, err, "cluster ID %q", bad)
	}
	id, err := NewClusterID()
	require.NoError(t, err)
	require.NoError(t, ValidateClusterID(id))
}

func TestLeafLifetimeIsShort(t *testing.T) {
	c := newCluster(t, "cluster")
	for _, name := range []string{"node1", "app"} {
		leaf := readCert(t, CertPath(c.dir, name))
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		assert.LessOrEqual(t, life, LeafValidity+backdate, name)
		assert.Greater(t, life, LeafValidity-time.Hour, name)
	}
	assert.Equal(t, 90*24*time.Hour, LeafValidity)
}

// A certificate the cluster's own CA key signed, but for another cluster ID,
// is refused by a node of this cluster, and a node of the other cluster is
// refused by this cluster's clients and nodes.
func TestHandshakeOtherClusterRefused(t *testing.T) {
	c := newCluster(t, "cluster")
	other, err := c.ca.ForCluster("someone-else")
	require.NoError(t, err)
	odir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(odir, CACertFile), encodeCert(c.ca.cert.Raw), 0o644))
	require.NoError(t, other.IssueClient(odir, "app"))
	require.NoError(t, other.IssueNode(odir, "node9", nil))

	oc := &cluster{dir: odir, ca: other}
	attacker := oc.client(t, "app")
	attacker.VerifyConnection = nil // the attacker does not mind which cluster answers
	out := handshake(t, c.server(t), attacker)
	require.Error(t, out.serverHSErr)
	assert.Contains(t, out.serverHSErr.Error(), "belongs to cluster")

	// Our client refuses their node as a server.
	srv, err := ServerConfig(CertPath(odir, "node9"), KeyPath(odir, "node9"), filepath.Join(odir, CACertFile))
	require.NoError(t, err)
	out = handshake(t, srv, c.client(t, "app"))
	require.Error(t, out.clientErr)
	assert.Contains(t, out.clientErr.Error(), "belongs to cluster")

	// Our node refuses their node as a replication peer.
	peer, err := NodePeerConfig(CertPath(c.dir, "node1"), KeyPath(c.dir, "node1"), c.caFile(), nil)
	require.NoError(t, err)
	out = handshake(t, srv, peer)
	require.Error(t, out.clientErr)
}

// A certificate from before cluster binding (no URI) is refused, and
// LoadCA refuses such a CA.
func TestHandshakeUnboundCertificateRefused(t *testing.T) {
	c := newCluster(t, "cluster")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old", OrganizationalUnit: []string{KindClient}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca.cert, &key.PublicKey, c.ca.key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.ca.CertPool(), ServerName: "localhost",
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
	out := handshake(t, c.server(t), cfg)
	require.Error(t, out.serverHSErr)
	assert.Contains(t, out.serverHSErr.Error(), "names 0 clusters")
	_, err = ClusterIDOf(leaf)
	assert.Error(t, err)

	// The same certificate on the client side is refused at load.
	keyPEM, err := encodeKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(CertPath(c.dir, "old"), encodeCert(der), 0o644))
	require.NoError(t, os.WriteFile(KeyPath(c.dir, "old"), keyPEM, 0o600))
	_, err = ClientConfig(CertPath(c.dir, "old"), KeyPath(c.dir, "old"), c.caFile())
	assert.ErrorContains(t, err, "reissued")
}

func TestDenyListAtHandshake(t *testing.T) {
	c := newCluster(t, "cluster")
	require.NoError(t, c.ca.IssueNode(c.dir, "node2", nil))
	var deny DenyList
	srv, err := NodeServerConfig(CertPath(c.dir, "node1"), KeyPath(c.dir, "node1"), c.caFile(), &deny)
	require.NoError(t, err)
	out := handshake(t, srv, c.client(t, "app"))
	require.NoError(t, out.serverErr)
	require.NoError(t, out.clientErr)

	app := readCert(t, CertPath(c.dir, "app"))
	deny.Set([][32]byte{Fingerprint(app)})
	assert.True(t, deny.Revoked(Fingerprint(app)))
	assert.Equal(t, 1, deny.Len())
	out = handshake(t, srv, c.client(t, "app"))
	require.Error(t, out.serverHSErr)
	assert.Contains(t, out.serverHSErr.Error(), "revoked")

	// A revoked node is refused as a server by a peer that dials it, and as
	// a client by a node it dials.
	node2 := readCert(t, CertPath(c.dir, "node2"))
	deny.Set([][32]byte{Fingerprint(node2)})
	srv2, err := ServerConfig(CertPath(c.dir, "node2"), KeyPath(c.dir, "node2"), c.caFile())
	require.NoError(t, err)
	peer1, err := NodePeerConfig(CertPath(c.dir, "node1"), KeyPath(c.dir, "node1"), c.caFile(), &deny)
	require.NoError(t, err)
	out = handshake(t, srv2, peer1)
	require.Error(t, out.clientErr)
	assert.Contains(t, out.clientErr.Error(), "revoked")
	peer2, err := NodePeerConfig(CertPath(c.dir, "node2"), KeyPath(c.dir, "node2"), c.caFile(), nil)
	require.NoError(t, err)
	out = handshake(t, srv, peer2)
	require.Error(t, out.serverHSErr)

	// Taking it off the list lets it in again.
	deny.Set(nil)
	out = handshake(t, srv, peer2)
	require.NoError(t, out.serverErr)
	var nilList *DenyList
	assert.False(t, nilList.Revoked(Fingerprint(app)))
}

func TestRenew(t *testing.T) {
	c := newCluster(t, "cluster")
	oldApp := readCert(t, CertPath(c.dir, "app"))
	oldNode := readCert(t, CertPath(c.dir, "node1"))

	oldFP, newFP, err := c.ca.Renew(c.dir, "app")
	require.NoError(t, err)
	assert.Equal(t, Fingerprint(oldApp), oldFP)
	assert.NotEqual(t, oldFP, newFP)
	app := readCert(t, CertPath(c.dir, "app"))
	assert.Equal(t, newFP, Fingerprint(app))
	assert.Equal(t, "app", app.Subject.CommonName)
	assert.Equal(t, []string{KindClient}, app.Subject.OrganizationalUnit)
	assert.NotEqual(t, oldApp.PublicKey, app.PublicKey, "a renewal makes a new key")
	aboutUntil(t, "renewed app", app, time.Now().Add(LeafValidity))

	_, _, err = c.ca.Renew(c.dir, "node1")
	require.NoError(t, err)
	node := readCert(t, CertPath(c.dir, "node1"))
	assert.Equal(t, oldNode.DNSNames, node.DNSNames)
	assert.Equal(t, len(oldNode.IPAddresses), len(node.IPAddresses))
	assert.Equal(t, []string{KindNode}, node.Subject.OrganizationalUnit)

	// The renewed pair works, and no scratch directory is left behind.
	out := handshake(t, c.server(t), c.client(t, "app"))
	require.NoError(t, out.serverErr)
	require.NoError(t, out.clientErr)
	left, err := filepath.Glob(filepath.Join(c.dir, ".renew-*"))
	require.NoError(t, err)
	assert.Empty(t, left)

	// Another CA's certificate, or another cluster's, is not renewed.
	foreign := newCluster(t, "cluster")
	_, _, err = c.ca.Renew(foreign.dir, "app")
	assert.ErrorContains(t, err, "not issued by this CA")
	other, err := c.ca.ForCluster("other")
	require.NoError(t, err)
	_, _, err = other.Renew(c.dir, "app")
	assert.ErrorContains(t, err, "belongs to cluster")
	_, _, err = c.ca.Renew(c.dir, "missing")
	assert.Error(t, err)
	_, _, err = c.ca.Renew(c.dir, "../x")
	assert.ErrorContains(t, err, "invalid name")
}

func TestParseFingerprint(t *testing.T) {
	c := newCluster(t, "cluster")
	fp, name, err := CertFileFingerprint(CertPath(c.dir, "app"))
	require.NoError(t, err)
	assert.Equal(t, "app", name)
	hexFP := strings.ToUpper(strings.TrimPrefix(Identity{Fingerprint: fp}.String(), "/ sha256:"))
	var colons []string
	for i := 0; i < 64; i += 2 {
		colons = append(colons, hexFP[i:i+2])
	}
	for _, s := range []string{hexFP, strings.ToLower(hexFP), "sha256:" + hexFP, strings.Join(colons, ":"),
		"SHA256 Fingerprint=" + strings.Join(colons, ":")} {
		got, err := ParseFingerprint(s)
		require.NoError(t, err, s)
		assert.Equal(t, fp, got, s)
	}
	for _, s := range []string{"", "abc", hexFP[:62], hexFP + "00", strings.Repeat("zz", 32)} {
		_, err := ParseFingerprint(s)
		assert.Error(t, err, s)
	}
}
