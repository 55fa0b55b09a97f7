/* rows: the C half of the chapter-grouped C-ABI suite (../chapters_test.go).
 *
 * Usage: rows LIBRARY ROW...   with HSM_CONFIG, P11_TOKEN_LABEL, P11_PIN set.
 *
 * Each ROW is "PHASE FUNCTION KEY=VALUE...": the driver fills an argument
 * block with valid defaults, changes what the KEY=VALUE words say (a NULL
 * pointer, a made-up handle, a one-byte buffer, an operation started first),
 * calls FUNCTION once through the library's function list and prints
 *
 *     row INDEX rv=0xRV [len=N] [then=0xRV thenlen=N]
 *
 * len is the length the library wrote back (for a check=len or check=alive
 * row), then/thenlen the second call of check=alive, which repeats the call
 * with the length the first answered (an operation that CKR_BUFFER_TOO_SMALL
 * kept alive finishes). The Go side owns the expectations; this program
 * knows no CK_RV to expect.
 *
 * Phases, in the order the Go side sends them: "pre" rows run before
 * C_Initialize, "init" rows too but may initialize the library (the driver
 * then takes C_Initialize's CKR_CRYPTOKI_ALREADY_INITIALIZED as success),
 * "pub" rows after it with no one logged in, "user" rows after
 * C_Login as the crypto user, with a few session keys made for them, "out"
 * rows after C_Logout (the handles of the user rows' keys stay). Every
 * row opens a session of its own (unless it names one) and closes it.
 *
 * A driver setup failure exits 100; a crash shows as a signal, and the
 * rows printed before it say where it happened. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11v3.h"

static CK_FUNCTION_LIST_PTR f;
static CK_FUNCTION_LIST_3_0_PTR f3;
static void *lib;

/* PKCS#11 3.2's KEM functions, where the library exports them. */
typedef CK_RV (*encapsulate_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE,
				CK_ATTRIBUTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR,
				CK_OBJECT_HANDLE_PTR);
typedef CK_RV (*decapsulate_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE,
				CK_ATTRIBUTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
				CK_OBJECT_HANDLE_PTR);

#define MADE_UP 0x5eedf00dUL

static CK_SLOT_ID slot;
static int initialized, logged_in, logged_out;
static CK_SESSION_HANDLE keeper; /* holds the login for the whole run */
static CK_OBJECT_HANDLE aes, ec_priv, ec_pub, hmac, data_obj;
static CK_BYTE ct[64];    /* AES-CBC-PAD of plain under aes */
static CK_ULONG ct_len;
static CK_BYTE mac[32];   /* SHA256-HMAC of plain under hmac */
static CK_BYTE plain[16] = "0123456789abcdef";

/* Mechanisms the rows name. */
static CK_BYTE iv[16];
static CK_MECHANISM m_cbcpad = { CKM_AES_CBC_PAD, iv, sizeof iv };
static CK_MECHANISM m_ecdsa = { CKM_ECDSA_SHA256, NULL, 0 };
static CK_MECHANISM m_hmac = { CKM_SHA256_HMAC, NULL, 0 };
static CK_MECHANISM m_sha256 = { CKM_SHA256, NULL, 0 };
static CK_MECHANISM m_aesgen = { CKM_AES_KEY_GEN, NULL, 0 };
static CK_MECHANISM m_ecgen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
static CK_MECHANISM m_kwp = { CKM_AES_KEY_WRAP_KWP, NULL, 0 };
static CK_MECHANISM m_rsa = { CKM_RSA_PKCS, NULL, 0 };
static CK_MECHANISM m_gcm; /* set up in main: AES-GCM with a 12-byte IV */
static CK_BYTE gcm_iv[12];
static CK_GCM_PARAMS gcm_params;

/* Templates. */
static CK_OBJECT_CLASS c_secret = CKO_SECRET_KEY, c_data = CKO_DATA;
static CK_KEY_TYPE k_aes = CKK_AES, k_generic = CKK_GENERIC_SECRET;
static CK_ULONG len16 = 16, len32 = 32;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static char label[] = "chapters-row";
static CK_BYTE value[] = "value";

static CK_ATTRIBUTE t_aes[] = {
	{ CKA_CLASS, &c_secret, sizeof c_secret }, { CKA_KEY_TYPE, &k_aes, sizeof k_aes },
	{ CKA_VALUE_LEN, &len16, sizeof len16 },   { CKA_TOKEN, &no, sizeof no },
	{ CKA_ENCRYPT, &yes, sizeof yes },         { CKA_DECRYPT, &yes, sizeof yes },
	{ CKA_WRAP, &yes, sizeof yes },            { CKA_UNWRAP, &yes, sizeof yes },
	{ CKA_EXTRACTABLE, &yes, sizeof yes },     { CKA_SENSITIVE, &no, sizeof no },
};
static CK_ATTRIBUTE t_aes_private[] = {
	{ CKA_CLASS, &c_secret, sizeof c_secret }, { CKA_KEY_TYPE, &k_aes, sizeof k_aes },
	{ CKA_VALUE_LEN, &len16, sizeof len16 },   { CKA_TOKEN, &no, sizeof no },
	{ CKA_PRIVATE, &yes, sizeof yes },
};
static CK_ATTRIBUTE t_aes_token[] = {
	{ CKA_CLASS, &c_secret, sizeof c_secret }, { CKA_KEY_TYPE, &k_aes, sizeof k_aes },
	{ CKA_VALUE_LEN, &len16, sizeof len16 },   { CKA_TOKEN, &yes, sizeof yes },
};
static CK_ATTRIBUTE t_hmac[] = {
	{ CKA_CLASS, &c_secret, sizeof c_secret }, { CKA_KEY_TYPE, &k_generic, sizeof k_generic },
	{ CKA_VALUE_LEN, &len32, sizeof len32 },   { CKA_TOKEN, &no, sizeof no },
	{ CKA_SIGN, &yes, sizeof yes },            { CKA_VERIFY, &yes, sizeof yes },
	{ CKA_EXTRACTABLE, &yes, sizeof yes },     { CKA_SENSITIVE, &no, sizeof no },
};
static CK_ATTRIBUTE t_ecpub[] = {
	{ CKA_TOKEN, &no, sizeof no },
	{ CKA_EC_PARAMS, p256, sizeof p256 },
	{ CKA_VERIFY, &yes, sizeof yes },
};
static CK_ATTRIBUTE t_ecpriv[] = {
	{ CKA_TOKEN, &no, sizeof no },
	{ CKA_SIGN, &yes, sizeof yes },
	{ CKA_DERIVE, &yes, sizeof yes },
};
static CK_ATTRIBUTE t_data[] = {
	{ CKA_CLASS, &c_data, sizeof c_data },
	{ CKA_TOKEN, &no, sizeof no },
	{ CKA_LABEL, label, sizeof label - 1 },
	{ CKA_VALUE, value, sizeof value - 1 },
};
static CK_ATTRIBUTE t_data_token[] = {
	{ CKA_CLASS, &c_data, sizeof c_data },
	{ CKA_TOKEN, &yes, sizeof yes },
	{ CKA_LABEL, label, sizeof label - 1 },
};
static CK_ATTRIBUTE t_data_private[] = {
	{ CKA_CLASS, &c_data, sizeof c_data },
	{ CKA_TOKEN, &no, sizeof no },
	{ CKA_PRIVATE, &yes, sizeof yes },
};
static CK_BYTE label_buf[1];
static CK_ATTRIBUTE t_label_short[] = { { CKA_LABEL, label_buf, sizeof label_buf } };
static CK_ATTRIBUTE t_label[] = { { CKA_LABEL, label, sizeof label - 1 } };

static CK_C_INITIALIZE_ARGS init_reserved = { .pReserved = (void *)1 };
static CK_RV dummy_mutex(void *m) { (void)m; return CKR_OK; }
static CK_RV dummy_create(void **m) { (void)m; return CKR_OK; }
static CK_C_INITIALIZE_ARGS init_half_mutex = { .CreateMutex = dummy_create,
						.DestroyMutex = dummy_mutex };
static CK_C_INITIALIZE_ARGS init_all_mutex = { .CreateMutex = dummy_create,
					       .DestroyMutex = dummy_mutex,
					       .LockMutex = dummy_mutex,
					       .UnlockMutex = dummy_mutex };

/* The argument block every thunk takes its arguments from. */
typedef struct {
	CK_SESSION_HANDLE sh;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE obj, obj2;
	CK_MECHANISM_PTR mech;
	CK_BYTE_PTR in, in2, out;
	CK_ULONG inlen, in2len;
	CK_ULONG_PTR outlen;
	CK_ATTRIBUTE_PTR tmpl, tmpl2;
	CK_ULONG count, count2;
	CK_OBJECT_HANDLE_PTR ph, ph2;
	void *ptr;
	CK_ULONG u;
	void *param;
	CK_ULONG paramlen;
} args;

static CK_BYTE inbuf[64] = "abc";
static CK_BYTE in2buf[64];
static CK_BYTE outbuf[4096];
static CK_ULONG outlen;
static CK_OBJECT_HANDLE h1, h2, handles[1024];
static union {
	CK_INFO info;
	CK_SLOT_INFO slot;
	CK_TOKEN_INFO token;
	CK_SESSION_INFO session;
	CK_MECHANISM_INFO mech;
	CK_INTERFACE iface[4];
	CK_BYTE raw[1024];
} infobuf;
static CK_FUNCTION_LIST_PTR list_out;
static CK_INTERFACE_PTR iface_out;
static CK_VERSION v_none = { 9, 9 };

/* ---- one thunk per function ---- */

#define T(name, call) \
	static CK_RV t_##name(args *a) { (void)a; return call; }

T(C_Initialize, f->C_Initialize(a->ptr))
T(C_Finalize, f->C_Finalize(a->ptr))
T(C_GetInfo, f->C_GetInfo(a->ptr))
T(C_GetFunctionList, f->C_GetFunctionList(a->ptr))
T(C_GetInterfaceList, f3->C_GetInterfaceList(a->ptr, a->outlen))
T(C_GetInterface, f3->C_GetInterface(a->in, a->param, a->ptr, a->u))
T(C_GetSlotList, f->C_GetSlotList((CK_BBOOL)a->u, a->ph, a->outlen))
T(C_GetSlotInfo, f->C_GetSlotInfo(a->slot, a->ptr))
T(C_GetTokenInfo, f->C_GetTokenInfo(a->slot, a->ptr))
T(C_WaitForSlotEvent, f->C_WaitForSlotEvent(a->u, a->ph, a->param))
T(C_GetMechanismList, f->C_GetMechanismList(a->slot, a->ph, a->outlen))
T(C_GetMechanismInfo, f->C_GetMechanismInfo(a->slot, a->u, a->ptr))
T(C_InitToken, f->C_InitToken(a->slot, a->in, a->inlen, a->in2))
T(C_InitPIN, f->C_InitPIN(a->sh, a->in, a->inlen))
T(C_SetPIN, f->C_SetPIN(a->sh, a->in, a->inlen, a->in2, a->in2len))
T(C_OpenSession, f->C_OpenSession(a->slot, a->u, NULL, NULL, a->ph))
T(C_CloseSession, f->C_CloseSession(a->sh))
T(C_CloseAllSessions, f->C_CloseAllSessions(a->slot))
T(C_GetSessionInfo, f->C_GetSessionInfo(a->sh, a->ptr))
T(C_SessionCancel, f3->C_SessionCancel(a->sh, a->u))
T(C_GetOperationState, f->C_GetOperationState(a->sh, a->out, a->outlen))
T(C_SetOperationState, f->C_SetOperationState(a->sh, a->in, a->inlen, a->obj, a->obj2))
T(C_Login, f->C_Login(a->sh, a->u, a->in, a->inlen))
T(C_LoginUser, f3->C_LoginUser(a->sh, a->u, a->in, a->inlen, a->in2, a->in2len))
T(C_Logout, f->C_Logout(a->sh))
T(C_CreateObject, f->C_CreateObject(a->sh, a->tmpl, a->count, a->ph))
T(C_CopyObject, f->C_CopyObject(a->sh, a->obj, a->tmpl, a->count, a->ph))
T(C_DestroyObject, f->C_DestroyObject(a->sh, a->obj))
T(C_GetObjectSize, f->C_GetObjectSize(a->sh, a->obj, a->outlen))
T(C_GetAttributeValue, f->C_GetAttributeValue(a->sh, a->obj, a->tmpl, a->count))
T(C_SetAttributeValue, f->C_SetAttributeValue(a->sh, a->obj, a->tmpl, a->count))
T(C_FindObjectsInit, f->C_FindObjectsInit(a->sh, a->tmpl, a->count))
T(C_FindObjects, f->C_FindObjects(a->sh, a->ph, a->u, a->outlen))
T(C_FindObjectsFinal, f->C_FindObjectsFinal(a->sh))
T(C_EncryptInit, f->C_EncryptInit(a->sh, a->mech, a->obj))
T(C_Encrypt, f->C_Encrypt(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_EncryptUpdate, f->C_EncryptUpdate(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_EncryptFinal, f->C_EncryptFinal(a->sh, a->out, a->outlen))
T(C_DecryptInit, f->C_DecryptInit(a->sh, a->mech, a->obj))
T(C_Decrypt, f->C_Decrypt(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_DecryptUpdate, f->C_DecryptUpdate(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_DecryptFinal, f->C_DecryptFinal(a->sh, a->out, a->outlen))
T(C_MessageEncryptInit, f3->C_MessageEncryptInit(a->sh, a->mech, a->obj))
T(C_EncryptMessage, f3->C_EncryptMessage(a->sh, a->param, a->paramlen, a->in2, a->in2len,
					  a->in, a->inlen, a->out, a->outlen))
T(C_EncryptMessageBegin, f3->C_EncryptMessageBegin(a->sh, a->param, a->paramlen, a->in2, a->in2len))
T(C_EncryptMessageNext, f3->C_EncryptMessageNext(a->sh, a->param, a->paramlen, a->in, a->inlen,
						  a->out, a->outlen, a->u))
T(C_MessageEncryptFinal, f3->C_MessageEncryptFinal(a->sh))
T(C_MessageDecryptInit, f3->C_MessageDecryptInit(a->sh, a->mech, a->obj))
T(C_DecryptMessage, f3->C_DecryptMessage(a->sh, a->param, a->paramlen, a->in2, a->in2len,
					  a->in, a->inlen, a->out, a->outlen))
T(C_DecryptMessageBegin, f3->C_DecryptMessageBegin(a->sh, a->param, a->paramlen, a->in2, a->in2len))
T(C_DecryptMessageNext, f3->C_DecryptMessageNext(a->sh, a->param, a->paramlen, a->in, a->inlen,
						  a->out, a->outlen, a->u))
T(C_MessageDecryptFinal, f3->C_MessageDecryptFinal(a->sh))
T(C_DigestInit, f->C_DigestInit(a->sh, a->mech))
T(C_Digest, f->C_Digest(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_DigestUpdate, f->C_DigestUpdate(a->sh, a->in, a->inlen))
T(C_DigestKey, f->C_DigestKey(a->sh, a->obj))
T(C_DigestFinal, f->C_DigestFinal(a->sh, a->out, a->outlen))
T(C_SignInit, f->C_SignInit(a->sh, a->mech, a->obj))
T(C_Sign, f->C_Sign(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_SignUpdate, f->C_SignUpdate(a->sh, a->in, a->inlen))
T(C_SignFinal, f->C_SignFinal(a->sh, a->out, a->outlen))
T(C_SignRecoverInit, f->C_SignRecoverInit(a->sh, a->mech, a->obj))
T(C_SignRecover, f->C_SignRecover(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_MessageSignInit, f3->C_MessageSignInit(a->sh, a->mech, a->obj))
T(C_SignMessage, f3->C_SignMessage(a->sh, a->param, a->paramlen, a->in, a->inlen, a->out, a->outlen))
T(C_SignMessageBegin, f3->C_SignMessageBegin(a->sh, a->param, a->paramlen))
T(C_SignMessageNext, f3->C_SignMessageNext(a->sh, a->param, a->paramlen, a->in, a->inlen, a->out,
					    a->outlen))
T(C_MessageSignFinal, f3->C_MessageSignFinal(a->sh))
T(C_VerifyInit, f->C_VerifyInit(a->sh, a->mech, a->obj))
T(C_Verify, f->C_Verify(a->sh, a->in, a->inlen, a->in2, a->in2len))
T(C_VerifyUpdate, f->C_VerifyUpdate(a->sh, a->in, a->inlen))
T(C_VerifyFinal, f->C_VerifyFinal(a->sh, a->in2, a->in2len))
T(C_VerifyRecoverInit, f->C_VerifyRecoverInit(a->sh, a->mech, a->obj))
T(C_VerifyRecover, f->C_VerifyRecover(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_MessageVerifyInit, f3->C_MessageVerifyInit(a->sh, a->mech, a->obj))
T(C_VerifyMessage, f3->C_VerifyMessage(a->sh, a->param, a->paramlen, a->in, a->inlen, a->in2,
					a->in2len))
T(C_VerifyMessageBegin, f3->C_VerifyMessageBegin(a->sh, a->param, a->paramlen))
T(C_VerifyMessageNext, f3->C_VerifyMessageNext(a->sh, a->param, a->paramlen, a->in, a->inlen,
						a->in2, a->in2len))
T(C_MessageVerifyFinal, f3->C_MessageVerifyFinal(a->sh))
T(C_DigestEncryptUpdate, f->C_DigestEncryptUpdate(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_DecryptDigestUpdate, f->C_DecryptDigestUpdate(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_SignEncryptUpdate, f->C_SignEncryptUpdate(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_DecryptVerifyUpdate, f->C_DecryptVerifyUpdate(a->sh, a->in, a->inlen, a->out, a->outlen))
T(C_GenerateKey, f->C_GenerateKey(a->sh, a->mech, a->tmpl, a->count, a->ph))
T(C_GenerateKeyPair, f->C_GenerateKeyPair(a->sh, a->mech, a->tmpl, a->count, a->tmpl2, a->count2,
					   a->ph, a->ph2))
T(C_WrapKey, f->C_WrapKey(a->sh, a->mech, a->obj, a->obj2, a->out, a->outlen))
T(C_UnwrapKey, f->C_UnwrapKey(a->sh, a->mech, a->obj, a->in, a->inlen, a->tmpl, a->count, a->ph))
T(C_DeriveKey, f->C_DeriveKey(a->sh, a->mech, a->obj, a->tmpl, a->count, a->ph))
T(C_SeedRandom, f->C_SeedRandom(a->sh, a->in, a->inlen))
T(C_GenerateRandom, f->C_GenerateRandom(a->sh, a->out, a->inlen))
T(C_GetFunctionStatus, f->C_GetFunctionStatus(a->sh))
T(C_CancelFunction, f->C_CancelFunction(a->sh))

/* The 3.2 KEM functions, found with dlsym (f is the v3.0 list): should the
 * library not export one, the row prints absent=1 and fails. */
static int absent;
static CK_RV t_C_EncapsulateKey(args *a)
{
	encapsulate_fn fn = (encapsulate_fn)dlsym(lib, "C_EncapsulateKey");
	if (!fn) {
		absent = 1;
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	return fn(a->sh, a->mech, a->obj, a->tmpl, a->count, a->out, a->outlen, a->ph);
}
static CK_RV t_C_DecapsulateKey(args *a)
{
	decapsulate_fn fn = (decapsulate_fn)dlsym(lib, "C_DecapsulateKey");
	if (!fn) {
		absent = 1;
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	return fn(a->sh, a->mech, a->obj, a->tmpl, a->count, a->in, a->inlen, a->ph);
}

#define E(name) { #name, t_##name }
static const struct {
	const char *name;
	CK_RV (*fn)(args *);
} thunks[] = {
	E(C_Initialize), E(C_Finalize), E(C_GetInfo), E(C_GetFunctionList), E(C_GetInterfaceList),
	E(C_GetInterface), E(C_GetSlotList), E(C_GetSlotInfo), E(C_GetTokenInfo),
	E(C_WaitForSlotEvent), E(C_GetMechanismList), E(C_GetMechanismInfo), E(C_InitToken),
	E(C_InitPIN), E(C_SetPIN), E(C_OpenSession), E(C_CloseSession), E(C_CloseAllSessions),
	E(C_GetSessionInfo), E(C_SessionCancel), E(C_GetOperationState), E(C_SetOperationState),
	E(C_Login), E(C_LoginUser), E(C_Logout), E(C_CreateObject), E(C_CopyObject),
	E(C_DestroyObject), E(C_GetObjectSize), E(C_GetAttributeValue), E(C_SetAttributeValue),
	E(C_FindObjectsInit), E(C_FindObjects), E(C_FindObjectsFinal), E(C_EncryptInit),
	E(C_Encrypt), E(C_EncryptUpdate), E(C_EncryptFinal), E(C_DecryptInit), E(C_Decrypt),
	E(C_DecryptUpdate), E(C_DecryptFinal), E(C_MessageEncryptInit), E(C_EncryptMessage),
	E(C_EncryptMessageBegin), E(C_EncryptMessageNext), E(C_MessageEncryptFinal),
	E(C_MessageDecryptInit), E(C_DecryptMessage), E(C_DecryptMessageBegin),
	E(C_DecryptMessageNext), E(C_MessageDecryptFinal), E(C_DigestInit), E(C_Digest),
	E(C_DigestUpdate), E(C_DigestKey), E(C_DigestFinal), E(C_SignInit), E(C_Sign),
	E(C_SignUpdate), E(C_SignFinal), E(C_SignRecoverInit), E(C_SignRecover),
	E(C_MessageSignInit), E(C_SignMessage), E(C_SignMessageBegin), E(C_SignMessageNext),
	E(C_MessageSignFinal), E(C_VerifyInit), E(C_Verify), E(C_VerifyUpdate), E(C_VerifyFinal),
	E(C_VerifyRecoverInit), E(C_VerifyRecover), E(C_MessageVerifyInit), E(C_VerifyMessage),
	E(C_VerifyMessageBegin), E(C_VerifyMessageNext), E(C_MessageVerifyFinal),
	E(C_DigestEncryptUpdate), E(C_DecryptDigestUpdate), E(C_SignEncryptUpdate),
	E(C_DecryptVerifyUpdate), E(C_GenerateKey), E(C_GenerateKeyPair), E(C_WrapKey),
	E(C_UnwrapKey), E(C_DeriveKey), E(C_SeedRandom), E(C_GenerateRandom),
	E(C_GetFunctionStatus), E(C_CancelFunction), E(C_EncapsulateKey), E(C_DecapsulateKey),
};
#define N(x) (sizeof(x) / sizeof((x)[0]))

/* ---- setup ---- */

static void die(const char *what, CK_RV rv)
{
	printf("setup %s = %#lx\n", what, rv);
	fflush(stdout);
	exit(100);
}

static void initialize(void)
{
	const char *want = getenv("P11_TOKEN_LABEL");
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	char padded[32];
	CK_RV rv;

	if (!want)
		die("P11_TOKEN_LABEL unset", 0);
	/* An "init" row may have initialized the library already. */
	if ((rv = f->C_Initialize(NULL)) != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		die("C_Initialize", rv);
	memset(padded, ' ', sizeof padded);
	memcpy(padded, want, strlen(want) < 32 ? strlen(want) : 32);
	if ((rv = f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
		die("C_GetSlotList", rv);
	for (i = 0; i < n && i < 64; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !memcmp(ti.label, padded, 32)) {
			slot = slots[i];
			initialized = 1;
			return;
		}
	die("no token with the label", 0);
}

static void login(void)
{
	const char *pin = getenv("P11_PIN");
	CK_ULONG l;
	CK_RV rv;

	if (!pin)
		die("P11_PIN unset", 0);
	if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				   &keeper)) != CKR_OK)
		die("C_OpenSession", rv);
	if ((rv = f->C_Login(keeper, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK)
		die("C_Login", rv);
	if ((rv = f->C_GenerateKey(keeper, &m_aesgen, t_aes, N(t_aes), &aes)) != CKR_OK)
		die("C_GenerateKey (AES)", rv);
	if ((rv = f->C_GenerateKey(keeper, &m_aesgen, t_hmac, N(t_hmac), &hmac)) != CKR_OK) {
		/* generic secrets come from their own generator */
		CK_MECHANISM g = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
		if ((rv = f->C_GenerateKey(keeper, &g, t_hmac, N(t_hmac), &hmac)) != CKR_OK)
			die("C_GenerateKey (HMAC)", rv);
	}
	if ((rv = f->C_GenerateKeyPair(keeper, &m_ecgen, t_ecpub, N(t_ecpub), t_ecpriv,
				       N(t_ecpriv), &ec_pub, &ec_priv)) != CKR_OK)
		die("C_GenerateKeyPair (EC)", rv);
	if ((rv = f->C_CreateObject(keeper, t_data, N(t_data), &data_obj)) != CKR_OK)
		die("C_CreateObject (data)", rv);
	ct_len = sizeof ct;
	if ((rv = f->C_EncryptInit(keeper, &m_cbcpad, aes)) != CKR_OK ||
	    (rv = f->C_Encrypt(keeper, plain, sizeof plain, ct, &ct_len)) != CKR_OK)
		die("AES-CBC-PAD encryption", rv);
	l = sizeof mac;
	if ((rv = f->C_SignInit(keeper, &m_hmac, hmac)) != CKR_OK ||
	    (rv = f->C_Sign(keeper, plain, sizeof plain, mac, &l)) != CKR_OK)
		die("HMAC", rv);
	logged_in = 1;
}

/* ---- one row ---- */

static CK_SESSION_HANDLE open_session(CK_FLAGS flags)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = f->C_OpenSession(slot, flags, NULL, NULL, &s);
	if (rv != CKR_OK)
		die("C_OpenSession for a row", rv);
	return s;
}

static CK_OBJECT_HANDLE object(const char *v)
{
	if (!strcmp(v, "bad"))
		return MADE_UP;
	if (!strcmp(v, "0"))
		return 0;
	if (!strcmp(v, "aes"))
		return aes;
	if (!strcmp(v, "ecpriv"))
		return ec_priv;
	if (!strcmp(v, "ecpub"))
		return ec_pub;
	if (!strcmp(v, "hmac"))
		return hmac;
	if (!strcmp(v, "data"))
		return data_obj;
	die(v, 0);
	return 0;
}

static CK_MECHANISM_PTR mechanism(const char *v)
{
	static const struct {
		const char *n;
		CK_MECHANISM_PTR m;
	} ms[] = { { "cbcpad", &m_cbcpad }, { "ecdsa", &m_ecdsa }, { "hmac", &m_hmac },
		   { "sha256", &m_sha256 }, { "aesgen", &m_aesgen }, { "ecgen", &m_ecgen },
		   { "kwp", &m_kwp }, { "rsa", &m_rsa }, { "gcm", &m_gcm } };
	size_t i;
	if (!strcmp(v, "NULL"))
		return NULL;
	for (i = 0; i < N(ms); i++)
		if (!strcmp(v, ms[i].n))
			return ms[i].m;
	die(v, 0);
	return NULL;
}

static CK_ATTRIBUTE_PTR tmpl(const char *v, CK_ULONG *count)
{
	static const struct {
		const char *n;
		CK_ATTRIBUTE_PTR t;
		CK_ULONG c;
	} ts[] = { { "aes", t_aes, N(t_aes) },
		   { "aestoken", t_aes_token, N(t_aes_token) },
		   { "aesprivate", t_aes_private, N(t_aes_private) },
		   { "ecpub", t_ecpub, N(t_ecpub) },
		   { "ecpriv", t_ecpriv, N(t_ecpriv) },
		   { "data", t_data, N(t_data) },
		   { "datatoken", t_data_token, N(t_data_token) },
		   { "dataprivate", t_data_private, N(t_data_private) },
		   { "labelshort", t_label_short, N(t_label_short) },
		   { "label", t_label, N(t_label) } };
	size_t i;
	if (!strcmp(v, "NULL")) /* keeps the count it had */
		return NULL;
	for (i = 0; i < N(ts); i++)
		if (!strcmp(v, ts[i].n)) {
			*count = ts[i].c;
			return ts[i].t;
		}
	die(v, 0);
	return NULL;
}

/* start begins an operation in the row's session before the call. */
static void start(CK_SESSION_HANDLE s, const char *v)
{
	CK_RV rv = CKR_OK;
	if (!strcmp(v, "encrypt"))
		rv = f->C_EncryptInit(s, &m_cbcpad, aes);
	else if (!strcmp(v, "decrypt"))
		rv = f->C_DecryptInit(s, &m_cbcpad, aes);
	else if (!strcmp(v, "digest"))
		rv = f->C_DigestInit(s, &m_sha256);
	else if (!strcmp(v, "sign"))
		rv = f->C_SignInit(s, &m_hmac, hmac);
	else if (!strcmp(v, "signec"))
		rv = f->C_SignInit(s, &m_ecdsa, ec_priv);
	else if (!strcmp(v, "verify"))
		rv = f->C_VerifyInit(s, &m_hmac, hmac);
	else if (!strcmp(v, "find"))
		rv = f->C_FindObjectsInit(s, NULL, 0);
	else
		die(v, 0);
	if (rv != CKR_OK)
		die(v, rv);
}

static CK_BYTE_PTR bytes(const char *v, CK_ULONG *len)
{
	if (!strcmp(v, "NULL"))
		return NULL;
	if (!strcmp(v, "ct")) {
		*len = ct_len;
		return ct;
	}
	if (!strcmp(v, "mac")) {
		*len = sizeof mac;
		return mac;
	}
	if (!strcmp(v, "plain")) {
		*len = sizeof plain;
		return plain;
	}
	if (!strcmp(v, "pin")) {
		const char *p = getenv("P11_PIN");
		*len = strlen(p);
		return (CK_BYTE_PTR)p;
	}
	if (!strcmp(v, "label32")) {
		static CK_BYTE l32[32];
		memset(l32, ' ', sizeof l32);
		*len = 32;
		return l32;
	}
	die(v, 0);
	return NULL;
}

static void run_row(int index, char *spec)
{
	args a;
	char *save = NULL, *word, *fname;
	CK_SESSION_HANDLE own = 0;
	CK_RV rv, then = 0;
	CK_RV (*fn)(args *) = NULL;
	int check_len = 0, check_alive = 0, check_attr = 0, check_count = 0, close_first = 0;
	size_t i;

	word = strtok_r(spec, " ", &save); /* the phase */
	if (!strcmp(word, "pre") || !strcmp(word, "init")) {
		if (initialized)
			die("a pre or init row after C_Initialize", 0);
	} else {
		if (!initialized)
			initialize();
		if (strcmp(word, "pub") && !logged_in)
			login();
		if (!strcmp(word, "out")) {
			if (!logged_out) {
				CK_RV rv = f->C_Logout(keeper);
				if (rv != CKR_OK)
					die("C_Logout", rv);
				logged_out = 1;
			}
		} else if (logged_out) {
			die("a row after the out rows", 0);
		}
	}
	fname = strtok_r(NULL, " ", &save);
	for (i = 0; i < N(thunks); i++)
		if (!strcmp(thunks[i].name, fname))
			fn = thunks[i].fn;
	if (!fn)
		die(fname, 0);

	memset(&a, 0, sizeof a);
	if (initialized) {
		own = open_session(CKF_SERIAL_SESSION | CKF_RW_SESSION);
		a.sh = own;
	} else {
		a.sh = 1;
	}
	a.slot = slot;
	a.obj = a.obj2 = 1;
	a.mech = &m_sha256;
	a.in = inbuf;
	a.inlen = 3;
	a.in2 = in2buf;
	a.in2len = 32;
	memset(outbuf, 0, sizeof outbuf);
	a.out = outbuf;
	outlen = sizeof outbuf;
	a.outlen = &outlen;
	a.ph = handles;
	a.ph2 = &h2;
	a.ptr = &infobuf;
	a.param = NULL;
	a.u = 0;

	while ((word = strtok_r(NULL, " ", &save))) {
		char *v = strchr(word, '=');
		if (!v)
			die(word, 0);
		*v++ = 0;
		if (!strcmp(word, "sh")) {
			if (!strcmp(v, "bad"))
				a.sh = MADE_UP;
			else if (!strcmp(v, "0"))
				a.sh = 0;
			else if (!strcmp(v, "ro")) {
				f->C_CloseSession(own);
				own = open_session(CKF_SERIAL_SESSION);
				a.sh = own;
			} else if (!strcmp(v, "closed"))
				close_first = 1;
			else
				die(v, 0);
		} else if (!strcmp(word, "slot"))
			a.slot = !strcmp(v, "bad") ? MADE_UP : strtoul(v, NULL, 0);
		else if (!strcmp(word, "obj"))
			a.obj = object(v);
		else if (!strcmp(word, "obj2"))
			a.obj2 = object(v);
		else if (!strcmp(word, "mech"))
			a.mech = mechanism(v);
		else if (!strcmp(word, "in"))
			a.in = bytes(v, &a.inlen);
		else if (!strcmp(word, "inlen"))
			a.inlen = strtoul(v, NULL, 0);
		else if (!strcmp(word, "in2"))
			a.in2 = bytes(v, &a.in2len);
		else if (!strcmp(word, "in2len"))
			a.in2len = strtoul(v, NULL, 0);
		else if (!strcmp(word, "out") && !strcmp(v, "NULL"))
			a.out = NULL;
		else if (!strcmp(word, "outlen") && !strcmp(v, "NULL"))
			a.outlen = NULL;
		else if (!strcmp(word, "outcap"))
			outlen = strtoul(v, NULL, 0);
		else if (!strcmp(word, "ph") && !strcmp(v, "NULL"))
			a.ph = NULL;
		else if (!strcmp(word, "ph2") && !strcmp(v, "NULL"))
			a.ph2 = NULL;
		else if (!strcmp(word, "ptr")) {
			if (!strcmp(v, "NULL"))
				a.ptr = NULL;
			else if (!strcmp(v, "initreserved"))
				a.ptr = &init_reserved;
			else if (!strcmp(v, "inithalfmutex"))
				a.ptr = &init_half_mutex;
			else if (!strcmp(v, "initallmutex"))
				a.ptr = &init_all_mutex;
			else if (!strcmp(v, "list"))
				a.ptr = &list_out;
			else if (!strcmp(v, "iface"))
				a.ptr = &iface_out;
			else if (!strcmp(v, "one"))
				a.ptr = (void *)1;
			else
				die(v, 0);
		} else if (!strcmp(word, "param")) {
			if (!strcmp(v, "gcm")) {
				a.param = &gcm_params;
				a.paramlen = sizeof gcm_params;
			} else if (!strcmp(v, "badversion"))
				a.param = &v_none;
			else if (!strcmp(v, "NULL"))
				a.param = NULL; /* keeps paramlen */
			else
				die(v, 0);
		} else if (!strcmp(word, "paramlen"))
			a.paramlen = strtoul(v, NULL, 0);
		else if (!strcmp(word, "tmpl"))
			a.tmpl = tmpl(v, &a.count);
		else if (!strcmp(word, "count"))
			a.count = strtoul(v, NULL, 0);
		else if (!strcmp(word, "tmpl2"))
			a.tmpl2 = tmpl(v, &a.count2);
		else if (!strcmp(word, "count2"))
			a.count2 = strtoul(v, NULL, 0);
		else if (!strcmp(word, "u"))
			a.u = strtoul(v, NULL, 0);
		else if (!strcmp(word, "start"))
			start(a.sh, v);
		else if (!strcmp(word, "check")) {
			if (!strcmp(v, "len"))
				check_len = 1;
			else if (!strcmp(v, "alive"))
				check_len = check_alive = 1;
			else if (!strcmp(v, "attr"))
				check_attr = 1;
			else if (!strcmp(v, "count"))
				check_count = 1;
			else
				die(v, 0);
		} else
			die(word, 0);
	}
	if (close_first) {
		f->C_CloseSession(own);
		a.sh = own;
		own = 0;
	}

	absent = 0;
	rv = fn(&a);
	printf("row %d rv=%#lx", index, rv);
	if (absent)
		printf(" absent=1");
	if (check_len)
		printf(" len=%lu", outlen);
	if (check_attr)
		printf(" len=%ld", a.tmpl ? (long)a.tmpl[0].ulValueLen : -2L);
	if (check_count)
		printf(" len=%lu", outlen);
	if (check_alive) {
		CK_ULONG first = outlen;
		then = fn(&a);
		printf(" then=%#lx thenlen=%lu", then, outlen);
		(void)first;
	}
	printf("\n");
	fflush(stdout);
	/* C_GetAttributeValue writes lengths into the templates it is given. */
	t_label_short[0].ulValueLen = sizeof label_buf;
	t_label[0].ulValueLen = sizeof label - 1;
	if (own && initialized)
		f->C_CloseSession(own);
	(void)h1;
}

int main(int argc, char **argv)
{
	CK_C_GetFunctionList gfl;
	CK_C_GetInterface gi;
	CK_INTERFACE_PTR iface = NULL;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: rows LIBRARY ROW...\n");
		return 100;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 100;
	}
	gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	if (!gfl || !gi || gfl(&f) != CKR_OK || gi(NULL, NULL, &iface, 0) != CKR_OK)
		die("function lists", 0);
	f3 = (CK_FUNCTION_LIST_3_0_PTR)iface->pFunctionList;
	gcm_params.pIv = gcm_iv;
	gcm_params.ulIvLen = sizeof gcm_iv;
	gcm_params.ulIvBits = 96;
	gcm_params.ulTagBits = 128;
	m_gcm.mechanism = CKM_AES_GCM;
	m_gcm.pParameter = &gcm_params;
	m_gcm.ulParameterLen = sizeof gcm_params;

	for (i = 2; i < argc; i++)
		run_row(i - 2, argv[i]);
	if (initialized) {
		f->C_CloseAllSessions(slot);
		f->C_Finalize(NULL);
	}
	printf("done\n");
	return 0;
}
