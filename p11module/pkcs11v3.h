/* pkcs11v3.h: the PKCS#11 v3.0 definitions that Debian's v2.40 header
 * (p11-kit's pkcs11.h) lacks and that this library needs, written from the
 * OASIS PKCS#11 v3.0 base and current-mechanisms specifications.
 *
 * The p11-kit header is included the normal way (CRYPTOKI_COMPAT, the
 * default), so types and struct members carry the specification's names
 * (CK_MECHANISM.pParameter, CK_GCM_PARAMS.ulIvLen, ...), and so do the
 * definitions here. */
#ifndef OPENHSM_PKCS11V3_H
#define OPENHSM_PKCS11V3_H

#include <p11-kit/pkcs11.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CKF_INTERFACE_FORK_SAFE
#define CKF_INTERFACE_FORK_SAFE (1UL << 0)
#endif
#ifndef CKF_END_OF_MESSAGE
#define CKF_END_OF_MESSAGE (1UL << 0)
#endif
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP (0x210bUL)
#endif
#ifndef CKR_OPERATION_CANCEL_FAILED
#define CKR_OPERATION_CANCEL_FAILED (0x202UL)
#endif

/* A header that already declares v3.0 (CRYPTOKI_VERSION_MAJOR 3, as newer
 * p11-kit does) has all of the below. */
#if CRYPTOKI_VERSION_MAJOR < 3

/* CK_INTERFACE: what C_GetInterfaceList and C_GetInterface hand out. */
typedef struct CK_INTERFACE {
	CK_CHAR *pInterfaceName;
	CK_VOID_PTR pFunctionList;
	CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE **CK_INTERFACE_PTR_PTR;

/* CK_EDDSA_PARAMS: the parameter of CKM_EDDSA. */
typedef struct CK_EDDSA_PARAMS {
	CK_BBOOL phFlag;
	CK_ULONG ulContextDataLen;
	CK_BYTE_PTR pContextData;
} CK_EDDSA_PARAMS;
typedef CK_EDDSA_PARAMS *CK_EDDSA_PARAMS_PTR;

/* The functions new in v3.0, each with its CK_C_ pointer type. */
#define OPENHSM_V3_FUNCTION(name, args) \
	typedef CK_RV (*CK_##name) args; \
	CK_RV name args

OPENHSM_V3_FUNCTION(C_GetInterfaceList,
	(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount));
OPENHSM_V3_FUNCTION(C_GetInterface,
	(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
	 CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags));
OPENHSM_V3_FUNCTION(C_LoginUser,
	(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
	 CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
	 CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen));
OPENHSM_V3_FUNCTION(C_SessionCancel,
	(CK_SESSION_HANDLE hSession, CK_FLAGS flags));

OPENHSM_V3_FUNCTION(C_MessageEncryptInit,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hKey));
OPENHSM_V3_FUNCTION(C_EncryptMessage,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
	 CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext,
	 CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext,
	 CK_ULONG_PTR pulCiphertextLen));
OPENHSM_V3_FUNCTION(C_EncryptMessageBegin,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
	 CK_ULONG ulAssociatedDataLen));
OPENHSM_V3_FUNCTION(C_EncryptMessageNext,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart,
	 CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart,
	 CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags));
OPENHSM_V3_FUNCTION(C_MessageEncryptFinal, (CK_SESSION_HANDLE hSession));

OPENHSM_V3_FUNCTION(C_MessageDecryptInit,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hKey));
OPENHSM_V3_FUNCTION(C_DecryptMessage,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
	 CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext,
	 CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext,
	 CK_ULONG_PTR pulPlaintextLen));
OPENHSM_V3_FUNCTION(C_DecryptMessageBegin,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
	 CK_ULONG ulAssociatedDataLen));
OPENHSM_V3_FUNCTION(C_DecryptMessageNext,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pCiphertextPart,
	 CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart,
	 CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags));
OPENHSM_V3_FUNCTION(C_MessageDecryptFinal, (CK_SESSION_HANDLE hSession));

OPENHSM_V3_FUNCTION(C_MessageSignInit,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hKey));
OPENHSM_V3_FUNCTION(C_SignMessage,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	 CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen));
OPENHSM_V3_FUNCTION(C_SignMessageBegin,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen));
OPENHSM_V3_FUNCTION(C_SignMessageNext,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	 CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen));
OPENHSM_V3_FUNCTION(C_MessageSignFinal, (CK_SESSION_HANDLE hSession));

OPENHSM_V3_FUNCTION(C_MessageVerifyInit,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hKey));
OPENHSM_V3_FUNCTION(C_VerifyMessage,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	 CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen));
OPENHSM_V3_FUNCTION(C_VerifyMessageBegin,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen));
OPENHSM_V3_FUNCTION(C_VerifyMessageNext,
	(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
	 CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	 CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen));
OPENHSM_V3_FUNCTION(C_MessageVerifyFinal, (CK_SESSION_HANDLE hSession));

#undef OPENHSM_V3_FUNCTION

/* CK_FUNCTION_LIST_3_0: the v2.40 list, then the v3.0 functions in the
 * specification's order. */
typedef struct CK_FUNCTION_LIST_3_0 {
	CK_VERSION version;
	CK_C_Initialize C_Initialize;
	CK_C_Finalize C_Finalize;
	CK_C_GetInfo C_GetInfo;
	CK_C_GetFunctionList C_GetFunctionList;
	CK_C_GetSlotList C_GetSlotList;
	CK_C_GetSlotInfo C_GetSlotInfo;
	CK_C_GetTokenInfo C_GetTokenInfo;
	CK_C_GetMechanismList C_GetMechanismList;
	CK_C_GetMechanismInfo C_GetMechanismInfo;
	CK_C_InitToken C_InitToken;
	CK_C_InitPIN C_InitPIN;
	CK_C_SetPIN C_SetPIN;
	CK_C_OpenSession C_OpenSession;
	CK_C_CloseSession C_CloseSession;
	CK_C_CloseAllSessions C_CloseAllSessions;
	CK_C_GetSessionInfo C_GetSessionInfo;
	CK_C_GetOperationState C_GetOperationState;
	CK_C_SetOperationState C_SetOperationState;
	CK_C_Login C_Login;
	CK_C_Logout C_Logout;
	CK_C_CreateObject C_CreateObject;
	CK_C_CopyObject C_CopyObject;
	CK_C_DestroyObject C_DestroyObject;
	CK_C_GetObjectSize C_GetObjectSize;
	CK_C_GetAttributeValue C_GetAttributeValue;
	CK_C_SetAttributeValue C_SetAttributeValue;
	CK_C_FindObjectsInit C_FindObjectsInit;
	CK_C_FindObjects C_FindObjects;
	CK_C_FindObjectsFinal C_FindObjectsFinal;
	CK_C_EncryptInit C_EncryptInit;
	CK_C_Encrypt C_Encrypt;
	CK_C_EncryptUpdate C_EncryptUpdate;
	CK_C_EncryptFinal C_EncryptFinal;
	CK_C_DecryptInit C_DecryptInit;
	CK_C_Decrypt C_Decrypt;
	CK_C_DecryptUpdate C_DecryptUpdate;
	CK_C_DecryptFinal C_DecryptFinal;
	CK_C_DigestInit C_DigestInit;
	CK_C_Digest C_Digest;
	CK_C_DigestUpdate C_DigestUpdate;
	CK_C_DigestKey C_DigestKey;
	CK_C_DigestFinal C_DigestFinal;
	CK_C_SignInit C_SignInit;
	CK_C_Sign C_Sign;
	CK_C_SignUpdate C_SignUpdate;
	CK_C_SignFinal C_SignFinal;
	CK_C_SignRecoverInit C_SignRecoverInit;
	CK_C_SignRecover C_SignRecover;
	CK_C_VerifyInit C_VerifyInit;
	CK_C_Verify C_Verify;
	CK_C_VerifyUpdate C_VerifyUpdate;
	CK_C_VerifyFinal C_VerifyFinal;
	CK_C_VerifyRecoverInit C_VerifyRecoverInit;
	CK_C_VerifyRecover C_VerifyRecover;
	CK_C_DigestEncryptUpdate C_DigestEncryptUpdate;
	CK_C_DecryptDigestUpdate C_DecryptDigestUpdate;
	CK_C_SignEncryptUpdate C_SignEncryptUpdate;
	CK_C_DecryptVerifyUpdate C_DecryptVerifyUpdate;
	CK_C_GenerateKey C_GenerateKey;
	CK_C_GenerateKeyPair C_GenerateKeyPair;
	CK_C_WrapKey C_WrapKey;
	CK_C_UnwrapKey C_UnwrapKey;
	CK_C_DeriveKey C_DeriveKey;
	CK_C_SeedRandom C_SeedRandom;
	CK_C_GenerateRandom C_GenerateRandom;
	CK_C_GetFunctionStatus C_GetFunctionStatus;
	CK_C_CancelFunction C_CancelFunction;
	CK_C_WaitForSlotEvent C_WaitForSlotEvent;

	CK_C_GetInterfaceList C_GetInterfaceList;
	CK_C_GetInterface C_GetInterface;
	CK_C_LoginUser C_LoginUser;
	CK_C_SessionCancel C_SessionCancel;
	CK_C_MessageEncryptInit C_MessageEncryptInit;
	CK_C_EncryptMessage C_EncryptMessage;
	CK_C_EncryptMessageBegin C_EncryptMessageBegin;
	CK_C_EncryptMessageNext C_EncryptMessageNext;
	CK_C_MessageEncryptFinal C_MessageEncryptFinal;
	CK_C_MessageDecryptInit C_MessageDecryptInit;
	CK_C_DecryptMessage C_DecryptMessage;
	CK_C_DecryptMessageBegin C_DecryptMessageBegin;
	CK_C_DecryptMessageNext C_DecryptMessageNext;
	CK_C_MessageDecryptFinal C_MessageDecryptFinal;
	CK_C_MessageSignInit C_MessageSignInit;
	CK_C_SignMessage C_SignMessage;
	CK_C_SignMessageBegin C_SignMessageBegin;
	CK_C_SignMessageNext C_SignMessageNext;
	CK_C_MessageSignFinal C_MessageSignFinal;
	CK_C_MessageVerifyInit C_MessageVerifyInit;
	CK_C_VerifyMessage C_VerifyMessage;
	CK_C_VerifyMessageBegin C_VerifyMessageBegin;
	CK_C_VerifyMessageNext C_VerifyMessageNext;
	CK_C_MessageVerifyFinal C_MessageVerifyFinal;
} CK_FUNCTION_LIST_3_0;
typedef CK_FUNCTION_LIST_3_0 *CK_FUNCTION_LIST_3_0_PTR;
typedef CK_FUNCTION_LIST_3_0 **CK_FUNCTION_LIST_3_0_PTR_PTR;

#endif /* CRYPTOKI_VERSION_MAJOR < 3 */

/* Key derivation (HKDF, SP 800-108) and ChaCha20-Poly1305: the mechanisms
 * and the parameter structures of the PKCS#11 v3.0 current-mechanisms
 * specification. */
#ifndef CKM_HKDF_DERIVE
#define CKK_CHACHA20 (0x33UL)
#define CKK_HKDF (0x42UL)
#define CKM_SP800_108_COUNTER_KDF (0x3acUL)
#define CKM_CHACHA20_KEY_GEN (0x1225UL)
#define CKM_CHACHA20_POLY1305 (0x4021UL)
#define CKM_HKDF_DERIVE (0x402aUL)
#define CKM_HKDF_DATA (0x402bUL)
#define CKF_HKDF_SALT_NULL (0x1UL)
#define CKF_HKDF_SALT_DATA (0x2UL)
#define CKF_HKDF_SALT_KEY (0x4UL)
#define CK_SP800_108_ITERATION_VARIABLE (0x1UL)
#define CK_SP800_108_OPTIONAL_COUNTER (0x2UL)
#define CK_SP800_108_COUNTER CK_SP800_108_OPTIONAL_COUNTER
#define CK_SP800_108_DKM_LENGTH (0x3UL)
#define CK_SP800_108_BYTE_ARRAY (0x4UL)
#define CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS (0x1UL)
#define CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS (0x2UL)

typedef struct CK_HKDF_PARAMS {
	CK_BBOOL bExtract;
	CK_BBOOL bExpand;
	CK_MECHANISM_TYPE prfHashMechanism;
	CK_ULONG ulSaltType;
	CK_BYTE_PTR pSalt;
	CK_ULONG ulSaltLen;
	CK_OBJECT_HANDLE hSaltKey;
	CK_BYTE_PTR pInfo;
	CK_ULONG ulInfoLen;
} CK_HKDF_PARAMS;

typedef CK_ULONG CK_PRF_DATA_TYPE;
typedef CK_MECHANISM_TYPE CK_SP800_108_PRF_TYPE;

typedef struct CK_PRF_DATA_PARAM {
	CK_PRF_DATA_TYPE type;
	CK_VOID_PTR pValue;
	CK_ULONG ulValueLen;
} CK_PRF_DATA_PARAM;

typedef struct CK_SP800_108_COUNTER_FORMAT {
	CK_BBOOL bLittleEndian;
	CK_ULONG ulWidthInBits;
} CK_SP800_108_COUNTER_FORMAT;

typedef CK_ULONG CK_SP800_108_DKM_LENGTH_METHOD;

typedef struct CK_SP800_108_DKM_LENGTH_FORMAT {
	CK_SP800_108_DKM_LENGTH_METHOD dkmLengthMethod;
	CK_BBOOL bLittleEndian;
	CK_ULONG ulWidthInBits;
} CK_SP800_108_DKM_LENGTH_FORMAT;

typedef struct CK_DERIVED_KEY {
	CK_ATTRIBUTE_PTR pTemplate;
	CK_ULONG ulAttributeCount;
	CK_OBJECT_HANDLE_PTR phKey;
} CK_DERIVED_KEY;

typedef struct CK_SP800_108_KDF_PARAMS {
	CK_SP800_108_PRF_TYPE prfType;
	CK_ULONG ulNumberOfDataParams;
	CK_PRF_DATA_PARAM *pDataParams;
	CK_ULONG ulAdditionalDerivedKeys;
	CK_DERIVED_KEY *pAdditionalDerivedKeys;
} CK_SP800_108_KDF_PARAMS;

typedef struct CK_SALSA20_CHACHA20_POLY1305_PARAMS {
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
} CK_SALSA20_CHACHA20_POLY1305_PARAMS;
#endif /* CKM_HKDF_DERIVE */
/* ---- message-based functions (v3.0): the parameters of the message
 * mechanisms, written from the OASIS PKCS#11 v3.0 current-mechanisms
 * specification. Guarded one by one: a newer header may have them. ---- */
#ifndef CKG_NO_GENERATE
typedef CK_ULONG CK_GENERATOR_FUNCTION;
#define CKG_NO_GENERATE (0x0UL)
#define CKG_GENERATE (0x1UL)
#define CKG_GENERATE_COUNTER (0x2UL)
#define CKG_GENERATE_RANDOM (0x3UL)

/* CK_GCM_MESSAGE_PARAMS: the per-message parameter of CKM_AES_GCM. */
typedef struct CK_GCM_MESSAGE_PARAMS {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_ULONG ulIvFixedBits;
	CK_GENERATOR_FUNCTION ivGenerator;
	CK_BYTE_PTR pTag;
	CK_ULONG ulTagBits;
} CK_GCM_MESSAGE_PARAMS;
typedef CK_GCM_MESSAGE_PARAMS *CK_GCM_MESSAGE_PARAMS_PTR;

/* CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS: the per-message parameter of
 * CKM_CHACHA20_POLY1305 (the tag is always 16 bytes). */
typedef struct CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
	CK_BYTE_PTR pNonce;
	CK_ULONG ulNonceBits;
	CK_BYTE_PTR pTag;
} CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS;
typedef CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS *CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS_PTR;
#endif
#ifndef CKM_CHACHA20_POLY1305
#define CKM_CHACHA20_POLY1305 (0x4021UL)
#endif
#ifndef CKF_MESSAGE_ENCRYPT
#define CKF_MESSAGE_ENCRYPT (1UL << 1)
#define CKF_MESSAGE_DECRYPT (1UL << 2)
#define CKF_MESSAGE_SIGN (1UL << 3)
#define CKF_MESSAGE_VERIFY (1UL << 4)
#endif

/* ---- PKCS#11 v3.2: post-quantum keys and key encapsulation ----
 * Values from the OASIS PKCS#11 v3.2 headers (published/3-02/pkcs11t.h
 * and pkcs11f.h of the OASIS PKCS 11 TC) and the specification's "ML-KEM"
 * and "ML-DSA" sections; ck/v32.go holds the same values for Go. */
#ifndef CKK_ML_KEM
#define CKK_ML_KEM                 (0x49UL)  /* pkcs11t.h, CKK_ */
#define CKK_ML_DSA                 (0x4aUL)
#define CKA_PARAMETER_SET          (0x61dUL) /* pkcs11t.h, CKA_ */
#define CKA_ENCAPSULATE_TEMPLATE   (0x62aUL)
#define CKA_DECAPSULATE_TEMPLATE   (0x62bUL)
#define CKA_ENCAPSULATE            (0x633UL)
#define CKA_DECAPSULATE            (0x634UL)
#define CKA_SEED                   (0x637UL)
#define CKM_ML_KEM_KEY_PAIR_GEN    (0xfUL)   /* pkcs11t.h, CKM_ */
#define CKM_ML_KEM                 (0x17UL)
#define CKM_ML_DSA_KEY_PAIR_GEN    (0x1cUL)
#define CKM_ML_DSA                 (0x1dUL)
#define CKF_ENCAPSULATE            (0x10000000UL) /* CK_MECHANISM_INFO flags */
#define CKF_DECAPSULATE            (0x20000000UL)
#define CKR_PARAMETER_SET_NOT_SUPPORTED (0x209UL)
/* CK_ML_KEM_PARAMETER_SET_TYPE, CK_ML_DSA_PARAMETER_SET_TYPE values */
#define CKP_ML_KEM_512             (0x1UL)
#define CKP_ML_KEM_768             (0x2UL)
#define CKP_ML_KEM_1024            (0x3UL)
#define CKP_ML_DSA_44              (0x1UL)
#define CKP_ML_DSA_65              (0x2UL)
#define CKP_ML_DSA_87              (0x3UL)
/* CK_HEDGE_TYPE (spec "ML-DSA", Definitions) */
#define CKH_HEDGE_PREFERRED        (0x0UL)
#define CKH_HEDGE_REQUIRED         (0x1UL)
#define CKH_DETERMINISTIC_REQUIRED (0x2UL)
#endif

#if CRYPTOKI_VERSION_MAJOR < 3 || (CRYPTOKI_VERSION_MAJOR == 3 && CRYPTOKI_VERSION_MINOR < 2)

typedef CK_ULONG CK_ML_KEM_PARAMETER_SET_TYPE;
typedef CK_ULONG CK_ML_DSA_PARAMETER_SET_TYPE;
typedef CK_ULONG CK_HEDGE_TYPE;

/* CK_SIGN_ADDITIONAL_CONTEXT: CKM_ML_DSA's optional parameter. */
typedef struct CK_SIGN_ADDITIONAL_CONTEXT {
	CK_HEDGE_TYPE hedgeVariant;
	CK_BYTE_PTR pContext;
	CK_ULONG ulContextLen;
} CK_SIGN_ADDITIONAL_CONTEXT;
typedef CK_SIGN_ADDITIONAL_CONTEXT *CK_SIGN_ADDITIONAL_CONTEXT_PTR;

typedef CK_ULONG CK_SESSION_VALIDATION_FLAGS_TYPE;
typedef CK_FLAGS *CK_FLAGS_PTR;

/* CK_ASYNC_DATA: C_AsyncComplete's result (the library supports no
 * asynchronous operation; the type is here for the function list). */
typedef struct CK_ASYNC_DATA {
	CK_ULONG ulVersion;
	CK_BYTE_PTR pValue;
	CK_ULONG ulValue;
	CK_OBJECT_HANDLE hObject;
	CK_OBJECT_HANDLE hAdditionalObject;
} CK_ASYNC_DATA;
typedef CK_ASYNC_DATA *CK_ASYNC_DATA_PTR;

/* The functions new in v3.2 (pkcs11f.h), each with its CK_C_ type. */
#define OPENHSM_V32_FUNCTION(name, args) \
	typedef CK_RV (*CK_##name) args; \
	CK_RV name args

OPENHSM_V32_FUNCTION(C_EncapsulateKey,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hPublicKey, CK_ATTRIBUTE_PTR pTemplate,
	 CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
	 CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey));
OPENHSM_V32_FUNCTION(C_DecapsulateKey,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hPrivateKey, CK_ATTRIBUTE_PTR pTemplate,
	 CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
	 CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey));
OPENHSM_V32_FUNCTION(C_VerifySignatureInit,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen));
OPENHSM_V32_FUNCTION(C_VerifySignature,
	(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen));
OPENHSM_V32_FUNCTION(C_VerifySignatureUpdate,
	(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen));
OPENHSM_V32_FUNCTION(C_VerifySignatureFinal, (CK_SESSION_HANDLE hSession));
OPENHSM_V32_FUNCTION(C_GetSessionValidationFlags,
	(CK_SESSION_HANDLE hSession, CK_SESSION_VALIDATION_FLAGS_TYPE type,
	 CK_FLAGS_PTR pFlags));
OPENHSM_V32_FUNCTION(C_AsyncComplete,
	(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
	 CK_ASYNC_DATA_PTR pResult));
OPENHSM_V32_FUNCTION(C_AsyncGetID,
	(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
	 CK_ULONG_PTR pulID));
OPENHSM_V32_FUNCTION(C_AsyncJoin,
	(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
	 CK_ULONG ulID, CK_BYTE_PTR pData, CK_ULONG ulData));
OPENHSM_V32_FUNCTION(C_WrapKeyAuthenticated,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
	 CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
	 CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen));
OPENHSM_V32_FUNCTION(C_UnwrapKeyAuthenticated,
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	 CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
	 CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
	 CK_ULONG ulAttributeCount, CK_BYTE_PTR pAssociatedData,
	 CK_ULONG ulAssociatedDataLen, CK_OBJECT_HANDLE_PTR phKey));

#undef OPENHSM_V32_FUNCTION

/* CK_FUNCTION_LIST_3_2: the v3.0 list, then the v3.2 functions in the
 * order of pkcs11f.h (published/3-02). */
typedef struct CK_FUNCTION_LIST_3_2 {
	CK_FUNCTION_LIST_3_0 v30; /* the v3.0 list, version first */
	CK_C_EncapsulateKey C_EncapsulateKey;
	CK_C_DecapsulateKey C_DecapsulateKey;
	CK_C_VerifySignatureInit C_VerifySignatureInit;
	CK_C_VerifySignature C_VerifySignature;
	CK_C_VerifySignatureUpdate C_VerifySignatureUpdate;
	CK_C_VerifySignatureFinal C_VerifySignatureFinal;
	CK_C_GetSessionValidationFlags C_GetSessionValidationFlags;
	CK_C_AsyncComplete C_AsyncComplete;
	CK_C_AsyncGetID C_AsyncGetID;
	CK_C_AsyncJoin C_AsyncJoin;
	CK_C_WrapKeyAuthenticated C_WrapKeyAuthenticated;
	CK_C_UnwrapKeyAuthenticated C_UnwrapKeyAuthenticated;
} CK_FUNCTION_LIST_3_2;
typedef CK_FUNCTION_LIST_3_2 *CK_FUNCTION_LIST_3_2_PTR;

#endif /* v3.2 */

#ifdef __cplusplus
}
#endif

#endif
