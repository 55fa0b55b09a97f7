package mech

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"sync/atomic"
)

// RSAPrivate is an RSA private key held by another implementation of the
// private-key operations than crypto/rsa (the daemon's is libcrypto, package
// mech/ossl). The rows check every parameter and length before they call
// it, exactly as they do before crypto/rsa, so its methods only compute.
// It must be safe for concurrent use.
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

// RSABackend loads a private key into the other implementation. An error
// (errors.ErrUnsupported included) leaves the key with crypto/rsa.
type RSABackend func(*rsa.PrivateKey) (RSAPrivate, error)

var rsaBackend atomic.Pointer[RSABackend]

// SetRSABackend makes the RSA rows run private-key operations through b
// (nil: crypto/rsa again) for the keys they load from then on. Only the
// daemon's main package sets one, so that nothing else links it.
func SetRSABackend(b RSABackend) {
	if b == nil {
		rsaBackend.Store(nil)
		return
	}
	rsaBackend.Store(&b)
}

// rsaSlot is a key's loaded backend key; priv nil means the backend
// refused the key and crypto/rsa does its operations.
type rsaSlot struct{ priv RSAPrivate }

// rsaFastOf returns k's key in the backend, loading it on first use, or nil
// when no backend is set or the backend refused the key. The loaded key
// lives as long as k: the engine's key cache holds k, and the backend frees
// its copy when k is garbage.
func rsaFastOf(k *Key, priv *rsa.PrivateKey) RSAPrivate {
	b := rsaBackend.Load()
	if b == nil || k == nil {
		return nil
	}
	if s := k.rsaFast.Load(); s != nil {
		return s.priv
	}
	fast, err := (*b)(priv)
	if err != nil || fast == nil || !rsaBackendAgrees(priv, fast) {
		fast = nil
	}
	s := &rsaSlot{priv: fast}
	if !k.rsaFast.CompareAndSwap(nil, s) {
		s = k.rsaFast.Load() // a concurrent first use won
	}
	return s.priv
}

// rsaBackendAgrees checks a loaded key once: its PKCS #1 v1.5 signature of
// a fixed message must verify under the Go key's public half, so a key the
// backend mangled is never used.
func rsaBackendAgrees(priv *rsa.PrivateKey, fast RSAPrivate) bool {
	d := sha256.Sum256([]byte("openhsm: RSA backend self-check"))
	sig, err := fast.SignPKCS1v15(crypto.SHA256, d[:])
	return err == nil && rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, d[:], sig) == nil
}

// rsaFallback says whether a backend error means "do it with crypto/rsa":
// the backend does not support the hash.
func rsaFallback(err error) bool { return errors.Is(err, errors.ErrUnsupported) }
