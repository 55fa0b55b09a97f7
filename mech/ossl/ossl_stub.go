//go:build !cgo

package ossl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
)

// Available says whether the binding is linked (it needs cgo).
const Available = false

// RSAKey is never made without cgo.
type RSAKey struct{}

// LoadRSA fails without cgo.
func LoadRSA(*rsa.PrivateKey) (*RSAKey, error) { return nil, errors.ErrUnsupported }

func (*RSAKey) SignPKCS1v15(crypto.Hash, []byte) ([]byte, error) { return nil, errors.ErrUnsupported }
func (*RSAKey) SignPSS(_, _ crypto.Hash, _ int, _ []byte) ([]byte, error) {
	return nil, errors.ErrUnsupported
}
func (*RSAKey) DecryptPKCS1v15([]byte) ([]byte, error) { return nil, errors.ErrUnsupported }
func (*RSAKey) DecryptOAEP(_, _ crypto.Hash, _, _ []byte) ([]byte, error) {
	return nil, errors.ErrUnsupported
}
func (*RSAKey) Raw([]byte) ([]byte, error) { return nil, errors.ErrUnsupported }

// ECKey is never made without cgo.
type ECKey struct{}

// LoadEC fails without cgo.
func LoadEC(*ecdsa.PrivateKey) (*ECKey, error) { return nil, errors.ErrUnsupported }

func (*ECKey) Sign([]byte) ([]byte, error) { return nil, errors.ErrUnsupported }
