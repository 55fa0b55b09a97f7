// Package core is the PKCS#11 library's Go side, with no cgo: the frame codec
// and dispatcher that the C layer (or the fork helper) calls, and the module
// that gives PKCS#11 semantics on top of the client library. See
// docs/pkcs11-library.md.
package core

// Backend is PKCS#11 with Go types: one method per function that reaches Go.
// The dispatcher (dispatch.go) decodes a frame, calls the method and encodes the
// reply; Module implements it. Errors are *hsmerr.Error carrying the CKR;
// any other error is CKR_GENERAL_ERROR.
//
// Attribute values cross this interface in host byte order, as the C caller
// has them; the module converts them.
type Backend interface {
	Initialize(flags uint64) error
	Finalize() error
	GetInfo() (Info, error)
	GetSlotList(tokenPresent bool) ([]uint64, error)
	GetSlotInfo(slot uint64) (SlotInfo, error)
	GetTokenInfo(slot uint64) (TokenInfo, error)
	GetMechanismList(slot uint64) ([]uint64, error)
	GetMechanismInfo(slot, mech uint64) (MechanismInfo, error)
	InitToken(slot uint64, soPIN, label []byte) error
	InitPIN(sh uint64, pin []byte) error
	SetPIN(sh uint64, oldPIN, newPIN []byte) error

	OpenSession(slot, flags uint64) (uint64, error)
	CloseSession(sh uint64) error
	CloseAllSessions(slot uint64) error
	GetSessionInfo(sh uint64) (SessionInfo, error)
	GetOperationState(sh uint64, out Out) (OutResult, error)
	SetOperationState(sh uint64, state []byte, encKey, authKey uint64) error
	Login(sh, userType uint64, pin []byte) error
	LoginUser(sh, userType uint64, pin, username []byte) error
	Logout(sh uint64) error
	SessionCancel(sh, flags uint64) error
	// WaitForSlotEvent waits at most waitMs for a slot to appear or go
	// (CKF_DONT_BLOCK: does not wait) and answers the slot's ID.
	WaitForSlotEvent(flags, waitMs uint64) (uint64, error)

	CreateObject(sh uint64, t []Attr) (uint64, error)
	CopyObject(sh, obj uint64, t []Attr) (uint64, error)
	DestroyObject(sh, obj uint64) error
	GetObjectSize(sh, obj uint64) (uint64, error)
	// GetAttributeValue answers every request; the error is the overall
	// CKR (CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID or
	// CKR_BUFFER_TOO_SMALL when one of the attributes had that problem).
	GetAttributeValue(sh, obj uint64, req []AttrReq) ([]AttrResp, error)
	SetAttributeValue(sh, obj uint64, t []Attr) error
	FindObjectsInit(sh uint64, t []Attr) error
	FindObjects(sh uint64, max uint64) ([]uint64, error)
	FindObjectsFinal(sh uint64) error

	// Init starts an operation (encrypt, decrypt, digest, sign, verify,
	// sign-recover, verify-recover) with a mechanism and key (0 for digest).
	EncryptInit(sh uint64, m Mechanism, key uint64) error
	DecryptInit(sh uint64, m Mechanism, key uint64) error
	DigestInit(sh uint64, m Mechanism) error
	SignInit(sh uint64, m Mechanism, key uint64) error
	VerifyInit(sh uint64, m Mechanism, key uint64) error
	SignRecoverInit(sh uint64, m Mechanism, key uint64) error
	VerifyRecoverInit(sh uint64, m Mechanism, key uint64) error

	// Single-part and final calls take the caller's output buffer as an Out
	// and follow the two-call rule (see Out).
	Encrypt(sh uint64, data []byte, out Out) (OutResult, error)
	EncryptUpdate(sh uint64, part []byte, out Out) (OutResult, error)
	EncryptFinal(sh uint64, out Out) (OutResult, error)
	Decrypt(sh uint64, data []byte, out Out) (OutResult, error)
	DecryptUpdate(sh uint64, part []byte, out Out) (OutResult, error)
	DecryptFinal(sh uint64, out Out) (OutResult, error)
	Digest(sh uint64, data []byte, out Out) (OutResult, error)
	DigestUpdate(sh uint64, part []byte) error
	DigestKey(sh uint64, key uint64) error
	DigestFinal(sh uint64, out Out) (OutResult, error)
	Sign(sh uint64, data []byte, out Out) (OutResult, error)
	SignUpdate(sh uint64, part []byte) error
	SignFinal(sh uint64, out Out) (OutResult, error)
	SignRecover(sh uint64, data []byte, out Out) (OutResult, error)
	Verify(sh uint64, data, sig []byte) error
	VerifyUpdate(sh uint64, part []byte) error
	VerifyFinal(sh uint64, sig []byte) error
	VerifyRecover(sh uint64, sig []byte, out Out) (OutResult, error)
	DigestEncryptUpdate(sh uint64, part []byte, out Out) (OutResult, error)
	DecryptDigestUpdate(sh uint64, part []byte, out Out) (OutResult, error)
	SignEncryptUpdate(sh uint64, part []byte, out Out) (OutResult, error)
	DecryptVerifyUpdate(sh uint64, part []byte, out Out) (OutResult, error)

	GenerateKey(sh uint64, m Mechanism, t []Attr) (uint64, error)
	GenerateKeyPair(sh uint64, m Mechanism, pub, priv []Attr) (uint64, uint64, error)
	WrapKey(sh uint64, m Mechanism, wrapping, key uint64, out Out) (OutResult, error)
	UnwrapKey(sh uint64, m Mechanism, unwrapping uint64, wrapped []byte, t []Attr) (uint64, error)
	DeriveKey(sh uint64, m Mechanism, base uint64, t []Attr) (uint64, error)
	SeedRandom(sh uint64, seed []byte) error
	GenerateRandom(sh uint64, n uint64) ([]byte, error)

	// PKCS#11 v3.2. EncapsulateKey follows the two-call rule for the
	// ciphertext; no key is made unless the ciphertext is returned.
	EncapsulateKey(sh uint64, m Mechanism, pub uint64, t []Attr, out Out) (OutResult, uint64, error)
	DecapsulateKey(sh uint64, m Mechanism, priv uint64, t []Attr, ciphertext []byte) (uint64, error)
}

// Out is a caller's output buffer: Present is false for a NULL pointer, Cap
// is what *pulLen said.
//
// The two-call rule: with no buffer, the method returns the length needed
// and the operation stays active; with a buffer too small, it returns
// CKR_BUFFER_TOO_SMALL with the length, and the operation stays active;
// otherwise it returns the data, and a single-part or final call ends the
// operation.
type Out struct {
	Present bool
	Cap     uint64
}

// OutResult is what goes back for an Out: the length (needed or written) and,
// when the caller's buffer took it, the data.
type OutResult struct {
	Len  uint64
	Data []byte // nil unless the data is to be copied out
}

// Attr is an attribute from a caller's template, value in host order. A
// NULL pValue arrives as Value nil with Null set.
type Attr struct {
	Type  uint64
	Value []byte
	Null  bool
}

// AttrReq is one entry of a C_GetAttributeValue template.
type AttrReq struct {
	Type    uint64
	Present bool   // pValue != NULL
	Cap     uint64 // ulValueLen
	// Inner are the entries of an array attribute's CK_ATTRIBUTE array
	// (Present and Cap of each), when it is asked for with room.
	Inner []AttrReq
}

// AttrResp answers an AttrReq: Len is the value's length or
// CK_UNAVAILABLE_INFORMATION; Data is set when the value is copied out.
type AttrResp struct {
	Len  uint64
	Data []byte
	// Inner answers an array attribute's entries (Len then counts
	// CK_ATTRIBUTEs); nil when they are not copied out. Each has its Type.
	Inner []AttrResp
	Type  uint64
}

// Mechanism is a CK_MECHANISM as the C layer flattened it.
type Mechanism struct {
	Type uint64
	Kind uint8  // 0 none, 1 raw, 2 GCM, 3 OAEP, 4 ECDH, 5 EdDSA
	Raw  []byte // kind 1: the parameter bytes in host layout
	// kind 2
	IV, AAD         []byte
	IVBits, TagBits uint64
	// kind 3
	Hash, MGF, Source uint64
	SourceData        []byte
	// kind 4
	KDF                    uint64
	SharedData, PublicData []byte
	// kind 5
	PHFlag  bool
	Context []byte // kinds 5 and mkSignContext
	// Null is a NULL CK_MECHANISM_PTR (wire kind 0xFF): at C_*Init it
	// cancels the operation (PKCS#11 3.0).
	Null bool
	// kind 6: a structure flattened by C's layout table, field by field.
	Fields []LayoutField
	// kind mkSignContext (CK_SIGN_ADDITIONAL_CONTEXT)
	Hedge uint64
}

// LayoutField is one field of a kind 6 parameter: Tag 1 a CK_ULONG (U),
// 2 a CK_BBOOL (U, the byte as it was), 3 a pointer and length (B, nil for
// NULL), 4 a CK_PRF_DATA_PARAM array (List).
type LayoutField struct {
	Tag  uint8
	U    uint64
	B    []byte
	List []PRFData
}

// PRFData is one CK_PRF_DATA_PARAM: its type and the bytes pValue points
// to, in host layout (nil for NULL).
type PRFData struct {
	Type  uint64
	Value []byte
}

// mkSignContext is the kind of a CK_SIGN_ADDITIONAL_CONTEXT parameter
// (CKM_ML_DSA): hedgeVariant, then the context bytes. Its number is apart
// from the others so that kinds added elsewhere do not collide.
const mkSignContext = 32

// Info is CK_INFO.
type Info struct {
	CryptokiVersion    [2]byte
	ManufacturerID     [32]byte
	Flags              uint64
	LibraryDescription [32]byte
	LibraryVersion     [2]byte
}

// SlotInfo is CK_SLOT_INFO.
type SlotInfo struct {
	SlotDescription [64]byte
	ManufacturerID  [32]byte
	Flags           uint64
	HardwareVersion [2]byte
	FirmwareVersion [2]byte
}

// TokenInfo is CK_TOKEN_INFO.
type TokenInfo struct {
	Label              [32]byte
	ManufacturerID     [32]byte
	Model              [16]byte
	SerialNumber       [16]byte
	Flags              uint64
	MaxSessionCount    uint64
	SessionCount       uint64
	MaxRwSessionCount  uint64
	RwSessionCount     uint64
	MaxPinLen          uint64
	MinPinLen          uint64
	TotalPublicMemory  uint64
	FreePublicMemory   uint64
	TotalPrivateMemory uint64
	FreePrivateMemory  uint64
	HardwareVersion    [2]byte
	FirmwareVersion    [2]byte
	UTCTime            [16]byte
}

// SessionInfo is CK_SESSION_INFO.
type SessionInfo struct {
	SlotID      uint64
	State       uint64
	Flags       uint64
	DeviceError uint64
}

// MechanismInfo is CK_MECHANISM_INFO.
type MechanismInfo struct {
	MinKeySize uint64
	MaxKeySize uint64
	Flags      uint64
}
