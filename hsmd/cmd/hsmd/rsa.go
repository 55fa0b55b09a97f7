package main

import (
	"crypto/rsa"

	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/mech/ossl"
)

// The daemon runs RSA private-key operations in libcrypto (docs/performance.md);
// only this binary installs the binding, so nothing else links libcrypto.
func init() {
	if ossl.Available {
		mech.SetRSABackend(func(k *rsa.PrivateKey) (mech.RSAPrivate, error) {
			fast, err := ossl.LoadRSA(k)
			if err != nil {
				return nil, err
			}
			return fast, nil
		})
	}
}
