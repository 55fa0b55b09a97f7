package ck

// PKCS#11 v3.2 values for the post-quantum keys (ML-KEM, ML-DSA) and the
// key encapsulation functions, written from the OASIS PKCS#11 v3.2
// headers (published/3-02/pkcs11t.h of the OASIS PKCS 11 TC) and the
// specification's "ML-KEM" and "ML-DSA" mechanism sections. Each value
// names where it is defined.
const (
	// Key types (pkcs11t.h, CKK_ list; spec "ML-KEM" / "ML-DSA",
	// Definitions).
	CKK_ML_KEM = 0x49
	CKK_ML_DSA = 0x4a

	// Attributes (pkcs11t.h, CKA_ list; spec "Common attributes" and the
	// ML-KEM / ML-DSA key object tables).
	CKA_PARAMETER_SET        = 0x61d
	CKA_ENCAPSULATE_TEMPLATE = 0x62a
	CKA_DECAPSULATE_TEMPLATE = 0x62b
	CKA_ENCAPSULATE          = 0x633
	CKA_DECAPSULATE          = 0x634
	CKA_SEED                 = 0x637

	// Mechanisms (pkcs11t.h, CKM_ list; spec "ML-KEM key pair
	// generation", "ML-KEM Key Agreement", "ML-DSA key pair generation",
	// "ML-DSA Signature").
	CKM_ML_KEM_KEY_PAIR_GEN = 0xf
	CKM_ML_KEM              = 0x17
	CKM_ML_DSA_KEY_PAIR_GEN = 0x1c
	CKM_ML_DSA              = 0x1d

	// Mechanism info flags for C_EncapsulateKey / C_DecapsulateKey
	// (pkcs11t.h, CK_MECHANISM_INFO flags).
	CKF_ENCAPSULATE = 0x10000000
	CKF_DECAPSULATE = 0x20000000

	// CK_HEDGE_TYPE values of CK_SIGN_ADDITIONAL_CONTEXT.hedgeVariant
	// (pkcs11t.h; spec "ML-DSA", Definitions).
	CKH_HEDGE_PREFERRED        = 0x0
	CKH_HEDGE_REQUIRED         = 0x1
	CKH_DETERMINISTIC_REQUIRED = 0x2

	// CK_ML_DSA_PARAMETER_SET_TYPE values (pkcs11t.h "ML-DSA values for
	// CKA_PARAMETER_SETS").
	CKP_ML_DSA_44 = 0x1
	CKP_ML_DSA_65 = 0x2
	CKP_ML_DSA_87 = 0x3

	// CK_ML_KEM_PARAMETER_SET_TYPE values (pkcs11t.h "ML-KEM values for
	// CKA_PARAMETER_SETS").
	CKP_ML_KEM_512  = 0x1
	CKP_ML_KEM_768  = 0x2
	CKP_ML_KEM_1024 = 0x3

	// Return value (pkcs11t.h, CKR_ list).
	CKR_PARAMETER_SET_NOT_SUPPORTED = 0x209
)

var v32List = []named{
	{CKK_ML_KEM, "CKK_ML_KEM"},
	{CKK_ML_DSA, "CKK_ML_DSA"},
	{CKA_PARAMETER_SET, "CKA_PARAMETER_SET"},
	{CKA_ENCAPSULATE_TEMPLATE, "CKA_ENCAPSULATE_TEMPLATE"},
	{CKA_DECAPSULATE_TEMPLATE, "CKA_DECAPSULATE_TEMPLATE"},
	{CKA_ENCAPSULATE, "CKA_ENCAPSULATE"},
	{CKA_DECAPSULATE, "CKA_DECAPSULATE"},
	{CKA_SEED, "CKA_SEED"},
	{CKM_ML_KEM_KEY_PAIR_GEN, "CKM_ML_KEM_KEY_PAIR_GEN"},
	{CKM_ML_KEM, "CKM_ML_KEM"},
	{CKM_ML_DSA_KEY_PAIR_GEN, "CKM_ML_DSA_KEY_PAIR_GEN"},
	{CKM_ML_DSA, "CKM_ML_DSA"},
	{CKR_PARAMETER_SET_NOT_SUPPORTED, "CKR_PARAMETER_SET_NOT_SUPPORTED"},
}
