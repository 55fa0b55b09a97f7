package main

import (
	"crypto/ecdsa"
	"crypto/rsa"

	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/mech/ossl"
)

// The daemon runs RSA private-key operations and ECDSA P-256/384/521
// signing in libcrypto (docs/performance.md); only this binary installs the
// binding, so nothing else links libcrypto.
func init() {
	if !ossl.Available {
		return
	}
	mech.SetRSABackend(func(k *rsa.PrivateKey) (mech.RSAPrivate, error) {
		fast, err := ossl.LoadRSA(k)
		if err != nil {
			return nil, err
		}
		return fast, nil
	})
	mech.SetECBackend(func(k *ecdsa.PrivateKey) (mech.ECPrivate, error) {
		fast, err := ossl.LoadEC(k)
		if err != nil {
			return nil, err
		}
		return fast, nil
	})
}
