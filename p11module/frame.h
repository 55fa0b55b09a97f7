/* frame.h: the frames of docs/pkcs11-library.md, for the C layer.
 *
 * A request is built in a growing buffer that keeps 4 bytes in front for the
 * socket's u32 length prefix, so either transport sends it without a copy.
 * A reply is read with a bounds-checked cursor: any short read marks the
 * reply bad, and the caller answers CKR_DEVICE_ERROR.
 *
 * Beware: p11-kit's pkcs11.h leaves macros such as iv_len, tag_bits,
 * source_data and public_data defined (its CRYPTOKI_COMPAT renames); do not
 * use those as identifiers. */
#ifndef OPENHSM_FRAME_H
#define OPENHSM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "pkcs11v3.h"

/* Only the C_ functions (and goCall) leave the library. */
#pragma GCC visibility push(hidden)

/* FRAME_PREFIX is the room kept for the socket length prefix. */
#define FRAME_PREFIX 4
/* FRAME_NULL is the length a b item carries for a NULL pointer. */
#define FRAME_NULL 0xFFFFFFFFu
/* FRAME_MAX bounds a frame (without the prefix), as the Go side does
 * (wireMaxFrame in core/wire.go): a bigger request is CKR_ARGUMENTS_BAD here
 * rather than a frame the helper would refuse by closing its socket. */
#define FRAME_MAX (80u << 20)

/* Request building. rv is CKR_OK until something fails (CKR_HOST_MEMORY,
 * CKR_ARGUMENTS_BAD, CKR_MECHANISM_PARAM_INVALID, ...); later writes are
 * then ignored and fr_finish returns it. A frame over FRAME_MAX, or a b item
 * of 0xFFFFFFFF bytes or more, is CKR_ARGUMENTS_BAD. */
typedef struct {
	unsigned char *buf;
	size_t len; /* including FRAME_PREFIX */
	size_t cap;
	CK_RV rv;
} frame_req;

void fr_init(frame_req *f, uint32_t fn);
void fr_free(frame_req *f);
/* fr_fail records the first error. */
void fr_fail(frame_req *f, CK_RV rv);
CK_RV fr_finish(frame_req *f);

void fr_u8(frame_req *f, uint8_t v);
void fr_u32(frame_req *f, uint32_t v);
void fr_u64(frame_req *f, uint64_t v);
/* u: a CK_ULONG, handle or flag. */
#define fr_item_u(f, v) fr_u64((f), (uint64_t)(v))
/* b: input bytes. p NULL with n 0 is the NULL marker; p NULL with n > 0 is
 * CKR_ARGUMENTS_BAD (bad_rv lets a caller pick another code). */
void fr_item_b(frame_req *f, const void *p, CK_ULONG n);
void fr_item_b_rv(frame_req *f, const void *p, CK_ULONG n, CK_RV bad_rv);
/* o: an output buffer (p may be NULL) and its capacity *pulLen. */
void fr_item_o(frame_req *f, const void *p, CK_ULONG cap);
/* h: a CK_ULONG array out (p may be NULL), capacity in elements. */
void fr_item_h(frame_req *f, const void *p, CK_ULONG cap);
/* t: a template in; g: a template out (C_GetAttributeValue). */
void fr_item_t(frame_req *f, const CK_ATTRIBUTE *t, CK_ULONG n);
void fr_item_g(frame_req *f, const CK_ATTRIBUTE *t, CK_ULONG n);
/* fr_template_attr says whether an attribute's value is a CK_ATTRIBUTE
 * array (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE): in a
 * t item its value is a nested t item; in a g item it carries its entries
 * (docs/pkcs11-library.md, "Templates and derivation"). */
int fr_template_attr(CK_ATTRIBUTE_TYPE t);
/* m: a mechanism, its parameter flattened by the mechanism table. */
void fr_item_m(frame_req *f, const CK_MECHANISM *m);
/* fr_item_m_or_null is fr_item_m for C_*Init, where m may be NULL: then it
 * writes type 0, kind MK_NULL, the cancel (operation life cycle). */
void fr_item_m_or_null(frame_req *f, const CK_MECHANISM *m);

/* Reply reading. */
typedef struct {
	const unsigned char *p;
	size_t left;
	int bad;
} frame_rep;

void rp_init(frame_rep *r, const unsigned char *p, size_t n);
uint8_t rp_u8(frame_rep *r);
uint32_t rp_u32(frame_rep *r);
uint64_t rp_u64(frame_rep *r);
/* rp_take returns n bytes in place, or NULL (and marks the reply bad). */
const unsigned char *rp_take(frame_rep *r, size_t n);
/* rp_done marks the reply bad if bytes are left over; returns !bad. */
int rp_done(frame_rep *r);

/* An o or h item of a reply, read in place (data points into the reply). */
typedef struct {
	uint64_t len;   /* o: length in bytes; h: count in elements */
	int copied;
	uint32_t n;     /* o: bytes present; h: elements present */
	const unsigned char *data;
} frame_out;

/* rp_item_o reads an o item; copied data must fit cap and equal len. */
void rp_item_o(frame_rep *r, frame_out *o, CK_ULONG cap, int present);
/* rp_item_h reads an h item likewise (cap in elements). */
void rp_item_h(frame_rep *r, frame_out *o, CK_ULONG cap, int present);

/* Copying out, done once the whole reply has been read and found good. */
void out_o(const frame_out *o, CK_RV rv, CK_BYTE_PTR p, CK_ULONG_PTR pulLen);
void out_h(const frame_out *o, CK_RV rv, CK_ULONG_PTR p, CK_ULONG_PTR pulCount);

/* The s items: each reads into a local structure (written to the caller's
 * only on CKR_OK). */
void rp_info(frame_rep *r, CK_INFO *v);
void rp_slot_info(frame_rep *r, CK_SLOT_INFO *v);
void rp_token_info(frame_rep *r, CK_TOKEN_INFO *v);
void rp_session_info(frame_rep *r, CK_SESSION_INFO *v);
void rp_mechanism_info(frame_rep *r, CK_MECHANISM_INFO *v);

/* ---- message parameters (the message-based functions, v3.0) ----
 *
 * x: a message parameter (pParameter, ulParameterLen). C does not know the
 * operation's mechanism (that is session state, in Go), so it knows the
 * structure by its size: sizeof(CK_GCM_MESSAGE_PARAMS) is kind 2,
 * sizeof(CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS) kind 3 (only with
 * MP_AEAD: the encrypt and decrypt functions); NULL is kind 0; anything else
 * goes as raw bytes (kind 1), which Go refuses where it wants a structure.
 * With MP_DECRYPT the tag is read from pTag and sent; otherwise pTag is an
 * output. frame_msg remembers where the outputs go, for rp_item_y. */
enum { MP_RAW = 0, MP_AEAD = 1, MP_DECRYPT = 2 };

typedef struct {
	CK_BYTE_PTR iv;     /* where a generated IV goes (NULL: nowhere) */
	CK_ULONG iv_cap;
	CK_BYTE_PTR tag;    /* where the tag goes (NULL: nowhere) */
	CK_ULONG tag_cap;
} frame_msg;

void fr_item_x(frame_req *f, frame_msg *mo, CK_VOID_PTR p, CK_ULONG n, int mode);
/* y: the parameter outputs, read in place; out_y writes them (on CKR_OK). */
typedef struct {
	uint32_t iv_n, tag_n;
	const unsigned char *iv, *tag;
} frame_y;
void rp_item_y(frame_rep *r, frame_y *y, const frame_msg *mo);
void out_y(const frame_y *y, CK_RV rv, const frame_msg *mo);

#pragma GCC visibility pop

#endif
