/* transport.h: the library's state (initialized, forked, which transport)
 * and the two transports of docs/pkcs11-library.md: goCall in process, or
 * the helper over a socketpair. */
#ifndef OPENHSM_TRANSPORT_H
#define OPENHSM_TRANSPORT_H

#include "frame.h"

#pragma GCC visibility push(hidden)

/* lib_initialized reports whether C_Initialize has succeeded (and no
 * C_Finalize or fork has happened since). */
int lib_initialized(void);

/* lib_initialize and lib_finalize run C_Initialize and C_Finalize once the
 * arguments are checked: they pick and start the transport and send the
 * frame. */
CK_RV lib_initialize(CK_FLAGS flags);
CK_RV lib_finalize(void);

/* A call: the request, the reply and its reader.
 *
 *   call c;
 *   call_begin(&c, WIRE_X);  ... fr_item_*(&c.req, ...) ...
 *   if (call_send(&c)) {     ... rp_*(&c.rep, ...) ...
 *           if (call_check(&c)) ... copy outputs for c.result ...
 *   }
 *   return call_end(&c);
 */
typedef struct {
	frame_req req;
	unsigned char *reply;
	frame_rep rep;
	CK_RV result;
} call;

void call_begin(call *c, uint32_t fn);
/* call_send finishes the request and sends it. It returns 1 when the
 * reply's items are to be read, 0 when c->result is already the answer (the
 * request could not be built, the transport failed, or the reply was a bare
 * error CK_RV without items). */
int call_send(call *c);
/* call_check returns 1 when the reply was well formed and read to its end
 * (c->result is its CK_RV); otherwise c->result becomes CKR_DEVICE_ERROR
 * and it returns 0. */
int call_check(call *c);
/* call_end frees the call and returns c->result. */
CK_RV call_end(call *c);

/* lib_wait_slice_ms is how long one C_WaitForSlotEvent call may wait in
 * Go: 1000 in process, 0 through the helper (whose socket carries one call
 * at a time). */
uint64_t lib_wait_slice_ms(void);

#pragma GCC visibility pop

#endif
