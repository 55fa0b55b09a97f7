package mech

import (
	"crypto"
	"sync/atomic"
)

// Key is a key as a mechanism sees it: the clear material, only ever held in
// the daemon's memory, and the key type. A secret key has Secret; a
// private key has Private and its Public; a public key has Public only.
type Key struct {
	Class   uint64 // CKO_SECRET_KEY, CKO_PRIVATE_KEY or CKO_PUBLIC_KEY
	KeyType uint64 // CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_AES, CKK_GENERIC_SECRET
	Secret  []byte
	// Private is an *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey.
	Private crypto.Signer
	// Public is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey

	// rsaFast and ecFast are Private loaded into the RSA or EC backend, on
	// first use (backend.go).
	rsaFast atomic.Pointer[fastSlot[RSAPrivate]]
	ecFast  atomic.Pointer[fastSlot[ECPrivate]]
}

// Mech is a mechanism with its parameter, already decoded from the wire or
// from the C structure. Param is nil or one of the *Params types below, as
// the mechanism's row in the table says (ParamKind).
type Mech struct {
	Type  uint64
	Param any
}

// ParamKind says which Go type a mechanism's parameter must have.
type ParamKind int

const (
	ParamNone   ParamKind = iota // no parameter
	ParamIV                      // *IVParams: CBC, CBC_PAD (16 bytes); optional 8/4-byte IV for AES key wrap
	ParamGCM                     // *GCMParams
	ParamCTR                     // *CTRParams
	ParamPSS                     // *PSSParams
	ParamOAEP                    // *OAEPParams
	ParamECDH                    // *ECDHParams
	ParamEdDSA                   // *EdDSAParams (optional: nil means plain Ed25519)
	ParamMacLen                  // *MacLenParams (the _GENERAL MAC mechanisms)
)

// ParamSignContext is CK_SIGN_ADDITIONAL_CONTEXT (*SignContextParams,
// optional), CKM_ML_DSA's parameter. Its value is apart from the block
// above so that kinds other changes add there do not collide.
const ParamSignContext ParamKind = 32

// IVParams is an initialization vector.
type IVParams struct{ IV []byte }

// GCMParams follows CK_GCM_PARAMS: the caller's IV, additional data and tag
// length in bits.
type GCMParams struct {
	IV      []byte
	AAD     []byte
	TagBits uint64
}

// CTRParams follows CK_AES_CTR_PARAMS.
type CTRParams struct {
	CounterBits uint64
	CB          [16]byte
}

// PSSParams follows CK_RSA_PKCS_PSS_PARAMS: Hash is a CKM_ digest, MGF a
// CKG_MGF1_ value.
type PSSParams struct {
	Hash    uint64
	MGF     uint64
	SaltLen uint64
}

// OAEPParams follows CK_RSA_PKCS_OAEP_PARAMS. Source is 0 or CKZ_DATA_SPECIFIED.
type OAEPParams struct {
	Hash   uint64
	MGF    uint64
	Source uint64
	Label  []byte
}

// ECDHParams follows CK_ECDH1_DERIVE_PARAMS. PublicData is the peer's point,
// raw (04||X||Y) or DER OCTET STRING wrapped.
type ECDHParams struct {
	KDF        uint64
	SharedData []byte
	PublicData []byte
}

// EdDSAParams follows CK_EDDSA_PARAMS.
type EdDSAParams struct {
	PHFlag  bool
	Context []byte
}

// MacLenParams is the CK_MAC_GENERAL_PARAMS output length in bytes.
type MacLenParams struct{ Len uint64 }
