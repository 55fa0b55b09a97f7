/* p11test: drives libopenhsm-pkcs11.so through its C ABI for the Go tests
 * in ../abi_test.go. Usage: p11test LIBRARY SCENARIO. It prints a line per
 * failed check on stderr and exits with the number of failures (capped).
 *
 * Scenarios:
 *   abi          function lists, interfaces, calls before C_Initialize,
 *                C_Initialize's argument checks (no Go is reached)
 *   wire         every kind of item through the fake helper (forced helper
 *                mode; the test sets the environment)
 *   nullargs     NULL pointers after C_Initialize: CKR_ARGUMENTS_BAD and
 *                no frame sent (between two SeedRandom markers)
 *   broken       malformed replies and a helper that dies
 *   threads      concurrent calls on one helper socket
 *   fork         C_Initialize in process, fork; the child (and grandchild)
 *                initialize through the helper
 *   forkparent   the parent uses a helper, forks; both keep working
 *   forkreal     the parent in process and the child through the real
 *                helper give the same answers
 *   inproc       the in-process transport with the real module
 *   nohelper     the helper cannot be started: CKR_DEVICE_ERROR
 *   real         with a running cluster (HSM_CONFIG, P11_TOKEN_LABEL,
 *                P11_PIN): a session, login, random bytes and an AES-GCM
 *                round trip in the parent in process, then in a forked
 *                child through the real helper, then in the parent again
 *   handoff      as real, but the child drops to uid/gid 65534 (nobody)
 *                before its C_Initialize, as nginx's workers do, and
 *                cannot open the files: it works with the credentials the
 *                parent kept; after its C_Finalize they are gone, and
 *                C_Initialize fails; a child that closed its inherited
 *                descriptors gets no log descriptor (needs root)
 *   dropfirst    a child drops to nobody and calls C_Initialize without
 *                the parent ever initializing: every call fails, the helper
 *                is started once, again only after the back-off (needs
 *                root)
 *   backoff      a helper whose C_Initialize fails (the fake, with
 *                FAKE_FAIL=1): 20 quick C_Initialize start it once; after
 *                1.2 s one more start, then none again at once
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11v3.h"

#include "check.h"

static void *lib;
static CK_FUNCTION_LIST_PTR f;
static CK_FUNCTION_LIST_3_0_PTR f3;

static const char *names_240[] = {
	"C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList",
	"C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo",
	"C_InitToken", "C_InitPIN", "C_SetPIN", "C_OpenSession", "C_CloseSession",
	"C_CloseAllSessions", "C_GetSessionInfo", "C_GetOperationState",
	"C_SetOperationState", "C_Login", "C_Logout", "C_CreateObject", "C_CopyObject",
	"C_DestroyObject", "C_GetObjectSize", "C_GetAttributeValue", "C_SetAttributeValue",
	"C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal", "C_EncryptInit",
	"C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal", "C_DecryptInit", "C_Decrypt",
	"C_DecryptUpdate", "C_DecryptFinal", "C_DigestInit", "C_Digest", "C_DigestUpdate",
	"C_DigestKey", "C_DigestFinal", "C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal",
	"C_SignRecoverInit", "C_SignRecover", "C_VerifyInit", "C_Verify", "C_VerifyUpdate",
	"C_VerifyFinal", "C_VerifyRecoverInit", "C_VerifyRecover", "C_DigestEncryptUpdate",
	"C_DecryptDigestUpdate", "C_SignEncryptUpdate", "C_DecryptVerifyUpdate",
	"C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey", "C_DeriveKey",
	"C_SeedRandom", "C_GenerateRandom", "C_GetFunctionStatus", "C_CancelFunction",
	"C_WaitForSlotEvent",
};

static const char *names_30[] = {
	"C_GetInterfaceList", "C_GetInterface", "C_LoginUser", "C_SessionCancel",
	"C_MessageEncryptInit", "C_EncryptMessage", "C_EncryptMessageBegin",
	"C_EncryptMessageNext", "C_MessageEncryptFinal", "C_MessageDecryptInit",
	"C_DecryptMessage", "C_DecryptMessageBegin", "C_DecryptMessageNext",
	"C_MessageDecryptFinal", "C_MessageSignInit", "C_SignMessage", "C_SignMessageBegin",
	"C_SignMessageNext", "C_MessageSignFinal", "C_MessageVerifyInit", "C_VerifyMessage",
	"C_VerifyMessageBegin", "C_VerifyMessageNext", "C_MessageVerifyFinal",
};

/* The functions new in v3.2, in pkcs11f.h's order. */
static const char *names_32[] = {
	"C_EncapsulateKey", "C_DecapsulateKey", "C_VerifySignatureInit",
	"C_VerifySignature", "C_VerifySignatureUpdate", "C_VerifySignatureFinal",
	"C_GetSessionValidationFlags", "C_AsyncComplete", "C_AsyncGetID",
	"C_AsyncJoin", "C_WrapKeyAuthenticated", "C_UnwrapKeyAuthenticated",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void load(const char *path)
{
	CK_C_GetFunctionList gfl;
	CK_C_GetInterface gi;
	CK_INTERFACE_PTR iface = NULL;

	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		exit(100);
	}
	gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	if (!gfl || !gi || gfl(&f) != CKR_OK || gi(NULL, NULL, &iface, 0) != CKR_OK) {
		fprintf(stderr, "no function list\n");
		exit(100);
	}
	f3 = (CK_FUNCTION_LIST_3_0_PTR)iface->pFunctionList;
}

static void pad(CK_UTF8CHAR *dst, const char *s, size_t n)
{
	size_t l = strlen(s);
	memset(dst, ' ', n);
	memcpy(dst, s, l < n ? l : n);
}

/* ---------------------------------------------------------------- abi */

static void check_list(void *list, size_t first, const char **names, size_t n, const char *what)
{
	void **p = (void **)((char *)list + first);
	size_t i;
	for (i = 0; i < n; i++) {
		void *want = dlsym(lib, names[i]);
		if (!p[i])
			FAIL("%s: %s is NULL", what, names[i]);
		else if (p[i] != want)
			FAIL("%s: slot %zu is not %s", what, i, names[i]);
	}
}

static void scenario_abi(void)
{
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_INTERFACE list[4];
	CK_INTERFACE_PTR ip = NULL;
	CK_ULONG n;
	CK_VERSION v240 = { 2, 40 }, v30 = { 3, 0 }, v31 = { 3, 1 };
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	CK_C_GetInterfaceList gil = (CK_C_GetInterfaceList)dlsym(lib, "C_GetInterfaceList");
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	size_t i;

	CHECK(N(names_240) == 68);
	CHECK(N(names_30) == 24);
	for (i = 0; i < N(names_240); i++)
		if (!dlsym(lib, names_240[i]))
			FAIL("%s not exported", names_240[i]);
	for (i = 0; i < N(names_30); i++)
		if (!dlsym(lib, names_30[i]))
			FAIL("%s not exported", names_30[i]);

	/* C_GetFunctionList: the v2.40 list. */
	CHECK_RV(gfl(NULL), CKR_ARGUMENTS_BAD);
	CHECK_RV(gfl(&fl), CKR_OK);
	CHECK(fl == f);
	CHECK(fl->version.major == 2 && fl->version.minor == 40);
	CHECK(sizeof(CK_FUNCTION_LIST) ==
	      offsetof(CK_FUNCTION_LIST, C_Initialize) + 68 * sizeof(void *));
	check_list(fl, offsetof(CK_FUNCTION_LIST, C_Initialize), names_240, 68, "2.40 list");

	/* The 3.0 list: the same 68, then the 24. */
	CHECK(sizeof(CK_FUNCTION_LIST_3_0) ==
	      offsetof(CK_FUNCTION_LIST_3_0, C_Initialize) + 92 * sizeof(void *));
	CHECK(f3->version.major == 3 && f3->version.minor == 0);
	check_list(f3, offsetof(CK_FUNCTION_LIST_3_0, C_Initialize), names_240, 68, "3.0 list");
	check_list(f3, offsetof(CK_FUNCTION_LIST_3_0, C_GetInterfaceList), names_30, 24,
		   "3.0 list");

	/* C_GetInterfaceList: the two-call rule. */
	CHECK_RV(gil(NULL, NULL), CKR_ARGUMENTS_BAD);
	n = 99;
	CHECK_RV(gil(NULL, &n), CKR_OK);
	CHECK(n == 3);
	n = 1;
	memset(list, 0xAA, sizeof list);
	CHECK_RV(gil(list, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 3);
	CHECK(((unsigned char *)list)[0] == 0xAA);
	n = 4;
	CHECK_RV(gil(list, &n), CKR_OK);
	CHECK(n == 3);
	for (i = 0; i < 3; i++) {
		CHECK(strcmp((char *)list[i].pInterfaceName, "PKCS 11") == 0);
		CHECK(list[i].flags == 0);
	}
	CHECK(list[0].pFunctionList == (void *)f3);
	CHECK(list[1].pFunctionList == (void *)f);

	/* C_GetInterface by name, version and flags. */
	CHECK_RV(gi(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
	CHECK_RV(gi(NULL, NULL, &ip, 0), CKR_OK);
	CHECK(ip && ip->pFunctionList == (void *)f3);
	CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &ip, 0), CKR_OK);
	CHECK(ip && ip->pFunctionList == (void *)f3);
	CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &ip, 0), CKR_OK);
	CHECK(ip && ip->pFunctionList == (void *)f);
	CHECK_RV(gi(NULL, &v240, &ip, 0), CKR_OK);
	CHECK(ip && ip->pFunctionList == (void *)f);
	CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &ip, 0), CKR_OK);
	CHECK(ip && ip->pFunctionList == (void *)f3);
	CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &ip, 0), CKR_ARGUMENTS_BAD);
	/* The v3.2 list (by version only): the 3.0 list's 92, then the 12 of
	 * v3.2, C_EncapsulateKey and C_DecapsulateKey first. */
	{
		CK_VERSION v32 = { 3, 2 };
		CK_FUNCTION_LIST_3_2_PTR f32;
		CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &ip, 0), CKR_OK);
		CHECK(ip && ip->pFunctionList == list[2].pFunctionList);
		f32 = (CK_FUNCTION_LIST_3_2_PTR)ip->pFunctionList;
		CHECK(sizeof(CK_FUNCTION_LIST_3_2) ==
		      offsetof(CK_FUNCTION_LIST_3_2, v30.C_Initialize) + 104 * sizeof(void *));
		CHECK(f32->v30.version.major == 3 && f32->v30.version.minor == 2);
		check_list(f32, offsetof(CK_FUNCTION_LIST_3_2, v30.C_Initialize), names_240, 68,
			   "3.2 list");
		check_list(f32, offsetof(CK_FUNCTION_LIST_3_2, v30.C_GetInterfaceList), names_30,
			   24, "3.2 list");
		check_list(f32, offsetof(CK_FUNCTION_LIST_3_2, C_EncapsulateKey), names_32, 12,
			   "3.2 list");
		CHECK_RV(f32->C_EncapsulateKey(1, NULL, 0, NULL, 0, NULL, NULL, NULL),
			 CKR_CRYPTOKI_NOT_INITIALIZED);
		CHECK_RV(f32->C_VerifySignatureFinal(1), CKR_CRYPTOKI_NOT_INITIALIZED);
	}
	CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS 12", NULL, &ip, 0), CKR_ARGUMENTS_BAD);
	CHECK_RV(gi((CK_UTF8CHAR_PTR) "PKCS", NULL, &ip, 0), CKR_ARGUMENTS_BAD);
	CHECK_RV(gi(NULL, NULL, &ip, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD);

	/* Before C_Initialize, everything else is CKR_CRYPTOKI_NOT_INITIALIZED,
	 * whatever the pointers (the check comes first). */
	{
		CK_ULONG ul = 0;
		CK_BYTE buf[8];
		CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
		CK_OBJECT_HANDLE h1, h2;
		CK_RV want = CKR_CRYPTOKI_NOT_INITIALIZED;

		CHECK_RV(f3->C_Finalize(NULL), want);
		CHECK_RV(f3->C_GetInfo(NULL), want);
		CHECK_RV(f3->C_GetSlotList(CK_FALSE, NULL, NULL), want);
		CHECK_RV(f3->C_GetSlotInfo(0, NULL), want);
		CHECK_RV(f3->C_GetTokenInfo(0, NULL), want);
		CHECK_RV(f3->C_GetMechanismList(0, NULL, &ul), want);
		CHECK_RV(f3->C_GetMechanismInfo(0, CKM_SHA256, NULL), want);
		CHECK_RV(f3->C_InitToken(0, NULL, 0, NULL), want);
		CHECK_RV(f3->C_InitPIN(1, NULL, 0), want);
		CHECK_RV(f3->C_SetPIN(1, NULL, 0, NULL, 0), want);
		CHECK_RV(f3->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, NULL), want);
		CHECK_RV(f3->C_CloseSession(1), want);
		CHECK_RV(f3->C_CloseAllSessions(0), want);
		CHECK_RV(f3->C_GetSessionInfo(1, NULL), want);
		CHECK_RV(f3->C_GetOperationState(1, NULL, NULL), want);
		CHECK_RV(f3->C_SetOperationState(1, NULL, 0, 0, 0), want);
		CHECK_RV(f3->C_Login(1, CKU_USER, NULL, 0), want);
		CHECK_RV(f3->C_Logout(1), want);
		CHECK_RV(f3->C_CreateObject(1, NULL, 0, NULL), want);
		CHECK_RV(f3->C_CopyObject(1, 2, NULL, 0, NULL), want);
		CHECK_RV(f3->C_DestroyObject(1, 2), want);
		CHECK_RV(f3->C_GetObjectSize(1, 2, NULL), want);
		CHECK_RV(f3->C_GetAttributeValue(1, 2, NULL, 1), want);
		CHECK_RV(f3->C_SetAttributeValue(1, 2, NULL, 1), want);
		CHECK_RV(f3->C_FindObjectsInit(1, NULL, 1), want);
		CHECK_RV(f3->C_FindObjects(1, NULL, 1, NULL), want);
		CHECK_RV(f3->C_FindObjectsFinal(1), want);
		CHECK_RV(f3->C_EncryptInit(1, NULL, 2), want);
		CHECK_RV(f3->C_Encrypt(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_EncryptUpdate(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_EncryptFinal(1, NULL, NULL), want);
		CHECK_RV(f3->C_DecryptInit(1, &m, 2), want);
		CHECK_RV(f3->C_Decrypt(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_DecryptUpdate(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_DecryptFinal(1, NULL, NULL), want);
		CHECK_RV(f3->C_DigestInit(1, &m), want);
		CHECK_RV(f3->C_Digest(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_DigestUpdate(1, NULL, 8), want);
		CHECK_RV(f3->C_DigestKey(1, 2), want);
		CHECK_RV(f3->C_DigestFinal(1, NULL, NULL), want);
		CHECK_RV(f3->C_SignInit(1, NULL, 2), want);
		CHECK_RV(f3->C_Sign(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_SignUpdate(1, buf, 8), want);
		CHECK_RV(f3->C_SignFinal(1, NULL, NULL), want);
		CHECK_RV(f3->C_SignRecoverInit(1, NULL, 2), want);
		CHECK_RV(f3->C_SignRecover(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_VerifyInit(1, NULL, 2), want);
		CHECK_RV(f3->C_Verify(1, buf, 8, NULL, 8), want);
		CHECK_RV(f3->C_VerifyUpdate(1, buf, 8), want);
		CHECK_RV(f3->C_VerifyFinal(1, NULL, 8), want);
		CHECK_RV(f3->C_VerifyRecoverInit(1, NULL, 2), want);
		CHECK_RV(f3->C_VerifyRecover(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_DigestEncryptUpdate(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_DecryptDigestUpdate(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_SignEncryptUpdate(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_DecryptVerifyUpdate(1, buf, 8, NULL, NULL), want);
		CHECK_RV(f3->C_GenerateKey(1, NULL, NULL, 0, NULL), want);
		CHECK_RV(f3->C_GenerateKeyPair(1, NULL, NULL, 0, NULL, 0, &h1, &h2), want);
		CHECK_RV(f3->C_WrapKey(1, NULL, 2, 3, NULL, NULL), want);
		CHECK_RV(f3->C_UnwrapKey(1, NULL, 2, NULL, 0, NULL, 0, NULL), want);
		CHECK_RV(f3->C_DeriveKey(1, NULL, 2, NULL, 0, NULL), want);
		CHECK_RV(f3->C_SeedRandom(1, NULL, 8), want);
		CHECK_RV(f3->C_GenerateRandom(1, NULL, 8), want);
		CHECK_RV(f3->C_GetFunctionStatus(1), want);
		CHECK_RV(f3->C_CancelFunction(1), want);
		CHECK_RV(f3->C_WaitForSlotEvent(0, NULL, NULL), want);
		CHECK_RV(f3->C_LoginUser(1, CKU_USER, NULL, 0, NULL, 0), want);
		CHECK_RV(f3->C_SessionCancel(1, 0), want);
		CHECK_RV(f3->C_MessageEncryptInit(1, NULL, 2), want);
		CHECK_RV(f3->C_EncryptMessage(1, NULL, 0, NULL, 0, NULL, 0, NULL, NULL), want);
		CHECK_RV(f3->C_EncryptMessageBegin(1, NULL, 0, NULL, 0), want);
		CHECK_RV(f3->C_EncryptMessageNext(1, NULL, 0, NULL, 0, NULL, NULL, 0), want);
		CHECK_RV(f3->C_MessageEncryptFinal(1), want);
		CHECK_RV(f3->C_MessageDecryptInit(1, NULL, 2), want);
		CHECK_RV(f3->C_DecryptMessage(1, NULL, 0, NULL, 0, NULL, 0, NULL, NULL), want);
		CHECK_RV(f3->C_DecryptMessageBegin(1, NULL, 0, NULL, 0), want);
		CHECK_RV(f3->C_DecryptMessageNext(1, NULL, 0, NULL, 0, NULL, NULL, 0), want);
		CHECK_RV(f3->C_MessageDecryptFinal(1), want);
		CHECK_RV(f3->C_MessageSignInit(1, NULL, 2), want);
		CHECK_RV(f3->C_SignMessage(1, NULL, 0, NULL, 0, NULL, NULL), want);
		CHECK_RV(f3->C_SignMessageBegin(1, NULL, 0), want);
		CHECK_RV(f3->C_SignMessageNext(1, NULL, 0, NULL, 0, NULL, NULL), want);
		CHECK_RV(f3->C_MessageSignFinal(1), want);
		CHECK_RV(f3->C_MessageVerifyInit(1, NULL, 2), want);
		CHECK_RV(f3->C_VerifyMessage(1, NULL, 0, NULL, 0, NULL, 0), want);
		CHECK_RV(f3->C_VerifyMessageBegin(1, NULL, 0), want);
		CHECK_RV(f3->C_VerifyMessageNext(1, NULL, 0, NULL, 0, NULL, 0), want);
		CHECK_RV(f3->C_MessageVerifyFinal(1), want);
	}

	/* C_Initialize's own checks, answered before anything is started. */
	{
		CK_C_INITIALIZE_ARGS a;
		memset(&a, 0, sizeof a);
		a.pReserved = &a;
		CHECK_RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
		memset(&a, 0, sizeof a);
		/* CKF_LIBRARY_CANT_CREATE_OS_THREADS is accepted (GnuTLS sets
		 * it): whatever C_Initialize answers, it is not a refusal of
		 * the flag. */
		a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
		{
			CK_RV r = f->C_Initialize(&a);
			CHECK(r != CKR_NEED_TO_CREATE_THREADS);
			if (r == CKR_OK)
				f->C_Finalize(NULL);
		}
		memset(&a, 0, sizeof a);
		a.CreateMutex = (CK_CREATEMUTEX)1;
		CHECK_RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
		a.DestroyMutex = (CK_DESTROYMUTEX)1;
		a.LockMutex = (CK_LOCKMUTEX)1;
		CHECK_RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
		CHECK_RV(f->C_GetInfo(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	}
}

/* --------------------------------------------------------------- wire */

static CK_SESSION_HANDLE open_session(void)
{
	CK_SESSION_HANDLE h = 0;
	CHECK_RV(f->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h),
		 CKR_OK);
	CHECK(h == 0x1234);
	return h;
}

static void scenario_wire(void)
{
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO ssi;
	CK_MECHANISM_INFO mi;
	CK_SLOT_ID slots[4];
	CK_MECHANISM_TYPE mechs[4];
	CK_ULONG n;
	CK_SESSION_HANDLE h;
	CK_UTF8CHAR want[64];
	CK_C_INITIALIZE_ARGS a;

	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	CHECK_RV(f->C_Initialize(&a), CKR_OK);
	CHECK_RV(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	CHECK_RV(f->C_Finalize(&a), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_RV(f->C_Initialize(NULL), CKR_OK);

	/* s items */
	CHECK_RV(f->C_GetInfo(&info), CKR_OK);
	CHECK(info.cryptokiVersion.major == 3 && info.cryptokiVersion.minor == 0);
	pad(want, "fake maker", 32);
	CHECK(memcmp(info.manufacturerID, want, 32) == 0);
	CHECK(info.flags == 5);
	pad(want, "fake helper", 32);
	CHECK(memcmp(info.libraryDescription, want, 32) == 0);
	CHECK(info.libraryVersion.major == 1 && info.libraryVersion.minor == 2);

	CHECK_RV(f->C_GetSlotInfo(1, &si), CKR_OK);
	pad(want, "fake slot", 64);
	CHECK(memcmp(si.slotDescription, want, 64) == 0);
	CHECK(si.flags == 1);
	CHECK(si.hardwareVersion.major == 4 && si.hardwareVersion.minor == 5);
	CHECK(si.firmwareVersion.major == 6 && si.firmwareVersion.minor == 7);
	memset(&si, 0xAA, sizeof si);
	CHECK_RV(f->C_GetSlotInfo(99, &si), CKR_SLOT_ID_INVALID);
	CHECK(si.flags == (CK_FLAGS)0xAAAAAAAAAAAAAAAAUL); /* untouched */

	CHECK_RV(f->C_GetTokenInfo(17, &ti), CKR_OK);
	pad(want, "fake token", 32);
	CHECK(memcmp(ti.label, want, 32) == 0);
	pad(want, "0042", 16);
	CHECK(memcmp(ti.serialNumber, want, 16) == 0);
	CHECK(ti.flags == 0x40d);
	CHECK(ti.ulMaxSessionCount == 11 && ti.ulSessionCount == 12);
	CHECK(ti.ulMaxRwSessionCount == 13 && ti.ulRwSessionCount == 14);
	CHECK(ti.ulMaxPinLen == 15 && ti.ulMinPinLen == 16);
	CHECK(ti.ulTotalPublicMemory == 17 && ti.ulFreePublicMemory == 18);
	CHECK(ti.ulTotalPrivateMemory == 19 && ti.ulFreePrivateMemory == 20);
	CHECK(ti.hardwareVersion.major == 1 && ti.firmwareVersion.minor == 2);
	CHECK(memcmp(ti.utcTime, "2025112312000000", 16) == 0);

	CHECK_RV(f->C_GetMechanismInfo(17, CKM_AES_GCM, &mi), CKR_OK);
	CHECK(mi.ulMinKeySize == 128 && mi.ulMaxKeySize == 256 && mi.flags == 0x300);

	/* h items: the two-call rule */
	n = 99;
	CHECK_RV(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	CHECK(n == 2);
	n = 1;
	slots[0] = 77;
	CHECK_RV(f->C_GetSlotList(CK_FALSE, slots, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 2 && slots[0] == 77);
	n = 4;
	CHECK_RV(f->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
	CHECK(n == 2 && slots[0] == 1 && slots[1] == 17);
	n = 3;
	CHECK_RV(f->C_GetMechanismList(17, mechs, &n), CKR_OK);
	CHECK(n == 3 && mechs[0] == 1 && mechs[1] == CKM_AES_GCM && mechs[2] == CKM_EDDSA);

	/* p items */
	h = open_session();
	CHECK_RV(f->C_GetSessionInfo(h, &ssi), CKR_OK);
	CHECK(ssi.slotID == 1 && ssi.state == 3 && ssi.flags == 6 && ssi.ulDeviceError == 7);

	/* b items, NULL and empty */
	CHECK_RV(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "user:pw", 7), CKR_OK);
	CHECK_RV(f->C_Login(h, CKU_SO, NULL, 0), CKR_OK);
	CHECK_RV(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "", 0), CKR_OK);
	CHECK_RV(f3->C_LoginUser(h, CKU_USER, (CK_UTF8CHAR_PTR) "pw", 2,
				 (CK_UTF8CHAR_PTR) "alice", 5), CKR_OK);
	CHECK_RV(f3->C_SessionCancel(h, 0x3), CKR_OK);
	{
		CK_UTF8CHAR label[32];
		pad(label, "my token", 32);
		CHECK_RV(f->C_InitToken(17, (CK_UTF8CHAR_PTR) "so:pw", 5, label), CKR_OK);
	}
	CHECK_RV(f->C_Verify(h, (CK_BYTE_PTR) "data", 4, (CK_BYTE_PTR) "sig", 3), CKR_OK);

	/* o items: the two-call rule */
	{
		CK_BYTE in[5] = { 1, 2, 3, 4, 5 }, buf[16];
		CK_ULONG l = 1234;
		CHECK_RV(f->C_Encrypt(h, in, 5, NULL, &l), CKR_OK);
		CHECK(l == 5);
		l = 3;
		memset(buf, 0xAA, sizeof buf);
		CHECK_RV(f->C_Encrypt(h, in, 5, buf, &l), CKR_BUFFER_TOO_SMALL);
		CHECK(l == 5 && buf[0] == 0xAA);
		l = sizeof buf;
		CHECK_RV(f->C_Encrypt(h, in, 5, buf, &l), CKR_OK);
		CHECK(l == 5 && buf[0] == 5 && buf[4] == 1 && buf[5] == 0xAA);
		l = 0;
		CHECK_RV(f->C_Encrypt(h, NULL, 0, buf, &l), CKR_OK);
		CHECK(l == 0);

		l = sizeof buf;
		CHECK_RV(f->C_SignFinal(h, buf, &l), CKR_OK);
		CHECK(l == 9 && memcmp(buf, "signature", 9) == 0);
	}

	/* m items, each kind */
	{
		CK_BYTE iv[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }, aad[3] = { 0xa, 0xb, 0xc };
		CK_GCM_PARAMS gcm = { iv, sizeof iv, 96, aad, sizeof aad, 128 };
		CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
						 (CK_VOID_PTR) "label", 5 };
		CK_BYTE pub[3] = { 4, 5, 6 };
		CK_ECDH1_DERIVE_PARAMS ecdh = { CKD_NULL, 0, NULL, sizeof pub, pub };
		CK_EDDSA_PARAMS ed = { CK_TRUE, 3, (CK_BYTE_PTR) "ctx" };
		CK_BYTE cbciv[16] = { 0xf0, 0xf1 };
		CK_MECHANISM m;
		CK_OBJECT_HANDLE k = 0;
		CK_ATTRIBUTE t[1];
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		/* A parameter need not be aligned: copy the GCM one to an odd address. */
		unsigned char odd[sizeof(CK_GCM_PARAMS) + 1];

		m.mechanism = CKM_AES_GCM;
		m.pParameter = &gcm;
		m.ulParameterLen = sizeof gcm;
		CHECK_RV(f->C_EncryptInit(h, &m, 9), CKR_OK);
		memcpy(odd + 1, &gcm, sizeof gcm);
		m.pParameter = odd + 1;
		CHECK_RV(f->C_DecryptInit(h, &m, 9), CKR_OK);
		m.pParameter = &gcm;
		m.ulParameterLen = sizeof gcm - 8; /* the v2.40 layout without ulIvBits */
		CHECK_RV(f->C_EncryptInit(h, &m, 9), CKR_MECHANISM_PARAM_INVALID);
		m.pParameter = NULL;
		m.ulParameterLen = 0;
		CHECK_RV(f->C_EncryptInit(h, &m, 9), CKR_MECHANISM_PARAM_INVALID);
		m.ulParameterLen = sizeof gcm;
		CHECK_RV(f->C_EncryptInit(h, &m, 9), CKR_ARGUMENTS_BAD);
		gcm.pIv = NULL; /* with ulIvLen 12 */
		m.pParameter = &gcm;
		CHECK_RV(f->C_EncryptInit(h, &m, 9), CKR_MECHANISM_PARAM_INVALID);
		gcm.pIv = iv;

		m.mechanism = CKM_RSA_PKCS_OAEP;
		m.pParameter = &oaep;
		m.ulParameterLen = sizeof oaep;
		CHECK_RV(f->C_EncryptInit(h, &m, 10), CKR_OK);
		oaep.pSourceData = NULL;
		oaep.ulSourceDataLen = 0;
		CHECK_RV(f->C_EncryptInit(h, &m, 10), CKR_OK);

		m.mechanism = CKM_ECDH1_DERIVE;
		m.pParameter = &ecdh;
		m.ulParameterLen = sizeof ecdh;
		cls = CKO_SECRET_KEY;
		t[0].type = CKA_CLASS;
		t[0].pValue = &cls;
		t[0].ulValueLen = sizeof cls;
		CHECK_RV(f->C_DeriveKey(h, &m, 11, t, 1, &k), CKR_OK);
		CHECK(k == 0x4444);
		m.mechanism = CKM_ECDH1_COFACTOR_DERIVE;
		CHECK_RV(f->C_DeriveKey(h, &m, 11, NULL, 0, NULL), CKR_OK);
		m.ulParameterLen = sizeof ecdh + 1;
		CHECK_RV(f->C_DeriveKey(h, &m, 11, NULL, 0, &k), CKR_MECHANISM_PARAM_INVALID);

		m.mechanism = CKM_EDDSA;
		m.pParameter = &ed;
		m.ulParameterLen = sizeof ed;
		CHECK_RV(f->C_SignInit(h, &m, 12), CKR_OK);
		m.pParameter = NULL;
		m.ulParameterLen = 0;
		CHECK_RV(f->C_SignInit(h, &m, 12), CKR_OK);

		m.mechanism = CKM_AES_CBC_PAD;
		m.pParameter = cbciv;
		m.ulParameterLen = sizeof cbciv;
		CHECK_RV(f->C_EncryptInit(h, &m, 13), CKR_OK);
		m.pParameter = NULL;
		m.ulParameterLen = 16;
		CHECK_RV(f->C_EncryptInit(h, &m, 13), CKR_ARGUMENTS_BAD);

		m.mechanism = CKM_SHA256;
		m.pParameter = NULL;
		m.ulParameterLen = 0;
		CHECK_RV(f->C_DigestInit(h, &m), CKR_OK);
	}

	/* t items */
	{
		CK_OBJECT_CLASS cls = CKO_DATA;
		CK_BBOOL tru = CK_TRUE;
		CK_ATTRIBUTE t[4] = {
			{ CKA_CLASS, &cls, sizeof cls },
			{ CKA_LABEL, "lbl", 3 },
			{ CKA_TOKEN, &tru, 1 },
			{ CKA_ID, NULL, 0 },
		};
		CK_OBJECT_HANDLE o = 0, pub = 0, priv = 0;
		CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
		CK_MECHANISM w = { CKM_AES_KEY_WRAP_KWP, NULL, 0 };
		CK_BYTE wrapped[32];
		CK_ULONG wl;

		CHECK_RV(f->C_CreateObject(h, t, 4, &o), CKR_OK);
		CHECK(o == 0xabcdef);
		CHECK_RV(f->C_FindObjectsInit(h, NULL, 0), CKR_OK);
		CHECK_RV(f->C_GenerateKeyPair(h, &m, t, 1, t + 1, 2, &pub, &priv), CKR_OK);
		CHECK(pub == 0x1111 && priv == 0x2222);

		wl = 5;
		memset(wrapped, 0xAA, sizeof wrapped);
		CHECK_RV(f->C_WrapKey(h, &w, 21, 22, wrapped, &wl), CKR_BUFFER_TOO_SMALL);
		CHECK(wl == 17 && wrapped[0] == 0xAA);
		wl = sizeof wrapped;
		CHECK_RV(f->C_WrapKey(h, &w, 21, 22, wrapped, &wl), CKR_OK);
		CHECK(wl == 17 && memcmp(wrapped, "wrapped-key-bytes", 17) == 0);
		CHECK_RV(f->C_UnwrapKey(h, &w, 21, wrapped, 4, t, 1, &o), CKR_OK);
		CHECK(o == 0x3333);
	}

	/* g items */
	{
		CK_BYTE label[32], small[2], kt[8];
		CK_ATTRIBUTE t[5] = {
			{ CKA_LABEL, label, sizeof label },
			{ CKA_KEY_TYPE, kt, sizeof kt },
			{ CKA_LABEL, NULL, 0 },
			{ CKA_LABEL, small, sizeof small },
			{ CKA_VALUE, NULL, 0 },
		};
		CK_ATTRIBUTE t2[2] = {
			{ CKA_LABEL, label, sizeof label },
			{ CKA_ID, label, sizeof label },
		};
		CK_ULONG ktv = 0;

		memset(label, 0, sizeof label);
		CHECK_RV(f->C_GetAttributeValue(h, 0x99, t, 3), CKR_OK);
		CHECK(t[0].ulValueLen == 10 && memcmp(label, "fake-label", 10) == 0);
		CHECK(t[1].ulValueLen == 8);
		memcpy(&ktv, kt, 8);
		CHECK(ktv == 0x1f);
		CHECK(t[2].ulValueLen == 10);

		memset(small, 0xAA, sizeof small);
		CHECK_RV(f->C_GetAttributeValue(h, 0x99, t, 5), CKR_ATTRIBUTE_SENSITIVE);
		CHECK(t[0].ulValueLen == 10);
		CHECK(t[3].ulValueLen == CK_UNAVAILABLE_INFORMATION && small[0] == 0xAA);
		CHECK(t[4].ulValueLen == CK_UNAVAILABLE_INFORMATION);

		CHECK_RV(f->C_GetAttributeValue(h, 0x99, t2, 2), CKR_ATTRIBUTE_TYPE_INVALID);
		CHECK(t2[0].ulValueLen == 10 && t2[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
		CHECK_RV(f->C_GetAttributeValue(h, 0x99, NULL, 0), CKR_OK);
	}

	/* FindObjects (h with a capacity) and GenerateRandom (b reply) */
	{
		CK_OBJECT_HANDLE objs[4] = { 0, 0, 0, 77 };
		CK_ULONG cnt = 99;
		CK_BYTE rnd[32];
		int i, ok = 1;
		CHECK_RV(f->C_FindObjects(h, objs, 2, &cnt), CKR_OK);
		CHECK(cnt == 2 && objs[0] == 10 && objs[1] == 20 && objs[2] == 0);
		CHECK_RV(f->C_FindObjects(h, objs, 4, &cnt), CKR_OK);
		CHECK(cnt == 3 && objs[2] == 30 && objs[3] == 77);
		memset(rnd, 0, sizeof rnd);
		CHECK_RV(f->C_GenerateRandom(h, rnd, 31), CKR_OK);
		for (i = 0; i < 31; i++)
			ok &= rnd[i] == 0x34;
		CHECK(ok && rnd[31] == 0);
		CHECK_RV(f->C_GenerateRandom(h, NULL, 0), CKR_OK);
	}

	/* Answered in C once initialized. */
	CHECK_RV(f->C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
	CHECK_RV(f->C_CancelFunction(h), CKR_FUNCTION_NOT_PARALLEL);
	CHECK_RV(f->C_WaitForSlotEvent(0, NULL, NULL), CKR_ARGUMENTS_BAD);
	/* The message-based functions check their pointers in C; a Backend
	 * without them (the fake) answers CKR_FUNCTION_NOT_SUPPORTED. */
	CHECK_RV(f3->C_MessageEncryptInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
	CHECK_RV(f3->C_EncryptMessage(h, NULL, 0, NULL, 0, NULL, 0, NULL, NULL),
		 CKR_ARGUMENTS_BAD);
	CHECK_RV(f3->C_MessageVerifyFinal(h), CKR_FUNCTION_NOT_SUPPORTED);

	/* A Backend method the fake does not have panics in Go: the
	 * dispatcher answers CKR_GENERAL_ERROR with its items. */
	CHECK_RV(f->C_DigestKey(h, 5), CKR_GENERAL_ERROR);

	CHECK_RV(f->C_CloseSession(h), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* ----------------------------------------------------------- nullargs */

static void scenario_nullargs(void)
{
	CK_SESSION_HANDLE h;
	CK_BYTE buf[8];
	CK_ULONG l = 8;
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM bad = { CKM_AES_CBC, NULL, 16 };
	CK_ATTRIBUTE t[1] = { { CKA_LABEL, NULL, 3 } };
	CK_OBJECT_HANDLE o;
	CK_RV want = CKR_ARGUMENTS_BAD;

	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	h = open_session();
	CHECK_RV(f->C_SeedRandom(h, (CK_BYTE_PTR) "MARK1", 5), CKR_OK);
	/* A NULL mechanism at C_*Init is passed on (PKCS#11 3.0: it cancels
	 * the operation); the operation life-cycle tests cover it. */

	CHECK_RV(f->C_GetInfo(NULL), want);
	CHECK_RV(f->C_GetSlotList(CK_FALSE, NULL, NULL), want);
	CHECK_RV(f->C_GetSlotInfo(1, NULL), want);
	CHECK_RV(f->C_GetTokenInfo(1, NULL), want);
	CHECK_RV(f->C_GetMechanismList(1, NULL, NULL), want);
	CHECK_RV(f->C_GetMechanismInfo(1, CKM_SHA256, NULL), want);
	CHECK_RV(f->C_InitToken(1, (CK_UTF8CHAR_PTR) "pin", 3, NULL), want);
	CHECK_RV(f->C_InitToken(1, NULL, 3, buf), want);
	CHECK_RV(f->C_InitPIN(h, NULL, 3), want);
	CHECK_RV(f->C_SetPIN(h, NULL, 3, buf, 3), want);
	CHECK_RV(f->C_SetPIN(h, buf, 3, NULL, 3), want);
	CHECK_RV(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, NULL), want);
	CHECK_RV(f->C_GetSessionInfo(h, NULL), want);
	CHECK_RV(f->C_GetOperationState(h, buf, NULL), want);
	CHECK_RV(f->C_SetOperationState(h, NULL, 3, 0, 0), want);
	CHECK_RV(f->C_Login(h, CKU_USER, NULL, 3), want);
	CHECK_RV(f3->C_LoginUser(h, CKU_USER, NULL, 3, buf, 3), want);
	CHECK_RV(f3->C_LoginUser(h, CKU_USER, buf, 3, NULL, 3), want);
	CHECK_RV(f->C_CreateObject(h, NULL, 1, &o), want);
	CHECK_RV(f->C_CreateObject(h, NULL, 0, NULL), want);
	CHECK_RV(f->C_CreateObject(h, t, 1, &o), want); /* pValue NULL, length 3 */
	CHECK_RV(f->C_CopyObject(h, 2, NULL, 1, &o), want);
	CHECK_RV(f->C_CopyObject(h, 2, NULL, 0, NULL), want);
	CHECK_RV(f->C_GetObjectSize(h, 2, NULL), want);
	CHECK_RV(f->C_GetAttributeValue(h, 2, NULL, 1), want);
	CHECK_RV(f->C_SetAttributeValue(h, 2, NULL, 1), want);
	CHECK_RV(f->C_SetAttributeValue(h, 2, t, 1), want);
	CHECK_RV(f->C_FindObjectsInit(h, NULL, 1), want);
	CHECK_RV(f->C_FindObjects(h, NULL, 1, &l), want);
	CHECK_RV(f->C_FindObjects(h, &o, 1, NULL), want);
	CHECK_RV(f->C_EncryptInit(h, &bad, 2), want);
	CHECK_RV(f->C_Encrypt(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_Encrypt(h, NULL, 8, buf, &l), want);
	CHECK_RV(f->C_EncryptUpdate(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_EncryptFinal(h, buf, NULL), want);
	CHECK_RV(f->C_Decrypt(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_DecryptUpdate(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_DecryptFinal(h, buf, NULL), want);
	CHECK_RV(f->C_Digest(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_DigestUpdate(h, NULL, 8), want);
	CHECK_RV(f->C_DigestFinal(h, buf, NULL), want);
	CHECK_RV(f->C_Sign(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_SignUpdate(h, NULL, 8), want);
	CHECK_RV(f->C_SignFinal(h, buf, NULL), want);
	CHECK_RV(f->C_SignRecover(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_Verify(h, NULL, 8, buf, 8), want);
	CHECK_RV(f->C_Verify(h, buf, 8, NULL, 8), want);
	CHECK_RV(f->C_VerifyUpdate(h, NULL, 8), want);
	CHECK_RV(f->C_VerifyFinal(h, NULL, 8), want);
	CHECK_RV(f->C_VerifyRecover(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_DigestEncryptUpdate(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_DecryptDigestUpdate(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_SignEncryptUpdate(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_DecryptVerifyUpdate(h, buf, 8, buf, NULL), want);
	CHECK_RV(f->C_GenerateKey(h, NULL, NULL, 0, &o), want);
	CHECK_RV(f->C_GenerateKey(h, &m, NULL, 1, &o), want);
	CHECK_RV(f->C_GenerateKey(h, &m, NULL, 0, NULL), want);
	CHECK_RV(f->C_GenerateKeyPair(h, NULL, NULL, 0, NULL, 0, &o, &o), want);
	CHECK_RV(f->C_GenerateKeyPair(h, &m, NULL, 1, NULL, 0, &o, &o), want);
	CHECK_RV(f->C_GenerateKeyPair(h, &m, NULL, 0, NULL, 1, &o, &o), want);
	CHECK_RV(f->C_GenerateKeyPair(h, &m, NULL, 0, NULL, 0, NULL, &o), want);
	CHECK_RV(f->C_GenerateKeyPair(h, &m, NULL, 0, NULL, 0, &o, NULL), want);
	CHECK_RV(f->C_WrapKey(h, NULL, 2, 3, buf, &l), want);
	CHECK_RV(f->C_WrapKey(h, &m, 2, 3, buf, NULL), want);
	CHECK_RV(f->C_UnwrapKey(h, NULL, 2, buf, 8, NULL, 0, &o), want);
	CHECK_RV(f->C_UnwrapKey(h, &m, 2, NULL, 8, NULL, 0, &o), want);
	CHECK_RV(f->C_UnwrapKey(h, &m, 2, buf, 8, NULL, 1, &o), want);
	CHECK_RV(f->C_UnwrapKey(h, &m, 2, buf, 8, NULL, 0, NULL), want);
	CHECK_RV(f->C_DeriveKey(h, NULL, 2, NULL, 0, &o), want);
	CHECK_RV(f->C_DeriveKey(h, &m, 2, NULL, 1, &o), want);
	CHECK_RV(f->C_SeedRandom(h, NULL, 8), want);
	CHECK_RV(f->C_GenerateRandom(h, NULL, 8), want);
	CHECK_RV(f3->C_GetInterfaceList(NULL, NULL), want);

	CHECK_RV(f->C_SeedRandom(h, (CK_BYTE_PTR) "MARK2", 5), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

/* ------------------------------------------------------------- broken */

static void scenario_broken(void)
{
	CK_BYTE in[4] = { 1, 2, 3, 4 }, buf[8];
	CK_ULONG l;
	CK_INFO info;

	CHECK_RV(f->C_Initialize(NULL), CKR_OK);

	/* Malformed but whole replies: CKR_DEVICE_ERROR, nothing written, and
	 * the stream stays in step. */
	l = 4;
	memset(buf, 0xAA, sizeof buf);
	CHECK_RV(f->C_Encrypt(666, in, 4, buf, &l), CKR_DEVICE_ERROR);
	CHECK(l == 4 && buf[0] == 0xAA);
	CHECK_RV(f->C_Encrypt(667, in, 4, buf, &l), CKR_DEVICE_ERROR);
	CHECK(l == 4);
	CHECK_RV(f->C_Encrypt(669, in, 4, buf, &l), CKR_DEVICE_ERROR);
	CHECK(l == 4);
	/* A bare error CK_RV: passed on, nothing written. */
	CHECK_RV(f->C_Encrypt(670, in, 4, buf, &l), CKR_GENERAL_ERROR);
	CHECK(l == 4);
	memset(buf, 0, sizeof buf);
	CHECK_RV(f->C_GenerateRandom(671, buf, 8), CKR_DEVICE_ERROR);
	CHECK_RV(f->C_GetInfo(&info), CKR_OK);

	/* The helper dies: CKR_DEVICE_ERROR from then on; C_Finalize tears
	 * the transport down so that C_Initialize starts a new helper. */
	CHECK_RV(f->C_Encrypt(668, in, 4, buf, &l), CKR_DEVICE_ERROR);
	CHECK_RV(f->C_GetInfo(&info), CKR_DEVICE_ERROR);
	CHECK_RV(f->C_Finalize(NULL), CKR_DEVICE_ERROR);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	CHECK_RV(f->C_GetInfo(&info), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 8
#define NCALLS 300

static void *thread_main(void *arg)
{
	CK_SESSION_HANDLE h = (CK_SESSION_HANDLE)(size_t)arg;
	CK_BYTE buf[64];
	int i, j, bad = 0;

	for (i = 0; i < NCALLS; i++) {
		CK_ULONG n = 1 + (CK_ULONG)(i % 64);
		memset(buf, 0, sizeof buf);
		if (f->C_GenerateRandom(h, buf, n) != CKR_OK) {
			bad++;
			continue;
		}
		for (j = 0; j < (int)n; j++)
			if (buf[j] != (CK_BYTE)h)
				bad++;
	}
	return (void *)(size_t)bad;
}

static void scenario_threads(void)
{
	pthread_t th[NTHREADS];
	void *res;
	size_t i;

	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, thread_main, (void *)(i + 1));
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], &res);
		if (res)
			FAIL("thread %zu: %zu bad answers", i + 1, (size_t)res);
	}
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

/* --------------------------------------------------------------- fork */

/* wait_child waits up to 30 s for pid and returns its exit status (or -1). */
static int wait_child(pid_t pid)
{
	int st, i;
	struct timespec ms = { 0, 10000000 };
	for (i = 0; i < 3000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nanosleep(&ms, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	FAIL("child %d hung", (int)pid);
	return -1;
}

/* child_fake is a forked child's life: not initialized, then initialized
 * through the (fake) helper. */
static void child_fake(int depth)
{
	CK_INFO info;
	CK_SESSION_HANDLE h;
	pid_t pid;

	alarm(20);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	CHECK_RV(f->C_GetInfo(&info), CKR_OK);
	CHECK(info.libraryVersion.major == 1 && info.libraryVersion.minor == 2);
	h = open_session();
	if (depth == 0) {
		/* A grandchild: forked from a child that uses a helper. */
		fflush(NULL);
		pid = fork();
		if (pid == 0) {
			child_fake(1);
			_exit(failures > 100 ? 100 : failures);
		}
		failures += wait_child(pid);
		CHECK_RV(f->C_GetInfo(&info), CKR_OK);
	}
	CHECK_RV(f->C_CloseSession(h), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void scenario_fork(void)
{
	CK_INFO info;
	CK_RV rv;
	pid_t pid;

	/* In process, with the real module: whatever it answers (without a
	 * cluster, an error), the parent has entered Go before the fork. */
	rv = f->C_Initialize(NULL);
	CHECK(rv != CKR_DEVICE_ERROR);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		child_fake(0);
		_exit(failures > 100 ? 100 : failures);
	}
	failures += wait_child(pid);
	/* The parent goes on in process. */
	if (rv == CKR_OK) {
		CHECK_RV(f->C_GetInfo(&info), CKR_OK);
		CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	} else {
		CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	}
}

static void scenario_forkparent(void)
{
	CK_INFO info;
	CK_SESSION_HANDLE h;
	pid_t pid;

	CHECK_RV(f->C_Initialize(NULL), CKR_OK); /* forced helper mode */
	h = open_session();
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		child_fake(1);
		_exit(failures > 100 ? 100 : failures);
	}
	failures += wait_child(pid);
	/* The parent's helper is untouched by the child and its helper. */
	CHECK_RV(f->C_GetInfo(&info), CKR_OK);
	CHECK_RV(f->C_CloseSession(h), CKR_OK);
	/* A child that never initializes must not keep the parent's helper
	 * alive (C_Finalize waits for it). */
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		sleep(3);
		_exit(0);
	}
	{
		time_t t0 = time(NULL);
		CHECK_RV(f->C_Finalize(NULL), CKR_OK);
		CHECK(time(NULL) - t0 < 3); /* not held up by the sleeping child */
	}
	failures += wait_child(pid);
}

static void scenario_forkreal(void)
{
	CK_INFO pinfo, cinfo;
	CK_RV prv;
	pid_t pid;
	int fds[2];

	prv = f->C_Initialize(NULL);
	CHECK(prv != CKR_DEVICE_ERROR);
	if (prv == CKR_OK)
		CHECK_RV(f->C_GetInfo(&pinfo), CKR_OK);
	if (pipe(fds) != 0) {
		FAIL("pipe");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		CK_RV crv;
		alarm(20);
		close(fds[0]);
		crv = f->C_Initialize(NULL);
		if (write(fds[1], &crv, sizeof crv) != sizeof crv)
			FAIL("write");
		if (crv == CKR_OK) {
			CHECK_RV(f->C_GetInfo(&cinfo), CKR_OK);
			CHECK(memcmp(&cinfo, &pinfo, sizeof cinfo) == 0);
			CHECK_RV(f->C_Finalize(NULL), CKR_OK);
		}
		_exit(failures > 100 ? 100 : failures);
	}
	close(fds[1]);
	{
		CK_RV crv = 0xdead;
		if (read(fds[0], &crv, sizeof crv) != sizeof crv)
			FAIL("child sent no CK_RV");
		if (crv != prv)
			FAIL("child C_Initialize %#lx, parent %#lx", crv, prv);
		else
			printf("C_Initialize in both: %#lx\n", crv);
		close(fds[0]);
	}
	failures += wait_child(pid);
	if (prv == CKR_OK)
		CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

static void scenario_inproc(void)
{
	CK_INFO info;
	CK_RV rv = f->C_Initialize(NULL);
	printf("C_Initialize in process: %#lx\n", rv);
	CHECK(rv != CKR_DEVICE_ERROR && rv != CKR_HOST_MEMORY);
	if (rv == CKR_OK) {
		CHECK_RV(f->C_GetInfo(&info), CKR_OK);
		CHECK_RV(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
		CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	} else {
		CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	}
}

static void scenario_nohelper(void)
{
	CK_INFO info;
	CHECK_RV(f->C_Initialize(NULL), CKR_DEVICE_ERROR);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	CHECK_RV(f->C_Initialize(NULL), CKR_DEVICE_ERROR);
}

/* --------------------------------------------------------------- real */

static CK_SLOT_ID find_slot(const char *label)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	CK_UTF8CHAR want[32];

	pad(want, label, 32);
	CHECK_RV(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n && i < 64; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, want, 32) == 0)
			return slots[i];
	FAIL("no token labelled %s", label);
	return (CK_SLOT_ID)-1;
}

/* real_work logs in to the crypto user's token and runs AES-GCM. */
static void real_work(const char *who)
{
	const char *label = getenv("P11_TOKEN_LABEL"), *pin = getenv("P11_PIN");
	CK_SESSION_HANDLE h = 0;
	CK_OBJECT_HANDLE key = 0;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG klen = 32, l;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },     { CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_VALUE_LEN, &klen, sizeof klen }, { CKA_TOKEN, &no, 1 },
		{ CKA_ENCRYPT, &yes, 1 },            { CKA_DECRYPT, &yes, 1 },
	};
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_BYTE iv[12] = { 1, 2, 3 }, aad[4] = { 9, 9, 9, 9 }, rnd[32];
	CK_GCM_PARAMS gcm = { iv, sizeof iv, 96, aad, sizeof aad, 128 };
	CK_MECHANISM m = { CKM_AES_GCM, &gcm, sizeof gcm };
	CK_BYTE msg[] = "through the fork helper", ct[64], pt[64];
	CK_ULONG ctl, ptl;
	int before = failures;

	if (!label || !pin) {
		FAIL("P11_TOKEN_LABEL and P11_PIN are needed");
		return;
	}
	CHECK_RV(f->C_OpenSession(find_slot(label), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				  NULL, &h),
		 CKR_OK);
	CHECK_RV(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
	CHECK_RV(f->C_GenerateRandom(h, rnd, sizeof rnd), CKR_OK);
	CHECK_RV(f->C_GenerateKey(h, &gen, t, sizeof t / sizeof t[0], &key), CKR_OK);

	CHECK_RV(f->C_EncryptInit(h, &m, key), CKR_OK);
	ctl = 0;
	CHECK_RV(f->C_Encrypt(h, msg, sizeof msg, NULL, &ctl), CKR_OK);
	CHECK(ctl == sizeof msg + 16);
	l = 4;
	CHECK_RV(f->C_Encrypt(h, msg, sizeof msg, ct, &l), CKR_BUFFER_TOO_SMALL);
	CHECK(l == ctl);
	ctl = sizeof ct;
	CHECK_RV(f->C_Encrypt(h, msg, sizeof msg, ct, &ctl), CKR_OK);
	CHECK(ctl == sizeof msg + 16);

	CHECK_RV(f->C_DecryptInit(h, &m, key), CKR_OK);
	ptl = sizeof pt;
	CHECK_RV(f->C_Decrypt(h, ct, ctl, pt, &ptl), CKR_OK);
	CHECK(ptl == sizeof msg && memcmp(pt, msg, sizeof msg) == 0);

	CHECK_RV(f->C_Logout(h), CKR_OK);
	CHECK_RV(f->C_CloseSession(h), CKR_OK);
	if (failures == before)
		printf("%s: login, random, AES-GCM round trip ok\n", who);
}

static void scenario_real(void)
{
	CK_INFO info;
	CK_SLOT_ID ps[64];
	CK_ULONG pn = 64;
	pid_t pid;

	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	real_work("parent, in process");
	CHECK_RV(f->C_GetSlotList(CK_FALSE, ps, &pn), CKR_OK);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		CK_SLOT_ID cs[64];
		CK_ULONG cn = 64;
		alarm(60);
		CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
		CHECK_RV(f->C_Initialize(NULL), CKR_OK);
		CHECK_RV(f->C_GetSlotList(CK_FALSE, cs, &cn), CKR_OK);
		CHECK(cn == pn && memcmp(cs, ps, pn * sizeof ps[0]) == 0);
		real_work("child, through the helper");
		CHECK_RV(f->C_Finalize(NULL), CKR_OK);
		fflush(NULL);
		_exit(failures > 100 ? 100 : failures);
	}
	failures += wait_child(pid);
	real_work("parent again");
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

/* ------------------------------------------------ privileges dropped */

/* drop_privileges makes this process uid and gid 65534 (nobody), without
 * supplementary groups, as nginx does in its workers. */
static int drop_privileges(void)
{
	gid_t g = 65534;
	if (setgroups(1, &g) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
		FAIL("cannot drop privileges: %s", strerror(errno));
		return -1;
	}
	if (getuid() != 65534 || geteuid() != 65534) {
		FAIL("still uid %d", (int)geteuid());
		return -1;
	}
	return 0;
}

static void scenario_handoff(void)
{
	const char *cfg = getenv("HSM_CONFIG");
	pid_t pid;

	printf("parent pid %d\n", (int)getpid());
	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	real_work("parent");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd;
		alarm(60);
		if (drop_privileges() == 0) {
			/* The files are out of reach... */
			fd = open(cfg ? cfg : "/nonexistent", O_RDONLY);
			CHECK(fd < 0 && errno == EACCES);
			/* ...and the library works all the same. */
			CHECK_RV(f->C_Initialize(NULL), CKR_OK);
			real_work("child as nobody, with the parent's credentials");
			CHECK_RV(f->C_Finalize(NULL), CKR_OK);
			/* C_Finalize has dropped them: the files it cannot read
			 * are named on standard error. */
			CHECK_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
		}
		fflush(NULL);
		_exit(failures > 100 ? 100 : failures);
	}
	failures += wait_child(pid);

	/* A child that closes what it inherited, as some daemons do, and has
	 * other files at those numbers: the kept log descriptor is not passed
	 * on to the helper, which then cannot open the log as nobody. */
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int p[2], reads[16], n = 0, i;
		char buf[256];
		alarm(60);
		for (i = 3; i < 1024; i++)
			close(i);
		while (n < 16 && pipe2(p, O_NONBLOCK) == 0)
			reads[n++] = p[0];
		if (drop_privileges() == 0) {
			CHECK_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
			for (i = 0; i < n; i++)
				CHECK(read(reads[i], buf, sizeof buf) < 0 && errno == EAGAIN);
		}
		fflush(NULL);
		_exit(failures > 100 ? 100 : failures);
	}
	failures += wait_child(pid);

	real_work("parent again");
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
}

/* quick_inits calls C_Initialize n times, each expected to fail with want,
 * and returns how long they took in milliseconds. */
static long quick_inits(int n, CK_RV want)
{
	struct timespec a, b;
	int i;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		CHECK_RV(f->C_Initialize(NULL), want);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

/* backoff_life: 20 failing C_Initialize (one helper start), then past the
 * first back-off (1 s) one more start, then none at once. */
static void backoff_life(CK_RV want)
{
	CK_INFO info;
	struct timespec wait = { 1, 200000000 };
	long ms;

	ms = quick_inits(20, want);
	printf("20 failing C_Initialize in %ld ms\n", ms);
	CHECK_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	nanosleep(&wait, NULL);
	ms = quick_inits(5, want);
	printf("5 more after 1.2 s in %ld ms\n", ms);
}

static void scenario_dropfirst(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		if (drop_privileges() == 0)
			backoff_life(CKR_GENERAL_ERROR);
		fflush(NULL);
		_exit(failures > 100 ? 100 : failures);
	}
	failures += wait_child(pid);
}

static void scenario_backoff(void)
{
	backoff_life(CKR_GENERAL_ERROR);
}

int main(int argc, char **argv)
{
	const char *s;
	if (argc != 3) {
		fprintf(stderr, "usage: p11test LIBRARY SCENARIO\n");
		return 100;
	}
	load(argv[1]);
	s = argv[2];
	if (!strcmp(s, "abi"))
		scenario_abi();
	else if (!strcmp(s, "wire"))
		scenario_wire();
	else if (!strcmp(s, "nullargs"))
		scenario_nullargs();
	else if (!strcmp(s, "broken"))
		scenario_broken();
	else if (!strcmp(s, "threads"))
		scenario_threads();
	else if (!strcmp(s, "fork"))
		scenario_fork();
	else if (!strcmp(s, "forkparent"))
		scenario_forkparent();
	else if (!strcmp(s, "forkreal"))
		scenario_forkreal();
	else if (!strcmp(s, "inproc"))
		scenario_inproc();
	else if (!strcmp(s, "nohelper"))
		scenario_nohelper();
	else if (!strcmp(s, "real"))
		scenario_real();
	else if (!strcmp(s, "handoff"))
		scenario_handoff();
	else if (!strcmp(s, "dropfirst"))
		scenario_dropfirst();
	else if (!strcmp(s, "backoff"))
		scenario_backoff();
	else {
		fprintf(stderr, "unknown scenario %s\n", s);
		return 100;
	}
	if (failures == 0)
		printf("ok %s\n", s);
	return failures > 100 ? 100 : failures;
}
