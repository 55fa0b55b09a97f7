package state_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/seal"
)

// The decoders of what reaches a node from files and from other nodes:
// password hashes (in commands), sealed domain keys (in stores, backup
// headers and joins) and private keys (imported as attributes). None may
// panic; what they accept must survive a round trip or be usable.

// FuzzPasswordHash: a hash apply would refuse never matches, and costs no
// argon2id work (VerifyPassword returns before it).
func FuzzPasswordHash(f *testing.F) {
	good, err := passwords.HashPassword("a fuzzing password")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, h string) {
		if passwords.CheckPasswordHash(h) == nil {
			return // bounded by construction; verifying it is slow, not unsafe
		}
		if passwords.VerifyPassword(h, "a fuzzing password") {
			t.Fatalf("a hash apply refuses matched: %q", h)
		}
	})
}

// FuzzSealedDomainKey: what parses marshals back to what parses the same,
// and a key-file record opens or is refused without a panic.
func FuzzSealedDomainKey(f *testing.F) {
	_, rec, err := seal.NewDomainKey("fuzz", seal.KEKSource{KeyFile: bytes.Repeat([]byte{5}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec.Marshal())
	f.Add([]byte(`{"format":1,"cluster_id":"c","kdf":"argon2id","time":99,"memory":99999999,"threads":200,"nonce":"","sealed":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := seal.UnmarshalSealedDomainKey(b)
		if err != nil {
			return
		}
		again, err := seal.UnmarshalSealedDomainKey(r.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), r.Marshal()) {
			t.Fatalf("round trip: %v", err)
		}
		if r.KDF == "keyfile" {
			r.Unseal(seal.KEKSource{KeyFile: bytes.Repeat([]byte{5}, 32)})
		}
	})
}

// FuzzParsePrivateKey: a key that parses can sign's public half.
func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	for _, k := range []crypto.Signer{mustEC(f), mustEd(f)} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		_, k, err := mech.ParsePrivateKey(der)
		if err != nil {
			return
		}
		if k == nil || k.Public() == nil {
			t.Fatal("a parsed key has no public half")
		}
	})
}

func mustEC(f *testing.F) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

func mustEd(f *testing.F) crypto.Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	return k
}
