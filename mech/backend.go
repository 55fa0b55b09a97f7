package mech

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"sync/atomic"
)

// A backend is another implementation of some private-key operations than
// Go's (the daemon's is libcrypto, package mech/ossl). The rows check every
// parameter and length before they call it, exactly as they do before Go's
// crypto, so a backend only computes. Only the daemon's main package
// installs one (SetRSABackend, SetECBackend), so that nothing else links it.
//
// A key is loaded into the backend on its first private-key operation and
// kept on the Key (Key.rsaFast, Key.ecFast) for as long as the Key lives:
// the engine's key cache holds the Key, and the backend frees its copy when
// the Key is garbage. A loaded key is used only after it passed a
// self-check against Go; a key the backend refuses or that fails the check
// stays with Go, and is not tried again.

// backend holds the installed loader for keys of type G into backend keys
// of type P, and the self-check a loaded key must pass.
type backend[G, P any] struct {
	load   atomic.Pointer[func(G) (P, error)]
	agrees func(G, P) bool
}

func (b *backend[G, P]) set(f func(G) (P, error)) {
	if f == nil {
		b.load.Store(nil)
		return
	}
	b.load.Store(&f)
}

// fastSlot is a key's loaded backend key; ok false means the backend
// refused the key (or it failed the self-check) and Go does its operations.
type fastSlot[P any] struct {
	priv P
	ok   bool
}

// of returns the backend key cached in slot, loading and checking priv on
// first use; ok is false when no backend is set or it refused the key.
func (b *backend[G, P]) of(slot *atomic.Pointer[fastSlot[P]], priv G) (fast P, ok bool) {
	f := b.load.Load()
	if f == nil {
		return fast, false
	}
	if s := slot.Load(); s != nil {
		return s.priv, s.ok
	}
	s := &fastSlot[P]{}
	if p, err := (*f)(priv); err == nil && any(p) != nil && b.agrees(priv, p) {
		s.priv, s.ok = p, true
	}
	if !slot.CompareAndSwap(nil, s) {
		s = slot.Load() // a concurrent first use won
	}
	return s.priv, s.ok
}

// RSAPrivate is an RSA private key held by a backend. It must be safe for
// concurrent use.
type RSAPrivate interface {
	// SignPKCS1v15 signs the digest of hash h with PKCS #1 v1.5 padding and
	// h's DigestInfo; with h zero it pads and signs in as it is.
	SignPKCS1v15(h crypto.Hash, in []byte) ([]byte, error)
	// SignPSS signs digest (of hash h) with PSS: MGF1 with hash mgf and a
	// salt of saltLen bytes.
	SignPSS(h, mgf crypto.Hash, saltLen int, digest []byte) ([]byte, error)
	// DecryptPKCS1v15 and DecryptOAEP return an error wrapping
	// rsa.ErrDecryption for a ciphertext that does not decrypt.
	DecryptPKCS1v15(in []byte) ([]byte, error)
	DecryptOAEP(h, mgf crypto.Hash, label, in []byte) ([]byte, error)
	// Raw computes in^d mod n for an in as long as the modulus and less
	// than it.
	Raw(in []byte) ([]byte, error)
}

// RSABackend loads a private key into the backend. An error
// (errors.ErrUnsupported included) leaves the key with crypto/rsa.
type RSABackend func(*rsa.PrivateKey) (RSAPrivate, error)

var rsaBackend = backend[*rsa.PrivateKey, RSAPrivate]{agrees: rsaBackendAgrees}

// SetRSABackend makes the RSA rows run private-key operations through b
// (nil: crypto/rsa again) for the keys they load from then on.
func SetRSABackend(b RSABackend) { rsaBackend.set(b) }

// rsaFastOf returns k's key in the RSA backend, loading it on first use, or
// nil when no backend is set or the backend refused the key.
func rsaFastOf(k *Key, priv *rsa.PrivateKey) RSAPrivate {
	if k == nil {
		return nil
	}
	fast, _ := rsaBackend.of(&k.rsaFast, priv)
	return fast
}

// rsaBackendAgrees checks a loaded key once: its PKCS #1 v1.5 signature of
// a fixed message must verify under the Go key's public half, so a key the
// backend mangled is never used.
func rsaBackendAgrees(priv *rsa.PrivateKey, fast RSAPrivate) bool {
	d := sha256.Sum256([]byte("openhsm: RSA backend self-check"))
	sig, err := fast.SignPKCS1v15(crypto.SHA256, d[:])
	return err == nil && rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, d[:], sig) == nil
}

// backendFallback says whether a backend error means "do it with Go's
// implementation": the backend does not support the hash or the input.
func backendFallback(err error) bool { return errors.Is(err, errors.ErrUnsupported) }

// ECPrivate is an ECDSA private key (P-256, P-384 or P-521) held by a
// backend. It must be safe for concurrent use.
type ECPrivate interface {
	// Sign signs digest as CKM_ECDSA does: the digest is truncated to the
	// order's bit length as FIPS 186 says, and the signature is r||s, each
	// left-padded to the curve's byte length.
	Sign(digest []byte) ([]byte, error)
}

// ECBackend loads an ECDSA private key into the backend. An error
// (errors.ErrUnsupported included, for a curve it does not do) leaves the
// key with crypto/ecdsa.
type ECBackend func(*ecdsa.PrivateKey) (ECPrivate, error)

var ecBackend = backend[*ecdsa.PrivateKey, ECPrivate]{agrees: ecBackendAgrees}

// SetECBackend makes the ECDSA rows sign through b (nil: crypto/ecdsa
// again) for the keys they load from then on. secp256k1 keys never go to
// the backend.
func SetECBackend(b ECBackend) { ecBackend.set(b) }

// ecFastOf returns k's key in the EC backend, loading it on first use, or
// nil when no backend is set or the backend refused the key.
func ecFastOf(k *Key, priv *ecdsa.PrivateKey) ECPrivate {
	if k == nil {
		return nil
	}
	fast, _ := ecBackend.of(&k.ecFast, priv)
	return fast
}

// ecBackendAgrees checks a loaded key once: its signature of a fixed digest
// must have the PKCS #11 length and verify with crypto/ecdsa under the Go
// key's public half.
func ecBackendAgrees(priv *ecdsa.PrivateKey, fast ECPrivate) bool {
	c := curveOf(priv.Curve)
	if c == nil {
		return false
	}
	d := sha256.Sum256([]byte("openhsm: EC backend self-check"))
	sig, err := fast.Sign(d[:])
	n := c.ByteLen()
	if err != nil || len(sig) != 2*n {
		return false
	}
	r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
	return ecdsa.Verify(&priv.PublicKey, d[:], r, s)
}
