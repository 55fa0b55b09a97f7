/* arrays: reads an array attribute (CKA_WRAP_TEMPLATE) back through
 * C_GetAttributeValue with real buffers, as PKCS#11 v3.0 5.7 describes,
 * which github.com/miekg/pkcs11 cannot do (it passes zeroed arrays). Part
 * of TestMechanisms (../mechs_test.go). Usage: arrays LIBRARY; the crypto
 * user's token and PIN come from P11_TOKEN_LABEL and P11_PIN. Each failed
 * check prints "FAIL ..."; the exit status is their number (100: could not
 * start), a crash a signal. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11v3.h"

#include "check.h"
#include "driver.h"

static CK_FUNCTION_LIST_PTR f;

int main(int argc, char **argv)
{
	const char *label = getenv("P11_TOKEN_LABEL"), *pin = getenv("P11_PIN");
	CK_C_GetFunctionList gfl;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE key;
	CK_SLOT_ID slot;
	void *lib;
	CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
	CK_KEY_TYPE aes = CKK_AES, kt = 0;
	CK_BBOOL no = CK_FALSE;
	CK_BYTE value[16] = { 1, 2, 3 };
	CK_BYTE id[] = "abc", idbuf[16], small[2];
	CK_ATTRIBUTE wrap_tmpl[2] = {
		{ CKA_ID, id, 3 },
		{ CKA_KEY_TYPE, &aes, sizeof aes },
	};
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &secret, sizeof secret },
		{ CKA_KEY_TYPE, &aes, sizeof aes },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_VALUE, value, sizeof value },
		{ CKA_WRAP_TEMPLATE, wrap_tmpl, sizeof wrap_tmpl },
	};
	CK_ATTRIBUTE out[2], get;

	if (argc != 2 || !label || !pin) {
		fprintf(stderr, "usage: arrays LIBRARY, with P11_TOKEN_LABEL and P11_PIN\n");
		return 100;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return 100;
	gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!gfl || gfl(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK)
		return 100;
	slot = token_slot(f, label);
	if (f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h) != CKR_OK ||
	    f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK)
		return 100;
	CHECK_RV(f->C_CreateObject(h, tmpl, sizeof tmpl / sizeof tmpl[0], &key), CKR_OK);

	/* The length: two CK_ATTRIBUTEs. */
	get.type = CKA_WRAP_TEMPLATE;
	get.pValue = NULL;
	get.ulValueLen = 0;
	CHECK_RV(f->C_GetAttributeValue(h, key, &get, 1), CKR_OK);
	CHECK(get.ulValueLen == 2 * sizeof(CK_ATTRIBUTE));

	/* Every entry with room: types, lengths and values. */
	memset(out, 0, sizeof out);
	out[0].pValue = idbuf;
	out[0].ulValueLen = sizeof idbuf;
	out[1].pValue = &kt;
	out[1].ulValueLen = sizeof kt;
	get.pValue = out;
	get.ulValueLen = sizeof out;
	CHECK_RV(f->C_GetAttributeValue(h, key, &get, 1), CKR_OK);
	CHECK(get.ulValueLen == 2 * sizeof(CK_ATTRIBUTE));
	CHECK(out[0].type == CKA_ID && out[0].ulValueLen == 3 && !memcmp(idbuf, "abc", 3));
	CHECK(out[1].type == CKA_KEY_TYPE && out[1].ulValueLen == sizeof kt && kt == CKK_AES);

	/* One entry's buffer too small: it alone is unavailable. */
	memset(out, 0, sizeof out);
	kt = 0;
	out[0].pValue = small;
	out[0].ulValueLen = sizeof small;
	out[1].pValue = &kt;
	out[1].ulValueLen = sizeof kt;
	get.ulValueLen = sizeof out;
	CHECK_RV(f->C_GetAttributeValue(h, key, &get, 1), CKR_BUFFER_TOO_SMALL);
	CHECK(out[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CHECK(out[1].ulValueLen == sizeof kt && kt == CKK_AES);

	/* Room for one entry of two: the attribute is unavailable. */
	get.ulValueLen = sizeof(CK_ATTRIBUTE);
	CHECK_RV(f->C_GetAttributeValue(h, key, &get, 1), CKR_BUFFER_TOO_SMALL);
	CHECK(get.ulValueLen == CK_UNAVAILABLE_INFORMATION);

	/* An entry's pValue NULL: its length only. */
	memset(out, 0, sizeof out);
	get.ulValueLen = sizeof out;
	CHECK_RV(f->C_GetAttributeValue(h, key, &get, 1), CKR_OK);
	CHECK(out[0].type == CKA_ID && out[0].ulValueLen == 3 && out[0].pValue == NULL);

	CHECK_RV(f->C_DestroyObject(h, key), CKR_OK);
	f->C_Logout(h);
	f->C_CloseSession(h);
	CHECK_RV(f->C_Finalize(NULL), CKR_OK);
	if (!failures)
		printf("OK\n");
	return failures;
}
