/* check.h: the failure counting shared by the C test drivers
 * (abitest/testdata/p11test.c, suites/testdata/badinput.c). Each failed
 * check prints "FAIL file:line: ..." on standard error and counts. */
#ifndef OPENHSM_CHECK_H
#define OPENHSM_CHECK_H

#include <stdio.h>

static int failures;

#define FAIL(...)                                                      \
	do {                                                           \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                          \
		fputc('\n', stderr);                                   \
		failures++;                                            \
	} while (0)

#define CHECK(cond)                     \
	do {                                \
		if (!(cond))                \
			FAIL("%s", #cond); \
	} while (0)

#define CHECK_RV(expr, want)                                                   \
	do {                                                                   \
		CK_RV rv_ = (expr);                                            \
		if (rv_ != (CK_RV)(want))                                      \
			FAIL("%s = %#lx, want %s (%#lx)", #expr, rv_, #want, \
			     (CK_RV)(want));                                   \
	} while (0)

#endif
