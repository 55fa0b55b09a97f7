/* driver.h: what the C drivers of the suites share (badinput.c, message.c,
 * recover.c, pq.c, arrays.c): the slot of the token they test. Include it
 * after pkcs11v3.h. */
#ifndef OPENHSM_DRIVER_H
#define OPENHSM_DRIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* token_slot returns the slot of the token labelled label, or exits with
 * status 100 (the driver could not start). A v3.0 or v3.2 function list
 * is passed as a CK_FUNCTION_LIST_PTR: it begins with the same fields. */
static CK_SLOT_ID token_slot(CK_FUNCTION_LIST_PTR fl, const char *label)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	char want[32];
	size_t l = strlen(label);

	memset(want, ' ', sizeof want);
	memcpy(want, label, l < sizeof want ? l : sizeof want);
	if (fl->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
		fprintf(stderr, "C_GetSlotList failed\n");
		exit(100);
	}
	for (i = 0; i < n && i < 64; i++)
		if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, want, 32) == 0)
			return slots[i];
	fprintf(stderr, "no token labelled %s\n", label);
	exit(100);
}

#endif
