package backup

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/snapshot"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
)

// cluster is a domain key, sealed, and the KEK that opens it.
type cluster struct {
	id  string
	s   *seal.Sealer
	rec *seal.SealedDomainKey
	kek seal.KEKSource
}

var (
	keyFile      = bytes.Repeat([]byte{0x42}, 32)
	otherKeyFile = bytes.Repeat([]byte{0x43}, 32)
)

func newCluster(t testing.TB, id string, kek seal.KEKSource) *cluster {
	t.Helper()
	s, rec, err := seal.NewDomainKey(id, kek)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{id: id, s: s, rec: rec, kek: kek}
}

// unsealWith is what a caller of Verify passes: it opens the backup's
// sealed domain key with its own passphrase or key file.
func unsealWith(kek seal.KEKSource) func([]byte) (*seal.Sealer, error) {
	return func(b []byte) (*seal.Sealer, error) {
		rec, err := seal.UnmarshalSealedDomainKey(b)
		if err != nil {
			return nil, err
		}
		return rec.Unseal(kek)
	}
}

const (
	ckaClass   = 0x0
	ckaLabel   = 0x3
	ckaKeyType = 0x100
	ckaID      = 0x102
)

// newStore makes a store of the cluster holding its domain key, users,
// objects (with sealed material, MACs and shares) and meta, as apply would.
func newStore(t testing.TB, c *cluster, users, objects int) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "tokens.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.Update(1, func(tx state.Tx) error {
		if err := tx.PutMeta(state.MetaDomainKey, c.rec.Marshal()); err != nil {
			return err
		}
		if err := tx.PutMeta("user_seq", []byte{0, 0, 0, 0, 0, 0, 0, byte(users)}); err != nil {
			return err
		}
		for i := range users {
			u := &object.User{Name: fmt.Sprintf("cu%02d", i), Role: object.RoleCU, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
				FailedLogins: i % 3, Locked: i == 1, Generation: uint64(i + 1), Created: 1700000000, Number: uint64(i + 1)}
			u.MAC = c.s.UserMAC(u)
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		for i := range objects {
			o := &object.Object{ID: uint64(100 + i), Owner: fmt.Sprintf("cu%02d", i%max(users, 1)), Attrs: object.Attrs{}}
			o.Attrs.SetUlong(ckaClass, 4)
			o.Attrs.SetUlong(ckaKeyType, 0x1f)
			o.Attrs[ckaLabel] = []byte(fmt.Sprintf("key %d", i))
			o.Attrs[ckaID] = bytes.Repeat([]byte{byte(i)}, 400) // bulk, for several chunks
			if users > 1 && i%2 == 0 {
				o.SharedWith = []string{fmt.Sprintf("cu%02d", (i+1)%users)}
				if o.SharedWith[0] == o.Owner {
					o.SharedWith = nil
				}
			}
			if o.Sealed, err = c.s.Seal(o.ID, o.Owner, bytes.Repeat([]byte{byte(i)}, 32)); err != nil {
				return err
			}
			o.MAC = c.s.AttrMAC(o)
			if err := tx.PutObject(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func streamOf(t testing.TB, st state.Store) []byte {
	t.Helper()
	sn, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var b bytes.Buffer
	if _, err := sn.WriteTo(&b, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func meta(c *cluster, created time.Time) Header {
	return Header{ClusterID: c.id, Node: "node-1", Created: created, SealedDomainKey: c.rec.Marshal()}
}

// backupBytes makes a backup of st in memory.
func backupBytes(t testing.TB, c *cluster, st state.Store) []byte {
	t.Helper()
	sn, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var b bytes.Buffer
	if err := Write(&b, c.s, meta(c, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), sn, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// headerLen returns where the chunks of a backup start.
func headerLen(b []byte) int {
	return fixedLen + int(binary.BigEndian.Uint32(b[len(magic)+2:])) + 32
}

// secrets are strings no error may contain: the key file, the
// passphrases, and the domain key's sealed bytes in base64 and hex.
func secretsOf(c *cluster) []string {
	var out []string
	for _, k := range [][]byte{keyFile, otherKeyFile, c.kek.Passphrase, c.kek.KeyFile} {
		if len(k) > 0 {
			out = append(out, string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k))
		}
	}
	return out
}

func checkNoSecrets(t testing.TB, c *cluster, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secretsOf(c) {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error shows a secret: %v", err)
		}
	}
}

func isRefusal(err error) bool {
	for _, e := range []error{ErrNotBackup, ErrFormat, ErrTruncated, ErrCorrupt, ErrWrongPassphrase} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func TestRoundTrip(t *testing.T) {
	c := newCluster(t, "cluster-rt", seal.KEKSource{KeyFile: keyFile})
	src := newStore(t, c, 5, 400) // several chunks
	if err := src.Update(7, func(state.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := streamOf(t, src)
	if len(want) < 3*ChunkSize {
		t.Fatalf("stream of %d bytes, want several chunks", len(want))
	}

	dir := t.TempDir()
	sn, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var writes []Progress
	created := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600))
	path, err := WriteFile(dir, c.s, meta(c, created), sn, func(p Progress) { writes = append(writes, p) })
	sn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(path), "backup-20260304T040607Z-node-1-") || !strings.HasSuffix(path, ".hsmbak") {
		t.Fatalf("file name %s", filepath.Base(path))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v", fi.Mode(), err)
	}
	if last := writes[len(writes)-1]; last.Phase != "write" || last.Done != last.Total || last.Total == 0 {
		t.Fatalf("last write progress %+v", last)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, want[100:132]) {
		t.Fatal("the backup shows plaintext")
	}
	h, err := ReadHeader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	wantH := Header{Format: 1, ClusterID: "cluster-rt", Node: "node-1", Created: created.UTC(), Index: 7, Users: 5, Objects: 400,
		SealedDomainKey: c.rec.Marshal(), WrappedKey: h.WrappedKey, NoncePrefix: h.NoncePrefix}
	if !reflect.DeepEqual(h, &wantH) || len(h.WrappedKey) != 40 || len(h.NoncePrefix) != 7 {
		t.Fatalf("header %+v\nwant %+v", h, &wantH)
	}

	var verifies []Progress
	vh, err := Verify(bytes.NewReader(raw), unsealWith(c.kek), func(p Progress) { verifies = append(verifies, p) })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(vh, h) {
		t.Fatal("Verify's header differs from ReadHeader's")
	}
	if last := verifies[len(verifies)-1]; last.Phase != "verify" || last.Done != last.Total {
		t.Fatalf("last verify progress %+v", last)
	}

	// Restore as an operator would: unseal with the key file, decrypt into
	// Restore through a pipe.
	s2, err := unsealWith(c.kek)(h.SealedDomainKey)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sqlite.Open(filepath.Join(t.TempDir(), "restored.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := Decrypt(bytes.NewReader(raw), s2, pw, nil)
		pw.CloseWithError(err)
	}()
	if err := dst.Restore(pr, 0); err != nil {
		t.Fatal(err)
	}
	if got := streamOf(t, dst); !bytes.Equal(got, want) {
		t.Fatal("the restored store differs from the original")
	}
	if idx, _ := dst.AppliedIndex(); idx != 7 {
		t.Fatalf("applied index %d", idx)
	}
	// The restored rows open and check under the unsealed domain key.
	objs, err := dst.Find(state.Query{Label: []byte("key 17")})
	if err != nil || len(objs) != 1 {
		t.Fatalf("Find: %v %v", objs, err)
	}
	if !s2.CheckAttrMAC(objs[0]) {
		t.Fatal("restored object fails its MAC")
	}
	if pt, err := s2.Open(objs[0].ID, objs[0].Owner, objs[0].Sealed); err != nil || !bytes.Equal(pt, bytes.Repeat([]byte{17}, 32)) {
		t.Fatalf("restored object does not open: %v", err)
	}
	u, err := dst.User("cu01")
	if err != nil || !s2.CheckUserMAC(u) || !u.Locked {
		t.Fatalf("restored user: %+v %v", u, err)
	}

	// Decrypt gives exactly the snapshot stream.
	var plain bytes.Buffer
	if _, err := Decrypt(bytes.NewReader(raw), c.s, &plain, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), want) {
		t.Fatal("Decrypt output is not the snapshot stream")
	}
}

func TestChunkEdges(t *testing.T) {
	// Plaintexts of 0, 1, ChunkSize-1, ChunkSize, ChunkSize+1 and 2*ChunkSize
	// bytes through the chunk writer and reader.
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize} {
		aead, _ := seal.NewGCM(keyFile)
		var b bytes.Buffer
		prefix := []byte("1234567")
		cw := &chunkWriter{w: &b, aead: aead, prefix: prefix, aad: []byte("aad")}
		pt := bytes.Repeat([]byte{9}, n)
		// Odd write sizes.
		for p := pt; len(p) > 0; {
			k := min(len(p), 1000)
			cw.Write(p[:k])
			p = p[k:]
		}
		if err := cw.Close(); err != nil {
			t.Fatal(err)
		}
		chunks := max(1, (n+ChunkSize-1)/ChunkSize)
		if b.Len() != n+chunks*tagLen {
			t.Fatalf("%d bytes: %d bytes of ciphertext, want %d chunks", n, b.Len(), chunks)
		}
		cr := &chunkReader{r: bufioReader(b.Bytes()), aead: aead, prefix: prefix, aad: []byte("aad"), ct: make([]byte, chunkCTLen)}
		got, err := io.ReadAll(cr)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: read back %d, %v", n, len(got), err)
		}
		// After a full last chunk, appended data is named as such. (After a
		// short one it merges with it and fails as corrupt.)
		if n > 0 && n%ChunkSize == 0 {
			cr := &chunkReader{r: bufioReader(append(bytes.Clone(b.Bytes()), 1)), aead: aead, prefix: prefix, aad: []byte("aad"), ct: make([]byte, chunkCTLen)}
			if _, err := io.ReadAll(cr); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "data follows the last chunk") {
				t.Fatalf("%d bytes and one more: %v", n, err)
			}
		}
		// Cut at the last chunk boundary: truncated.
		if n >= ChunkSize && n%ChunkSize == 0 && n > ChunkSize {
			cr := &chunkReader{r: bufioReader(b.Bytes()[:chunkCTLen]), aead: aead, prefix: prefix, aad: []byte("aad"), ct: make([]byte, chunkCTLen)}
			if _, err := io.ReadAll(cr); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%d bytes cut to one chunk: %v", n, err)
			}
		}
	}
}

func TestEveryByteFlipRefused(t *testing.T) {
	c := newCluster(t, "cluster-flip", seal.KEKSource{KeyFile: keyFile})
	st := newStore(t, c, 1, 1)
	raw := backupBytes(t, c, st)
	t.Logf("backup of %d bytes, header %d", len(raw), headerLen(raw))
	if _, err := Verify(bytes.NewReader(raw), unsealWith(c.kek), nil); err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(raw)
			b[i] ^= bit
			_, err := Verify(bytes.NewReader(b), unsealWith(c.kek), nil)
			if err == nil {
				t.Fatalf("byte %d ^ %#x: Verify succeeded", i, bit)
			}
			if !isRefusal(err) {
				t.Fatalf("byte %d ^ %#x: unclear error %v", i, bit, err)
			}
			checkNoSecrets(t, c, err)
		}
	}
}

func TestTruncationRefused(t *testing.T) {
	c := newCluster(t, "cluster-trunc", seal.KEKSource{KeyFile: keyFile})
	st := newStore(t, c, 3, 300)
	raw := backupBytes(t, c, st)
	hl := headerLen(raw)
	chunks := (len(raw) - hl + chunkCTLen - 1) / chunkCTLen
	if chunks < 3 {
		t.Fatalf("%d chunks, want at least 3", chunks)
	}
	verify := func(n int) error {
		_, err := Verify(bytes.NewReader(raw[:n]), unsealWith(c.kek), nil)
		return err
	}
	// At every chunk boundary, the header's end included: truncated.
	for k := range chunks {
		n := hl + k*chunkCTLen
		if err := verify(n); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut after %d chunks (%d bytes): %v, want ErrTruncated", k, n, err)
		}
	}
	// Everywhere in the header, near every boundary, and a sample of the rest.
	offsets := []int{0, len(raw) - 1, len(raw) - tagLen, len(raw) - tagLen - 1}
	for n := range hl {
		offsets = append(offsets, n)
	}
	for k := range chunks {
		for _, d := range []int{-17, -16, -1, 1, 15, 16, 17} {
			if n := hl + k*chunkCTLen + d; n >= 0 && n < len(raw) {
				offsets = append(offsets, n)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		offsets = append(offsets, r.IntN(len(raw)))
	}
	for _, n := range offsets {
		err := verify(n)
		if !isRefusal(err) {
			t.Fatalf("cut to %d of %d bytes: %v", n, len(raw), err)
		}
		checkNoSecrets(t, c, err)
	}

	// Decrypt of a truncated backup into Restore changes nothing.
	dst := newStore(t, c, 1, 1)
	before := streamOf(t, dst)
	for _, n := range []int{hl + chunkCTLen, hl + 2*chunkCTLen + 100, len(raw) - 1} {
		pr, pw := io.Pipe()
		go func() {
			_, err := Decrypt(bytes.NewReader(raw[:n]), c.s, pw, nil)
			pw.CloseWithError(err)
		}()
		err := dst.Restore(pr, 0)
		if !isRefusal(err) && !errors.Is(err, snapshot.ErrBad) {
			t.Fatalf("restore of a backup cut to %d bytes: %v", n, err)
		}
		pr.Close()
		if !bytes.Equal(streamOf(t, dst), before) {
			t.Fatal("a failed restore changed the store")
		}
	}
}

// chunkAt returns the bounds of chunk k.
func chunkAt(raw []byte, k int) (int, int) {
	start := headerLen(raw) + k*chunkCTLen
	return start, min(start+chunkCTLen, len(raw))
}

func TestAppendedAndReorderedRefused(t *testing.T) {
	c := newCluster(t, "cluster-order", seal.KEKSource{KeyFile: keyFile})
	st := newStore(t, c, 3, 300)
	raw := backupBytes(t, c, st)
	hl := headerLen(raw)
	c0s, c0e := chunkAt(raw, 0)
	c1s, c1e := chunkAt(raw, 1)
	c2s, c2e := chunkAt(raw, 2)
	lastStart := hl + (len(raw)-hl-1)/chunkCTLen*chunkCTLen
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := map[string][]byte{
		"one byte appended":       cat(raw, []byte{0}),
		"a tag's worth appended":  cat(raw, make([]byte, 16)),
		"last chunk twice":        cat(raw, raw[lastStart:]),
		"first chunk appended":    cat(raw, raw[c0s:c0e]),
		"file twice":              cat(raw, raw),
		"chunks 0 and 1 swapped":  cat(raw[:hl], raw[c1s:c1e], raw[c0s:c0e], raw[c1e:]),
		"chunk 1 dropped":         cat(raw[:c1s], raw[c1e:]),
		"chunk 0 repeated":        cat(raw[:c0e], raw[c0s:c0e], raw[c0e:]),
		"last chunk moved up":     cat(raw[:c2s], raw[lastStart:], raw[c2s:lastStart]),
		"chunk 2 replaced by 1":   cat(raw[:c2s], raw[c1s:c1e], raw[c2e:]),
		"header only":             raw[:hl],
		"chunks without a header": raw[hl:],
	}
	for name, b := range cases {
		_, err := Verify(bytes.NewReader(b), unsealWith(c.kek), nil)
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotBackup) {
			t.Errorf("%s: %v", name, err)
		}
		checkNoSecrets(t, c, err)
	}
	// A chunk from another backup of the same store (another data key).
	other := backupBytes(t, c, st)
	o1s, o1e := chunkAt(other, 1)
	mixed := cat(raw[:c1s], other[o1s:o1e], raw[c1e:])
	if _, err := Verify(bytes.NewReader(mixed), unsealWith(c.kek), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("chunk from another backup: %v", err)
	}
}

// rewriteHeader edits a backup's header JSON and recomputes its checksum,
// as an attacker could.
func rewriteHeader(t *testing.T, raw []byte, edit func(*wireHeader)) []byte {
	t.Helper()
	h, err := ReadHeader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	w := wireHeader{ClusterID: h.ClusterID, Node: h.Node, Created: h.Created, Index: h.Index, Users: h.Users, Objects: h.Objects,
		SealedDomainKey: h.SealedDomainKey, WrappedKey: h.WrappedKey, NoncePrefix: h.NoncePrefix}
	edit(&w)
	nh := Header{Format: 1, ClusterID: w.ClusterID, Node: w.Node, Created: w.Created, Index: w.Index, Users: w.Users, Objects: w.Objects,
		SealedDomainKey: w.SealedDomainKey, WrappedKey: w.WrappedKey, NoncePrefix: w.NoncePrefix}
	hdr, sum, err := nh.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Join([][]byte{hdr, sum[:], raw[headerLen(raw):]}, nil)
}

func TestHeaderEditsRefused(t *testing.T) {
	c := newCluster(t, "cluster-hdr", seal.KEKSource{KeyFile: keyFile})
	other := newCluster(t, "cluster-other", seal.KEKSource{KeyFile: keyFile})
	st := newStore(t, c, 2, 2)
	raw := backupBytes(t, c, st)
	for name, edit := range map[string]func(*wireHeader){
		"node":         func(w *wireHeader) { w.Node = "node-2" },
		"created":      func(w *wireHeader) { w.Created = w.Created.Add(time.Hour) },
		"index":        func(w *wireHeader) { w.Index++ },
		"users":        func(w *wireHeader) { w.Users++ },
		"nonce prefix": func(w *wireHeader) { w.NoncePrefix[0] ^= 1 },
		// Another cluster's domain key, which the verifier's key file opens:
		// the data key does not unwrap under it.
		"domain key": func(w *wireHeader) { w.ClusterID, w.SealedDomainKey = other.id, other.rec.Marshal() },
	} {
		b := rewriteHeader(t, raw, edit)
		if _, err := ReadHeader(bytes.NewReader(b)); err != nil {
			t.Fatalf("%s: the edited header does not read: %v", name, err)
		}
		_, err := Verify(bytes.NewReader(b), unsealWith(c.kek), nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s edited: %v, want ErrCorrupt", name, err)
		}
	}
	// Unchanged, the rewrite verifies (the test's rewrite is faithful).
	if _, err := Verify(bytes.NewReader(rewriteHeader(t, raw, func(*wireHeader) {})), unsealWith(c.kek), nil); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	c := newCluster(t, "cluster-pw", seal.KEKSource{Passphrase: []byte("correct horse battery staple")})
	st := newStore(t, c, 1, 2)
	raw := backupBytes(t, c, st)
	wrong := seal.KEKSource{Passphrase: []byte("wrong horse battery staple")}
	_, err := Verify(bytes.NewReader(raw), unsealWith(wrong), nil)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if err.Error() != "the passphrase (or key file) does not open this backup's domain key" {
		t.Fatalf("message %q", err)
	}
	checkNoSecrets(t, c, err)
	if strings.Contains(err.Error(), "wrong horse") {
		t.Fatal("error shows the passphrase given")
	}
	// A key file where a passphrase is needed: a clear error.
	if _, err := Verify(bytes.NewReader(raw), unsealWith(seal.KEKSource{KeyFile: keyFile}), nil); err == nil {
		t.Fatal("key file opened a passphrase-sealed backup")
	} else {
		checkNoSecrets(t, c, err)
	}
	if _, err := Verify(bytes.NewReader(raw), unsealWith(c.kek), nil); err != nil {
		t.Fatal(err)
	}
	// Decrypt with another cluster's sealer: the data key does not unwrap.
	other := newCluster(t, "cluster-pw2", seal.KEKSource{KeyFile: otherKeyFile})
	if _, err := Decrypt(bytes.NewReader(raw), other.s, io.Discard, nil); !errors.Is(err, seal.ErrBackupKey) {
		t.Fatalf("Decrypt with another domain key: %v", err)
	}
}

func TestReadHeaderRefusals(t *testing.T) {
	c := newCluster(t, "cluster-rh", seal.KEKSource{KeyFile: keyFile})
	raw := backupBytes(t, c, newStore(t, c, 1, 1))
	format2 := bytes.Clone(raw)
	format2[len(magic)+1] = 2
	huge := bytes.Clone(raw)
	binary.BigEndian.PutUint32(huge[len(magic)+2:], 1<<30)
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":         {nil, ErrNotBackup},
		"text":          {[]byte("hello, world, this is not it"), ErrNotBackup},
		"sqlite":        {[]byte("SQLite format 3\x00......"), ErrNotBackup},
		"magic cut":     {raw[:4], ErrTruncated},
		"magic only":    {raw[:len(magic)], ErrTruncated},
		"header cut":    {raw[:headerLen(raw)-1], ErrTruncated},
		"format 2":      {format2, ErrFormat},
		"length 1 GiB":  {huge, ErrCorrupt},
		"JSON modified": {append(append(bytes.Clone(raw[:fixedLen]), 'X'), raw[fixedLen+1:]...), ErrCorrupt},
	} {
		if _, err := ReadHeader(bytes.NewReader(tc.b)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	c := newCluster(t, "cluster-w", seal.KEKSource{KeyFile: keyFile})
	other := newCluster(t, "cluster-w2", seal.KEKSource{KeyFile: keyFile})
	st := newStore(t, c, 1, 1)
	empty, err := sqlite.Open(filepath.Join(t.TempDir(), "empty.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	for name, tc := range map[string]struct {
		st   state.Store
		s    *seal.Sealer
		meta Header
	}{
		"the sealer of another domain key": {st, other.s, meta(c, time.Now())},
		"another sealed domain key":        {st, nil, Header{ClusterID: other.id, SealedDomainKey: other.rec.Marshal()}},
		"no cluster ID":                    {st, nil, Header{SealedDomainKey: c.rec.Marshal()}},
		"cluster ID not the key's":         {st, nil, Header{ClusterID: "x", SealedDomainKey: c.rec.Marshal()}},
		"no sealed domain key":             {st, nil, Header{ClusterID: c.id}},
		"uninitialized store":              {empty, nil, meta(c, time.Now())},
	} {
		sn, err := tc.st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		s := c.s
		if tc.s != nil {
			s = tc.s
		}
		if _, err := WriteFile(dir, s, tc.meta, sn, nil); err == nil {
			t.Errorf("%s: WriteFile succeeded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		sn.Close()
		if des, _ := os.ReadDir(dir); len(des) != 0 {
			t.Errorf("%s: a failed WriteFile left %s", name, des[0].Name())
		}
	}
}

func bufioReader(b []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(b), chunkCTLen+1)
}

// FuzzVerify feeds Verify arbitrary files. Every process of a fuzzing run
// makes its own domain key and seed backup, but a backup carries its sealed
// domain key and the key file is fixed, so any process verifies any
// process's seed: the check on success is that Decrypt agrees, not that the
// bytes are this process's seed. (That no altered file verifies is
// TestEveryByteFlipRefused's job.)
func FuzzVerify(f *testing.F) {
	c := newCluster(f, "cluster-fuzz", seal.KEKSource{KeyFile: keyFile})
	st := newStore(f, c, 1, 1)
	seed := backupBytes(f, c, st)
	f.Add(seed)
	f.Add(seed[:headerLen(seed)])
	f.Add(seed[:len(seed)-1])
	unseal := unsealWith(c.kek)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Verify(bytes.NewReader(b), unseal, nil)
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			checkNoSecrets(t, c, err)
			return
		}
		s, err := unseal(h.SealedDomainKey)
		if err != nil {
			t.Fatal(err)
		}
		var plain bytes.Buffer
		h2, err := Decrypt(bytes.NewReader(b), s, &plain, nil)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("Verify accepted what Decrypt refuses: %v", err)
		}
		dec, err := snapshot.NewDecoder(&plain)
		if err != nil || dec.Header().Index != h.Index {
			t.Fatalf("decrypted stream: %v", err)
		}
	})
}
