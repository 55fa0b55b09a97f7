/* pq: the post-quantum part of TestPQ (../pq_test.go) that
 * github.com/miekg/pkcs11 cannot express: the PKCS#11 v3.2 interface
 * (C_EncapsulateKey, C_DecapsulateKey) and CK_SIGN_ADDITIONAL_CONTEXT.
 * Usage: pq LIBRARY. The environment gives the crypto user's token
 * (P11_TOKEN_LABEL, P11_PIN).
 *
 * It talks to the Go test over standard input and output, one line each:
 *   out "EK <hex>"        the ML-KEM-768 public key (CKA_VALUE)
 *   out "K1 <hex>"        the secret of C_EncapsulateKey (CKA_VALUE)
 *   out "K2 <hex>"        the secret of C_DecapsulateKey of its ciphertext
 *   in  "CT <hex>"        a ciphertext the test made against EK with Go
 *   out "K3 <hex>"        the secret C_DecapsulateKey gets from it
 *   out "K4 <hex>"        the secret of that ciphertext, tampered
 *   out "PK <hex>"        an ML-DSA-65 public key (CKA_VALUE)
 *   out "SIG <hex>"       its deterministic signature of "message" with
 *                         the context "ctx"
 *   out "HSIG <hex>"      a hedged signature of "message", no parameter
 *   out "END"
 * Checks of return values print "FAIL ..." on standard error; the exit
 * status is the number of failed checks. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11v3.h"

#include "check.h"
#include "driver.h"

static CK_FUNCTION_LIST_3_2_PTR f32;
static CK_FUNCTION_LIST_3_0_PTR f;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE h;

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
static CK_KEY_TYPE generic = CKK_GENERIC_SECRET, aes = CKK_AES;

static void put_hex(const char *tag, const CK_BYTE *p, CK_ULONG n)
{
	CK_ULONG i;
	printf("%s ", tag);
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
	fflush(stdout);
}

/* get_hex reads a "TAG hex" line into buf; returns the byte count. */
static CK_ULONG get_hex(const char *tag, CK_BYTE *buf, CK_ULONG cap)
{
	static char line[16384];
	size_t tl = strlen(tag);
	CK_ULONG n = 0;
	char *p;
	if (!fgets(line, sizeof line, stdin) || strncmp(line, tag, tl) != 0 || line[tl] != ' ') {
		fprintf(stderr, "want a %s line\n", tag);
		exit(100);
	}
	for (p = line + tl + 1; p[0] && p[1] && p[0] != '\n' && n < cap; p += 2) {
		unsigned v;
		if (sscanf(p, "%2x", &v) != 1)
			break;
		buf[n++] = (CK_BYTE)v;
	}
	return n;
}

/* value reads an attribute of up to cap bytes; returns its length. */
static CK_ULONG value(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t, CK_BYTE *buf, CK_ULONG cap)
{
	CK_ATTRIBUTE a = { t, buf, cap };
	CHECK_RV(f->C_GetAttributeValue(h, o, &a, 1), CKR_OK);
	return a.ulValueLen;
}

static void pair(CK_MECHANISM_TYPE gen, CK_ULONG set, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { gen, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_PARAMETER_SET, &set, sizeof set } };
	CK_ATTRIBUTE vt[] = { { CKA_SENSITIVE, &yes, sizeof yes } };
	CHECK_RV(f->C_GenerateKeyPair(h, &m, pt, 1, vt, 1, pub, priv), CKR_OK);
}

int main(int argc, char **argv)
{
	const char *label = getenv("P11_TOKEN_LABEL"), *pin = getenv("P11_PIN");
	CK_C_GetInterface gi;
	CK_INTERFACE_PTR ip = NULL;
	CK_VERSION v32 = { 3, 2 };
	void *lib;
	CK_OBJECT_HANDLE kem_pub, kem_priv, dsa_pub, dsa_priv, k1 = 0, k2 = 0, k3 = 0, k4 = 0, k5 = 0;
	CK_MECHANISM ml_kem = { CKM_ML_KEM, NULL, 0 };
	/* The new keys: extractable and not sensitive, to compare values. */
	CK_ATTRIBUTE kt[] = {
		{ CKA_CLASS, &secret_class, sizeof secret_class },
		{ CKA_KEY_TYPE, &generic, sizeof generic },
		{ CKA_SENSITIVE, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
	};
	CK_BYTE buf[8192], ct[2048], sig[8192];
	CK_ULONG n, ctl;

	if (argc != 2 || !label || !pin) {
		fprintf(stderr, "usage: P11_TOKEN_LABEL=... P11_PIN=... pq LIBRARY\n");
		return 100;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 100;
	}
	gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	if (!gi || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &ip, 0) != CKR_OK) {
		fprintf(stderr, "no PKCS 11 3.2 interface\n");
		return 100;
	}
	f32 = (CK_FUNCTION_LIST_3_2_PTR)ip->pFunctionList;
	f = &f32->v30;
	CHECK(f->version.major == 3 && f->version.minor == 2);
	if (f->C_Initialize(NULL) != CKR_OK)
		return 100;
	slot = token_slot((CK_FUNCTION_LIST_PTR)f, label);
	CHECK_RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
	CHECK_RV(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);

	/* ML-KEM-768. */
	pair(CKM_ML_KEM_KEY_PAIR_GEN, CKP_ML_KEM_768, &kem_pub, &kem_priv);
	n = value(kem_pub, CKA_VALUE, buf, sizeof buf);
	CHECK(n == 1184);
	put_hex("EK", buf, n);

	/* The length query makes no key; a short buffer neither. */
	ctl = 0;
	CHECK_RV(f32->C_EncapsulateKey(h, &ml_kem, kem_pub, kt, 4, NULL, &ctl, &k1), CKR_OK);
	CHECK(ctl == 1088);
	CHECK(k1 == 0);
	ctl = 100;
	CHECK_RV(f32->C_EncapsulateKey(h, &ml_kem, kem_pub, kt, 4, ct, &ctl, &k1),
		 CKR_BUFFER_TOO_SMALL);
	CHECK(ctl == 1088);
	CHECK(k1 == 0);
	ctl = sizeof ct;
	CHECK_RV(f32->C_EncapsulateKey(h, &ml_kem, kem_pub, kt, 4, ct, &ctl, &k1), CKR_OK);
	CHECK(ctl == 1088 && k1 != 0);
	n = value(k1, CKA_VALUE, buf, sizeof buf);
	CHECK(n == 32);
	put_hex("K1", buf, n);
	CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, kt, 4, ct, ctl, &k2), CKR_OK);
	n = value(k2, CKA_VALUE, buf, sizeof buf);
	put_hex("K2", buf, n);

	/* Errors: the wrong ciphertext length; a signing key; the wrong
	 * kind of key; NULL pointers. */
	CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, kt, 4, ct, ctl - 1, &k5),
		 CKR_ENCRYPTED_DATA_LEN_RANGE);
	CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, kt, 4, NULL, ctl, &k5),
		 CKR_ARGUMENTS_BAD);
	CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, kt, 4, ct, ctl, NULL),
		 CKR_ARGUMENTS_BAD);
	CHECK_RV(f32->C_EncapsulateKey(h, &ml_kem, kem_pub, kt, 4, ct, NULL, &k5),
		 CKR_ARGUMENTS_BAD);
	CHECK_RV(f32->C_EncapsulateKey(h, NULL, kem_pub, kt, 4, ct, &ctl, &k5),
		 CKR_ARGUMENTS_BAD);
	ctl = sizeof ct;
	/* A private key has no CKA_ENCAPSULATE. */
	CHECK_RV(f32->C_EncapsulateKey(h, &ml_kem, kem_priv, kt, 4, ct, &ctl, &k5),
		 CKR_KEY_FUNCTION_NOT_PERMITTED);
	CHECK(k5 == 0);

	/* A ciphertext made outside, with Go, against EK. */
	ctl = get_hex("CT", ct, sizeof ct);
	CHECK(ctl == 1088);
	CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, kt, 4, ct, ctl, &k3), CKR_OK);
	n = value(k3, CKA_VALUE, buf, sizeof buf);
	put_hex("K3", buf, n);
	/* Tampered: implicit rejection, a key all the same. */
	ct[5] ^= 1;
	CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, kt, 4, ct, ctl, &k4), CKR_OK);
	n = value(k4, CKA_VALUE, buf, sizeof buf);
	put_hex("K4", buf, n);
	/* An AES key from the secret (32 bytes: AES-256). */
	{
		CK_ATTRIBUTE at[] = { { CKA_KEY_TYPE, &aes, sizeof aes } };
		CK_ULONG len = 0;
		CK_ATTRIBUTE la = { CKA_VALUE_LEN, &len, sizeof len };
		CHECK_RV(f32->C_DecapsulateKey(h, &ml_kem, kem_priv, at, 1, ct, ctl, &k5), CKR_OK);
		CHECK_RV(f->C_GetAttributeValue(h, k5, &la, 1), CKR_OK);
		CHECK(len == 32);
	}

	/* ML-DSA-65 with CK_SIGN_ADDITIONAL_CONTEXT. */
	pair(CKM_ML_DSA_KEY_PAIR_GEN, CKP_ML_DSA_65, &dsa_pub, &dsa_priv);
	n = value(dsa_pub, CKA_VALUE, buf, sizeof buf);
	CHECK(n == 1952);
	put_hex("PK", buf, n);
	{
		CK_BYTE msg[] = "message", ctx[] = "ctx";
		CK_SIGN_ADDITIONAL_CONTEXT det = { CKH_DETERMINISTIC_REQUIRED, ctx, 3 };
		CK_SIGN_ADDITIONAL_CONTEXT bad = { 7, ctx, 3 };
		CK_MECHANISM md = { CKM_ML_DSA, &det, sizeof det };
		CK_MECHANISM mb = { CKM_ML_DSA, &bad, sizeof bad };
		CK_MECHANISM mshort = { CKM_ML_DSA, &det, sizeof det - 1 };
		CK_MECHANISM plain = { CKM_ML_DSA, NULL, 0 };
		CK_BYTE sig2[8192];
		CK_ULONG l, l2;

		CHECK_RV(f->C_SignInit(h, &md, dsa_priv), CKR_OK);
		l = sizeof sig;
		CHECK_RV(f->C_Sign(h, msg, 7, sig, &l), CKR_OK);
		CHECK(l == 3309);
		CHECK_RV(f->C_SignInit(h, &md, dsa_priv), CKR_OK);
		l2 = sizeof sig2;
		CHECK_RV(f->C_Sign(h, msg, 7, sig2, &l2), CKR_OK);
		CHECK(l2 == l && memcmp(sig, sig2, l) == 0);
		put_hex("SIG", sig, l);
		CHECK_RV(f->C_VerifyInit(h, &md, dsa_pub), CKR_OK);
		CHECK_RV(f->C_Verify(h, msg, 7, sig, l), CKR_OK);
		CHECK_RV(f->C_VerifyInit(h, &plain, dsa_pub), CKR_OK);
		CHECK_RV(f->C_Verify(h, msg, 7, sig, l), CKR_SIGNATURE_INVALID);
		CHECK_RV(f->C_SignInit(h, &mb, dsa_priv), CKR_MECHANISM_PARAM_INVALID);
		CHECK_RV(f->C_SignInit(h, &mshort, dsa_priv), CKR_MECHANISM_PARAM_INVALID);
		CHECK_RV(f->C_SignInit(h, &plain, kem_priv), CKR_KEY_TYPE_INCONSISTENT);
		CHECK_RV(f->C_SignInit(h, &plain, dsa_priv), CKR_OK);
		l = sizeof sig;
		CHECK_RV(f->C_Sign(h, msg, 7, sig, &l), CKR_OK);
		put_hex("HSIG", sig, l);
	}

	printf("END\n");
	fflush(stdout);
	{
		CK_OBJECT_HANDLE all[] = { kem_pub, kem_priv, dsa_pub, dsa_priv, k1, k2, k3, k4, k5 };
		size_t i;
		for (i = 0; i < sizeof all / sizeof all[0]; i++)
			if (all[i])
				f->C_DestroyObject(h, all[i]);
	}
	f->C_Finalize(NULL);
	return failures;
}
