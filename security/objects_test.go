package security

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/require"
)

// objectsUntilCaughtUp runs fn until the node it asks answers something
// other than "not caught up yet" (CKR_DEVICE_ERROR), within a bound, and
// returns that answer.
func objectsUntilCaughtUp(t *testing.T, fn func() error) error {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := fn()
		if !hsmerr.IsRV(err, ck.CKR_DEVICE_ERROR) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// objectsUser makes a crypto user through the officer and returns its password.
func objectsUser(t *testing.T, c *testcluster.Cluster, name string) string {
	t.Helper()
	co := pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	pw := name + "-" + hex.EncodeToString(objectsRandom(t, 8))
	require.NoError(t, co.CreateUser(ctx, name, "CU", pw))
	return pw
}

func objectsRandom(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func objectsBool(t uint64, v bool) object.Attribute {
	return object.Attribute{Type: t, Value: object.EncodeBool(v)}
}

func objectsUlong(t, v uint64) object.Attribute {
	return object.Attribute{Type: t, Value: object.EncodeUlong(v)}
}

// objectsDump is a node's whole replicated state, read from its store file
// while the node is stopped: users, objects with their shares, and meta.
func objectsDump(t *testing.T, c *testcluster.Cluster, k int) string {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "hsm.db"), sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	var b strings.Builder
	users, err := st.Users()
	require.NoError(t, err)
	for _, u := range users {
		fmt.Fprintf(&b, "user %s role=%d gen=%d failed=%d locked=%t number=%d mac=%x\n",
			u.Name, u.Role, u.Generation, u.FailedLogins, u.Locked, u.Number, u.MAC)
	}
	objs, err := st.Find(state.Query{})
	require.NoError(t, err)
	for _, o := range objs {
		fmt.Fprintf(&b, "object %d owner=%s shared=%v attrs=%x sealed=%x mac=%x\n",
			o.ID, o.Owner, o.SharedWith, object.MarshalAttrs(o.Attrs), o.Sealed, o.MAC)
	}
	for _, key := range []string{state.MetaDomainKey, state.MetaLoggedOut} {
		v, err := st.Meta(key)
		if !errors.Is(err, state.ErrNotFound) {
			require.NoError(t, err)
		}
		fmt.Fprintf(&b, "meta %s=%x\n", key, v)
	}
	return b.String()
}

// TestAttackObjectsStoreFaultStops plays finding 9. The attacker holds a
// crypto user's password (cu2) and was a sharee of cu1's key; cu1 unshares
// it while node3's store fails under the unshare (an injected write fault,
// as a full disk would cause). Before, node3 took the failure for a
// refusal, skipped the unshare and let cu2 keep using the key there. Now
// node3 must stop (exit code 70, a log line saying why) instead of
// diverging; nodes 1 and 2 refuse cu2; node3, restarted without the
// fault, applies the unshare again from its log and refuses cu2 too; and
// the three stores end identical.
func TestAttackObjectsStoreFaultStops(t *testing.T) {
	// Production binaries carry no fault injection.
	plain, err := os.ReadFile(filepath.Join(testcluster.Bin(t), "hsmd"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(plain, []byte("OPENHSM_FAULT")), "the default hsmd build holds the fault injection")

	c := testcluster.StartOpts(t, 3, testcluster.Options{Tags: "faultinject"})
	tagged, err := os.ReadFile(filepath.Join(c.BinDir(), "hsmd"))
	require.NoError(t, err)
	require.True(t, bytes.Contains(tagged, []byte("OPENHSM_FAULT")), "the faultinject build lacks the fault injection")

	cu2pw := objectsUser(t, c, "cu2")
	cu1 := pinned(t, c, 1, "cu1", secret(t, c, "cu.password"))
	key, err := cu1.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
		objectsUlong(ck.CKA_VALUE_LEN, 32), objectsBool(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	require.NoError(t, cu1.Share(ctx, key, "cu2"))
	use := func(cl *client.Client) error {
		_, err := cl.Encrypt(ctx, key, objectsCBC(), []byte("the sharee's data"))
		return err
	}

	// Arm the fault on node3 alone: restart it with OPENHSM_FAULT set.
	c.Stop(3, false)
	node3 := c.RunNode(3, []string{"OPENHSM_FAULT=op=unshare,after=0"})
	sharee3 := pinned(t, c, 3, "cu2", cu2pw)
	sharee3.AdvanceIndex(cu1.Index())
	require.NoError(t, objectsUntilCaughtUp(t, func() error { return use(sharee3) }), "before the unshare, cu2 uses the shared key on node3")

	require.NoError(t, cu1.Unshare(ctx, key, "cu2"), "the majority (nodes 1 and 2) commits the unshare")
	code, ended := node3.Wait(2 * time.Minute)
	require.True(t, ended, "node3 went on after its store failed under the unshare")
	require.Equal(t, 70, code, "node3's exit code")
	logb, err := os.ReadFile(c.LogFile(3))
	require.NoError(t, err)
	require.Contains(t, string(logb), "stopping: this node cannot go on safely")
	require.Contains(t, string(logb), "injected store fault")

	for _, k := range []int{1, 2} {
		cl := pinned(t, c, k, "cu2", cu2pw)
		cl.AdvanceIndex(cu1.Index())
		err := objectsUntilCaughtUp(t, func() error { return use(cl) })
		require.True(t, hsmerr.IsRV(err, ck.CKR_KEY_HANDLE_INVALID), "node%d: the former sharee got %v", k, err)
	}

	// node3 restarts without the fault and recovers from its log.
	out, err := c.StartNode(3)
	require.NoError(t, err, "%s", out)
	barrier, err := cu1.CreateObject(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_DATA),
		objectsBool(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte("barrier")}})
	require.NoError(t, err)
	sharee3 = pinned(t, c, 3, "cu2", cu2pw)
	sharee3.AdvanceIndex(cu1.Index())
	err = objectsUntilCaughtUp(t, func() error { return use(sharee3) })
	require.True(t, hsmerr.IsRV(err, ck.CKR_KEY_HANDLE_INVALID), "node3 after recovery: the former sharee got %v", err)
	for k := 1; k <= 3; k++ {
		cl := pinned(t, c, k, "cu1", secret(t, c, "cu.password"))
		cl.AdvanceIndex(cu1.Index())
		require.NoError(t, objectsUntilCaughtUp(t, func() error {
			_, err := cl.GetAttributes(ctx, barrier, []uint64{ck.CKA_LABEL})
			return err
		}), "node%d", k)
	}

	// No divergence: the three stores hold the same users, objects and shares.
	out, err = c.Script("down", c.Dir)
	require.NoError(t, err, "%s", out)
	want := objectsDump(t, c, 1)
	require.Contains(t, want, fmt.Sprintf("object %d owner=cu1 shared=[]", key))
	for _, k := range []int{2, 3} {
		require.Equal(t, want, objectsDump(t, c, k), "node%d's store differs from node1's", k)
	}
}

func objectsCBC() mech.Mech {
	return mech.Mech{Type: ck.CKM_AES_CBC_PAD, Param: &mech.IVParams{IV: make([]byte, 16)}}
}

// objectsNeedles are the forms a secret could take in a file: raw, hex, and
// base64 (JSON's []byte, standard and URL alphabets) at each of the three
// alignments it could have inside a longer encoded run.
func objectsNeedles(secret []byte) [][]byte {
	out := [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret)))}
	for a := 0; a < 3; a++ {
		padded := append(make([]byte, a), secret...)
		first, end := (a+2)/3, (a+len(secret))/3 // whole groups of 3 bytes inside the secret
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString(padded)
			out = append(out, []byte(e[4*first:4*end]))
		}
	}
	return out
}

// objectsScan returns the files under dir that hold secret in any of its
// forms.
func objectsScan(t *testing.T, dir string, secret []byte) (found []string, scanned int) {
	t.Helper()
	needles := objectsNeedles(secret)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				found = append(found, path)
				break
			}
		}
		return nil
	})
	require.NoError(t, err)
	return found, scanned
}

// TestAttackObjectsDataAtRest plays finding 10. The attackers hold, in
// turn, a node's filesystem (every file under the cluster's directories:
// hsm.db, its WAL, the Raft log and snapshots, logs), a crypto officer's
// password, and another crypto user's password. cu1 keeps a private data
// object whose value is a random marker, and a public one with another
// marker. Neither marker may appear in any file in any form; the owner
// reads both back on every node; the officer cannot see the private one at
// all (it still reads the public one, as PKCS#11 lets anyone read public
// objects); the other crypto user reads neither.
func TestAttackObjectsDataAtRest(t *testing.T) {
	// The scanner finds a marker in the forms the files would hold it.
	probe := objectsRandom(t, 32)
	dir := t.TempDir()
	for i, form := range [][]byte{probe, []byte(`{"v":"` + base64.StdEncoding.EncodeToString(append([]byte{7}, probe...)) + `"}`)} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("probe%d", i)), form, 0o600))
	}
	found, _ := objectsScan(t, dir, probe)
	require.Len(t, found, 2, "the scanner misses a form of the marker")

	c := testcluster.StartWith(t, 3, "snapshot_threshold = 16\ntrailing_logs = 4")
	cu2pw := objectsUser(t, c, "cu2")
	cu1 := pinned(t, c, 1, "cu1", secret(t, c, "cu.password"))
	private, public := objectsRandom(t, 32), objectsRandom(t, 32)
	data := func(priv bool, value []byte) uint64 {
		id, err := cu1.CreateObject(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_DATA), objectsBool(ck.CKA_TOKEN, true),
			objectsBool(ck.CKA_PRIVATE, priv), {Type: ck.CKA_LABEL, Value: []byte("at-rest")}, {Type: ck.CKA_VALUE, Value: value}})
		require.NoError(t, err)
		return id
	}
	privID, pubID := data(true, private), data(false, public)
	// Enough further writes that every node takes a Raft snapshot.
	for i := 0; i < 20; i++ {
		_, err := cu1.CreateObject(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_DATA), objectsBool(ck.CKA_TOKEN, true),
			{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("filler-%d", i))}})
		require.NoError(t, err)
	}
	value := func(cl *client.Client, id uint64) ([]byte, error) {
		av, err := cl.GetAttributes(ctx, id, []uint64{ck.CKA_VALUE})
		if err != nil {
			return nil, err
		}
		if av[0].RV != ck.CKR_OK {
			return nil, hsmerr.Errorf(av[0].RV, "CKA_VALUE")
		}
		return av[0].Value, nil
	}
	for k := 1; k <= 3; k++ {
		cl := pinned(t, c, k, "cu1", secret(t, c, "cu.password"))
		cl.AdvanceIndex(cu1.Index())
		var got []byte
		require.NoError(t, objectsUntilCaughtUp(t, func() (err error) { got, err = value(cl, privID); return err }), "node%d", k)
		require.Equal(t, private, got, "node%d: the owner reads the private value back", k)
		got, err := value(cl, pubID)
		require.NoError(t, err)
		require.Equal(t, public, got, "node%d: the owner reads the public value back", k)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for k := 1; k <= 3; k++ {
		for {
			snaps, _ := filepath.Glob(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "raft", "snapshots", "*", "state.bin"))
			if len(snaps) > 0 {
				break
			}
			require.False(t, time.Now().After(deadline), "node%d took no Raft snapshot", k)
			time.Sleep(500 * time.Millisecond)
		}
	}

	// The officer: the private object is not there for it; the public one is.
	co := pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	_, err := value(co, privID)
	require.True(t, hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID), "the officer reading the private value got %v", err)
	ids, err := co.FindObjects(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_DATA)}, 0)
	require.NoError(t, err)
	require.NotContains(t, ids, privID, "the officer finds the private object")
	require.Contains(t, ids, pubID)
	got, err := value(co, pubID)
	require.NoError(t, err)
	require.Equal(t, public, got)

	// Another crypto user sees neither.
	cu2 := pinned(t, c, 1, "cu2", cu2pw)
	for _, id := range []uint64{privID, pubID} {
		_, err := value(cu2, id)
		require.True(t, hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID), "cu2 reading object %d got %v", id, err)
	}

	// The files, while the nodes run (the WAL holds the latest pages) and
	// once they stopped (the WAL was checkpointed into hsm.db).
	for k := 1; k <= 3; k++ {
		_, err := os.Stat(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "hsm.db-wal"))
		require.NoError(t, err, "node%d has no WAL to scan", k)
	}
	for _, m := range [][]byte{private, public} {
		found, _ := objectsScan(t, c.Dir, m)
		require.Empty(t, found, "a data object's value is in these files")
	}
	out, err := c.Script("down", c.Dir)
	require.NoError(t, err, "%s", out)
	for _, m := range [][]byte{private, public} {
		found, scanned := objectsScan(t, c.Dir, m)
		require.Greater(t, scanned, 10)
		require.Empty(t, found, "a data object's value is in these files")
	}
	for k := 1; k <= 3; k++ {
		for _, f := range []string{"hsm.db", "raft"} {
			_, err := os.Stat(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), f))
			require.NoError(t, err, "the scan must cover node%d's %s", k, f)
		}
	}
}

// TestAttackObjectsClulow plays finding 14. The attacker holds a crypto
// user's password (cu1) and wants the clear value of its own sensitive,
// extractable key: wrap it under a key that also decrypts, then decrypt
// the wrapped blob. Every way to get such a key is refused: generate one
// with both usages, give a wrapping key CKA_DECRYPT afterwards (at once,
// or after dropping CKA_WRAP), unwrap or copy into one, and wrap under a
// public key whose private half decrypts. A key marked
// CKA_WRAP_WITH_TRUSTED is not wrapped by an untrusted key. A key that
// only wraps still wraps and unwraps correctly.
func TestAttackObjectsClulow(t *testing.T) {
	c := testcluster.Start(t, 1)
	cu := pinned(t, c, 1, "cu1", secret(t, c, "cu.password"))
	co := pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	kwp := mech.Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}
	secretKey := object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_SECRET_KEY), objectsUlong(ck.CKA_KEY_TYPE, ck.CKK_AES), objectsBool(ck.CKA_TOKEN, true)}
	gen := func(extra ...object.Attribute) (uint64, error) {
		return cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN},
			append(object.Template{objectsUlong(ck.CKA_VALUE_LEN, 32), objectsBool(ck.CKA_TOKEN, true)}, extra...))
	}
	wantRV := func(what string, err error, rv uint64) {
		t.Helper()
		require.True(t, hsmerr.IsRV(err, rv), "%s: got %v, want %s", what, err, ck.RVName(rv))
	}

	// The victim: sensitive (its value is not readable), extractable.
	value := objectsRandom(t, 32)
	victim, err := cu.CreateObject(ctx, append(secretKey, object.Attribute{Type: ck.CKA_VALUE, Value: value}, objectsBool(ck.CKA_EXTRACTABLE, true)))
	require.NoError(t, err)
	av, err := cu.GetAttributes(ctx, victim, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	require.Equal(t, uint64(ck.CKR_ATTRIBUTE_SENSITIVE), av[0].RV)

	_, err = gen(objectsBool(ck.CKA_WRAP, true), objectsBool(ck.CKA_DECRYPT, true))
	wantRV("generate a key that wraps and decrypts", err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = gen(objectsBool(ck.CKA_UNWRAP, true), objectsBool(ck.CKA_ENCRYPT, true))
	wantRV("generate a key that unwraps and encrypts", err, ck.CKR_TEMPLATE_INCONSISTENT)

	kek, err := gen(objectsBool(ck.CKA_WRAP, true), objectsBool(ck.CKA_UNWRAP, true))
	require.NoError(t, err)
	wantRV("set CKA_DECRYPT on the wrapping key", cu.SetAttributes(ctx, kek, object.Template{objectsBool(ck.CKA_DECRYPT, true)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	blob, err := cu.WrapKey(ctx, kwp, kek, victim)
	require.NoError(t, err, "a key that only wraps wraps")
	require.False(t, bytes.Contains(blob, value))
	require.NoError(t, cu.SetAttributes(ctx, kek, object.Template{objectsBool(ck.CKA_WRAP, false)}))
	wantRV("set CKA_DECRYPT after dropping CKA_WRAP", cu.SetAttributes(ctx, kek, object.Template{objectsBool(ck.CKA_DECRYPT, true)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = cu.Decrypt(ctx, kek, kwp, blob)
	wantRV("decrypt the wrapped key", err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = cu.Decrypt(ctx, kek, mech.Mech{Type: ck.CKM_AES_ECB}, blob[:16])
	require.Error(t, err, "decrypt with another mechanism")

	_, err = cu.UnwrapKey(ctx, kwp, kek, blob, append(secretKey, objectsBool(ck.CKA_WRAP, true), objectsBool(ck.CKA_DECRYPT, true)))
	wantRV("unwrap into a key that wraps and decrypts", err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = cu.CopyObject(ctx, kek, object.Template{objectsBool(ck.CKA_DECRYPT, true)})
	wantRV("copy the unwrapping key with CKA_DECRYPT", err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = cu.CopyObject(ctx, kek, object.Template{objectsBool(ck.CKA_ENCRYPT, true)})
	wantRV("copy the unwrapping key with CKA_ENCRYPT", err, ck.CKR_TEMPLATE_INCONSISTENT)

	// Across a key pair: the pair itself, and a copy of its public key
	// imported to wrap while the private key decrypts.
	_, _, err = cu.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{objectsUlong(ck.CKA_MODULUS_BITS, 2048), objectsBool(ck.CKA_WRAP, true)}, object.Template{objectsBool(ck.CKA_DECRYPT, true)})
	wantRV("a pair that wraps and decrypts", err, ck.CKR_TEMPLATE_INCONSISTENT)
	pub, priv, err := cu.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{objectsUlong(ck.CKA_MODULUS_BITS, 2048), objectsBool(ck.CKA_TOKEN, true)}, object.Template{objectsBool(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	pa, err := cu.GetAttributes(ctx, pub, []uint64{ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT})
	require.NoError(t, err)
	imported, err := cu.CreateObject(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_PUBLIC_KEY), objectsUlong(ck.CKA_KEY_TYPE, ck.CKK_RSA),
		{Type: ck.CKA_MODULUS, Value: pa[0].Value}, {Type: ck.CKA_PUBLIC_EXPONENT, Value: pa[1].Value}, objectsBool(ck.CKA_WRAP, true)})
	require.NoError(t, err)
	oaep := mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}}
	_, err = cu.WrapKey(ctx, oaep, imported, victim)
	wantRV("wrap under a public key whose private half decrypts", err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = cu.Decrypt(ctx, priv, oaep, make([]byte, 256))
	require.False(t, hsmerr.IsRV(err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED), "the private key still decrypts what is meant for it")

	// CKA_WRAP_WITH_TRUSTED: an untrusted key may not wrap it; once an
	// officer trusts the wrapping key (by its handle), it wraps, and the
	// key comes back intact.
	kek2, err := gen(objectsBool(ck.CKA_WRAP, true), objectsBool(ck.CKA_UNWRAP, true))
	require.NoError(t, err)
	guarded, err := cu.CreateObject(ctx, append(secretKey, object.Attribute{Type: ck.CKA_VALUE, Value: value},
		objectsBool(ck.CKA_EXTRACTABLE, true), objectsBool(ck.CKA_WRAP_WITH_TRUSTED, true)))
	require.NoError(t, err)
	_, err = cu.WrapKey(ctx, kwp, kek2, guarded)
	wantRV("wrap a CKA_WRAP_WITH_TRUSTED key under an untrusted key", err, ck.CKR_KEY_NOT_WRAPPABLE)
	require.NoError(t, co.SetAttributes(ctx, kek2, object.Template{objectsBool(ck.CKA_TRUSTED, true)}), "the officer trusts the wrapping key")
	blob, err = cu.WrapKey(ctx, kwp, kek2, guarded)
	require.NoError(t, err)
	back, err := cu.UnwrapKey(ctx, kwp, kek2, blob, append(secretKey, objectsBool(ck.CKA_SENSITIVE, false), objectsBool(ck.CKA_EXTRACTABLE, true)))
	require.NoError(t, err)
	av, err = cu.GetAttributes(ctx, back, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	require.Equal(t, value, av[0].Value, "the unwrapped key")
}
