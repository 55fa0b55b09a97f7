package security

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/cluster/peerpb"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/pki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// certsWait bounds how long a follower may take to apply a revocation the
// leader committed; it is a liveness bound, not a timing assertion.
const certsWait = 20 * time.Second

// certsPKI is the cluster's PKI directory (cluster.sh: DIR/pki).
func certsPKI(c *testcluster.Cluster) string { return filepath.Join(c.Dir, "pki") }

// certsIssueClient issues one more client certificate with the cluster's CA
// key, as a second application would get one, and returns its paths.
func certsIssueClient(t *testing.T, c *testcluster.Cluster, name string) (cert, key string) {
	t.Helper()
	ca, err := pki.LoadCA(certsPKI(c))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, ca.IssueClient(dir, name))
	return pki.CertPath(dir, name), pki.KeyPath(dir, name)
}

// certsDialAs dials node k alone with another certificate, through the
// client library.
func certsDialAs(c *testcluster.Cluster, k int, cert, key string) (*client.Client, error) {
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	if err != nil {
		return nil, err
	}
	cfg.Nodes = []string{c.Addr(k)}
	cfg.Cert, cfg.Key = cert, key
	return client.Dial(ctx, cfg)
}

// certsAttackerTLS is what an attacker holding a certificate and its key
// dials with: it presents them and trusts any server, so that what is
// tested is the node's refusal, not the attacker's own checks.
func certsAttackerTLS(t *testing.T, cert, key string, alpn ...string) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(t, err)
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
		InsecureSkipVerify: true, NextProtos: alpn}
}

// certsGRPC opens a raw gRPC connection to addr with the attacker's TLS.
func certsGRPC(t *testing.T, addr string, conf *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// certsPeerCall makes one Peer RPC (NodeStatus: it changes nothing).
func certsPeerCall(addr string, conn *grpc.ClientConn) error {
	cctx, cancel := certsTimeout(5 * time.Second)
	defer cancel()
	_, err := peerpb.NewPeerClient(conn).NodeStatus(cctx, &hsmpb.Empty{})
	return err
}

// certsRaftAccepted opens a replication (Raft ALPN) connection to addr and
// reports whether the node kept it: a refused one is closed at once (the
// read fails with other than a timeout); an accepted one stays silent,
// waiting for the dialler to speak, until the read deadline.
func certsRaftAccepted(t *testing.T, addr string, conf *tls.Config) bool {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func certsFingerprint(t *testing.T, certFile string) string {
	t.Helper()
	fp, _, err := pki.CertFileFingerprint(certFile)
	require.NoError(t, err)
	return hex.EncodeToString(fp[:])
}

// certsCO logs in the crypto officer on node k with the cluster's own
// client certificate.
func certsCO(t *testing.T, c *testcluster.Cluster, k int) *client.Client {
	return pinned(t, c, k, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
}

// TestAttackCertsRevokedClientRefused: the attacker holds a client
// certificate (stolen from an application host) and the application's CU
// password. Once a crypto officer revokes that certificate through node1,
// every node refuses it: its connections already open get no further
// answer, new connections fail their handshake, and a restarted node still
// refuses it. The cluster's other client certificate keeps working.
func TestAttackCertsRevokedClientRefused(t *testing.T) {
	c := testcluster.Start(t, 3)
	cert, key := certsIssueClient(t, c, "app2")
	cuPW := secret(t, c, "cu.password")

	// Before: the certificate works on every node, and each keeps a
	// logged-in connection open.
	open := map[int]*client.Client{}
	for k := 1; k <= 3; k++ {
		cl, err := certsDialAs(c, k, cert, key)
		require.NoError(t, err, "node%d before the revocation", k)
		t.Cleanup(func() { cl.Close() })
		require.NoError(t, cl.Login(ctx, "cu1", cuPW))
		_, err = cl.ListUsers(ctx)
		require.NoError(t, err)
		open[k] = cl
	}

	co := certsCO(t, c, 1)
	require.NoError(t, co.RevokeCert(ctx, certsFingerprint(t, cert), "app2"))

	for k := 1; k <= 3; k++ {
		// The open connection's next call is refused (a follower may
		// take a moment to apply the revocation).
		require.Eventually(t, func() bool {
			_, err := open[k].ListUsers(ctx)
			return err != nil
		}, certsWait, 100*time.Millisecond, "node%d still answers the revoked certificate's open connection", k)
		// A new connection is refused.
		_, err := certsDialAs(c, k, cert, key)
		require.Error(t, err, "node%d accepted a new connection with the revoked certificate", k)
		// The cluster's own certificate still works there.
		_, err = pinned(t, c, k, "cu1", cuPW).ListUsers(ctx)
		require.NoError(t, err, "node%d refuses the good certificate too", k)
	}
	// Even a raw gRPC call that ignores the client library's checks.
	for k := 1; k <= 3; k++ {
		conn := certsGRPC(t, c.Addr(k), certsAttackerTLS(t, cert, key, "h2"))
		cctx, cancel := certsTimeout(5 * time.Second)
		_, err := hsmpb.NewHSMClient(conn).Info(cctx, &hsmpb.Empty{})
		cancel()
		require.Error(t, err, "node%d answered Info", k)
	}

	// After a restart the node reads the deny-list back from its store.
	c.Stop(2, false)
	out, err := c.StartNode(2)
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool {
		cl, err := certsDialAs(c, 2, pki.CertPath(certsPKI(c), "client"), pki.KeyPath(certsPKI(c), "client"))
		if err != nil {
			return false
		}
		cl.Close()
		return true
	}, certsWait, 200*time.Millisecond, "node2 did not come back")
	_, err = certsDialAs(c, 2, cert, key)
	require.Error(t, err, "restarted node2 accepted the revoked certificate")

	list, err := co.ListRevokedCerts(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "app2", list[0].Name)
	assert.Equal(t, c.Env["HSM_USER"], list[0].By)
}

// TestAttackCertsOtherClusterRefused: the attacker holds a certificate that
// the right CA key signed, but for another cluster ID (one CA key reused
// for two clusters, or a test cluster's certificates). Every node refuses
// it: as a client on the API, and as a node on the Peer service and on
// the replication port.
func TestAttackCertsOtherClusterRefused(t *testing.T) {
	c := testcluster.Start(t, 3)
	ca, err := pki.LoadCA(certsPKI(c))
	require.NoError(t, err)
	other, err := ca.ForCluster("other-cluster")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, other.IssueClient(dir, "client"))
	require.NoError(t, other.IssueNode(dir, "node1", nil))
	id, err := pki.CertFileClusterID(pki.CertPath(dir, "client"))
	require.NoError(t, err)
	require.Equal(t, "other-cluster", id)

	// The control: this cluster's own node certificate is accepted on the
	// replication port, so the refusals below are about the cluster ID.
	own := certsAttackerTLS(t, pki.CertPath(certsPKI(c), "node3"), pki.KeyPath(certsPKI(c), "node3"), certsALPNRaft)
	require.True(t, certsRaftAccepted(t, c.Addr(1), own), "the control node certificate was refused")

	for k := 1; k <= 3; k++ {
		conn := certsGRPC(t, c.Addr(k), certsAttackerTLS(t, pki.CertPath(dir, "client"), pki.KeyPath(dir, "client"), "h2"))
		cctx, cancel := certsTimeout(5 * time.Second)
		_, err := hsmpb.NewHSMClient(conn).Info(cctx, &hsmpb.Empty{})
		cancel()
		require.Error(t, err, "node%d answered a client certificate of another cluster", k)

		nodeTLS := certsAttackerTLS(t, pki.CertPath(dir, "node1"), pki.KeyPath(dir, "node1"), "h2")
		require.Error(t, certsPeerCall(c.Addr(k), certsGRPC(t, c.Addr(k), nodeTLS)),
			"node%d answered a Peer RPC from a node certificate of another cluster", k)
		raft := certsAttackerTLS(t, pki.CertPath(dir, "node1"), pki.KeyPath(dir, "node1"), certsALPNRaft)
		require.False(t, certsRaftAccepted(t, c.Addr(k), raft), "node%d kept a replication connection from another cluster's node", k)
	}
	// The client library also refuses to talk to it with such a certificate.
	_, err = certsDialAs(c, 1, pki.CertPath(dir, "client"), pki.KeyPath(dir, "client"))
	require.Error(t, err)
}

// TestAttackCertsRevokedNodeRefused: the attacker holds node3's
// certificate and key (a compromised node host). Once a crypto officer
// revokes that certificate, the other nodes refuse its Peer RPCs and its
// replication connections.
func TestAttackCertsRevokedNodeRefused(t *testing.T) {
	c := testcluster.Start(t, 3)
	cert, key := pki.CertPath(certsPKI(c), "node3"), pki.KeyPath(certsPKI(c), "node3")
	for k := 1; k <= 2; k++ {
		require.NoError(t, certsPeerCall(c.Addr(k), certsGRPC(t, c.Addr(k), certsAttackerTLS(t, cert, key, "h2"))),
			"node%d refused node3 before the revocation", k)
		require.True(t, certsRaftAccepted(t, c.Addr(k), certsAttackerTLS(t, cert, key, certsALPNRaft)))
	}
	// A connection opened before the revocation is cut too.
	before := certsGRPC(t, c.Addr(2), certsAttackerTLS(t, cert, key, "h2"))
	require.NoError(t, certsPeerCall(c.Addr(2), before))

	co := certsCO(t, c, 1)
	require.NoError(t, co.RevokeCert(ctx, certsFingerprint(t, cert), "node3"))
	require.Eventually(t, func() bool { return certsPeerCall(c.Addr(2), before) != nil }, certsWait, 100*time.Millisecond,
		"node2 still answers node3's open connection")
	for k := 1; k <= 2; k++ {
		require.Error(t, certsPeerCall(c.Addr(k), certsGRPC(t, c.Addr(k), certsAttackerTLS(t, cert, key, "h2"))),
			"node%d answered a Peer RPC from the revoked node3", k)
		require.False(t, certsRaftAccepted(t, c.Addr(k), certsAttackerTLS(t, cert, key, certsALPNRaft)),
			"node%d kept a replication connection from the revoked node3", k)
	}
	// The remaining two nodes still serve.
	_, err := pinned(t, c, 2, "cu1", secret(t, c, "cu.password")).ListUsers(ctx)
	require.NoError(t, err)
}

// TestAttackCertsCUCannotRevoke: the attacker holds a client certificate
// and a crypto user's password, and tries to revoke certificates (a node's,
// to cut it off; the officers' client certificate, to lock them out).
// Only a crypto officer may revoke; the deny-list stays empty. An officer
// cannot revoke the certificate its own call came over (lockout
// protection).
func TestAttackCertsCUCannotRevoke(t *testing.T) {
	c := testcluster.Start(t, 3)
	cu := pinned(t, c, 1, "cu1", secret(t, c, "cu.password"))
	for _, name := range []string{"node2", "client"} {
		err := cu.RevokeCert(ctx, certsFingerprint(t, pki.CertPath(certsPKI(c), name)), name)
		require.Error(t, err, "a CU revoked %s", name)
		assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), client.RV(err), "%v", err)
	}
	out, err := c.HSM([]string{"HSM_USER=cu1", "HSM_PASSWORD=" + secret(t, c, "cu.password")},
		"cert", "revoke", pki.CertPath(certsPKI(c), "node2"))
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "CKR_USER_NOT_LOGGED_IN")

	co := certsCO(t, c, 1)
	err = co.RevokeCert(ctx, certsFingerprint(t, pki.CertPath(certsPKI(c), "client")), "client")
	require.Error(t, err)
	assert.Equal(t, uint64(ck.CKR_ACTION_PROHIBITED), client.RV(err), "%v", err)

	for k := 1; k <= 3; k++ {
		list, err := pinned(t, c, k, "cu1", secret(t, c, "cu.password")).ListRevokedCerts(ctx)
		require.NoError(t, err)
		assert.Empty(t, list, "node%d", k)
	}
	// node2 and the officers' certificate still work.
	_, err = pinned(t, c, 2, "cu1", secret(t, c, "cu.password")).ListUsers(ctx)
	require.NoError(t, err)
}

// TestAttackCertsRenew: the attacker holds the cluster's client certificate
// as it was before the operator renewed it (`hsm cert renew --revoke`, with
// the CA key from the operator's PKI directory). The renewed certificate,
// for the same name, works on every node; the old one is refused on every
// node.
func TestAttackCertsRenew(t *testing.T) {
	c := testcluster.Start(t, 3)
	pkiDir := certsPKI(c)
	stolen := t.TempDir()
	for _, f := range []string{pki.CertPath(pkiDir, "client"), pki.KeyPath(pkiDir, "client")} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(stolen, filepath.Base(f)), b, 0o600))
	}
	oldCert, oldKey := pki.CertPath(stolen, "client"), pki.KeyPath(stolen, "client")

	out, err := c.HSM([]string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]},
		"cert", "renew", "--dir", pkiDir, "--revoke", "client")
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "revoked "+certsFingerprint(t, oldCert))
	newFP := certsFingerprint(t, pki.CertPath(pkiDir, "client"))
	require.NotEqual(t, certsFingerprint(t, oldCert), newFP)

	leafs, err := os.ReadFile(pki.CertPath(pkiDir, "client"))
	require.NoError(t, err)
	require.True(t, strings.Contains(string(leafs), "BEGIN CERTIFICATE"))
	id, err := pki.CertFileClusterID(pki.CertPath(pkiDir, "client"))
	require.NoError(t, err)
	ownID, err := pki.CertFileClusterID(pki.CertPath(pkiDir, "node1"))
	require.NoError(t, err)
	assert.Equal(t, ownID, id)

	for k := 1; k <= 3; k++ {
		// The renewed certificate (client.toml names it) works everywhere.
		_, err := pinned(t, c, k, "cu1", secret(t, c, "cu.password")).ListUsers(ctx)
		require.NoError(t, err, "node%d refused the renewed certificate", k)
		require.Eventually(t, func() bool {
			cl, err := certsDialAs(c, k, oldCert, oldKey)
			if err != nil {
				return true
			}
			cl.Close()
			return false
		}, certsWait, 100*time.Millisecond, "node%d still accepts the old certificate", k)
	}
}

// certsALPNRaft is the replication port's protocol (cluster.ALPNRaft),
// spelled out so the attack needs nothing from the package it attacks.
const certsALPNRaft = "openhsm-raft/1"

func certsTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// TestAttackCertsRevokedViaSnapshot: the attacker holds a revoked client
// certificate and tries a node that joined after the revocation and caught
// up from a Raft snapshot rather than from the log: the snapshot carries
// the deny-list, and the new node refuses the certificate too.
func TestAttackCertsRevokedViaSnapshot(t *testing.T) {
	c := testcluster.StartWith(t, 1, "snapshot_threshold = 16\ntrailing_logs = 4")
	cert, key := certsIssueClient(t, c, "app2")
	co := certsCO(t, c, 1)
	require.NoError(t, co.RevokeCert(ctx, certsFingerprint(t, cert), "app2"))
	// Enough further entries for a snapshot that compacts the log.
	for i := 0; i < 24; i++ {
		require.NoError(t, co.RevokeCert(ctx, strings.Repeat(hex.EncodeToString([]byte{byte(i)}), 32), "filler"))
	}
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(c.LogFile(1))
		return err == nil && strings.Contains(string(b), "snapshot complete")
	}, certsWait, 200*time.Millisecond, "node1 took no snapshot")

	k := c.Add()
	log, err := os.ReadFile(c.LogFile(k))
	require.NoError(t, err)
	require.Contains(t, string(log), "restored a snapshot", "the added node did not catch up from a snapshot")
	_, err = certsDialAs(c, k, pki.CertPath(certsPKI(c), "client"), pki.KeyPath(certsPKI(c), "client"))
	require.NoError(t, err, "the added node refuses the good certificate")
	_, err = certsDialAs(c, k, cert, key)
	require.Error(t, err, "the added node accepted the revoked certificate")
}
