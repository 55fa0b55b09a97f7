/* badinput: the cases of TestBadInput (../badinput_test.go) that
 * github.com/miekg/pkcs11 cannot express: NULL pointers, exact buffer
 * sizes, C_Finalize in the middle. Usage: badinput LIBRARY CASE.
 *
 * The environment gives the crypto user's token (P11_TOKEN_LABEL, P11_PIN),
 * another user's token (SUITES_OTHER_LABEL) and the handles of token keys the Go test made (SUITES_EC_PRIV,
 * SUITES_EC_PUB, SUITES_AES, SUITES_HMAC). Each case sets up what it needs,
 * makes the call under test and prints "RV 0x..." with what it returned;
 * the Go table holds the CK_RV PKCS#11 asks for. Follow-up checks (the
 * operation is still usable, the output is right) print "FAIL ..." on
 * standard error. The exit status is the number of failed checks; a crash
 * is a signal, which the Go test reports. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11v3.h"

#include "check.h"
#include "driver.h"

/* The state a case starts in. */
enum { S_LOADED, S_INIT, S_SESSION, S_LOGIN };

static CK_FUNCTION_LIST_PTR f;
static CK_C_GetFunctionList gfl;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE h;
static CK_OBJECT_HANDLE ec_priv, ec_pub, aes, hmac;

static CK_BYTE msg[] = "abc";
#define MSG_LEN 3
/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
static const CK_BYTE sha256_abc[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

static CK_MECHANISM ecdsa_sha256 = { CKM_ECDSA_SHA256, NULL, 0 };
static CK_MECHANISM sha256_hmac = { CKM_SHA256_HMAC, NULL, 0 };
static CK_MECHANISM sha256 = { CKM_SHA256, NULL, 0 };
static CK_BYTE gcm_iv[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static CK_BYTE gcm_aad[3] = { 'a', 'a', 'd' };
static CK_GCM_PARAMS gcm_params = { gcm_iv, sizeof gcm_iv, 96, gcm_aad, sizeof gcm_aad, 128 };
static CK_MECHANISM gcm = { CKM_AES_GCM, &gcm_params, sizeof gcm_params };

static CK_OBJECT_HANDLE env_handle(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "%s is not set\n", name);
		exit(100);
	}
	return (CK_OBJECT_HANDLE)strtoull(v, NULL, 10);
}

static void setup(int state)
{
	const char *label = getenv("P11_TOKEN_LABEL"), *pin = getenv("P11_PIN");
	CK_RV rv;

	if (state < S_INIT)
		return;
	if ((rv = f->C_Initialize(NULL)) != CKR_OK) {
		fprintf(stderr, "setup: C_Initialize = %#lx\n", rv);
		exit(100);
	}
	if (!label || !pin) {
		fprintf(stderr, "P11_TOKEN_LABEL and P11_PIN are needed\n");
		exit(100);
	}
	slot = token_slot(f, label);
	if (state < S_SESSION)
		return;
	if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h)) !=
	    CKR_OK) {
		fprintf(stderr, "setup: C_OpenSession = %#lx\n", rv);
		exit(100);
	}
	if (state < S_LOGIN)
		return;
	if ((rv = f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK) {
		fprintf(stderr, "setup: C_Login = %#lx\n", rv);
		exit(100);
	}
}

/* sign_ec signs msg with the EC key into sig (64 bytes). */
static void sign_ec(CK_BYTE *sig)
{
	CK_ULONG l = 64;
	CHECK_RV(f->C_SignInit(h, &ecdsa_sha256, ec_priv), CKR_OK);
	CHECK_RV(f->C_Sign(h, msg, MSG_LEN, sig, &l), CKR_OK);
	CHECK(l == 64);
}

static void verify_ec(CK_BYTE *sig, CK_ULONG l)
{
	CHECK_RV(f->C_VerifyInit(h, &ecdsa_sha256, ec_pub), CKR_OK);
	CHECK_RV(f->C_Verify(h, msg, MSG_LEN, sig, l), CKR_OK);
}

/* ---- the cases: each returns the CK_RV of the call under test ---- */

/* NULL pointers */

static CK_RV null_getfunctionlist(void)
{
	return gfl(NULL);
}

static CK_RV initialize_reserved(void)
{
	CK_C_INITIALIZE_ARGS a;
	CK_RV rv;
	memset(&a, 0, sizeof a);
	a.pReserved = &a;
	rv = f->C_Initialize(&a);
	/* The library stays usable. */
	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	return rv;
}

static CK_RV null_getinfo(void)
{
	return f->C_GetInfo(NULL);
}

static CK_RV null_getslotlist_count(void)
{
	CK_SLOT_ID s[8];
	return f->C_GetSlotList(CK_TRUE, s, NULL);
}

static CK_RV null_gettokeninfo(void)
{
	return f->C_GetTokenInfo(slot, NULL);
}

static CK_RV null_getmechanismlist_count(void)
{
	return f->C_GetMechanismList(slot, NULL, NULL);
}

static CK_RV null_opensession_handle(void)
{
	return f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL);
}

static CK_RV null_getsessioninfo(void)
{
	return f->C_GetSessionInfo(h, NULL);
}

static CK_RV null_login_pin(void)
{
	CK_SESSION_INFO si;
	CK_RV rv = f->C_Login(h, CKU_USER, NULL, 8);
	CHECK_RV(f->C_GetSessionInfo(h, &si), CKR_OK);
	CHECK(si.state == CKS_RW_PUBLIC_SESSION);
	return rv;
}

static CK_RV null_signinit_mechanism(void)
{
	CK_BYTE sig[64];
	CK_RV rv = f->C_SignInit(h, NULL, ec_priv);
	/* No operation started: a proper one can. */
	sign_ec(sig);
	return rv;
}

static CK_RV null_sign_length(void)
{
	CK_BYTE sig[64];
	CK_ULONG l = sizeof sig;
	CK_RV rv, rv2;
	CHECK_RV(f->C_SignInit(h, &ecdsa_sha256, ec_priv), CKR_OK);
	rv = f->C_Sign(h, msg, MSG_LEN, sig, NULL);
	/* PKCS#11 ends the operation here; a library that checks the pointer
	 * before looking at the session may leave it active. Either way the
	 * session must go on working. */
	rv2 = f->C_Sign(h, msg, MSG_LEN, sig, &l);
	if (rv2 != CKR_OK && rv2 != CKR_OPERATION_NOT_INITIALIZED)
		FAIL("C_Sign after the NULL length: %#lx", rv2);
	sign_ec(sig);
	verify_ec(sig, 64);
	return rv;
}

static CK_RV null_encrypt_data(void)
{
	CK_BYTE out[64];
	CK_ULONG l = sizeof out;
	CK_RV rv;
	CHECK_RV(f->C_EncryptInit(h, &gcm, aes), CKR_OK);
	rv = f->C_Encrypt(h, NULL, 16, out, &l);
	return rv;
}

static CK_RV null_verify_signature(void)
{
	CK_RV rv;
	CHECK_RV(f->C_VerifyInit(h, &ecdsa_sha256, ec_pub), CKR_OK);
	rv = f->C_Verify(h, msg, MSG_LEN, NULL, 64);
	return rv;
}

static CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
static CK_KEY_TYPE aes_type = CKK_AES;
static CK_ULONG len16 = 16;
static CK_BBOOL no = CK_FALSE;
static CK_MECHANISM aes_gen = { CKM_AES_KEY_GEN, NULL, 0 };

static CK_RV null_generatekey_template(void)
{
	CK_OBJECT_HANDLE k = 0;
	return f->C_GenerateKey(h, &aes_gen, NULL, 4, &k);
}

static CK_RV null_generatekey_handle(void)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &secret, sizeof secret },
		{ CKA_KEY_TYPE, &aes_type, sizeof aes_type },
		{ CKA_VALUE_LEN, &len16, sizeof len16 },
		{ CKA_TOKEN, &no, 1 },
	};
	return f->C_GenerateKey(h, &aes_gen, t, 4, NULL);
}

static CK_RV null_generatekeypair_handles(void)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, p256, sizeof p256 }, { CKA_TOKEN, &no, 1 } };
	CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &no, 1 } };
	CK_OBJECT_HANDLE hp = 0;
	return f->C_GenerateKeyPair(h, &m, pub, 2, priv, 1, &hp, NULL);
}

static CK_RV null_findobjects_handles(void)
{
	CK_ULONG n = 0;
	CK_RV rv;
	CHECK_RV(f->C_FindObjectsInit(h, NULL, 0), CKR_OK);
	rv = f->C_FindObjects(h, NULL, 4, &n);
	CHECK_RV(f->C_FindObjectsFinal(h), CKR_OK);
	return rv;
}

static CK_RV null_findobjects_count(void)
{
	CK_OBJECT_HANDLE hs[4];
	CK_RV rv;
	CHECK_RV(f->C_FindObjectsInit(h, NULL, 0), CKR_OK);
	rv = f->C_FindObjects(h, hs, 4, NULL);
	CHECK_RV(f->C_FindObjectsFinal(h), CKR_OK);
	return rv;
}

static CK_RV null_getattributevalue_template(void)
{
	return f->C_GetAttributeValue(h, aes, NULL, 1);
}

static CK_RV null_generaterandom(void)
{
	return f->C_GenerateRandom(h, NULL, 16);
}

static CK_RV null_digestinit_mechanism(void)
{
	return f->C_DigestInit(h, NULL);
}

static CK_RV null_gcm_iv(void)
{
	CK_GCM_PARAMS p = gcm_params;
	CK_MECHANISM m = { CKM_AES_GCM, &p, sizeof p };
	p.pIv = NULL;
	return f->C_EncryptInit(h, &m, aes);
}

static CK_RV null_gcm_parameter(void)
{
	CK_MECHANISM m = { CKM_AES_GCM, NULL, 0 };
	return f->C_EncryptInit(h, &m, aes);
}

/* zero lengths, with real pointers */

static CK_RV empty_pin_login(void)
{
	const char *other = getenv("SUITES_OTHER_LABEL");
	CK_SESSION_HANDLE o;
	CK_SESSION_INFO si;
	CK_RV rv;
	if (!other) {
		fprintf(stderr, "SUITES_OTHER_LABEL is not set\n");
		exit(100);
	}
	/* The other user's slot, where no one is logged in. */
	slot = token_slot(f, other);
	CHECK_RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &o), CKR_OK);
	rv = f->C_Login(o, CKU_USER, (CK_UTF8CHAR_PTR) "", 0);
	CHECK_RV(f->C_GetSessionInfo(o, &si), CKR_OK);
	CHECK(si.state == CKS_RW_PUBLIC_SESSION);
	CHECK_RV(f->C_CloseSession(o), CKR_OK);
	return rv;
}

static CK_RV zero_getattributevalue_count(void)
{
	CK_ATTRIBUTE t[1] = { { CKA_CLASS, NULL, 0 } };
	return f->C_GetAttributeValue(h, aes, t, 0);
}

static CK_RV zero_findobjects_max(void)
{
	CK_OBJECT_HANDLE hs[4];
	CK_ULONG n = 99;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &secret, sizeof secret } };
	CK_RV rv;
	CHECK_RV(f->C_FindObjectsInit(h, t, 1), CKR_OK);
	rv = f->C_FindObjects(h, hs, 0, &n);
	CHECK(n == 0);
	/* The search goes on: the AES key is still to come. */
	n = 0;
	CHECK_RV(f->C_FindObjects(h, hs, 4, &n), CKR_OK);
	CHECK(n >= 1);
	CHECK_RV(f->C_FindObjectsFinal(h), CKR_OK);
	return rv;
}

static CK_RV zero_attribute_length_query(void)
{
	CK_ULONG cls = 0;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, NULL, 0 }, { CKA_VALUE_LEN, NULL, 0 } };
	CK_RV rv = f->C_GetAttributeValue(h, aes, t, 2);
	CHECK(t[0].ulValueLen == sizeof(CK_ULONG));
	CHECK(t[1].ulValueLen == sizeof(CK_ULONG));
	t[0].pValue = &cls;
	CHECK_RV(f->C_GetAttributeValue(h, aes, t, 1), CKR_OK);
	CHECK(cls == CKO_SECRET_KEY);
	return rv;
}

/* short buffers: CKR_BUFFER_TOO_SMALL with the length, and the operation
 * stays usable */

static CK_RV short_sign(void)
{
	CK_BYTE sig[64];
	CK_ULONG l = 10;
	CK_RV rv;
	CHECK_RV(f->C_SignInit(h, &ecdsa_sha256, ec_priv), CKR_OK);
	rv = f->C_Sign(h, msg, MSG_LEN, sig, &l);
	CHECK(l == 64);
	l = sizeof sig;
	CHECK_RV(f->C_Sign(h, msg, MSG_LEN, sig, &l), CKR_OK);
	CHECK(l == 64);
	verify_ec(sig, l);
	return rv;
}

static CK_RV short_signfinal(void)
{
	CK_BYTE mac[32], more[] = "def";
	CK_ULONG l = 31;
	CK_RV rv;
	CHECK_RV(f->C_SignInit(h, &sha256_hmac, hmac), CKR_OK);
	CHECK_RV(f->C_SignUpdate(h, msg, MSG_LEN), CKR_OK);
	CHECK_RV(f->C_SignUpdate(h, more, 3), CKR_OK);
	rv = f->C_SignFinal(h, mac, &l);
	CHECK(l == 32);
	CHECK_RV(f->C_SignFinal(h, mac, &l), CKR_OK);
	CHECK(l == 32);
	/* The MAC is over "abcdef". */
	CHECK_RV(f->C_VerifyInit(h, &sha256_hmac, hmac), CKR_OK);
	CHECK_RV(f->C_Verify(h, (CK_BYTE_PTR) "abcdef", 6, mac, 32), CKR_OK);
	return rv;
}

static CK_RV short_encrypt(void)
{
	CK_BYTE ct[64], pt[64];
	CK_ULONG l = MSG_LEN, pl;
	CK_RV rv;
	CHECK_RV(f->C_EncryptInit(h, &gcm, aes), CKR_OK);
	rv = f->C_Encrypt(h, msg, MSG_LEN, ct, &l);
	CHECK(l == MSG_LEN + 16);
	l = sizeof ct;
	CHECK_RV(f->C_Encrypt(h, msg, MSG_LEN, ct, &l), CKR_OK);
	CHECK(l == MSG_LEN + 16);
	CHECK_RV(f->C_DecryptInit(h, &gcm, aes), CKR_OK);
	pl = sizeof pt;
	CHECK_RV(f->C_Decrypt(h, ct, l, pt, &pl), CKR_OK);
	CHECK(pl == MSG_LEN && memcmp(pt, msg, MSG_LEN) == 0);
	return rv;
}

static CK_RV short_decrypt(void)
{
	CK_BYTE ct[64], pt[64];
	CK_ULONG l = sizeof ct, pl = 1;
	CK_RV rv;
	CHECK_RV(f->C_EncryptInit(h, &gcm, aes), CKR_OK);
	CHECK_RV(f->C_Encrypt(h, msg, MSG_LEN, ct, &l), CKR_OK);
	CHECK_RV(f->C_DecryptInit(h, &gcm, aes), CKR_OK);
	rv = f->C_Decrypt(h, ct, l, pt, &pl);
	CHECK(pl >= MSG_LEN);
	pl = sizeof pt;
	CHECK_RV(f->C_Decrypt(h, ct, l, pt, &pl), CKR_OK);
	CHECK(pl == MSG_LEN && memcmp(pt, msg, MSG_LEN) == 0);
	return rv;
}

static CK_RV short_digest(void)
{
	CK_BYTE d[32];
	CK_ULONG l = 31;
	CK_RV rv;
	CHECK_RV(f->C_DigestInit(h, &sha256), CKR_OK);
	rv = f->C_Digest(h, msg, MSG_LEN, d, &l);
	CHECK(l == 32);
	CHECK_RV(f->C_Digest(h, msg, MSG_LEN, d, &l), CKR_OK);
	CHECK(l == 32 && memcmp(d, sha256_abc, 32) == 0);
	return rv;
}

static CK_RV short_getattributevalue(void)
{
	CK_ULONG cls = 0;
	char label[2];
	char full[256];
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, label, sizeof label } };
	CK_RV rv = f->C_GetAttributeValue(h, aes, t, 2);
	/* The other attribute is still answered; the short one says
	 * CK_UNAVAILABLE_INFORMATION. */
	CHECK(cls == CKO_SECRET_KEY && t[0].ulValueLen == sizeof cls);
	CHECK(t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	t[1].pValue = NULL;
	t[1].ulValueLen = 0;
	CHECK_RV(f->C_GetAttributeValue(h, aes, &t[1], 1), CKR_OK);
	CHECK(t[1].ulValueLen > sizeof label && t[1].ulValueLen < sizeof full);
	if (t[1].ulValueLen < sizeof full) {
		t[1].pValue = full;
		CHECK_RV(f->C_GetAttributeValue(h, aes, &t[1], 1), CKR_OK);
	}
	return rv;
}

static CK_RV short_getslotlist(void)
{
	CK_SLOT_ID s[64];
	CK_ULONG n = 0, want;
	CK_RV rv = f->C_GetSlotList(CK_TRUE, s, &n);
	want = n;
	CHECK(n >= 2 && n <= 64); /* the cluster slot and the user's */
	CHECK_RV(f->C_GetSlotList(CK_TRUE, s, &n), CKR_OK);
	CHECK(n == want);
	return rv;
}

static CK_RV short_getmechanismlist(void)
{
	CK_MECHANISM_TYPE m[512];
	CK_ULONG n = 1, want, i;
	int gcm_found = 0;
	CK_RV rv = f->C_GetMechanismList(slot, m, &n);
	want = n;
	CHECK(n > 1 && n <= 512);
	CHECK_RV(f->C_GetMechanismList(slot, m, &n), CKR_OK);
	CHECK(n == want);
	for (i = 0; i < n && i < 512; i++)
		gcm_found |= m[i] == CKM_AES_GCM;
	CHECK(gcm_found);
	return rv;
}

/* C_Finalize and C_Initialize */

static CK_RV finalize_then_getinfo(void)
{
	CK_INFO info;
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	return f->C_GetInfo(&info);
}

static CK_RV finalize_then_session_call(void)
{
	CK_BYTE r[8];
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	return f->C_GenerateRandom(h, r, sizeof r);
}

static CK_RV finalize_twice(void)
{
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	return f->C_Finalize(NULL);
}

static CK_RV initialize_twice(void)
{
	return f->C_Initialize(NULL);
}

static CK_RV reinitialize_old_session(void)
{
	CK_SESSION_INFO si;
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	CHECK_RV(f->C_Initialize(NULL), CKR_OK);
	return f->C_GetSessionInfo(h, &si);
}

static CK_RV finalize_reserved(void)
{
	CK_INFO info;
	CK_RV rv = f->C_Finalize(&info);
	CHECK_RV(f->C_GetInfo(&info), CKR_OK);
	return rv;
}

static const struct {
	const char *name;
	int state;
	CK_RV (*fn)(void);
	int finalized; /* the case leaves the library finalized */
} cases[] = {
	{ "null_getfunctionlist", S_LOADED, null_getfunctionlist, 1 },
	{ "initialize_reserved", S_LOADED, initialize_reserved, 1 },
	{ "null_getinfo", S_INIT, null_getinfo, 0 },
	{ "null_getslotlist_count", S_INIT, null_getslotlist_count, 0 },
	{ "null_gettokeninfo", S_INIT, null_gettokeninfo, 0 },
	{ "null_getmechanismlist_count", S_INIT, null_getmechanismlist_count, 0 },
	{ "null_opensession_handle", S_INIT, null_opensession_handle, 0 },
	{ "null_getsessioninfo", S_SESSION, null_getsessioninfo, 0 },
	{ "null_login_pin", S_SESSION, null_login_pin, 0 },
	{ "null_signinit_mechanism", S_LOGIN, null_signinit_mechanism, 0 },
	{ "null_sign_length", S_LOGIN, null_sign_length, 0 },
	{ "null_encrypt_data", S_LOGIN, null_encrypt_data, 0 },
	{ "null_verify_signature", S_LOGIN, null_verify_signature, 0 },
	{ "null_generatekey_template", S_LOGIN, null_generatekey_template, 0 },
	{ "null_generatekey_handle", S_LOGIN, null_generatekey_handle, 0 },
	{ "null_generatekeypair_handles", S_LOGIN, null_generatekeypair_handles, 0 },
	{ "null_findobjects_handles", S_LOGIN, null_findobjects_handles, 0 },
	{ "null_findobjects_count", S_LOGIN, null_findobjects_count, 0 },
	{ "null_getattributevalue_template", S_LOGIN, null_getattributevalue_template, 0 },
	{ "null_generaterandom", S_LOGIN, null_generaterandom, 0 },
	{ "null_digestinit_mechanism", S_LOGIN, null_digestinit_mechanism, 0 },
	{ "null_gcm_iv", S_LOGIN, null_gcm_iv, 0 },
	{ "null_gcm_parameter", S_LOGIN, null_gcm_parameter, 0 },
	{ "empty_pin_login", S_INIT, empty_pin_login, 0 },
	{ "zero_getattributevalue_count", S_LOGIN, zero_getattributevalue_count, 0 },
	{ "zero_findobjects_max", S_LOGIN, zero_findobjects_max, 0 },
	{ "zero_attribute_length_query", S_LOGIN, zero_attribute_length_query, 0 },
	{ "short_sign", S_LOGIN, short_sign, 0 },
	{ "short_signfinal", S_LOGIN, short_signfinal, 0 },
	{ "short_encrypt", S_LOGIN, short_encrypt, 0 },
	{ "short_decrypt", S_LOGIN, short_decrypt, 0 },
	{ "short_digest", S_LOGIN, short_digest, 0 },
	{ "short_getattributevalue", S_LOGIN, short_getattributevalue, 0 },
	{ "short_getslotlist", S_INIT, short_getslotlist, 0 },
	{ "short_getmechanismlist", S_INIT, short_getmechanismlist, 0 },
	{ "finalize_then_getinfo", S_INIT, finalize_then_getinfo, 1 },
	{ "finalize_then_session_call", S_LOGIN, finalize_then_session_call, 1 },
	{ "finalize_twice", S_INIT, finalize_twice, 1 },
	{ "finalize_reserved", S_INIT, finalize_reserved, 0 },
	{ "initialize_twice", S_INIT, initialize_twice, 0 },
	{ "reinitialize_old_session", S_LOGIN, reinitialize_old_session, 0 },
};

int main(int argc, char **argv)
{
	void *lib;
	size_t i;
	CK_RV rv;

	if (argc == 2 && !strcmp(argv[1], "-list")) {
		for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: badinput LIBRARY CASE | badinput -list\n");
		return 100;
	}
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!strcmp(cases[i].name, argv[2]))
			break;
	if (i == sizeof cases / sizeof cases[0]) {
		fprintf(stderr, "unknown case %s\n", argv[2]);
		return 100;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
		return 100;
	}
	gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!gfl || gfl(&f) != CKR_OK) {
		fprintf(stderr, "no function list\n");
		return 100;
	}
	if (cases[i].state >= S_LOGIN) {
		ec_priv = env_handle("SUITES_EC_PRIV");
		ec_pub = env_handle("SUITES_EC_PUB");
		aes = env_handle("SUITES_AES");
		hmac = env_handle("SUITES_HMAC");
	}
	setup(cases[i].state);
	rv = cases[i].fn();
	printf("RV %#lx\n", rv);
	if (cases[i].state >= S_INIT && !cases[i].finalized)
		CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	fflush(NULL);
	return failures > 100 ? 100 : failures;
}
