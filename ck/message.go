package ck

// PKCS#11 v3.0 values of the message-based functions (base specification
// section 5.2 flags, current-mechanisms CK_GENERATOR_FUNCTION), which
// Debian's v2.40 header lacks. Written from the OASIS PKCS#11 v3.0
// specifications.
const (
	// CK_GENERATOR_FUNCTION: how C_EncryptMessage gets the IV of
	// CK_GCM_MESSAGE_PARAMS (and CK_CCM_MESSAGE_PARAMS' nonce).
	CKG_NO_GENERATE      = 0x0
	CKG_GENERATE         = 0x1
	CKG_GENERATE_COUNTER = 0x2
	CKG_GENERATE_RANDOM  = 0x3

	// C_EncryptMessageNext and C_DecryptMessageNext: this is the last part.
	CKF_END_OF_MESSAGE = 0x1

	// CK_MECHANISM_INFO flags and C_SessionCancel flags of the message
	// operations.
	CKF_MESSAGE_ENCRYPT = 0x2
	CKF_MESSAGE_DECRYPT = 0x4
	CKF_MESSAGE_SIGN    = 0x8
	CKF_MESSAGE_VERIFY  = 0x10
	CKF_MULTI_MESSAGE   = 0x20
)
