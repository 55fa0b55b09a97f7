package security

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openhsm/openhsm/cluster/peerpb"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// trustPKI is the cluster's PKI folder.
func trustPKI(c *testcluster.Cluster) string { return filepath.Join(c.Dir, "pki") }

// trustDial opens a gRPC connection to addr with a TLS configuration.
func trustDial(t *testing.T, addr string, conf *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// trustNodeCert is the TLS configuration of the node certificate name
// found in dir (the cluster's own, or one the test issued).
func trustNodeCert(t *testing.T, c *testcluster.Cluster, dir, name string) *tls.Config {
	t.Helper()
	conf, err := pki.NodePeerConfig(pki.CertPath(dir, name), pki.KeyPath(dir, name), filepath.Join(trustPKI(c), "ca.pem"), nil)
	require.NoError(t, err)
	return conf
}

// trustPeer is the Peer service of node k, reached with the node
// certificate name in dir.
func trustPeer(t *testing.T, c *testcluster.Cluster, k int, dir, name string) peerpb.PeerClient {
	return peerpb.NewPeerClient(trustDial(t, c.Addr(k), trustNodeCert(t, c, dir, name)))
}

// trustAPI is the HSM API of the node at addr, reached with the cluster's
// client certificate (for the test's own checks, and for the joining-node
// attack, whose attacker holds a client certificate).
func trustAPI(t *testing.T, c *testcluster.Cluster, addr string) hsmpb.HSMClient {
	t.Helper()
	dir := trustPKI(c)
	conf, err := pki.ClientConfigFor(pki.CertPath(dir, "client"), pki.KeyPath(dir, "client"), filepath.Join(dir, "ca.pem"), "")
	require.NoError(t, err)
	return hsmpb.NewHSMClient(trustDial(t, addr, conf))
}

// trustLeader is the number of the node that leads now.
func trustLeader(t *testing.T, c *testcluster.Cluster) int {
	t.Helper()
	var k int
	require.Eventually(t, func() bool {
		cctx, cancel := trustTimeout(5 * time.Second)
		defer cancel()
		st, err := trustAPI(t, c, c.Addr(1)).ClusterStatus(cctx, &hsmpb.Empty{})
		if err != nil || st.Leader == "" {
			return false
		}
		k, err = strconv.Atoi(strings.TrimPrefix(st.Leader, "node"))
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "no leader")
	return k
}

// trustMembers are the names in the cluster's membership.
func trustMembers(t *testing.T, c *testcluster.Cluster) []string {
	t.Helper()
	cl := pinned(t, c, 1, "", "")
	st, err := cl.ClusterStatus(ctx)
	require.NoError(t, err)
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
	}
	return names
}

// trustUsers are the names of the users, as the crypto officer sees them.
func trustUsers(t *testing.T, c *testcluster.Cluster) []string {
	t.Helper()
	co := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	us, err := co.ListUsers(ctx)
	require.NoError(t, err)
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	return names
}

func trustLog(t *testing.T, c *testcluster.Cluster, k int) []byte {
	t.Helper()
	b, err := os.ReadFile(c.LogFile(k))
	require.NoError(t, err)
	return b
}

// TestAttackTrustForgedForward: the attacker holds node1's certificate and
// key (not the passphrase). A Forward of "create a crypto officer" without
// a proof, or with a made-up one, is refused by the leader before it
// reaches Raft, the leader logs the refusal, and no such user exists.
func TestAttackTrustForgedForward(t *testing.T) {
	c := testcluster.Start(t, 3)
	cmd := &state.Command{Op: state.OpCreateUser, Actor: c.Env["HSM_USER"], Role: object.RoleCO,
		User: &object.User{Name: "mallory", Role: object.RoleCO, PasswordHash: "x"}}
	raw, err := cmd.Encode()
	require.NoError(t, err)
	mac := make([]byte, 32)
	_, err = rand.Read(mac)
	require.NoError(t, err)
	proofs := map[string]*peerpb.PeerProof{
		"no proof":     nil,
		"forged proof": {Node: "node1", UnixMs: time.Now().UnixMilli(), Nonce: make([]byte, 16), Mac: mac},
	}
	for what, proof := range proofs {
		var code codes.Code
		var leader int
		// The leader may change between finding it and calling it; a
		// node that does not lead answers FailedPrecondition.
		for range 10 {
			leader = trustLeader(t, c)
			cctx, cancel := trustTimeout(10 * time.Second)
			_, err := trustPeer(t, c, leader, trustPKI(c), "node1").Forward(cctx, &peerpb.ForwardRequest{Command: raw, Proof: proof})
			cancel()
			code = status.Code(err)
			if code != codes.FailedPrecondition {
				break
			}
		}
		assert.Equal(t, codes.PermissionDenied, code, what)
		assert.Contains(t, string(trustLog(t, c, leader)), "refused a forwarded command without a valid proof", what)
	}
	assert.NotContains(t, trustUsers(t, c), "mallory")
}

// TestAttackTrustMembershipChange: the attacker holds node1's certificate
// and key. Peer.ChangeMembership adding a node, or removing one, is refused
// by the leader, and the membership stays as it was.
func TestAttackTrustMembershipChange(t *testing.T) {
	c := testcluster.Start(t, 3)
	before := trustMembers(t, c)
	require.Len(t, before, 3)
	reqs := []*peerpb.MembershipRequest{
		{Op: "add", Name: "node9", Addr: "127.0.0.1:1"},
		{Op: "remove", Name: "node3"},
		{Op: "remove", Name: "node3", SessionToken: "v1.forged.forged", CertFingerprint: make([]byte, 32),
			Proof: &peerpb.PeerProof{Node: "node1", UnixMs: time.Now().UnixMilli(), Nonce: make([]byte, 16), Mac: make([]byte, 32)}},
	}
	for _, req := range reqs {
		var code codes.Code
		for range 10 {
			leader := trustLeader(t, c)
			cctx, cancel := trustTimeout(10 * time.Second)
			_, err := trustPeer(t, c, leader, trustPKI(c), "node1").ChangeMembership(cctx, req)
			cancel()
			code = status.Code(err)
			if code != codes.FailedPrecondition {
				break
			}
		}
		assert.Equal(t, codes.PermissionDenied, code, "%s %s", req.Op, req.Name)
	}
	assert.ElementsMatch(t, before, trustMembers(t, c))
}

// TestAttackTrustNonMemberNode: the attacker holds a node certificate the
// cluster's CA issued for a name that is not a member (node9). Its Raft
// connections are closed at once, and of the Peer service it may call only
// what a node about to join needs (DomainKey, NodeStatus); Forward,
// ChangeMembership and the backup calls are refused.
func TestAttackTrustNonMemberNode(t *testing.T) {
	c := testcluster.Start(t, 3)
	ca, err := pki.LoadCA(trustPKI(c))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, ca.IssueNode(dir, "node9", nil))

	// Raft: the connection is closed rather than handed to Raft, which
	// would wait for a request.
	conf := trustNodeCert(t, c, dir, "node9")
	conf.NextProtos = []string{"openhsm-raft/1"}
	leader := trustLeader(t, c)
	for k := 1; k <= 3; k++ {
		conn, err := tls.Dial("tcp", c.Addr(k), conf)
		require.NoError(t, err, "node%d", k)
		require.Equal(t, "openhsm-raft/1", conn.ConnectionState().NegotiatedProtocol)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		assert.ErrorIs(t, err, io.EOF, "node%d kept node9's Raft connection open", k)
		assert.Contains(t, string(trustLog(t, c, k)), `"peer":"node9"`, "node%d", k)
	}

	p := trustPeer(t, c, leader, dir, "node9")
	cctx, cancel := trustTimeout(10 * time.Second)
	defer cancel()
	_, err = p.NodeStatus(cctx, &hsmpb.Empty{})
	assert.NoError(t, err, "NodeStatus, which the node adding a joiner calls")
	_, err = p.DomainKey(cctx, &hsmpb.Empty{})
	assert.NoError(t, err, "DomainKey, which a joining node calls")
	_, err = p.Forward(cctx, &peerpb.ForwardRequest{Command: []byte(`{"op":"logout"}`)})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "Forward: %v", err)
	_, err = p.ChangeMembership(cctx, &peerpb.MembershipRequest{Op: "add", Name: "node9", Addr: "127.0.0.1:1"})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "ChangeMembership: %v", err)
	_, err = p.LocalBackups(cctx, &hsmpb.Empty{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "LocalBackups: %v", err)
	rs, err := p.ReadBackup(cctx, &hsmpb.GetBackupRequest{})
	if err == nil {
		_, err = rs.Recv()
	}
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "ReadBackup: %v", err)
	assert.Len(t, trustMembers(t, c), 3)
}

// TestAttackTrustJoiningBootstrap: the attacker holds a client certificate
// and finds a node that waits to join (hsmd init -join, then serve), whose
// store has no users. Bootstrap there is refused, while it waits and while
// an officer adds it, and no officer of the attacker's appears.
func TestAttackTrustJoiningBootstrap(t *testing.T) {
	c := testcluster.Start(t, 3)
	ca, err := pki.LoadCA(trustPKI(c))
	require.NoError(t, err)
	require.NoError(t, ca.IssueNode(trustPKI(c), "node4", nil))
	conf := fmt.Sprintf(`node = "node4"
listen = "127.0.0.1:0"
addr_file = "node4.addr"
data_dir = "node4"
ca = "pki/ca.pem"
cert = "pki/node4.pem"
key = "pki/node4-key.pem"
passphrase_file = "passphrase"
log_file = "node4.log"
`)
	cfgFile := filepath.Join(c.Dir, "node4.toml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(conf), 0o600))
	hsmd := filepath.Join(testcluster.Bin(t), "hsmd")
	out, err := exec.Command(hsmd, "init", "-config", cfgFile, "-join", c.Addr(1)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	serve := exec.Command(hsmd, "serve", "-config", cfgFile)
	serve.Dir = c.Dir
	require.NoError(t, serve.Start())
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	})
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(c.Dir, "node4.addr"))
		return err == nil && bytes.HasSuffix(b, []byte("\n"))
	}, 30*time.Second, 100*time.Millisecond, "node4 did not start")
	addr := c.Addr(4)
	api := trustAPI(t, c, addr)

	bootstrap := func() error {
		cctx, cancel := trustTimeout(20 * time.Second)
		defer cancel()
		_, err := api.Bootstrap(cctx, &hsmpb.BootstrapRequest{User: "eve", Password: "eve-password-1"})
		return err
	}
	// While it waits to be added.
	err = bootstrap()
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// While an officer adds it.
	done := make(chan error, 1)
	go func() { done <- bootstrap() }()
	out, err = c.HSM([]string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}, "cluster", "add-node", "node4", addr)
	require.NoError(t, err, "%s", out)
	assert.Error(t, <-done)
	assert.NotContains(t, trustUsers(t, c), "eve")
}

// TestAttackTrustLaggingNode: the attacker holds a crypto officer's
// session token that was logged out through node1 while node3, a
// follower, was frozen (SIGSTOP). The logout is answered only after node3's
// lease ran out; when node3 runs again, the token is refused there at once
// and afterwards.
func TestAttackTrustLaggingNode(t *testing.T) {
	c := testcluster.Start(t, 3)
	frozen := 3
	if trustLeader(t, c) == 3 {
		frozen = 2
	}
	trustFrozenRevocation(t, c, frozen, 1)
}

// TestAttackTrustFrozenLeader: as TestAttackTrustLaggingNode, but the
// frozen node is the leader: the others elect another, the logout goes
// through it, and the old leader, running again and still believing it
// leads, refuses the token.
func TestAttackTrustFrozenLeader(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := trustLeader(t, c)
	via := 1
	if leader == 1 {
		via = 2
	}
	trustFrozenRevocation(t, c, leader, via)
}

// trustFrozenRevocation logs an officer in through node via, freezes node
// frozen, logs the session out through via, lets frozen run again and
// uses the token there at once: it must be refused, then and afterwards.
func trustFrozenRevocation(t *testing.T, c *testcluster.Cluster, frozen, via int) {
	t.Helper()
	nv := trustAPI(t, c, c.Addr(via))
	nf := trustAPI(t, c, c.Addr(frozen))
	cctx, cancel := trustTimeout(90 * time.Second)
	defer cancel()
	login, err := nv.Login(cctx, &hsmpb.LoginRequest{User: c.Env["HSM_USER"], Password: c.Env["HSM_PASSWORD"]})
	require.NoError(t, err)
	withToken := metadata.AppendToOutgoingContext(cctx, "x-hsm-session", login.Token)
	require.Eventually(t, func() bool {
		_, err := nf.ListUsers(withToken, &hsmpb.Empty{})
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the token does not work on node%d", frozen)

	pidText, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", frozen)))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	stopped := true
	t.Cleanup(func() {
		if stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	// The others elect a leader among themselves first, if the frozen
	// node led: a logout sent to a frozen leader is not executed.
	require.Eventually(t, func() bool {
		sctx, cancel := trustTimeout(5 * time.Second)
		defer cancel()
		st, err := nv.ClusterStatus(sctx, &hsmpb.Empty{})
		return err == nil && st.Leader != "" && st.Leader != fmt.Sprintf("node%d", frozen)
	}, 30*time.Second, 100*time.Millisecond, "no leader without node%d", frozen)
	_, err = nv.Logout(withToken, &hsmpb.Empty{})
	require.NoError(t, err)
	_, err = nv.ListUsers(withToken, &hsmpb.Empty{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "the logout did not take effect on node%d: %v", via, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	stopped = false

	_, err = nf.ListUsers(withToken, &hsmpb.Empty{})
	require.Error(t, err, "node%d took the logged-out token as soon as it ran again", frozen)
	// Afterwards it answers again, and still refuses the token.
	require.Eventually(t, func() bool {
		_, err := nf.ListUsers(withToken, &hsmpb.Empty{})
		require.Error(t, err, "node%d took the logged-out token", frozen)
		return status.Code(err) == codes.Unauthenticated
	}, 30*time.Second, 100*time.Millisecond, "node%d never answered for the token", frozen)
}

func trustTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
