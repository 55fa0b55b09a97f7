package cluster_test

// Replication and lockout across real daemons: 3 hsmd processes on
// loopback started by scripts/cluster.sh, driven through the client library
// with each client pinned to one node.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/api"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var ctx = context.Background()

// pinned dials node k alone and logs in (if user is not empty).
func pinned(t *testing.T, c *testcluster.Cluster, k int, user, password string) *client.Client {
	t.Helper()
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Nodes = []string{c.Addr(k)}
	cl, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial node%d: %v", k, err)
	}
	t.Cleanup(func() { cl.Close() })
	if user != "" {
		if err := cl.Login(ctx, user, password); err != nil {
			t.Fatalf("login %s on node%d: %v", user, k, err)
		}
	}
	return cl
}

var p256 = func() []byte { b, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}); return b }()

func attr(typ uint64, v []byte) object.Attribute { return object.Attribute{Type: typ, Value: v} }

// newKey makes a token EC P-256 key pair labelled label and returns the
// private key's handle and the public key.
func newKey(t *testing.T, cl *client.Client, label string) (uint64, *ecdsa.PublicKey) {
	t.Helper()
	pubT := object.Template{attr(ck.CKA_TOKEN, object.EncodeBool(true)), attr(ck.CKA_EC_PARAMS, p256), attr(ck.CKA_LABEL, []byte(label))}
	privT := object.Template{attr(ck.CKA_TOKEN, object.EncodeBool(true)), attr(ck.CKA_SIGN, object.EncodeBool(true)), attr(ck.CKA_LABEL, []byte(label))}
	pub, priv, err := cl.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN}, pubT, privT)
	if err != nil {
		t.Fatalf("generate %s: %v", label, err)
	}
	vals, err := cl.GetAttributes(ctx, pub, []uint64{ck.CKA_EC_POINT})
	if err != nil {
		t.Fatal(err)
	}
	var point []byte
	if _, err := asn1.Unmarshal(vals[0].Value, &point); err != nil {
		t.Fatal(err)
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), point)
	if x == nil {
		t.Fatal("bad EC point")
	}
	return priv, &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
}

var keyMech = mech.Mech{Type: ck.CKM_ECDSA_SHA256}

// signs checks that cl signs with key and the signature verifies.
func signs(t *testing.T, cl *client.Client, where string, key uint64, pub *ecdsa.PublicKey) {
	t.Helper()
	msg := []byte("replicated " + where)
	sig, err := cl.Sign(ctx, key, keyMech, msg)
	if err != nil {
		t.Fatalf("%s: sign: %v", where, err)
	}
	h := sha256.Sum256(msg)
	if len(sig) != 64 || !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatalf("%s: the signature does not verify", where)
	}
}

type key struct {
	label string
	id    uint64
	pub   *ecdsa.PublicKey
}

func TestReplication(t *testing.T) {
	// Snapshot often and keep a short log, so that a node added later
	// catches up from a snapshot rather than from the log.
	c := testcluster.StartWith(t, 3, "snapshot_threshold = 16\ntrailing_logs = 4")
	pin := c.Env["P11_PIN"]
	var keys []key
	gen := func(cl *client.Client, label string) {
		id, pub := newKey(t, cl, label)
		keys = append(keys, key{label, id, pub})
	}

	// A key made through one node can be used through each of the
	// others at once: they are given the maker's index, as one client
	// spreading its calls would be.
	c1 := pinned(t, c, 1, "cu1", pin)
	gen(c1, "k1")
	for k := 2; k <= 3; k++ {
		ck := pinned(t, c, k, "cu1", pin)
		ck.AdvanceIndex(c1.Index())
		signs(t, ck, "node"+string(rune('0'+k)), keys[0].id, keys[0].pub)
	}
	c3 := pinned(t, c, 3, "cu1", pin)
	gen(c3, "k2")
	c1.AdvanceIndex(c3.Index())
	signs(t, c1, "node1", keys[1].id, keys[1].pub)

	// A node killed with SIGKILL misses writes, and has them once it is
	// back.
	c.Stop(2, true)
	for i := 0; i < 20; i++ {
		gen(c1, "while-node2-down-"+string(rune('a'+i)))
	}
	if out, err := c.StartNode(2); err != nil {
		t.Fatalf("restart node2: %v\n%s", err, out)
	}
	c2 := pinned(t, c, 2, "cu1", pin)
	c2.AdvanceIndex(c1.Index())
	for _, k := range keys {
		signs(t, c2, "restarted node2 "+k.label, k.id, k.pub)
	}

	// A node added later holds every key. Raft compacts its log only when
	// it takes a snapshot (checked every few seconds): wait until every
	// node has one, so the added node cannot be sent the log from its start.
	waitSnapshots(t, c, 3)
	k := c.Add()
	c4 := pinned(t, c, k, "cu1", pin)
	c4.AdvanceIndex(c1.Index())
	for _, k := range keys {
		signs(t, c4, "added node "+k.label, k.id, k.pub)
	}
	objs, err := c4.ListObjects(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(keys); len(objs) != want {
		t.Fatalf("the added node lists %d objects, want %d", len(objs), want)
	}
	log, err := os.ReadFile(c.LogFile(k))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("restored a snapshot")) {
		t.Fatalf("the added node did not catch up from a snapshot; its log:\n%s", log)
	}

	// The membership shows four healthy members and one leader.
	st, err := c1.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, n := range st.Nodes {
		if !n.Reachable {
			t.Errorf("%s is unreachable", n.Name)
		}
		if n.Leader {
			leaders++
		}
	}
	if len(st.Nodes) != 4 || leaders != 1 {
		t.Fatalf("status: %+v", st)
	}
}

func TestLockoutAcrossNodes(t *testing.T) {
	c := testcluster.Start(t, 3)
	pin := c.Env["P11_PIN"]
	// Five wrong passwords, spread over the three nodes.
	for i, k := range []int{1, 2, 3, 1, 2} {
		cl := pinned(t, c, k, "", "")
		err := cl.Login(ctx, "cu1", "wrong-password-"+string(rune('a'+i)))
		if client.RV(err) != ck.CKR_PIN_INCORRECT {
			t.Fatalf("wrong password %d on node%d: %v", i+1, k, err)
		}
	}
	// The right password is now refused on every node.
	for k := 1; k <= 3; k++ {
		cl := pinned(t, c, k, "", "")
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := cl.Login(ctx, "cu1", pin)
			if client.RV(err) == ck.CKR_PIN_LOCKED {
				break
			}
			if err == nil {
				t.Fatalf("node%d: the right password logged in after five wrong ones over three nodes", k)
			}
			if time.Now().After(deadline) {
				t.Fatalf("node%d: %v, want CKR_PIN_LOCKED", k, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A crypto officer unlocks it through any node.
	co := pinned(t, c, 3, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	if err := co.UnlockUser(ctx, "cu1"); err != nil {
		t.Fatal(err)
	}
	cl := pinned(t, c, 2, "", "")
	cl.AdvanceIndex(co.Index())
	if err := cl.Login(ctx, "cu1", pin); err != nil {
		t.Fatalf("login after unlock: %v", err)
	}
}

func TestMembershipRefusals(t *testing.T) {
	c := testcluster.Start(t, 1)
	co := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	cases := []struct {
		name, addr string
		rv         uint64
		msg        string
	}{
		{"node9", "127.0.0.1:1", ck.CKR_ARGUMENTS_BAD, "did not answer"},
		{"node1", c.Addr(1), ck.CKR_ARGUMENTS_BAD, "not waiting to join"},
		{"bad name!", "127.0.0.1:1", ck.CKR_ARGUMENTS_BAD, "name"},
		{"node9", "no-port", ck.CKR_ARGUMENTS_BAD, "host:port"},
	}
	for _, tc := range cases {
		err := co.AddNode(ctx, tc.name, tc.addr)
		if client.RV(err) != tc.rv || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("add %q %q: %v, want %s with %q", tc.name, tc.addr, err, ck.RVName(tc.rv), tc.msg)
		}
	}
	if err := co.RemoveNode(ctx, "node1"); client.RV(err) == 0 {
		t.Error("removing the last node succeeded")
	}
	cu := pinned(t, c, 1, "cu1", c.Env["P11_PIN"])
	if err := cu.AddNode(ctx, "node9", "127.0.0.1:1"); client.RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
		t.Errorf("a crypto user added a node: %v", err)
	}
	st, err := co.ClusterStatus(ctx)
	if err != nil || len(st.Nodes) != 1 {
		t.Fatalf("status after refusals: %+v, %v", st, err)
	}
}

// rawNode is a bare gRPC connection to node k with the cluster's client
// certificate, to handle tokens by hand.
func rawNode(t *testing.T, c *testcluster.Cluster, k int) hsmpb.HSMClient {
	t.Helper()
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ClientConfigFor(cfg.Cert, cfg.Key, cfg.CA, cfg.ServerName)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(c.Addr(k), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return hsmpb.NewHSMClient(conn)
}

func TestLogoutAcrossNodes(t *testing.T) {
	c := testcluster.Start(t, 3)
	n1, n2 := rawNode(t, c, 1), rawNode(t, c, 2)
	var hdr metadata.MD
	login, err := n1.Login(ctx, &hsmpb.LoginRequest{User: "cu1", Password: c.Env["P11_PIN"]}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	withToken := func(idx string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, api.HeaderSession, login.Token, api.HeaderMinIndex, idx)
	}
	idx := hdr.Get(api.HeaderIndex)
	if len(idx) != 1 {
		t.Fatalf("no %s header", api.HeaderIndex)
	}
	if _, err := n2.ListUsers(withToken(idx[0]), &hsmpb.Empty{}); err != nil {
		t.Fatalf("the token does not work on node2: %v", err)
	}
	if _, err := n1.Logout(withToken(idx[0]), &hsmpb.Empty{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	_, err = n2.ListUsers(withToken(hdr.Get(api.HeaderIndex)[0]), &hsmpb.Empty{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "logged out") {
		t.Fatalf("node2 after a logout on node1: %v", err)
	}
	// Still refused after node2 restarts (the logout is in its store).
	c.Stop(2, true)
	if out, err := c.StartNode(2); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	n2 = rawNode(t, c, 2)
	_, err = n2.ListUsers(withToken(hdr.Get(api.HeaderIndex)[0]), &hsmpb.Empty{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("restarted node2 after a logout on node1: %v", err)
	}
}

// waitSnapshots waits (up to a minute) until each of nodes 1..n has taken a
// Raft snapshot.
func waitSnapshots(t *testing.T, c *testcluster.Cluster, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for k := 1; k <= n; k++ {
		for {
			dirs, _ := os.ReadDir(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "raft", "snapshots"))
			if len(dirs) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node%d took no snapshot in a minute", k)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// An officer's membership changes work through a node that does not lead:
// the leader checks the officer's session that node sends with its proof.
func TestMembershipByOfficerThroughFollower(t *testing.T) {
	c := testcluster.Start(t, 3)
	st, err := pinned(t, c, 1, "", "").ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	follower, other := 0, ""
	for _, n := range st.Nodes {
		if n.Leader {
			continue
		}
		if follower == 0 {
			fmt.Sscanf(n.Name, "node%d", &follower)
		} else {
			other = n.Name
		}
	}
	if follower == 0 || other == "" {
		t.Fatalf("status: %+v", st)
	}
	co := pinned(t, c, follower, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	if err := co.RemoveNode(ctx, other); err != nil {
		t.Fatalf("remove %s through node%d: %v", other, follower, err)
	}
	st, err = co.ClusterStatus(ctx)
	if err != nil || len(st.Nodes) != 2 {
		t.Fatalf("status after the removal: %+v, %v", st, err)
	}
	cu := pinned(t, c, follower, "cu1", c.Env["P11_PIN"])
	if err := cu.RemoveNode(ctx, "node1"); client.RV(err) != ck.CKR_USER_NOT_LOGGED_IN {
		t.Errorf("a crypto user removed a node: %v", err)
	}
	// The removed node is no longer a member: the others refuse its Peer
	// calls, so it cannot take the next add-node. Stop it, as one would.
	var removed int
	fmt.Sscanf(other, "node%d", &removed)
	c.Stop(removed, false)
	k := c.Add()
	st, err = pinned(t, c, k, "", "").ClusterStatus(ctx)
	if err != nil || len(st.Nodes) != 3 {
		t.Fatalf("status after the addition: %+v, %v", st, err)
	}
}
