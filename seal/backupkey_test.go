package seal

import (
	"bytes"
	"crypto/aes"
	"errors"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/mech"
)

func backupTestSealer(t *testing.T, fill byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBackupKeyRoundTrip(t *testing.T) {
	s := backupTestSealer(t, 1)
	dk := bytes.Repeat([]byte{0x5a}, 32)
	w, err := s.WrapBackupKey(dk)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 40 {
		t.Fatalf("wrapped length %d, want 40", len(w))
	}
	if bytes.Contains(w, dk[:8]) {
		t.Fatal("wrapped key shows the data key")
	}
	got, err := s.UnwrapBackupKey(w)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	// Another sealer of the same domain key opens it too (every node).
	if got, err := backupTestSealer(t, 1).UnwrapBackupKey(w); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap with an equal sealer: %v", err)
	}
}

func TestBackupKeyIsDerivedFromTheDomainKey(t *testing.T) {
	s := backupTestSealer(t, 1)
	dk := bytes.Repeat([]byte{0x5a}, 32)
	w, _ := s.WrapBackupKey(dk)
	// The PBK is HKDF-SHA256(DK, no salt, "openhsm backup key v1"), and the
	// wrap is plain RFC 5649 under it.
	b, _ := aes.NewCipher(hkdfKey(bytes.Repeat([]byte{1}, 32), nil, "openhsm backup key v1"))
	want, err := mech.WrapKWP(b, mech.KWPDefaultAIV, dk)
	if err != nil || !bytes.Equal(w, want) {
		t.Fatalf("wrap is not RFC 5649 under the documented PBK")
	}
	// And it is none of the other keys derived from the DK.
	for _, k := range [][]byte{s.dk, s.macKey, s.tokKey} {
		if bytes.Equal(k, hkdfKey(s.dk, nil, "openhsm backup key v1")) {
			t.Fatal("PBK equals another key")
		}
	}
}

func TestBackupKeyRefusals(t *testing.T) {
	s := backupTestSealer(t, 1)
	dk := bytes.Repeat([]byte{0x5a}, 32)
	w, _ := s.WrapBackupKey(dk)

	// Wrong domain key.
	_, err := backupTestSealer(t, 2).UnwrapBackupKey(w)
	if !errors.Is(err, ErrBackupKey) {
		t.Fatalf("wrong domain key: %v, want ErrBackupKey", err)
	}
	if !strings.Contains(err.Error(), "does not unwrap") {
		t.Fatalf("unclear error %q", err)
	}
	// Any changed byte, and bad lengths.
	for i := range w {
		b := bytes.Clone(w)
		b[i] ^= 1
		if _, err := s.UnwrapBackupKey(b); !errors.Is(err, ErrBackupKey) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, b := range [][]byte{nil, w[:39], w[:32], append(bytes.Clone(w), 0), append(bytes.Clone(w), make([]byte, 8)...)} {
		if _, err := s.UnwrapBackupKey(b); !errors.Is(err, ErrBackupKey) {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
	}
	// A well-wrapped key of another length is refused too.
	pbk, _ := aes.NewCipher(hkdfKey(s.dk, nil, "openhsm backup key v1"))
	short, _ := mech.WrapKWP(pbk, mech.KWPDefaultAIV, dk[:16])
	if _, err := s.UnwrapBackupKey(short); !errors.Is(err, ErrBackupKey) {
		t.Fatalf("16-byte key: %v", err)
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := s.WrapBackupKey(make([]byte, n)); err == nil {
			t.Fatalf("WrapBackupKey took %d bytes", n)
		}
	}
}

func TestBackupKeyWithNewDomainKey(t *testing.T) {
	s, rec, err := NewDomainKey("c1", KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	dk := bytes.Repeat([]byte{3}, 32)
	w, err := s.WrapBackupKey(dk)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := rec.Unseal(KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.UnwrapBackupKey(w); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap after unseal: %v", err)
	}
	other, _, _ := NewDomainKey("c1", KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	if _, err := other.UnwrapBackupKey(w); !errors.Is(err, ErrBackupKey) {
		t.Fatalf("another cluster's domain key: %v", err)
	}
}
