package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/quorum"
	"github.com/stretchr/testify/require"
)

// quorumKey makes an approval key for an officer and registers it through
// hc (logged in as that officer).
func quorumKey(t *testing.T, hc *client.Client) any {
	t.Helper()
	priv, _, err := client.GenerateQuorumKey("ecdsa-p256")
	require.NoError(t, err)
	require.NoError(t, hc.RegisterQuorumKey(ctx, priv))
	return priv
}

// quorumSecondOfficer is the second officer cluster.sh makes (admin2, the
// one `make run` prints as HSM_USER2); it returns its password.
func quorumSecondOfficer(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	require.Equal(t, "admin2", c.Env["HSM_USER2"])
	require.NotEmpty(t, c.Env["HSM_PASSWORD2"])
	return c.Env["HSM_PASSWORD2"]
}

// quorumRefused asserts that err is a quorum refusal.
func quorumRefused(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, "%s was allowed", what)
	require.Equal(t, uint64(ck.CKR_ACTION_PROHIBITED), client.RV(err), "%s: %v", what, err)
}

// TestAttackQuorumPasswordReset: the attacker holds one crypto officer's
// password (admin) and that officer's approval key. With quorum 2 for user
// management, resetting cu1's password, alone, with no token or with a
// token only admin approved, is refused and cu1's password keeps working;
// lowering the quorum alone is refused too. Only a second officer's
// approval lets the reset through, once.
func TestAttackQuorumPasswordReset(t *testing.T) {
	c := testcluster.Start(t, 3)
	coPW, cuPW := secret(t, c, "co.password"), secret(t, c, "cu.password")
	co := pinned(t, c, 1, "admin", coPW)
	admin2PW := quorumSecondOfficer(t, c)
	adminKey := quorumKey(t, co)

	// admin2 makes and registers a key with the CLI, on its own machine.
	env := []string{"HSM_USER=admin2", "HSM_PASSWORD=" + admin2PW}
	keyFile := filepath.Join(t.TempDir(), "admin2.pem")
	out, err := c.HSM(env, "quorum", "keygen", "-o", keyFile)
	require.NoError(t, err, "%s", out)
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	out, err = c.HSM(env, "quorum", "register-key", "--key", keyFile)
	require.NoError(t, err, "%s", out)

	// Raising M from 1 needs no token: while every M is 1 a single officer
	// can already do all of it. M above the two registered officers is
	// refused.
	require.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), client.RV(co.SetQuorumPolicy(ctx, quorum.ServiceUserManagement, 3)))
	require.NoError(t, co.SetQuorumPolicy(ctx, quorum.ServiceUserManagement, 2))

	newPW := "cu1-reset-" + strings.Repeat("z", 20)
	cuWorks := func(pw string) error {
		cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
		require.NoError(t, err)
		cl, err := client.Dial(ctx, cfg)
		require.NoError(t, err)
		defer cl.Close()
		return cl.Login(ctx, "cu1", pw)
	}

	// Alone, no token.
	quorumRefused(t, co.SetPassword(ctx, "cu1", newPW), "a reset without a token")
	// Alone, lowering the quorum first.
	quorumRefused(t, co.SetQuorumPolicy(ctx, quorum.ServiceUserManagement, 1), "lowering M alone")
	// Alone, making a new officer to approve with.
	quorumRefused(t, co.CreateUser(ctx, "sock-puppet", "CO", newPW), "creating an officer alone")

	// A token approved by admin only.
	tok, err := co.CreateQuorumToken(ctx, quorum.ServiceUserManagement)
	require.NoError(t, err)
	require.Equal(t, 2, tok.Required)
	_, err = co.ApproveQuorumToken(ctx, tok.ID, adminKey)
	require.NoError(t, err)
	_, err = co.ApproveQuorumToken(ctx, tok.ID, adminKey)
	require.Error(t, err, "a second approval by the same officer was taken")
	quorumRefused(t, co.SetPassword(client.WithQuorumToken(ctx, tok.ID), "cu1", newPW), "a reset approved by admin alone")
	// A crypto user cannot approve.
	cu := pinned(t, c, 2, "cu1", cuPW)
	_, err = cu.ApproveQuorumToken(ctx, tok.ID, adminKey)
	require.Error(t, err, "a crypto user approved")
	require.NoError(t, cuWorks(cuPW), "cu1's password changed after refused resets")

	// admin2 approves, on another node, with the CLI.
	// A fresh CLI process carries no log index, so node3 may not have
	// applied the token yet (it lags by at most its lease pull): try again
	// while it says so.
	for i := 0; i < 20; i++ {
		out, err = c.HSM(append(env, "HSM_CONFIG="+quorumNodeConfig(t, c, 3)), "quorum", "token", "approve", tok.ID, "--key", keyFile)
		if err == nil || !strings.Contains(string(out), "no live quorum token") {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.NoError(t, err, "%s", out)
	out, err = c.HSM(env, "quorum", "token", "list")
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "2/2 (admin,admin2)")

	// admin resets cu1's password with the CLI and the approved token.
	pwFile := filepath.Join(t.TempDir(), "new.password")
	require.NoError(t, os.WriteFile(pwFile, []byte(newPW+"\n"), 0o600))
	adminEnv := []string{"HSM_USER=admin", "HSM_PASSWORD=" + coPW}
	out, err = c.HSM(adminEnv, "user", "reset", "cu1", "--new-password-file", pwFile, "--quorum-token", tok.ID)
	require.NoError(t, err, "%s", out)
	require.NoError(t, cuWorks(newPW), "cu1's new password")
	require.Error(t, cuWorks(cuPW), "cu1's old password still works")

	// The token is spent.
	quorumRefused(t, co.SetPassword(client.WithQuorumToken(ctx, tok.ID), "cu1", cuPW), "reusing a spent token")
	// A reset that names no token (all the PKCS#11 library's C_InitPIN can
	// send) is refused with a message that names the CLI.
	err = co.SetPassword(ctx, "cu1", cuPW)
	quorumRefused(t, err, "a reset without a token")
	require.Contains(t, err.Error(), "hsm quorum token create")
}

// quorumNodeConfig writes a client configuration that reaches node k only.
func quorumNodeConfig(t *testing.T, c *testcluster.Cluster, k int) string {
	t.Helper()
	b, err := os.ReadFile(c.Env["HSM_CONFIG"])
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "nodes") {
			l = `nodes = ["` + c.Addr(k) + `"]`
		}
		lines = append(lines, l)
	}
	p := filepath.Join(c.Dir, "client-quorum.toml")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o600))
	return p
}

// TestAttackQuorumMembership: the attacker holds one crypto officer's
// password and approval key. With quorum 2 for cluster membership, adding
// a node or removing one alone is refused and the membership is unchanged;
// with a second officer's approval the add goes through.
func TestAttackQuorumMembership(t *testing.T) {
	c := testcluster.Start(t, 2)
	co := pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	admin2PW := quorumSecondOfficer(t, c)
	co2 := pinned(t, c, 2, "admin2", admin2PW)
	adminKey, admin2Key := quorumKey(t, co), quorumKey(t, co2)
	co.AdvanceIndex(co2.Index()) // node1 sees admin2's key before M counts it
	require.NoError(t, co.SetQuorumPolicy(ctx, quorum.ServiceClusterMembership, 2))

	// cluster.sh add prepares node3 and adds it as admin alone: refused.
	out, err := c.Script("add", c.Dir)
	require.Error(t, err, "a single officer added a node:\n%s", out)
	require.Contains(t, string(out), "CKR_ACTION_PROHIBITED")
	members := func() int {
		st, err := co.ClusterStatus(ctx)
		require.NoError(t, err)
		return len(st.Nodes)
	}
	require.Equal(t, 2, members())
	quorumRefused(t, co.RemoveNode(ctx, "node2"), "removing a node alone")
	require.Equal(t, 2, members())

	// Approved by admin only: still refused.
	tok, err := co.CreateQuorumToken(ctx, quorum.ServiceClusterMembership)
	require.NoError(t, err)
	_, err = co.ApproveQuorumToken(ctx, tok.ID, adminKey)
	require.NoError(t, err)
	addr := c.Addr(3)
	quorumRefused(t, co.AddNode(client.WithQuorumToken(ctx, tok.ID), "node3", addr), "adding a node with one approval")
	require.Equal(t, 2, members())

	// A user-management token does not do either.
	um, err := co.CreateQuorumToken(ctx, quorum.ServiceUserManagement)
	require.NoError(t, err)
	_, err = co.ApproveQuorumToken(ctx, um.ID, adminKey)
	require.NoError(t, err)
	co2.AdvanceIndex(co.Index()) // admin2 is on node2: let it see the token admin made
	_, err = co2.ApproveQuorumToken(ctx, um.ID, admin2Key)
	require.NoError(t, err)
	quorumRefused(t, co.AddNode(client.WithQuorumToken(ctx, um.ID), "node3", addr), "adding a node with a user-management token")

	// With admin2's approval the add goes through.
	co2.AdvanceIndex(co.Index())
	_, err = co2.ApproveQuorumToken(ctx, tok.ID, admin2Key)
	require.NoError(t, err)
	co.AdvanceIndex(co2.Index())
	require.NoError(t, co.AddNode(client.WithQuorumToken(ctx, tok.ID), "node3", addr))
	require.Equal(t, 3, members())
	// And the token is spent.
	quorumRefused(t, co.RemoveNode(client.WithQuorumToken(ctx, tok.ID), "node3"), "reusing a spent token")
	require.Equal(t, 3, members())
}
