// Package ossl runs RSA private-key operations (and, for comparison only,
// ECDSA P-256 signing) in OpenSSL's libcrypto through its EVP interface.
//
// The binding is mechanical: a key is loaded once into an EVP_PKEY, each
// call makes its own EVP_PKEY_CTX (so one key serves concurrent calls), and
// every parameter is checked by the caller before it gets here. The
// mechanism layer (package mech) stays the reference: it installs this
// package through mech.SetRSABackend, which only the daemon's main package
// does, so the PKCS#11 library and the client never link libcrypto.
//
// Without cgo the package builds to a stub whose Available is false.
package ossl
