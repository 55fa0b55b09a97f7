package security

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/cluster/peerpb"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "modernc.org/sqlite"
)

// auditP256 is the DER of the P-256 curve's OID, for CKA_EC_PARAMS.
var auditP256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// auditList runs `hsm audit list --json` as the crypto officer, against
// node k when k > 0.
func auditList(t *testing.T, c *testcluster.Cluster, k int, args ...string) []client.AuditRecord {
	t.Helper()
	args = append([]string{"audit", "list", "--json"}, args...)
	if k > 0 {
		args = append(args, "--node", c.Addr(k))
	}
	out, err := c.HSM([]string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}, args...)
	require.NoError(t, err, "%s", out)
	var got struct {
		Records []client.AuditRecord `json:"records"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	return got.Records
}

// auditVerify runs `hsm audit verify --json` against node k as the crypto
// officer and returns its report and whether the command failed.
func auditVerify(t *testing.T, c *testcluster.Cluster, k int) (client.AuditReport, bool) {
	t.Helper()
	out, err := c.HSM([]string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]},
		"audit", "verify", "--json", "--node", c.Addr(k))
	var rep client.AuditReport
	js := string(out)
	if i := strings.Index(js, "\nhsm: "); i >= 0 {
		js = js[:i] // the error line that follows the report
	}
	require.NoError(t, json.Unmarshal([]byte(js), &rep), "%s", out)
	return rep, err != nil
}

// auditSignUses sums the successful sign uses of a key.
func auditSignUses(recs []client.AuditRecord, key uint64) (n uint64, seqs []uint64) {
	for _, r := range recs {
		if r.Kind == audit.KindUse && r.Op == audit.UseSign && r.Object == key && r.Result == "ok" {
			n += r.Count
			seqs = append(seqs, r.Seq)
		}
	}
	return n, seqs
}

// auditCopy copies a file (the stopped node's database).
func auditCopy(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// auditTamper edits a stopped node's database file behind hsmd's back.
func auditTamper(t *testing.T, path string, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	for _, q := range queries {
		res, err := db.Exec(q)
		require.NoError(t, err, q)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.NotZero(t, n, "%s changed nothing", q)
	}
}

// TestAttackAuditTamper: the attacker holds write access to one node's
// data directory (not the passphrase, so not the domain key). Key use is
// recorded with exact counts, and every edit of the stored trail (a flipped
// bit, a removed record, two records swapped) is reported by
// `hsm audit verify` against that node, while an untouched node reports OK.
func TestAttackAuditTamper(t *testing.T) {
	c := testcluster.Start(t, 3)
	cu := pinned(t, c, 1, "cu1", secret(t, c, "cu.password"))

	pub, priv, err := cu.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{{Type: ck.CKA_EC_PARAMS, Value: auditP256}, {Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}},
		object.Template{{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}})
	require.NoError(t, err)
	const n = 57
	for i := range n {
		_, err := cu.Sign(ctx, priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte(fmt.Sprint("message ", i)))
		require.NoError(t, err)
	}
	// A sign the key does not allow is counted apart, with its refusal.
	_, err = cu.Sign(ctx, pub, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("x"))
	require.Error(t, err)

	// The counts of a second are sent once it is over: wait for them.
	var recs []client.AuditRecord
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs = auditList(t, c, 2, "--object", fmt.Sprint(priv))
		if got, _ := auditSignUses(recs, priv); got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	got, seqs := auditSignUses(recs, priv)
	require.Equal(t, uint64(n), got, "sign uses recorded for the key: %+v", recs)
	for _, r := range recs {
		if r.Kind == audit.KindUse {
			assert.Equal(t, "cu1", r.User)
			assert.Equal(t, "node1", r.Node, "the node that signed")
			assert.Len(t, r.Cert, 64, "the client certificate's fingerprint")
		}
	}
	var created bool
	for _, r := range auditList(t, c, 1, "--filter-user", "cu1") {
		if r.Kind == audit.KindCommand && r.Op == string(state.OpCreateObjects) && (r.Object == pub || r.Object == priv) {
			created = true
			assert.Equal(t, "applied", r.Result)
			assert.Equal(t, "node1", r.Node)
		}
	}
	assert.True(t, created, "the key pair's creation is recorded")
	refused, _ := auditSignUses(auditList(t, c, 1, "--object", fmt.Sprint(pub)), pub)
	assert.Zero(t, refused, "a refused use is not counted as a use")
	var refusals uint64
	for _, r := range auditList(t, c, 1, "--object", fmt.Sprint(pub)) {
		if r.Kind == audit.KindUse && r.Result != "ok" {
			refusals += r.Count
		}
	}
	assert.Equal(t, uint64(1), refusals)
	// The crypto user reads its own records; another user's it may not.
	own, _, err := cu.ListAudit(ctx, client.AuditQuery{})
	require.NoError(t, err)
	for _, r := range own {
		require.Equal(t, "cu1", r.User)
	}
	_, _, err = cu.ListAudit(ctx, client.AuditQuery{User: c.Env["HSM_USER"]})
	assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), hsmerr.RV(err))
	_, err = cu.VerifyAudit(ctx)
	assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), hsmerr.RV(err))

	// A node stopped right after signing sends the counts of its last
	// second before it leaves: none is lost on a normal stop.
	cu2 := pinned(t, c, 2, "cu1", secret(t, c, "cu.password"))
	const m = 23
	for i := range m {
		_, err := cu2.Sign(ctx, priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte(fmt.Sprint("late ", i)))
		require.NoError(t, err)
	}
	c.Stop(2, false)
	deadline = time.Now().Add(10 * time.Second)
	var fromNode2 uint64
	for {
		fromNode2 = 0
		for _, r := range auditList(t, c, 1, "--object", fmt.Sprint(priv)) {
			if r.Kind == audit.KindUse && r.Op == audit.UseSign && r.Node == "node2" {
				fromNode2 += r.Count
			}
		}
		if fromNode2 >= m || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, uint64(m), fromNode2, "sign uses on node2 before it stopped")
	out, err := c.StartNode(2)
	require.NoError(t, err, "%s", out)

	rep, failed := auditVerify(t, c, 3)
	require.False(t, failed, "%+v", rep)
	require.True(t, rep.OK)

	// Node 3's file, taken while it is stopped, is the pristine copy each
	// scenario starts from.
	db := filepath.Join(c.Dir, "node3", "hsm.db")
	pristine := filepath.Join(c.Dir, "node3-pristine.db")
	c.Stop(3, false)
	for _, ext := range []string{"-wal", "-shm"} {
		_, err := os.Stat(db + ext)
		require.True(t, os.IsNotExist(err), "hsmd left %s behind after a clean stop", db+ext)
	}
	auditCopy(t, db, pristine)
	s := seqs[len(seqs)-1]
	for _, tc := range []struct {
		name     string
		queries  []string
		problem  string
		firstBad uint64
	}{
		{"flip a bit of a use count", []string{fmt.Sprintf(`UPDATE audit SET count = (count | 1) - (count & 1) WHERE seq = %d`, s)},
			state.AuditEdited, s},
		{"delete a record", []string{fmt.Sprintf(`DELETE FROM audit WHERE seq = %d`, s)}, state.AuditMissing, s},
		{"swap two records", []string{
			fmt.Sprintf(`UPDATE audit SET seq = -1 WHERE seq = %d`, s),
			fmt.Sprintf(`UPDATE audit SET seq = %d WHERE seq = %d`, s, s-1),
			fmt.Sprintf(`UPDATE audit SET seq = %d WHERE seq = -1`, s-1)}, state.AuditReordered, s - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auditCopy(t, pristine, db)
			auditTamper(t, db, tc.queries...)
			out, err := c.StartNode(3)
			require.NoError(t, err, "%s", out)
			defer c.Stop(3, false)
			rep, failed := auditVerify(t, c, 3)
			assert.True(t, failed, "hsm audit verify succeeded on a tampered node")
			assert.False(t, rep.OK)
			assert.Equal(t, "node3", rep.Node)
			assert.Equal(t, tc.problem, rep.Problem, "%+v", rep)
			assert.Equal(t, tc.firstBad, rep.FirstBad, "%+v", rep)
			// The other nodes' trails are untouched.
			rep, failed = auditVerify(t, c, 1)
			assert.False(t, failed)
			assert.True(t, rep.OK, "%+v", rep)
		})
	}
	// Put back the pristine file: node 3 catches up and verifies again.
	auditCopy(t, pristine, db)
	out, err = c.StartNode(3)
	require.NoError(t, err, "%s", out)
	rep, failed = auditVerify(t, c, 3)
	assert.False(t, failed)
	assert.True(t, rep.OK, "%+v", rep)
}

// TestAttackAuditForgedUses: the attacker holds a node's certificate and
// key (not the passphrase, so not the domain key) and forwards OpAudit
// commands of its own through the Peer service: one that would hide uses
// by claiming to be a node's batch without a valid proof, and one that
// would charge a crypto user with uses it never made. Both must be refused
// on every node, and the trail must show no such uses.
func TestAttackAuditForgedUses(t *testing.T) {
	c := testcluster.Start(t, 3)
	conf, err := pki.NodePeerConfig(filepath.Join(c.Dir, "pki", "node2.pem"), filepath.Join(c.Dir, "pki", "node2-key.pem"),
		filepath.Join(c.Dir, "pki", "ca.pem"), nil)
	require.NoError(t, err)
	const forgedKey = 777777
	uses := []audit.UseCount{{Time: time.Now().Unix(), User: "cu1", Object: forgedKey, Op: audit.UseSign, Count: 1000}}
	for name, cmd := range map[string]*state.Command{
		"no proof":     {Op: state.OpAudit, Node: "node2", Batch: 1 << 62, Uses: uses},
		"forged proof": {Op: state.OpAudit, Node: "node2", Batch: 1<<62 + 1, Uses: uses, Proof: make([]byte, 32)},
		"as a user":    {Op: state.OpAudit, Actor: "cu1", Node: "node2", Batch: 1<<62 + 2, Uses: uses, Proof: make([]byte, 32)},
	} {
		raw, err := cmd.Encode()
		require.NoError(t, err)
		applied := false
		for k := 1; k <= 3; k++ {
			conn, err := grpc.NewClient(c.Addr(k), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
			require.NoError(t, err)
			resp, err := peerpb.NewPeerClient(conn).Forward(ctx, &peerpb.ForwardRequest{Command: raw})
			conn.Close()
			if err == nil && resp.Rv == 0 {
				applied = true
			}
		}
		assert.False(t, applied, "%s: a forged audit batch was applied", name)
	}
	for _, r := range auditList(t, c, 1, "--object", fmt.Sprint(forgedKey)) {
		assert.NotEqual(t, audit.KindUse, r.Kind, "forged uses in the trail: %+v", r)
	}
	rep, failed := auditVerify(t, c, 1)
	assert.False(t, failed)
	assert.True(t, rep.OK, "%+v", rep)
}
