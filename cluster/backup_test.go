package cluster_test

// Backups end to end: a 3-node cluster takes a backup through the hsm CLI;
// damaged copies are refused by a new cluster before anything is written;
// the good one restored there gives the same users, keys and shares.

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/pki"
)

func TestBackupRestore(t *testing.T) {
	c := testcluster.Start(t, 3)
	pin := c.Env["P11_PIN"]
	coEnv := []string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}

	// Keys, a second crypto user and a share.
	cu := pinned(t, c, 2, "cu1", pin)
	type made struct {
		label string
		id    uint64
		pub   *ecdsa.PublicKey
	}
	var keys []made
	for _, l := range []string{"b1", "b2", "b3"} {
		id, pub := newKey(t, cu, l)
		keys = append(keys, made{l, id, pub})
	}
	// Post-quantum keys (PKCS#11 v3.2) go the same way: an ML-DSA-65 and
	// an ML-KEM-768 pair.
	pq := newPQKeys(t, cu)
	co := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	if err := co.CreateUser(ctx, "cu2", "CU", "second-user-password"); err != nil {
		t.Fatal(err)
	}
	cu.AdvanceIndex(co.Index())
	if err := cu.Share(ctx, keys[0].id, "cu2"); err != nil {
		t.Fatal(err)
	}

	// The backup, taken on demand and copied out with -o.
	file := filepath.Join(t.TempDir(), "cluster.hsmbak")
	out, err := c.HSM(coEnv, "--json", "backup", "create", "-o", file)
	if err != nil {
		t.Fatalf("backup create: %v\n%s", err, out)
	}
	// admin, admin2, cu1, cu2 and kmsuser (cluster.sh made a KMS principal).
	if !bytes.Contains(out, []byte(`"objects": 10`)) || !bytes.Contains(out, []byte(`"users": 5`)) {
		t.Fatalf("backup create said:\n%s", out)
	}
	if !bytes.Contains(out, []byte("write: ")) {
		t.Errorf("backup create showed no progress:\n%s", out)
	}
	// It is listed, with the node that holds it; the membership changes
	// made backups too.
	out, err = c.HSM(coEnv, "--json", "backup", "list")
	if err != nil {
		t.Fatalf("backup list: %v\n%s", err, out)
	}
	var list struct {
		Backups []client.BackupInfo `json:"backups"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("backup list: %v\n%s", err, out)
	}
	if len(list.Backups) < 3 {
		t.Fatalf("want the on-demand backup and two membership backups, got %+v", list.Backups)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	passphrase := filepath.Join(c.Dir, "passphrase")

	// A new cluster refuses damaged copies before writing anything.
	damaged := map[string][]byte{
		"truncated": good[:len(good)-100],
		"tampered":  flip(good, len(good)/2),
		"header":    flip(good, 20),
		"appended":  append(append([]byte{}, good...), 0),
		"empty":     {},
	}
	var fresh *testcluster.Cluster
	for name, b := range damaged {
		bad := filepath.Join(t.TempDir(), name+".hsmbak")
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var out []byte
		if fresh == nil {
			fresh, out, err = testcluster.StartRestore(t, bad, passphrase)
		} else {
			out, err = fresh.HSM(nil, "backup", "restore", bad)
		}
		if err == nil {
			t.Fatalf("%s backup restored:\n%s", name, out)
		}
		if !strings.Contains(string(out), "refused before anything was written") {
			t.Errorf("%s backup: unclear refusal:\n%s", name, out)
		}
	}
	// A cluster with another passphrase cannot open it.
	other := filepath.Join(t.TempDir(), "other-passphrase")
	os.WriteFile(other, []byte("a-different-passphrase\n"), 0o600)
	otherC, out, err := testcluster.StartRestore(t, file, other)
	if err == nil || !strings.Contains(string(out), "does not open this backup") {
		t.Errorf("restore with another passphrase: %v\n%s", err, out)
	}
	// cluster.sh issued that cluster's certificates for the backup's
	// cluster ID, so a restored store and its certificates agree.
	wantID, err := pki.CertFileClusterID(filepath.Join(c.Dir, "pki", "client.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if gotID, err := pki.CertFileClusterID(filepath.Join(otherC.Dir, "pki", "client.pem")); err != nil || gotID != wantID {
		t.Errorf("the restoring cluster's certificates name cluster %q (%v), want the backup's %q", gotID, err, wantID)
	}

	// The good copy restores into the cluster that refused the others.
	out, err = fresh.HSM(nil, "backup", "restore", file)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	for _, want := range []string{"receive: ", "decrypt: ", "restore: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("restore showed no %q progress:\n%s", want, out)
		}
	}
	// Same users: both crypto users log in with their old passwords; the
	// crypto officer too, and adds a node, which receives everything.
	if err := os.WriteFile(filepath.Join(fresh.Dir, "co.password"), []byte(c.Env["HSM_PASSWORD"]), 0o600); err != nil {
		t.Fatal(err)
	}
	k := fresh.Add()
	for _, node := range []int{1, k} {
		r1 := pinned(t, fresh, node, "cu1", pin)
		for _, m := range keys {
			signs(t, r1, "restored "+m.label, m.id, m.pub)
		}
		// Same shares: cu2 uses the shared key, and not the others.
		r2 := pinned(t, fresh, node, "cu2", "second-user-password")
		r2.AdvanceIndex(r1.Index())
		signs(t, r2, "shared restored key", keys[0].id, keys[0].pub)
		pq.work(t, r1, "restored")
		if _, err := r2.Sign(ctx, keys[1].id, keyMech, []byte("x")); client.RV(err) == ck.CKR_OK {
			t.Fatalf("cu2 signed with a key that was not shared with it")
		}
	}
	// Same public keys: the restored public key objects match.
	r := pinned(t, fresh, 1, "cu1", pin)
	objs, err := r.ListObjects(ctx, nil, 0)
	if err != nil || len(objs) != 10 {
		t.Fatalf("restored objects: %d, %v", len(objs), err)
	}
	// A second restore into a cluster in use is refused.
	out, err = fresh.HSM(nil, "backup", "restore", file)
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("a second restore: %v\n%s", err, out)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x40
	return c
}

// The leader takes a backup on its schedule (here every minute, the
// shortest interval allowed) without being asked.
func TestScheduledBackup(t *testing.T) {
	c := testcluster.StartWith(t, 1, `backup_interval = "1m"`)
	co := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	deadline := time.Now().Add(150 * time.Second)
	for {
		bs, _, err := co.ListBackups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) > 0 {
			if bs[0].Users != 4 || bs[0].Node != "node1" { // admin, admin2, cu1, kmsuser
				t.Fatalf("scheduled backup: %+v", bs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled backup after 150 s")
		}
		time.Sleep(2 * time.Second)
	}
	log, err := os.ReadFile(c.LogFile(1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte(`"msg":"backup taken","node":"node1","reason":"schedule"`)) {
		t.Fatalf("the log does not say a scheduled backup was taken:\n%s", log)
	}
}
