package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
)

func testSealer(t testing.TB) *Sealer {
	t.Helper()
	s, _, err := NewDomainKey("test", KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealBindsObjectAndOwner(t *testing.T) {
	s := testSealer(t)
	secret := []byte("a private key's PKCS#8 bytes")
	blob, err := s.Seal(42, "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, secret) {
		t.Fatal("plaintext visible in the blob")
	}
	if pt, err := s.Open(42, "alice", blob); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("open: %v", err)
	}
	if _, err := s.Open(43, "alice", blob); err == nil {
		t.Error("a blob moved to another object opened")
	}
	if _, err := s.Open(42, "bob", blob); err == nil {
		t.Error("a blob given to another owner opened")
	}
	for i := range blob {
		bad := append([]byte{}, blob...)
		bad[i] ^= 1
		if _, err := s.Open(42, "alice", bad); err == nil {
			t.Fatalf("a blob with byte %d flipped opened", i)
		}
	}
	other := testSealer(t)
	if _, err := other.Open(42, "alice", blob); err == nil {
		t.Error("another domain key opened the blob")
	}
	b2, _ := s.Seal(42, "alice", secret)
	if bytes.Equal(blob, b2) {
		t.Error("sealing twice gave the same blob")
	}
}

func TestDomainKeyUnseal(t *testing.T) {
	pass := KEKSource{Passphrase: []byte("correct horse battery staple")}
	s, rec, err := NewDomainKey("cluster-1", pass)
	if err != nil {
		t.Fatal(err)
	}
	rec2, err := UnmarshalSealedDomainKey(rec.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := rec2.Unseal(pass)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := s.Seal(1, "u", []byte("x"))
	if _, err := s2.Open(1, "u", blob); err != nil {
		t.Fatal("unsealed domain key differs")
	}
	if _, err := rec2.Unseal(KEKSource{Passphrase: []byte("wrong horse battery staple")}); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := rec2.Unseal(KEKSource{KeyFile: bytes.Repeat([]byte{1}, 32)}); err == nil {
		t.Fatal("a key file opened a passphrase-sealed key")
	}
	rec2.ClusterID = "cluster-2"
	if _, err := rec2.Unseal(pass); err == nil {
		t.Fatal("the sealed key opened under another cluster id")
	}
	if _, err := UnmarshalSealedDomainKey([]byte(`{"format":1,"bogus":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
	if _, _, err := NewDomainKey("c", KEKSource{KeyFile: []byte("short")}); err == nil {
		t.Fatal("short key file accepted")
	}
}

func TestAttrMAC(t *testing.T) {
	s := testSealer(t)
	o := &object.Object{ID: 9, Owner: "alice", Attrs: object.Attrs{ck.CKA_EXTRACTABLE: {0}, ck.CKA_LABEL: []byte("k")}, Sealed: []byte("blob")}
	o.MAC = s.AttrMAC(o)
	if !s.CheckAttrMAC(o) {
		t.Fatal("fresh MAC does not verify")
	}
	edits := map[string]func(*object.Object){
		"attribute": func(o *object.Object) { o.Attrs[ck.CKA_EXTRACTABLE] = []byte{1} },
		"owner":     func(o *object.Object) { o.Owner = "mallory" },
		"id":        func(o *object.Object) { o.ID = 10 },
		"share":     func(o *object.Object) { o.SharedWith = []string{"mallory"} },
		"blob":      func(o *object.Object) { o.Sealed = []byte("other") },
	}
	for name, edit := range edits {
		c := o.Clone()
		edit(c)
		if s.CheckAttrMAC(c) {
			t.Errorf("edited %s still verifies", name)
		}
	}
	u := &object.User{Name: "alice", Role: object.RoleCU, PasswordHash: "h", Generation: 1}
	u.MAC = s.UserMAC(u)
	if !s.CheckUserMAC(u) {
		t.Fatal("user MAC")
	}
	u.Role = object.RoleCO
	if s.CheckUserMAC(u) {
		t.Fatal("a role edit verifies")
	}
}

func TestPasswords(t *testing.T) {
	h, err := passwords.HashPassword("s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if !passwords.VerifyPassword(h, "s3cret-pass") || passwords.VerifyPassword(h, "s3cret-pasS") {
		t.Fatal("verify")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=999999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "plain"} {
		if passwords.VerifyPassword(bad, "x") {
			t.Errorf("malformed hash %q matched", bad)
		}
	}
	if passwords.CheckPassword("short") == nil || passwords.CheckPassword("long enough") != nil {
		t.Fatal("length rule")
	}
}

func TestPasswordHashBounds(t *testing.T) {
	good, err := passwords.HashPassword("s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if err := passwords.CheckPasswordHash(good); err != nil {
		t.Fatalf("our own hash: %v", err)
	}
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	phc := func(v, params string) string { return "$argon2id$" + v + "$" + params + "$" + salt + "$" + key }
	if err := passwords.CheckPasswordHash(phc("v=19", "m=19456,t=2,p=1")); err != nil {
		t.Fatalf("a well-formed hash: %v", err)
	}
	for _, bad := range []string{
		"", "plain",
		phc("v=19", "m=65537,t=1,p=1"),      // memory over the ceiling
		phc("v=19", "m=4294967295,t=1,p=1"), // 4 TiB
		phc("v=19", "m=19456,t=5,p=1"),      // too many passes
		phc("v=19", "m=19456,t=0,p=1"),
		phc("v=19", "m=19456,t=2,p=5"), // too many lanes
		phc("v=19", "m=19456,t=2,p=0"),
		phc("v=19", "m=8,t=2,p=2"), // under 8 KiB per lane
		phc("v=19", "m=019456,t=2,p=1"),
		phc("v=19", "m=19456,t=2,p=1,x=1"),
		phc("v=16", "m=19456,t=2,p=1"),
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key,             // 4-byte salt
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$aGFzaA",       // 4-byte key
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$", // extra field
		phc("v=19", "m=19456,t=2,p=1") + strings.Repeat("A", passwords.MaxPasswordHashLen),
	} {
		if passwords.CheckPasswordHash(bad) == nil {
			t.Errorf("hash %q accepted", bad)
		}
		// Out of bounds means no argon2id at all: with m = 4 TiB it would
		// not return.
		if passwords.VerifyPassword(bad, "x") {
			t.Errorf("hash %q matched", bad)
		}
	}
}
