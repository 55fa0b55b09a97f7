package security

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func miscCopyFile(t *testing.T, from, to string) {
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

// TestAttackMiscStoreAheadOfLog: a node whose Raft log lost its tail while
// the store kept it (what sync = false and a crash can do, played here by
// putting back an older copy of the log) would hold commands the cluster
// never committed. It must refuse to start, say why, and change nothing.
func TestAttackMiscStoreAheadOfLog(t *testing.T) {
	c := testcluster.StartWith(t, 1, "sync = false")
	raftDB := filepath.Join(c.Dir, "node1", "raft", "raft.db")
	saved := filepath.Join(t.TempDir(), "raft.db")

	c.Stop(1, false)
	miscCopyFile(t, raftDB, saved)
	_, err := c.StartNode(1)
	require.NoError(t, err)

	cu := pinned(t, c, 1, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])
	for i := 0; i < 5; i++ {
		_, err := cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
			{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
			{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
		})
		require.NoError(t, err)
	}
	cu.Close()
	c.Stop(1, false)

	store := filepath.Join(c.Dir, "node1", "hsm.db")
	before, err := os.ReadFile(store)
	require.NoError(t, err)
	miscCopyFile(t, saved, raftDB)

	out, err := c.StartNode(1)
	require.Error(t, err, "a node whose store is ahead of its log started")
	assert.Contains(t, string(out), "ahead", "the refusal says why")
	assert.Contains(t, string(out), "hsmd init -join", "the refusal says what to do")
	after, err := os.ReadFile(store)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the refused start changed the store")
}

// miscProcStatus reads one field of /proc/PID/<file> of node k.
func miscNodeProc(t *testing.T, c *testcluster.Cluster, k int, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", k)))
	require.NoError(t, err)
	out, err := os.ReadFile(fmt.Sprintf("/proc/%s/%s", strings.TrimSpace(string(b)), file))
	require.NoError(t, err)
	return string(out)
}

// TestAttackMiscNoCoreDump: someone who can crash the daemon, or read what
// the host keeps of a crashed process, must not find the domain key in a
// core file, nor (where the host lets the daemon lock a few pages) in swap.
// The daemon turns core files off before it unseals anything, and locks
// the pages of the domain key and its derived keys.
func TestAttackMiscNoCoreDump(t *testing.T) {
	c := testcluster.Start(t, 1)
	limits := miscNodeProc(t, c, 1, "limits")
	assert.Regexp(t, `(?m)^Max core file size\s+0\s+0\s+bytes`, limits)

	status := miscNodeProc(t, c, 1, "status")
	log, err := os.ReadFile(c.LogFile(1))
	require.NoError(t, err)
	if strings.Contains(string(log), "could not be locked in memory") {
		// The host refused even a few pages (RLIMIT_MEMLOCK 0): said so.
		var cur unix.Rlimit
		require.NoError(t, unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur))
		assert.Less(t, cur.Cur, uint64(64<<10), "the daemon could not lock the domain key under a limit of %d bytes", cur.Cur)
		return
	}
	assert.NotRegexp(t, `(?m)^VmLck:\s+0 kB`, status, "the domain key's pages are not locked")
}

// TestAttackMiscRotatePassphrase: a crypto officer alone (password, no
// passphrase) must not be able to choose the secret that opens the
// backups, and a crypto user cannot rotate at all. With the current
// passphrase an officer re-seals the domain key; every node gets the new
// record, the old passphrase no longer starts a node, and the new one does.
func TestAttackMiscRotatePassphrase(t *testing.T) {
	c := testcluster.Start(t, 3)
	co := []string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}
	cu := []string{"HSM_USER=" + c.Env["P11_TOKEN_LABEL"], "HSM_PASSWORD=" + c.Env["P11_PIN"]}
	oldPass := filepath.Join(c.Dir, "passphrase")
	tmp := t.TempDir()
	wrong := filepath.Join(tmp, "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("not the passphrase at all\n"), 0o600))
	newPass := filepath.Join(tmp, "new")
	newSecret := "a brand new passphrase for the cluster"
	require.NoError(t, os.WriteFile(newPass, []byte(newSecret+"\n"), 0o600))

	out, err := c.HSM(cu, "cluster", "rotate-passphrase", "--old", oldPass, "--new", newPass)
	require.Error(t, err, "a crypto user rotated the passphrase: %s", out)
	out, err = c.HSM(co, "cluster", "rotate-passphrase", "--old", wrong, "--new", newPass)
	require.Error(t, err, "an officer without the passphrase rotated it: %s", out)
	assert.Contains(t, string(out), "does not unseal")
	assert.NotContains(t, string(out), newSecret)

	// Neither refusal changed the record: a node still starts with the old
	// passphrase.
	c.Stop(3, false)
	_, err = c.StartNode(3)
	require.NoError(t, err, "the old passphrase no longer starts a node after refused rotations")

	out, err = c.HSM(co, "cluster", "rotate-passphrase", "--old", oldPass, "--new", newPass)
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), newSecret)

	// Every node now holds the new record: with the old passphrase file a
	// restarted node refuses to start; with the new one it starts and serves.
	c.Stop(2, false)
	out, err = c.StartNode(2)
	require.Error(t, err, "node2 started with the old passphrase after the rotation")
	assert.Contains(t, string(out), "does not unseal")
	miscCopyFile(t, newPass, oldPass)
	_, err = c.StartNode(2)
	require.NoError(t, err)
	cl := pinned(t, c, 2, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])
	_, err = cl.GenerateRandom(ctx, 16)
	require.NoError(t, err)

	// The members still agree that they hold one domain key.
	status, err := c.HSM(nil, "cluster", "status")
	require.NoError(t, err, "%s", status)
	assert.NotContains(t, string(status), "unreachable")
}

// TestAttackMiscBackupFileAlone: whoever gets a backup file (and nothing
// else) finds no key material, no data object value and no password in it:
// everything is sealed under the domain key, which the passphrase seals.
// (That another passphrase cannot restore it, and that a damaged copy is
// refused before anything is written, cluster's TestBackupRestore shows.)
func TestAttackMiscBackupFileAlone(t *testing.T) {
	c := testcluster.Start(t, 1)
	cu := pinned(t, c, 1, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])
	marker := make([]byte, 32)
	_, err := rand.Read(marker)
	require.NoError(t, err)
	_, err = cu.CreateObject(ctx, object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_PRIVATE, Value: object.EncodeBool(true)},
		{Type: ck.CKA_VALUE, Value: marker},
	})
	require.NoError(t, err)
	// A key its owner may read: its value is known here, to look for.
	key, err := cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
		{Type: ck.CKA_SENSITIVE, Value: object.EncodeBool(false)},
		{Type: ck.CKA_EXTRACTABLE, Value: object.EncodeBool(true)},
	})
	require.NoError(t, err)
	vals, err := cu.GetAttributes(ctx, key, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	keyValue := vals[0].Value
	require.Len(t, keyValue, 32)

	file := filepath.Join(t.TempDir(), "cluster.hsmbak")
	co := []string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}
	out, err := c.HSM(co, "backup", "create", "-o", file)
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotEmpty(t, b)
	for name, secret := range map[string][]byte{
		"the data object's value":    marker,
		"the key's value":            keyValue,
		"the crypto user's password": []byte(c.Env["P11_PIN"]),
		"the officer's password":     []byte(c.Env["HSM_PASSWORD"]),
		"the passphrase":             []byte(secret(t, c, "passphrase")),
	} {
		for form, needle := range map[string][]byte{"raw": secret, "hex": []byte(hex.EncodeToString(secret)),
			"base64": []byte(base64.StdEncoding.EncodeToString(secret))} {
			assert.False(t, bytes.Contains(b, needle), "%s is in the backup file (%s)", name, form)
		}
	}
}

// miscRawConn dials node 1 with a client certificate of the cluster's CA.
func miscRawConn(t *testing.T, c *testcluster.Cluster, certName string) hsmpb.HSMClient {
	t.Helper()
	pkiDir := filepath.Join(c.Dir, "pki")
	conf, err := pki.ClientConfigFor(pki.CertPath(pkiDir, certName), pki.KeyPath(pkiDir, certName), filepath.Join(pkiDir, "ca.pem"), "localhost")
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.Addr(1), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return hsmpb.NewHSMClient(conn)
}

// TestAttackMiscStolenToken: a session token copied off one application
// (its logs, its memory) is of no use over another client certificate of
// the same cluster: it is bound to the certificate of its login.
func TestAttackMiscStolenToken(t *testing.T) {
	c := testcluster.Start(t, 1)
	ca, err := pki.LoadCA(filepath.Join(c.Dir, "pki"))
	require.NoError(t, err)
	require.NoError(t, ca.IssueClient(filepath.Join(c.Dir, "pki"), "thief"))

	owner := miscRawConn(t, c, "client")
	resp, err := owner.Login(ctx, &hsmpb.LoginRequest{User: c.Env["P11_TOKEN_LABEL"], Password: c.Env["P11_PIN"]})
	require.NoError(t, err)
	withToken := metadata.AppendToOutgoingContext(ctx, "x-hsm-session", resp.GetToken())
	_, err = owner.GenerateRandom(withToken, &hsmpb.RandomRequest{Length: 16})
	require.NoError(t, err, "the token works for its owner")

	thief := miscRawConn(t, c, "thief")
	_, err = thief.ListUsers(ctx, &hsmpb.Empty{})
	require.Error(t, err, "no token, no call")
	for name, call := range map[string]func() error{
		"GenerateRandom": func() error { _, err := thief.GenerateRandom(withToken, &hsmpb.RandomRequest{Length: 16}); return err },
		"ListObjects":    func() error { _, err := thief.ListObjects(withToken, &hsmpb.FindObjectsRequest{}); return err },
		"Refresh":        func() error { _, err := thief.Refresh(withToken, &hsmpb.Empty{}); return err },
		"Logout":         func() error { _, err := thief.Logout(withToken, &hsmpb.Empty{}); return err },
	} {
		err := call()
		require.Error(t, err, "%s with a stolen token", name)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%s: %v", name, err)
		assert.NotContains(t, err.Error(), resp.GetToken())
	}
	// The owner's session is untouched by the attempts.
	_, err = owner.GenerateRandom(withToken, &hsmpb.RandomRequest{Length: 16})
	require.NoError(t, err)
}
