// Package mech is the mechanism table and its crypto: every PKCS#11
// mechanism the HSM supports, the key types it takes, its parameters and
// how they are checked (mechanisms.go), and the code that runs it on clear
// key material (mech_aes.go, mech_ec.go, mech_hash.go, mech_rsa.go, AES key
// wrap and CMAC, and mech_kdf.go: HKDF, SP 800-108 counter mode and
// ChaCha20-Poly1305). keys.go turns attributes into Go keys and back, and keys
// into PKCS #8 and SubjectPublicKeyInfo (MarshalPrivateKey, ParsePrivateKey,
// MarshalPKIXPublicKey, ParsePKIXPublicKey); secp256k1.go does all that
// and the ECDSA and ECDH arithmetic for secp256k1, which Go's standard
// library lacks. It keeps no state: the engine unseals a key and calls a
// row's function.
package mech
