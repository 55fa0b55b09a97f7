/* message: the PKCS#11 3.0 message-based functions through the real
 * library (TestMessageAPI, ../message_test.go). Usage: message LIBRARY.
 *
 * It loads the library, takes the 3.0 interface with C_GetInterface("PKCS
 * 11", 3.0), logs in to the crypto user's token (P11_TOKEN_LABEL, P11_PIN),
 * makes session keys, and then: encrypts messages with token-generated
 * (counter, random) and caller IVs and decrypts them, checks that a tampered
 * tag fails, that Begin/Next equals the one-shot call, signs and verifies
 * messages, and calls with bad input (NULL parameters, wrong parameter
 * lengths, short buffers). Failed checks print "FAIL ..." on standard
 * error; the exit status is their number. A crash is a signal. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11v3.h"

#include "check.h"
#include "driver.h"

static CK_FUNCTION_LIST_3_0_PTR f;
static CK_SESSION_HANDLE h;
static CK_OBJECT_HANDLE aes, ec_pub, ec_priv;

static CK_BYTE aad[] = "header";
static CK_BYTE pt[300];

static void setup(const char *path)
{
	const char *label = getenv("P11_TOKEN_LABEL"), *pin = getenv("P11_PIN");
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetInterface gi;
	CK_INTERFACE_PTR ifc = NULL;
	CK_VERSION v30 = { 3, 0 };

	if (!lib || !label || !pin) {
		fprintf(stderr, "setup: %s\n", lib ? "P11_TOKEN_LABEL and P11_PIN are needed" : dlerror());
		exit(100);
	}
	gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	if (!gi || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &ifc, 0) != CKR_OK || !ifc) {
		fprintf(stderr, "setup: no PKCS 11 3.0 interface\n");
		exit(100);
	}
	f = (CK_FUNCTION_LIST_3_0_PTR)ifc->pFunctionList;
	if (f->C_Initialize(NULL) != CKR_OK) {
		fprintf(stderr, "setup: C_Initialize failed\n");
		exit(100);
	}
	if (f->C_OpenSession(token_slot((CK_FUNCTION_LIST_PTR)f, label),
			     CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h) != CKR_OK ||
	    f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK) {
		fprintf(stderr, "setup: cannot log in to %s\n", label);
		exit(100);
	}
}

static void make_keys(void)
{
	CK_MECHANISM aes_gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM ec_gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_ATTRIBUTE at[] = { { CKA_VALUE_LEN, &len, sizeof len },
			      { CKA_ENCRYPT, &yes, sizeof yes },
			      { CKA_DECRYPT, &yes, sizeof yes } };
	CK_ATTRIBUTE pubt[] = { { CKA_EC_PARAMS, p256, sizeof p256 },
				{ CKA_VERIFY, &yes, sizeof yes } };
	CK_ATTRIBUTE privt[] = { { CKA_SIGN, &yes, sizeof yes } };

	CHECK_RV(f->C_GenerateKey(h, &aes_gen, at, 3, &aes), CKR_OK);
	CHECK_RV(f->C_GenerateKeyPair(h, &ec_gen, pubt, 2, privt, 1, &ec_pub, &ec_priv), CKR_OK);
}

static CK_GCM_MESSAGE_PARAMS gcm_param(CK_BYTE *iv, CK_ULONG fixed, CK_GENERATOR_FUNCTION gen,
				       CK_BYTE *tag)
{
	CK_GCM_MESSAGE_PARAMS p = { iv, 12, fixed, gen, tag, 128 };
	return p;
}

/* decrypt_ok decrypts ct with iv and tag and checks it is pt. */
static void decrypt_ok(CK_BYTE *iv, CK_BYTE *tag, CK_BYTE *ct, CK_ULONG n)
{
	CK_BYTE out[sizeof pt];
	CK_ULONG outLen = sizeof out;
	CK_GCM_MESSAGE_PARAMS p = gcm_param(iv, 0, CKG_NO_GENERATE, tag);
	CHECK_RV(f->C_DecryptMessage(h, &p, sizeof p, aad, sizeof aad, ct, n, out, &outLen), CKR_OK);
	CHECK(outLen == n && !memcmp(out, pt, n));
}

static void encryption(void)
{
	CK_MECHANISM gcm = { CKM_AES_GCM, NULL, 0 };
	CK_BYTE iv[12], iv2[12], tag[16], tag2[16], ct[sizeof pt], ct2[sizeof pt + 16];
	CK_BYTE seen[40][12];
	CK_ULONG n, total, i, j;
	CK_GCM_MESSAGE_PARAMS p;
	CK_GENERATOR_FUNCTION gens[] = { CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM };

	CHECK_RV(f->C_MessageEncryptInit(h, &gcm, aes), CKR_OK);
	CHECK_RV(f->C_MessageEncryptInit(h, &gcm, aes), CKR_OPERATION_ACTIVE);
	CHECK_RV(f->C_MessageDecryptInit(h, &gcm, aes), CKR_OK);

	/* Token IVs: written into pIv, the fixed field kept, none repeats. */
	for (i = 0; i < 40; i++) {
		memset(iv, 0, sizeof iv);
		memcpy(iv, "\xca\xfe\xba\xbe", 4);
		p = gcm_param(iv, 32, gens[i % 2], tag);
		n = sizeof ct;
		CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, sizeof pt, ct, &n),
			 CKR_OK);
		CHECK(n == sizeof pt);
		CHECK(!memcmp(iv, "\xca\xfe\xba\xbe", 4));
		memcpy(seen[i], iv, 12);
		for (j = 0; j < i; j++)
			if (!memcmp(seen[j], iv, 12))
				FAIL("token IV %lu repeats IV %lu", i, j);
		decrypt_ok(iv, tag, ct, n);
	}

	/* A caller IV: pIv is left alone; Begin/Next equals the one shot. */
	memcpy(iv, "caller-iv-12", 12);
	p = gcm_param(iv, 0, CKG_NO_GENERATE, tag);
	n = sizeof ct;
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, sizeof pt, ct, &n), CKR_OK);
	CHECK(!memcmp(iv, "caller-iv-12", 12));
	decrypt_ok(iv, tag, ct, n);

	memcpy(iv2, "caller-iv-12", 12);
	p = gcm_param(iv2, 0, CKG_NO_GENERATE, tag2);
	CHECK_RV(f->C_EncryptMessageBegin(h, &p, sizeof p, aad, sizeof aad), CKR_OK);
	total = 0;
	for (i = 0; i < 200; i += 100) {
		n = sizeof ct2 - total;
		CHECK_RV(f->C_EncryptMessageNext(h, &p, sizeof p, pt + i, 100, ct2 + total, &n, 0),
			 CKR_OK);
		total += n;
	}
	/* A length query, then a short buffer, keep the message. */
	n = 0;
	CHECK_RV(f->C_EncryptMessageNext(h, &p, sizeof p, pt + 200, 100, NULL, &n, CKF_END_OF_MESSAGE),
		 CKR_OK);
	CHECK(n == sizeof pt - total);
	n = 1;
	CHECK_RV(f->C_EncryptMessageNext(h, &p, sizeof p, pt + 200, 100, ct2 + total, &n,
					 CKF_END_OF_MESSAGE),
		 CKR_BUFFER_TOO_SMALL);
	n = sizeof ct2 - total;
	CHECK_RV(f->C_EncryptMessageNext(h, &p, sizeof p, pt + 200, 100, ct2 + total, &n,
					 CKF_END_OF_MESSAGE),
		 CKR_OK);
	total += n;
	CHECK(total == sizeof pt && !memcmp(ct, ct2, total) && !memcmp(tag, tag2, 16));

	/* Streamed decryption, then a tampered tag and a tampered ciphertext. */
	p = gcm_param(iv, 0, CKG_NO_GENERATE, tag);
	CHECK_RV(f->C_DecryptMessageBegin(h, &p, sizeof p, aad, sizeof aad), CKR_OK);
	n = sizeof ct2;
	CHECK_RV(f->C_DecryptMessageNext(h, &p, sizeof p, ct, 150, ct2, &n, 0), CKR_OK);
	CHECK(n == 0);
	n = sizeof ct2;
	CHECK_RV(f->C_DecryptMessageNext(h, &p, sizeof p, ct + 150, 150, ct2, &n, CKF_END_OF_MESSAGE),
		 CKR_OK);
	CHECK(n == sizeof pt && !memcmp(ct2, pt, n));
	tag[3] ^= 1;
	n = sizeof ct2;
	CHECK_RV(f->C_DecryptMessage(h, &p, sizeof p, aad, sizeof aad, ct, sizeof pt, ct2, &n),
		 CKR_ENCRYPTED_DATA_INVALID);
	tag[3] ^= 1;
	ct[0] ^= 1;
	n = sizeof ct2;
	CHECK_RV(f->C_DecryptMessage(h, &p, sizeof p, aad, sizeof aad, ct, sizeof pt, ct2, &n),
		 CKR_ENCRYPTED_DATA_INVALID);
	ct[0] ^= 1;
	/* The process outlives the failed messages. */
	decrypt_ok(iv, tag, ct, sizeof pt);

	/* Bad input: nothing crashes, each gets its CK_RV. */
	n = sizeof ct;
	CHECK_RV(f->C_EncryptMessage(h, NULL, 0, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	CHECK_RV(f->C_EncryptMessage(h, NULL, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p - 1, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, NULL),
		 CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, NULL, 5, pt, 16, ct, &n), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, NULL, 16, ct, &n),
		 CKR_ARGUMENTS_BAD);
	p = gcm_param(NULL, 0, CKG_NO_GENERATE, tag);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	p = gcm_param(iv, 0, CKG_GENERATE_COUNTER, NULL);
	memcpy(iv2, iv, 12);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	CHECK(!memcmp(iv, iv2, 12)); /* nothing written on failure */
	p = gcm_param(iv, 96, CKG_GENERATE_COUNTER, tag);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	p = gcm_param(iv, 0, 77, tag);
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	p = gcm_param(iv, 0, CKG_NO_GENERATE, tag);
	p.ulTagBits = 1000;
	CHECK_RV(f->C_DecryptMessage(h, &p, sizeof p, aad, sizeof aad, ct, 16, ct2, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	p.ulTagBits = 128;
	p.ulIvLen = 100000;
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_MECHANISM_PARAM_INVALID);
	p = gcm_param(iv, 0, CKG_NO_GENERATE, tag);
	n = 3;
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_BUFFER_TOO_SMALL);
	CHECK(n == 16);
	CHECK_RV(f->C_EncryptMessageNext(h, &p, sizeof p, pt, 16, ct, &n, 0),
		 CKR_OPERATION_NOT_INITIALIZED);
	CHECK_RV(f->C_EncryptMessageBegin(h, &p, sizeof p, NULL, 3), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_MessageEncryptInit(h, NULL, aes), CKR_ARGUMENTS_BAD);

	CHECK_RV(f->C_MessageEncryptFinal(h), CKR_OK);
	CHECK_RV(f->C_MessageEncryptFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	CHECK_RV(f->C_MessageDecryptFinal(h), CKR_OK);
	n = sizeof ct;
	CHECK_RV(f->C_EncryptMessage(h, &p, sizeof p, aad, sizeof aad, pt, 16, ct, &n),
		 CKR_OPERATION_NOT_INITIALIZED);
	/* An init parameter, if given, is a message parameter. */
	gcm.pParameter = &p;
	gcm.ulParameterLen = sizeof p;
	CHECK_RV(f->C_MessageEncryptInit(h, &gcm, aes), CKR_OK);
	CHECK_RV(f->C_MessageEncryptFinal(h), CKR_OK);
	gcm.ulParameterLen = 3;
	CHECK_RV(f->C_MessageEncryptInit(h, &gcm, aes), CKR_MECHANISM_PARAM_INVALID);
}

static void signatures(void)
{
	CK_MECHANISM ecdsa = { CKM_ECDSA_SHA256, NULL, 0 };
	CK_BYTE sig[64], sig2[64], b;
	CK_ULONG n, i;

	CHECK_RV(f->C_MessageSignInit(h, &ecdsa, ec_priv), CKR_OK);
	CHECK_RV(f->C_MessageVerifyInit(h, &ecdsa, ec_pub), CKR_OK);
	for (i = 0; i < 3; i++) {
		n = 0;
		CHECK_RV(f->C_SignMessage(h, NULL, 0, pt, 50 + i, NULL, &n), CKR_OK);
		CHECK(n == 64);
		n = 10;
		CHECK_RV(f->C_SignMessage(h, NULL, 0, pt, 50 + i, sig, &n), CKR_BUFFER_TOO_SMALL);
		n = sizeof sig;
		CHECK_RV(f->C_SignMessage(h, NULL, 0, pt, 50 + i, sig, &n), CKR_OK);
		CHECK_RV(f->C_VerifyMessage(h, NULL, 0, pt, 50 + i, sig, n), CKR_OK);

		CHECK_RV(f->C_SignMessageBegin(h, NULL, 0), CKR_OK);
		CHECK_RV(f->C_SignMessageNext(h, NULL, 0, pt, 20, NULL, NULL), CKR_OK);
		n = sizeof sig2;
		CHECK_RV(f->C_SignMessageNext(h, NULL, 0, pt + 20, 30 + i, sig2, &n), CKR_OK);
		CHECK_RV(f->C_VerifyMessageBegin(h, NULL, 0), CKR_OK);
		CHECK_RV(f->C_VerifyMessageNext(h, NULL, 0, pt, 10, NULL, 0), CKR_OK);
		CHECK_RV(f->C_VerifyMessageNext(h, NULL, 0, pt + 10, 40 + i, sig2, n), CKR_OK);
		CHECK_RV(f->C_VerifyMessage(h, NULL, 0, pt, 50 + i, sig2, n), CKR_OK);
	}
	b = sig[5];
	sig[5] ^= 0x40;
	CHECK_RV(f->C_VerifyMessage(h, NULL, 0, pt, 52, sig, 64), CKR_SIGNATURE_INVALID);
	sig[5] = b;
	CHECK_RV(f->C_VerifyMessage(h, NULL, 0, pt, 52, sig, 64), CKR_OK);

	/* Bad input. */
	CHECK_RV(f->C_SignMessage(h, NULL, 0, pt, 10, sig, NULL), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_SignMessage(h, NULL, 4, pt, 10, sig, &n), CKR_ARGUMENTS_BAD);
	n = sizeof sig;
	CHECK_RV(f->C_SignMessage(h, &b, 1, pt, 10, sig, &n), CKR_MECHANISM_PARAM_INVALID);
	CHECK_RV(f->C_SignMessageNext(h, NULL, 0, pt, 10, sig, &n), CKR_OPERATION_NOT_INITIALIZED);
	CHECK_RV(f->C_VerifyMessage(h, NULL, 0, pt, 10, NULL, 64), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_VerifyMessage(h, NULL, 0, NULL, 10, sig, 64), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_MessageSignInit(h, NULL, ec_priv), CKR_ARGUMENTS_BAD);
	CHECK_RV(f->C_MessageSignInit(h, &ecdsa, ec_priv), CKR_OPERATION_ACTIVE);
	CHECK_RV(f->C_MessageSignFinal(h), CKR_OK);
	CHECK_RV(f->C_MessageVerifyFinal(h), CKR_OK);
	CHECK_RV(f->C_MessageVerifyFinal(h), CKR_OPERATION_NOT_INITIALIZED);
	CHECK_RV(f->C_MessageSignInit(h, &ecdsa, aes), CKR_KEY_TYPE_INCONSISTENT);
	CHECK_RV(f->C_SignMessage(0xdead, NULL, 0, pt, 10, sig, &n), CKR_SESSION_HANDLE_INVALID);
}

int main(int argc, char **argv)
{
	size_t i;
	if (argc != 2) {
		fprintf(stderr, "usage: message LIBRARY\n");
		return 100;
	}
	for (i = 0; i < sizeof pt; i++)
		pt[i] = (CK_BYTE)(i * 7 + 1);
	setup(argv[1]);
	make_keys();
	encryption();
	signatures();
	CHECK_RV(f->C_Logout(h), CKR_OK);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	printf("%d failures\n", failures);
	return failures;
}
