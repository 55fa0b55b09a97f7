package mech

import (
	"crypto"
	"io"
)

// Mechanism is one row of the mechanism table. A mechanism is added by adding
// a row; nothing else in the engine switches on mechanism types.
//
// The function fields that are nil mark operations the mechanism does not
// do. Flags must agree with them: CKF_SIGN iff Sign != nil, and so on.
type Mechanism struct {
	Type uint64
	// KeyTypes lists the key types the mechanism accepts (for generation,
	// the key type it makes). Empty for digests and random.
	KeyTypes []uint64
	// Flags are the CKF_ values C_GetMechanismInfo reports (CKF_SIGN,
	// CKF_ENCRYPT, CKF_GENERATE_KEY_PAIR, CKF_EC_F_P, ...).
	Flags uint64
	// MinKeySize and MaxKeySize are in the units of CK_MECHANISM_INFO: bits
	// for RSA and EC, bytes for AES and generic secrets.
	MinKeySize, MaxKeySize uint64
	// Param is the parameter type the mechanism takes; a parameter of any
	// other type is CKR_MECHANISM_PARAM_INVALID.
	Param ParamKind

	Sign    func(k *Key, m Mech, data []byte) ([]byte, error)
	Verify  func(k *Key, m Mech, data, sig []byte) error
	Encrypt func(k *Key, m Mech, in []byte) ([]byte, error)
	Decrypt func(k *Key, m Mech, in []byte) ([]byte, error)
	Digest  func(m Mech, in []byte) ([]byte, error)
	// Derive returns the shared secret bytes; the engine makes the new key.
	Derive func(base *Key, m Mech) ([]byte, error)
	// GenerateKey returns size bytes of secret key material (size in bytes).
	GenerateKey func(rand io.Reader, size int) ([]byte, error)
	// GenerateKeyPair makes a private key from the public template's
	// parameters.
	GenerateKeyPair func(rand io.Reader, p KeyPairParams) (crypto.Signer, error)
	// DeriveKDF is a key derivation function (HKDF, SP 800-108): it
	// returns exactly in.Len bytes, which the engine takes from the new
	// key's template. A row has Derive or DeriveKDF, not both.
	DeriveKDF func(base *Key, m Mech, in KDFInput) ([]byte, error)
	// DataObject: the row derives a data object (CKO_DATA, its CKA_VALUE)
	// rather than a key (CKM_HKDF_DATA).
	DataObject bool

	// Encapsulate makes a shared secret and its ciphertext with a public
	// key (C_EncapsulateKey); Decapsulate recovers the secret with the
	// private key (C_DecapsulateKey). The engine makes the new key.
	Encapsulate func(pub *Key, m Mech) (ciphertext, secret []byte, err error)
	Decapsulate func(priv *Key, m Mech, ciphertext []byte) ([]byte, error)
}

// KeyPairParams carries what C_GenerateKeyPair's public template says about
// the key to make.
type KeyPairParams struct {
	ModulusBits    int    // RSA
	PublicExponent int    // RSA, 65537 when the template gives none
	ECParams       []byte // EC and Edwards: DER OID or printable-string curve name
	ParameterSet   uint64 // ML-KEM and ML-DSA: CKA_PARAMETER_SET, 0 when absent
}
