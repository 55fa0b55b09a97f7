/* recover: what github.com/miekg/pkcs11 cannot express, through the real
 * library (TestDigestKeyAndInitToken, ../tokenwipe_test.go). Usage:
 * recover LIBRARY.
 *
 * It loads the library, logs in to the crypto user's token
 * (P11_TOKEN_LABEL, P11_PIN), makes session keys, and then checks:
 *   - a NULL mechanism (PKCS#11 3.0) ends the operation of each C_*Init's
 *     kind and answers CKR_OK, also when none is active, and leaves the
 *     other kinds alone;
 *   - C_SignRecover and C_VerifyRecover for CKM_RSA_PKCS and CKM_RSA_X_509:
 *     the data comes back, the two-call rule holds, a changed or
 *     short signature is refused and ends the operation;
 *   - C_GetMechanismInfo advertises CKF_SIGN_RECOVER and CKF_VERIFY_RECOVER
 *     for exactly those two mechanisms.
 * Failed checks print "FAIL ..." on standard error; the exit status is
 * their number. A crash is a signal. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11v3.h"

#include "check.h"
#include "driver.h"

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE h;
static CK_OBJECT_HANDLE aes, rsa_pub, rsa_priv;

static void setup(const char *path)
{
	const char *label = getenv("P11_TOKEN_LABEL"), *pin = getenv("P11_PIN");
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList gfl;

	if (!lib || !label || !pin) {
		fprintf(stderr, "setup: %s\n", lib ? "P11_TOKEN_LABEL and P11_PIN are needed" : dlerror());
		exit(100);
	}
	gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!gfl || gfl(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK) {
		fprintf(stderr, "setup: cannot initialize the library\n");
		exit(100);
	}
	slot = token_slot(f, label);
	if (f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h) != CKR_OK ||
	    f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK) {
		fprintf(stderr, "setup: cannot log in to %s\n", label);
		exit(100);
	}
}

static void make_keys(void)
{
	CK_MECHANISM aes_gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM rsa_gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG len = 16, bits = 2048;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE at[] = { { CKA_VALUE_LEN, &len, sizeof len },
			      { CKA_TOKEN, &no, sizeof no },
			      { CKA_ENCRYPT, &yes, sizeof yes },
			      { CKA_DECRYPT, &yes, sizeof yes } };
	CK_ATTRIBUTE pubt[] = { { CKA_MODULUS_BITS, &bits, sizeof bits },
				{ CKA_TOKEN, &no, sizeof no },
				{ CKA_VERIFY, &yes, sizeof yes },
				{ CKA_VERIFY_RECOVER, &yes, sizeof yes } };
	CK_ATTRIBUTE privt[] = { { CKA_TOKEN, &no, sizeof no },
				 { CKA_SIGN, &yes, sizeof yes },
				 { CKA_SIGN_RECOVER, &yes, sizeof yes } };

	CHECK_RV(f->C_GenerateKey(h, &aes_gen, at, 4, &aes), CKR_OK);
	CHECK_RV(f->C_GenerateKeyPair(h, &rsa_gen, pubt, 4, privt, 3, &rsa_pub, &rsa_priv), CKR_OK);
}

/* One operation kind: its C_*Init (mech NULL: cancel) and its single-part
 * call, whose answer tells whether an operation is active. */
struct kind {
	const char *name;
	CK_RV (*init)(CK_MECHANISM_PTR m);
	CK_RV (*single)(void);
	CK_MECHANISM mech;
};

static CK_BYTE block[16] = "sixteen bytes!!";
static CK_BYTE out[512];
static CK_ULONG outLen;

static CK_RV enc_init(CK_MECHANISM_PTR m) { return f->C_EncryptInit(h, m, aes); }
static CK_RV dec_init(CK_MECHANISM_PTR m) { return f->C_DecryptInit(h, m, aes); }
static CK_RV dig_init(CK_MECHANISM_PTR m) { return f->C_DigestInit(h, m); }
static CK_RV sig_init(CK_MECHANISM_PTR m) { return f->C_SignInit(h, m, rsa_priv); }
static CK_RV ver_init(CK_MECHANISM_PTR m) { return f->C_VerifyInit(h, m, rsa_pub); }
static CK_RV sr_init(CK_MECHANISM_PTR m) { return f->C_SignRecoverInit(h, m, rsa_priv); }
static CK_RV vr_init(CK_MECHANISM_PTR m) { return f->C_VerifyRecoverInit(h, m, rsa_pub); }

/* The single-part calls ask for the length only: an active operation
 * answers CKR_OK (or a refusal of the input) and stays; none answers
 * CKR_OPERATION_NOT_INITIALIZED. */
static CK_RV enc(void) { outLen = 0; return f->C_Encrypt(h, block, sizeof block, NULL, &outLen); }
static CK_RV dec(void) { outLen = 0; return f->C_Decrypt(h, block, sizeof block, NULL, &outLen); }
static CK_RV dig(void) { outLen = 0; return f->C_Digest(h, block, sizeof block, NULL, &outLen); }
static CK_RV sig(void) { outLen = 0; return f->C_Sign(h, block, sizeof block, NULL, &outLen); }
static CK_RV ver(void) { return f->C_Verify(h, block, sizeof block, out, 256); }
static CK_RV sr(void) { outLen = 0; return f->C_SignRecover(h, block, sizeof block, NULL, &outLen); }
static CK_RV vr(void) { outLen = 0; return f->C_VerifyRecover(h, out, 256, NULL, &outLen); }

static struct kind kinds[] = {
	{ "encrypt", enc_init, enc, { CKM_AES_ECB, NULL, 0 } },
	{ "decrypt", dec_init, dec, { CKM_AES_ECB, NULL, 0 } },
	{ "digest", dig_init, dig, { CKM_SHA256, NULL, 0 } },
	{ "sign", sig_init, sig, { CKM_RSA_PKCS, NULL, 0 } },
	{ "verify", ver_init, ver, { CKM_RSA_PKCS, NULL, 0 } },
	{ "sign-recover", sr_init, sr, { CKM_RSA_PKCS, NULL, 0 } },
	{ "verify-recover", vr_init, vr, { CKM_RSA_PKCS, NULL, 0 } },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static void null_cancel(void)
{
	size_t i, j;
	CK_RV rv;

	for (i = 0; i < NKINDS; i++) {
		struct kind *k = &kinds[i];
		/* No operation: a NULL mechanism is still CKR_OK. */
		CHECK_RV(k->init(NULL), CKR_OK);
		CHECK_RV(k->single(), CKR_OPERATION_NOT_INITIALIZED);
		/* Active, then cancelled. */
		CHECK_RV(k->init(&k->mech), CKR_OK);
		CHECK_RV(k->init(&k->mech), CKR_OPERATION_ACTIVE);
		CHECK_RV(k->init(NULL), CKR_OK);
		rv = k->single();
		if (rv != CKR_OPERATION_NOT_INITIALIZED)
			FAIL("%s: after the NULL-mechanism cancel the single-part call answers %#lx", k->name, rv);
		/* It can start again. */
		CHECK_RV(k->init(&k->mech), CKR_OK);
		CHECK_RV(k->init(NULL), CKR_OK);
	}

	/* A cancel ends its own kind only. Kinds that share a session (the
	 * dual-function pairs): every kind active with one other. */
	for (i = 0; i < NKINDS; i++)
		for (j = 0; j < NKINDS; j++) {
			if (i == j)
				continue;
			if (kinds[i].init(&kinds[i].mech) != CKR_OK) {
				FAIL("%s: init", kinds[i].name);
				continue;
			}
			rv = kinds[j].init(&kinds[j].mech);
			CHECK_RV(kinds[i].init(NULL), CKR_OK);
			if (rv == CKR_OK) {
				/* j stays active: a second init says so. */
				if (kinds[j].init(&kinds[j].mech) != CKR_OPERATION_ACTIVE)
					FAIL("cancelling %s ended %s", kinds[i].name, kinds[j].name);
				CHECK_RV(kinds[j].init(NULL), CKR_OK);
			}
		}
}

static void recover(void)
{
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 }, x509 = { CKM_RSA_X_509, NULL, 0 },
		     sha = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[20], sig1[256], sig2[256], raw[256], got[256];
	CK_ULONG n, sigLen;
	size_t i;

	for (i = 0; i < sizeof data; i++)
		data[i] = (CK_BYTE)(0xa0 + i);

	/* CKM_RSA_PKCS: sign-recover is C_Sign's signature. */
	CHECK_RV(f->C_SignRecoverInit(h, &pkcs, rsa_priv), CKR_OK);
	sigLen = sizeof sig1;
	CHECK_RV(f->C_SignRecover(h, data, sizeof data, sig1, &sigLen), CKR_OK);
	CHECK(sigLen == 256);
	CHECK_RV(f->C_SignInit(h, &pkcs, rsa_priv), CKR_OK);
	n = sizeof sig2;
	CHECK_RV(f->C_Sign(h, data, sizeof data, sig2, &n), CKR_OK);
	CHECK(n == 256 && !memcmp(sig1, sig2, 256));

	/* Verify-recover, with the two-call rule. */
	CHECK_RV(f->C_VerifyRecoverInit(h, &pkcs, rsa_pub), CKR_OK);
	n = 0;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, NULL, &n), CKR_OK);
	CHECK(n == sizeof data);
	n = 5;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, got, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == sizeof data);
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, got, NULL), CKR_ARGUMENTS_BAD);
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, got, &n), CKR_OK);
	CHECK(n == sizeof data && !memcmp(got, data, sizeof data));
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, got, &n), CKR_OPERATION_NOT_INITIALIZED);

	/* A changed signature is refused and ends the operation. */
	memcpy(sig2, sig1, 256);
	sig2[100] ^= 1;
	CHECK_RV(f->C_VerifyRecoverInit(h, &pkcs, rsa_pub), CKR_OK);
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig2, 256, got, &n), CKR_SIGNATURE_INVALID);
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, got, &n), CKR_OPERATION_NOT_INITIALIZED);
	/* So does a signature of the wrong length. */
	CHECK_RV(f->C_VerifyRecoverInit(h, &pkcs, rsa_pub), CKR_OK);
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 255, got, &n), CKR_SIGNATURE_LEN_RANGE);
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig1, 256, got, &n), CKR_OPERATION_NOT_INITIALIZED);

	/* CKM_RSA_X_509: the whole block comes back. */
	for (i = 0; i < sizeof raw; i++)
		raw[i] = (CK_BYTE)(i * 13 + 5);
	raw[0] = 0; /* less than the modulus */
	CHECK_RV(f->C_SignRecoverInit(h, &x509, rsa_priv), CKR_OK);
	sigLen = sizeof sig1;
	CHECK_RV(f->C_SignRecover(h, raw, sizeof raw, sig1, &sigLen), CKR_OK);
	CHECK(sigLen == 256);
	CHECK_RV(f->C_VerifyRecoverInit(h, &x509, rsa_pub), CKR_OK);
	n = sizeof got;
	CHECK_RV(f->C_VerifyRecover(h, sig1, sigLen, got, &n), CKR_OK);
	CHECK(n == sizeof raw && !memcmp(got, raw, sizeof raw));

	/* Other mechanisms do not recover. */
	CHECK_RV(f->C_VerifyRecoverInit(h, &sha, rsa_pub), CKR_MECHANISM_INVALID);
	CHECK_RV(f->C_SignRecoverInit(h, &sha, rsa_priv), CKR_MECHANISM_INVALID);
}

static void mechanism_info(void)
{
	CK_MECHANISM_INFO mi;
	const CK_FLAGS rec = CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER;

	CHECK_RV(f->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &mi), CKR_OK);
	CHECK((mi.flags & rec) == rec);
	CHECK_RV(f->C_GetMechanismInfo(slot, CKM_RSA_X_509, &mi), CKR_OK);
	CHECK((mi.flags & rec) == rec);
	CHECK_RV(f->C_GetMechanismInfo(slot, CKM_SHA256_RSA_PKCS, &mi), CKR_OK);
	CHECK((mi.flags & rec) == 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: recover LIBRARY\n");
		return 100;
	}
	setup(argv[1]);
	make_keys();
	memset(out, 0, sizeof out);
	null_cancel();
	recover();
	mechanism_info();
	CHECK_RV(f->C_Logout(h), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	printf("%d failures\n", failures);
	return failures;
}
