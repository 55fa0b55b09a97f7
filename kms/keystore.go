package kms

import (
	"crypto"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// KeyStore is where a KMS key's material lives and is used: the seam
// custom key stores (other clusters, external key stores) plug into
// (storeFor picks a key's store). The service never touches material itself: it asks the
// store to make a version's material and to run PKCS#11 mechanisms with a
// version's key. A version names its material (state.KMSKeyVersion).
type KeyStore interface {
	// NewVersion makes the material of a new version of a key of the spec
	// and usage. The objects it returns travel in the command that records
	// the version (the default store keeps them in this cluster); a store
	// that keeps material elsewhere returns none.
	NewVersion(keyID, spec, usage string) ([]*object.Object, error)
	// Encrypt and Verify use a version's public or secret key; Decrypt
	// and Sign its private or secret key.
	Encrypt(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error)
	Decrypt(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error)
	Sign(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error)
	Verify(v *state.KMSKeyVersion, m mech.Mech, data, sig []byte) error
	// PublicKey is an asymmetric version's public key.
	PublicKey(v *state.KMSKeyVersion) (crypto.PublicKey, error)
}

// storeFor is the store of k's material, bound to the request r (a store
// that calls out, such as an external key store, names the caller and the
// operation to its peer). A key of this cluster's HSM is in the default
// store; a key of a custom key store (k.CustomKeyStoreID) is in that
// store's, which must be connected.
func (s *Service) storeFor(r *call.Request, k *state.KMSKey) (KeyStore, error) {
	if k.CustomKeyStoreID == "" {
		return s.keys, nil
	}
	return s.customStore(r, k)
}

// hsmStore is the default key store: this cluster's HSM, as kmsuser. A
// version's objects are [secret] or [public, private].
type hsmStore struct{ e *engine.Engine }

// public is the object that encrypts and verifies; private the one that
// decrypts and signs (the same one for a secret key).
func public(v *state.KMSKeyVersion) (uint64, error) {
	if len(v.Objects) == 0 {
		return 0, kmserr.New(kmserr.KeyUnavailable, "The key material of this key version is not available.")
	}
	return v.Objects[0], nil
}

func private(v *state.KMSKeyVersion) (uint64, error) {
	if len(v.Objects) == 0 {
		return 0, kmserr.New(kmserr.KeyUnavailable, "The key material of this key version is not available.")
	}
	return v.Objects[len(v.Objects)-1], nil
}

func (h hsmStore) NewVersion(keyID, spec, usage string) ([]*object.Object, error) {
	return h.e.NewKMSMaterial(keyID, spec, usage)
}

func (h hsmStore) Encrypt(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	id, err := public(v)
	if err != nil {
		return nil, err
	}
	return h.e.Encrypt(engine.KMSCaller, id, m, data)
}

func (h hsmStore) Decrypt(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	id, err := private(v)
	if err != nil {
		return nil, err
	}
	return h.e.Decrypt(engine.KMSCaller, id, m, data)
}

func (h hsmStore) Sign(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	id, err := private(v)
	if err != nil {
		return nil, err
	}
	return h.e.Sign(engine.KMSCaller, id, m, data)
}

func (h hsmStore) Verify(v *state.KMSKeyVersion, m mech.Mech, data, sig []byte) error {
	id, err := public(v)
	if err != nil {
		return err
	}
	return h.e.Verify(engine.KMSCaller, id, m, data, sig)
}

func (h hsmStore) PublicKey(v *state.KMSKeyVersion) (crypto.PublicKey, error) {
	id, err := public(v)
	if err != nil {
		return nil, err
	}
	return h.e.PublicKey(engine.KMSCaller, id)
}
