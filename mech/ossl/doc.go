// Package ossl runs RSA private-key operations and ECDSA signing on P-256,
// P-384 and P-521 in OpenSSL's libcrypto through its EVP interface.
//
// The binding is mechanical: a key is loaded once into an EVP_PKEY (LoadRSA
// from PKCS #1 DER, LoadEC with EVP_PKEY_fromdata; the temporary private
// bytes are wiped), each call makes its own EVP_PKEY_CTX (so one key serves
// concurrent calls), and every parameter is checked by the caller before it
// gets here. ECKey.Sign truncates a long digest as crypto/ecdsa does and
// returns r||s in the PKCS #11 form. The EVP_PKEY is freed when the Go key
// is garbage. Errors never carry key material.
//
// The mechanism layer (package mech) stays the reference: it installs this
// package through mech.SetRSABackend and mech.SetECBackend, which only the
// daemon's main package does, so the PKCS#11 library and the client never
// link libcrypto; mech checks each loaded key against Go before using it.
//
// Without cgo the package builds to a stub whose Available is false.
package ossl
