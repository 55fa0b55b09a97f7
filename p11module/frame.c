/* frame.c: building requests and reading replies (docs/pkcs11-library.md,
 * "Frames"), and the mechanism parameter table. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* ---- requests ---- */

void fr_init(frame_req *f, uint32_t fn)
{
	f->buf = NULL;
	f->len = FRAME_PREFIX;
	f->cap = 0;
	f->rv = CKR_OK;
	fr_u32(f, fn);
}

void fr_free(frame_req *f)
{
	free(f->buf);
	f->buf = NULL;
	f->len = f->cap = 0;
}

void fr_fail(frame_req *f, CK_RV rv)
{
	if (f->rv == CKR_OK)
		f->rv = rv;
}

CK_RV fr_finish(frame_req *f)
{
	return f->rv;
}

/* fr_room makes room for n more bytes and returns where they go, or NULL. */
static unsigned char *fr_room(frame_req *f, size_t n)
{
	if (f->rv != CKR_OK)
		return NULL;
	if (n > FRAME_MAX || f->len - FRAME_PREFIX > FRAME_MAX - n) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return NULL;
	}
	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 256;
		unsigned char *b;
		while (cap < f->len + n)
			cap *= 2;
		b = realloc(f->buf, cap);
		if (!b) {
			fr_fail(f, CKR_HOST_MEMORY);
			return NULL;
		}
		f->buf = b;
		f->cap = cap;
	}
	f->len += n;
	return f->buf + f->len - n;
}

void fr_u8(frame_req *f, uint8_t v)
{
	unsigned char *p = fr_room(f, 1);
	if (p)
		p[0] = v;
}

void fr_u32(frame_req *f, uint32_t v)
{
	unsigned char *p = fr_room(f, 4);
	int i;
	if (!p)
		return;
	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void fr_u64(frame_req *f, uint64_t v)
{
	unsigned char *p = fr_room(f, 8);
	int i;
	if (!p)
		return;
	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void fr_item_b_rv(frame_req *f, const void *p, CK_ULONG n, CK_RV bad_rv)
{
	unsigned char *d;
	if (!p) {
		if (n != 0) {
			fr_fail(f, bad_rv);
			return;
		}
		fr_u32(f, FRAME_NULL);
		return;
	}
	if ((uint64_t)n >= FRAME_NULL) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	fr_u32(f, (uint32_t)n);
	d = fr_room(f, (size_t)n);
	if (d && n)
		memcpy(d, p, (size_t)n);
}

void fr_item_b(frame_req *f, const void *p, CK_ULONG n)
{
	fr_item_b_rv(f, p, n, CKR_ARGUMENTS_BAD);
}

void fr_item_o(frame_req *f, const void *p, CK_ULONG cap)
{
	fr_u8(f, p != NULL);
	fr_u64(f, (uint64_t)cap);
}

void fr_item_h(frame_req *f, const void *p, CK_ULONG cap)
{
	fr_u8(f, p != NULL);
	fr_u64(f, (uint64_t)cap);
}

/* The attributes whose value is a CK_ATTRIBUTE array (CKA_ALLOWED_MECHANISMS
 * has CKF_ARRAY_ATTRIBUTE too, but holds CK_MECHANISM_TYPEs). */
static int template_attr(CK_ATTRIBUTE_TYPE t)
{
	return t == CKA_WRAP_TEMPLATE || t == CKA_UNWRAP_TEMPLATE || t == CKA_DERIVE_TEMPLATE;
}

int fr_template_attr(CK_ATTRIBUTE_TYPE t)
{
	return template_attr(t);
}

static void fr_item_t_depth(frame_req *f, const CK_ATTRIBUTE *t, CK_ULONG n, int nested);

/* fr_template_value writes an array attribute's value as a b item whose
 * bytes are a nested t item (docs/pkcs11-library.md, "Templates and
 * derivation"). */
static void fr_template_value(frame_req *f, const CK_ATTRIBUTE *a, int nested)
{
	size_t at;
	uint32_t n;
	int i;
	if (!a->pValue) {
		fr_item_b(f, NULL, a->ulValueLen);
		return;
	}
	if (nested || a->ulValueLen % sizeof(CK_ATTRIBUTE) != 0) {
		fr_fail(f, CKR_ATTRIBUTE_VALUE_INVALID);
		return;
	}
	at = f->len;
	fr_u32(f, 0);
	fr_item_t_depth(f, a->pValue, a->ulValueLen / sizeof(CK_ATTRIBUTE), 1);
	if (f->rv != CKR_OK)
		return;
	n = (uint32_t)(f->len - at - 4);
	for (i = 0; i < 4; i++)
		f->buf[at + i] = (unsigned char)(n >> (8 * i));
}

static void fr_item_t_depth(frame_req *f, const CK_ATTRIBUTE *t, CK_ULONG n, int nested)
{
	CK_ULONG i;
	if (!t && n) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	if ((uint64_t)n > 0xFFFFFFFFu) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	fr_u32(f, (uint32_t)n);
	for (i = 0; i < n && f->rv == CKR_OK; i++) {
		fr_u64(f, (uint64_t)t[i].type);
		if (template_attr(t[i].type))
			fr_template_value(f, &t[i], nested);
		else
			fr_item_b(f, t[i].pValue, t[i].ulValueLen);
	}
}

void fr_item_t(frame_req *f, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	fr_item_t_depth(f, t, n, 0);
}

/* fr_g_array writes the inner entries of an array attribute asked for
 * with room (an array of CK_ATTRIBUTE): u32 count, then per entry u8
 * present and u64 capacity (the type is ignored on input). At most
 * G_ARRAY_MAX entries are sent: no array attribute holds more. */
#define G_ARRAY_MAX 64
static void fr_g_array(frame_req *f, const CK_ATTRIBUTE *a, CK_ULONG room)
{
	CK_ULONG i, n = room / sizeof(CK_ATTRIBUTE);
	if (n > G_ARRAY_MAX)
		n = G_ARRAY_MAX;
	fr_u32(f, (uint32_t)n);
	for (i = 0; i < n && f->rv == CKR_OK; i++) {
		fr_u8(f, a[i].pValue != NULL);
		fr_u64(f, (uint64_t)a[i].ulValueLen);
	}
}

void fr_item_g(frame_req *f, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_ULONG i;
	if (!t && n) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	if ((uint64_t)n > 0xFFFFFFFFu) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	fr_u32(f, (uint32_t)n);
	for (i = 0; i < n && f->rv == CKR_OK; i++) {
		fr_u64(f, (uint64_t)t[i].type);
		fr_u8(f, t[i].pValue != NULL);
		fr_u64(f, (uint64_t)t[i].ulValueLen);
		if (template_attr(t[i].type) && t[i].pValue)
			fr_g_array(f, t[i].pValue, t[i].ulValueLen);
	}
}

/* ---- mechanisms ----
 *
 * The mechanisms whose parameter is a structure with pointers, which C
 * flattens; every other mechanism sends its parameter bytes as they are
 * (kind 1). To add one: a kind (docs/pkcs11-library.md), a row here and a
 * case in fr_item_m. */
enum {
	MK_NONE = 0,
	MK_RAW = 1,
	MK_GCM = 2,
	MK_OAEP = 3,
	MK_ECDH = 4,
	MK_EDDSA = 5,
	/* Apart from the others, so kinds added elsewhere do not collide. */
	MK_SIGN_CTX = 32, /* CK_SIGN_ADDITIONAL_CONTEXT (PKCS#11 v3.2) */
};

static const struct mech_param {
	CK_MECHANISM_TYPE type;
	uint8_t kind;
	size_t size;     /* ulParameterLen must be this */
	int optional;    /* a NULL parameter is allowed (sent as kind 0) */
} mech_params[] = {
	{ CKM_AES_GCM, MK_GCM, sizeof(CK_GCM_PARAMS), 0 },
	{ CKM_RSA_PKCS_OAEP, MK_OAEP, sizeof(CK_RSA_PKCS_OAEP_PARAMS), 0 },
	{ CKM_ECDH1_DERIVE, MK_ECDH, sizeof(CK_ECDH1_DERIVE_PARAMS), 0 },
	{ CKM_ECDH1_COFACTOR_DERIVE, MK_ECDH, sizeof(CK_ECDH1_DERIVE_PARAMS), 0 },
	{ CKM_EDDSA, MK_EDDSA, sizeof(CK_EDDSA_PARAMS), 1 },
	{ CKM_ML_DSA, MK_SIGN_CTX, sizeof(CK_SIGN_ADDITIONAL_CONTEXT), 1 },
};

static const struct mech_param *mech_param_of(CK_MECHANISM_TYPE type)
{
	size_t i;
	for (i = 0; i < sizeof mech_params / sizeof mech_params[0]; i++)
		if (mech_params[i].type == type)
			return &mech_params[i];
	return NULL;
}

/* ---- mechanisms with a layout (kind 6) ----
 *
 * A parameter structure described by a row of fields, flattened field by
 * field in the row's order, each behind a tag: 1 a CK_ULONG (u64), 2 a
 * CK_BBOOL (u8), 3 a pointer and its length (b), 4 a CK_PRF_DATA_PARAM
 * array and its count (u32 count, then per entry u64 type and b value, the
 * value's bytes as they are). Go checks the values; C only copies. To add a
 * mechanism: a row here, and its decoding in p11module/core (layoutParam). */
enum {
	LF_END = 0,
	LF_ULONG = 1,
	LF_BBOOL = 2,
	LF_BYTES = 3,  /* off: the pointer, off2: its CK_ULONG length */
	LF_PRFDATA = 4 /* off: CK_PRF_DATA_PARAM *, off2: its CK_ULONG count */
};

#define MK_LAYOUT 6
#define LAYOUT_MAX_FIELDS 8
/* LAYOUT_MAX_PRFDATA bounds a CK_PRF_DATA_PARAM array; a longer one is
 * CKR_MECHANISM_PARAM_INVALID (Go refuses more than it anyway). */
#define LAYOUT_MAX_PRFDATA 64

struct layout_field {
	uint8_t op;
	size_t off, off2;
};

/* HKDF_FIELDS: CKM_HKDF_DERIVE and CKM_HKDF_DATA take the same
 * CK_HKDF_PARAMS. */
#define HKDF_FIELDS \
	{ LF_BBOOL, offsetof(CK_HKDF_PARAMS, bExtract), 0 }, \
	{ LF_BBOOL, offsetof(CK_HKDF_PARAMS, bExpand), 0 }, \
	{ LF_ULONG, offsetof(CK_HKDF_PARAMS, prfHashMechanism), 0 }, \
	{ LF_ULONG, offsetof(CK_HKDF_PARAMS, ulSaltType), 0 }, \
	{ LF_BYTES, offsetof(CK_HKDF_PARAMS, pSalt), offsetof(CK_HKDF_PARAMS, ulSaltLen) }, \
	{ LF_ULONG, offsetof(CK_HKDF_PARAMS, hSaltKey), 0 }, \
	{ LF_BYTES, offsetof(CK_HKDF_PARAMS, pInfo), offsetof(CK_HKDF_PARAMS, ulInfoLen) },

static const struct mech_layout {
	CK_MECHANISM_TYPE type;
	size_t size;
	struct layout_field f[LAYOUT_MAX_FIELDS];
} mech_layouts[] = {
	{ CKM_HKDF_DERIVE, sizeof(CK_HKDF_PARAMS), { HKDF_FIELDS } },
	{ CKM_HKDF_DATA, sizeof(CK_HKDF_PARAMS), { HKDF_FIELDS } },
	{ CKM_SP800_108_COUNTER_KDF, sizeof(CK_SP800_108_KDF_PARAMS), {
		{ LF_ULONG, offsetof(CK_SP800_108_KDF_PARAMS, prfType), 0 },
		{ LF_PRFDATA, offsetof(CK_SP800_108_KDF_PARAMS, pDataParams),
			offsetof(CK_SP800_108_KDF_PARAMS, ulNumberOfDataParams) },
		{ LF_ULONG, offsetof(CK_SP800_108_KDF_PARAMS, ulAdditionalDerivedKeys), 0 },
	} },
	{ CKM_CHACHA20_POLY1305, sizeof(CK_SALSA20_CHACHA20_POLY1305_PARAMS), {
		{ LF_BYTES, offsetof(CK_SALSA20_CHACHA20_POLY1305_PARAMS, pNonce),
			offsetof(CK_SALSA20_CHACHA20_POLY1305_PARAMS, ulNonceLen) },
		{ LF_BYTES, offsetof(CK_SALSA20_CHACHA20_POLY1305_PARAMS, pAAD),
			offsetof(CK_SALSA20_CHACHA20_POLY1305_PARAMS, ulAADLen) },
	} },
};

/* fr_layout_field writes one field of the structure at p (the caller's
 * parameter, read with memcpy: it need not be aligned). */
static void fr_layout_field(frame_req *f, const unsigned char *p, const struct layout_field *lf)
{
	CK_ULONG ul, n, i;
	CK_BBOOL bb;
	void *ptr;
	switch (lf->op) {
	case LF_ULONG:
		memcpy(&ul, p + lf->off, sizeof ul);
		fr_u8(f, LF_ULONG);
		fr_u64(f, (uint64_t)ul);
		break;
	case LF_BBOOL:
		memcpy(&bb, p + lf->off, sizeof bb);
		fr_u8(f, LF_BBOOL);
		fr_u8(f, (uint8_t)bb);
		break;
	case LF_BYTES:
		memcpy(&ptr, p + lf->off, sizeof ptr);
		memcpy(&n, p + lf->off2, sizeof n);
		fr_u8(f, LF_BYTES);
		fr_item_b_rv(f, ptr, n, CKR_MECHANISM_PARAM_INVALID);
		break;
	case LF_PRFDATA: {
		CK_PRF_DATA_PARAM d;
		memcpy(&ptr, p + lf->off, sizeof ptr);
		memcpy(&n, p + lf->off2, sizeof n);
		if ((!ptr && n) || n > LAYOUT_MAX_PRFDATA) {
			fr_fail(f, CKR_MECHANISM_PARAM_INVALID);
			return;
		}
		fr_u8(f, LF_PRFDATA);
		fr_u32(f, (uint32_t)n);
		for (i = 0; i < n && f->rv == CKR_OK; i++) {
			memcpy(&d, (const unsigned char *)ptr + i * sizeof d, sizeof d);
			fr_u64(f, (uint64_t)d.type);
			fr_item_b_rv(f, d.pValue, d.ulValueLen, CKR_MECHANISM_PARAM_INVALID);
		}
		break;
	}
	default:
		fr_fail(f, CKR_GENERAL_ERROR);
	}
}

/* fr_item_layout writes m's parameter if its mechanism has a layout row,
 * and says whether it did. */
static int fr_item_layout(frame_req *f, const CK_MECHANISM *m)
{
	size_t i, j, nf;
	const struct mech_layout *ml = NULL;
	for (i = 0; i < sizeof mech_layouts / sizeof mech_layouts[0]; i++)
		if (mech_layouts[i].type == m->mechanism)
			ml = &mech_layouts[i];
	if (!ml)
		return 0;
	if (!m->pParameter || m->ulParameterLen != ml->size) {
		fr_fail(f, CKR_MECHANISM_PARAM_INVALID);
		return 1;
	}
	for (nf = 0; nf < LAYOUT_MAX_FIELDS && ml->f[nf].op != LF_END; nf++)
		;
	fr_u8(f, MK_LAYOUT);
	fr_u8(f, (uint8_t)nf);
	for (j = 0; j < nf && f->rv == CKR_OK; j++)
		fr_layout_field(f, m->pParameter, &ml->f[j]);
	return 1;
}

void fr_item_m(frame_req *f, const CK_MECHANISM *m)
{
	const struct mech_param *mp;
	if (!m) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	fr_u64(f, (uint64_t)m->mechanism);
	if (!m->pParameter && m->ulParameterLen != 0) {
		fr_fail(f, CKR_ARGUMENTS_BAD);
		return;
	}
	if (fr_item_layout(f, m))
		return;
	mp = mech_param_of(m->mechanism);
	if (!mp) {
		if (!m->pParameter) {
			fr_u8(f, MK_NONE);
			return;
		}
		fr_u8(f, MK_RAW);
		fr_item_b(f, m->pParameter, m->ulParameterLen);
		return;
	}
	if (!m->pParameter && mp->optional) {
		fr_u8(f, MK_NONE);
		return;
	}
	if (!m->pParameter || m->ulParameterLen != mp->size) {
		fr_fail(f, CKR_MECHANISM_PARAM_INVALID);
		return;
	}
	/* The parameter is copied out first: the caller's pointer need not be
	 * aligned for the structure. */
	switch (mp->kind) {
	case MK_GCM: {
		CK_GCM_PARAMS g;
		memcpy(&g, m->pParameter, sizeof g);
		fr_u8(f, MK_GCM);
		fr_item_b_rv(f, g.pIv, g.ulIvLen, CKR_MECHANISM_PARAM_INVALID);
		fr_u64(f, (uint64_t)g.ulIvBits);
		fr_item_b_rv(f, g.pAAD, g.ulAADLen, CKR_MECHANISM_PARAM_INVALID);
		fr_u64(f, (uint64_t)g.ulTagBits);
		break;
	}
	case MK_OAEP: {
		CK_RSA_PKCS_OAEP_PARAMS o;
		memcpy(&o, m->pParameter, sizeof o);
		fr_u8(f, MK_OAEP);
		fr_u64(f, (uint64_t)o.hashAlg);
		fr_u64(f, (uint64_t)o.mgf);
		fr_u64(f, (uint64_t)o.source);
		fr_item_b_rv(f, o.pSourceData, o.ulSourceDataLen,
			CKR_MECHANISM_PARAM_INVALID);
		break;
	}
	case MK_ECDH: {
		CK_ECDH1_DERIVE_PARAMS e;
		memcpy(&e, m->pParameter, sizeof e);
		fr_u8(f, MK_ECDH);
		fr_u64(f, (uint64_t)e.kdf);
		fr_item_b_rv(f, e.pSharedData, e.ulSharedDataLen,
			CKR_MECHANISM_PARAM_INVALID);
		fr_item_b_rv(f, e.pPublicData, e.ulPublicDataLen,
			CKR_MECHANISM_PARAM_INVALID);
		break;
	}
	case MK_EDDSA: {
		CK_EDDSA_PARAMS e;
		memcpy(&e, m->pParameter, sizeof e);
		fr_u8(f, MK_EDDSA);
		fr_u8(f, e.phFlag ? 1 : 0);
		fr_item_b_rv(f, e.pContextData, e.ulContextDataLen,
			CKR_MECHANISM_PARAM_INVALID);
		break;
	}
	case MK_SIGN_CTX: {
		CK_SIGN_ADDITIONAL_CONTEXT sc;
		memcpy(&sc, m->pParameter, sizeof sc);
		fr_u8(f, MK_SIGN_CTX);
		fr_u64(f, (uint64_t)sc.hedgeVariant);
		fr_item_b_rv(f, sc.pContext, sc.ulContextLen,
			CKR_MECHANISM_PARAM_INVALID);
		break;
	}
	default:
		fr_fail(f, CKR_GENERAL_ERROR);
	}
}

/* ---- replies ---- */

void rp_init(frame_rep *r, const unsigned char *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->bad = 0;
}

const unsigned char *rp_take(frame_rep *r, size_t n)
{
	const unsigned char *p;
	if (r->bad || n > r->left) {
		r->bad = 1;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t rp_u8(frame_rep *r)
{
	const unsigned char *p = rp_take(r, 1);
	return p ? p[0] : 0;
}

uint32_t rp_u32(frame_rep *r)
{
	const unsigned char *p = rp_take(r, 4);
	uint32_t v = 0;
	int i;
	if (!p)
		return 0;
	for (i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;
	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t rp_u64(frame_rep *r)
{
	const unsigned char *p = rp_take(r, 8);
	return p ? le64(p) : 0;
}

int rp_done(frame_rep *r)
{
	if (r->left != 0)
		r->bad = 1;
	return !r->bad;
}

/* rp_flag reads a u8 that must be 0 or 1. */
static int rp_flag(frame_rep *r)
{
	uint8_t v = rp_u8(r);
	if (v > 1)
		r->bad = 1;
	return v == 1;
}

void rp_item_o(frame_rep *r, frame_out *o, CK_ULONG cap, int present)
{
	memset(o, 0, sizeof *o);
	o->len = rp_u64(r);
	o->copied = rp_flag(r);
	if (!o->copied)
		return;
	o->n = rp_u32(r);
	o->data = rp_take(r, o->n);
	if (!present || (uint64_t)o->n > (uint64_t)cap || (uint64_t)o->n != o->len)
		r->bad = 1;
}

void rp_item_h(frame_rep *r, frame_out *o, CK_ULONG cap, int present)
{
	memset(o, 0, sizeof *o);
	o->len = rp_u64(r);
	o->copied = rp_flag(r);
	if (!o->copied)
		return;
	if (!present || o->len > (uint64_t)cap || o->len > r->left / 8) {
		r->bad = 1;
		return;
	}
	o->n = (uint32_t)o->len;
	o->data = rp_take(r, (size_t)o->len * 8);
}

void out_o(const frame_out *o, CK_RV rv, CK_BYTE_PTR p, CK_ULONG_PTR pulLen)
{
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return;
	*pulLen = (CK_ULONG)o->len;
	if (rv == CKR_OK && o->copied && o->n)
		memcpy(p, o->data, o->n);
}

void out_h(const frame_out *o, CK_RV rv, CK_ULONG_PTR p, CK_ULONG_PTR pulCount)
{
	uint32_t i;
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		return;
	*pulCount = (CK_ULONG)o->len;
	if (rv == CKR_OK && o->copied)
		for (i = 0; i < o->n; i++)
			p[i] = (CK_ULONG)le64(o->data + 8 * (size_t)i);
}

/* ---- s items ---- */

static void rp_bytes(frame_rep *r, unsigned char *dst, size_t n)
{
	const unsigned char *p = rp_take(r, n);
	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

static void rp_version(frame_rep *r, CK_VERSION *v)
{
	v->major = rp_u8(r);
	v->minor = rp_u8(r);
}

void rp_info(frame_rep *r, CK_INFO *v)
{
	rp_version(r, &v->cryptokiVersion);
	rp_bytes(r, v->manufacturerID, sizeof v->manufacturerID);
	v->flags = (CK_FLAGS)rp_u64(r);
	rp_bytes(r, v->libraryDescription, sizeof v->libraryDescription);
	rp_version(r, &v->libraryVersion);
}

void rp_slot_info(frame_rep *r, CK_SLOT_INFO *v)
{
	rp_bytes(r, v->slotDescription, sizeof v->slotDescription);
	rp_bytes(r, v->manufacturerID, sizeof v->manufacturerID);
	v->flags = (CK_FLAGS)rp_u64(r);
	rp_version(r, &v->hardwareVersion);
	rp_version(r, &v->firmwareVersion);
}

void rp_token_info(frame_rep *r, CK_TOKEN_INFO *v)
{
	rp_bytes(r, v->label, sizeof v->label);
	rp_bytes(r, v->manufacturerID, sizeof v->manufacturerID);
	rp_bytes(r, v->model, sizeof v->model);
	rp_bytes(r, v->serialNumber, sizeof v->serialNumber);
	v->flags = (CK_FLAGS)rp_u64(r);
	v->ulMaxSessionCount = (CK_ULONG)rp_u64(r);
	v->ulSessionCount = (CK_ULONG)rp_u64(r);
	v->ulMaxRwSessionCount = (CK_ULONG)rp_u64(r);
	v->ulRwSessionCount = (CK_ULONG)rp_u64(r);
	v->ulMaxPinLen = (CK_ULONG)rp_u64(r);
	v->ulMinPinLen = (CK_ULONG)rp_u64(r);
	v->ulTotalPublicMemory = (CK_ULONG)rp_u64(r);
	v->ulFreePublicMemory = (CK_ULONG)rp_u64(r);
	v->ulTotalPrivateMemory = (CK_ULONG)rp_u64(r);
	v->ulFreePrivateMemory = (CK_ULONG)rp_u64(r);
	rp_version(r, &v->hardwareVersion);
	rp_version(r, &v->firmwareVersion);
	rp_bytes(r, v->utcTime, sizeof v->utcTime);
}

void rp_session_info(frame_rep *r, CK_SESSION_INFO *v)
{
	v->slotID = (CK_SLOT_ID)rp_u64(r);
	v->state = (CK_STATE)rp_u64(r);
	v->flags = (CK_FLAGS)rp_u64(r);
	v->ulDeviceError = (CK_ULONG)rp_u64(r);
}

void rp_mechanism_info(frame_rep *r, CK_MECHANISM_INFO *v)
{
	v->ulMinKeySize = (CK_ULONG)rp_u64(r);
	v->ulMaxKeySize = (CK_ULONG)rp_u64(r);
	v->flags = (CK_FLAGS)rp_u64(r);
}

/* ---- message parameters (frame.h) ---- */

/* MSG_MAX_IV bounds what C reads through an IV or nonce pointer whose
 * length the caller gives in bits or as a count: more is refused here,
 * before anything is read. GCM IVs are at most 256 bytes. */
#define MSG_MAX_IV 256u
/* MSG_TAG_MAX is the largest tag: 128 bits. */
#define MSG_TAG_MAX 16u

/* fr_msg_tag sends the tag (kinds 2 and 3): with MP_DECRYPT its bytes as
 * the caller gave them, else the NULL marker; then whether pTag is set. */
static void fr_msg_tag(frame_req *f, CK_BYTE_PTR tag, CK_ULONG n, int mode)
{
	if ((mode & MP_DECRYPT) && tag)
		fr_item_b(f, tag, n);
	else
		fr_u32(f, FRAME_NULL);
	fr_u8(f, tag != NULL);
}

void fr_item_x(frame_req *f, frame_msg *mo, CK_VOID_PTR p, CK_ULONG n, int mode)
{
	memset(mo, 0, sizeof *mo);
	if (!p) {
		if (n != 0) {
			fr_fail(f, CKR_ARGUMENTS_BAD);
			return;
		}
		fr_u8(f, 0);
		return;
	}
	if ((mode & MP_AEAD) && n == sizeof(CK_GCM_MESSAGE_PARAMS)) {
		CK_GCM_MESSAGE_PARAMS g;
		CK_ULONG tagLen;
		memcpy(&g, p, sizeof g);
		if (g.ulIvLen > MSG_MAX_IV || g.ulTagBits > 8 * MSG_TAG_MAX) {
			fr_fail(f, CKR_MECHANISM_PARAM_INVALID);
			return;
		}
		tagLen = (g.ulTagBits + 7) / 8;
		fr_u8(f, 2);
		fr_item_b_rv(f, g.pIv, g.ulIvLen, CKR_MECHANISM_PARAM_INVALID);
		fr_u64(f, (uint64_t)g.ulIvFixedBits);
		fr_u64(f, (uint64_t)g.ivGenerator);
		fr_u64(f, (uint64_t)g.ulTagBits);
		fr_msg_tag(f, g.pTag, tagLen, mode);
		mo->iv = g.pIv;
		mo->iv_cap = g.pIv ? g.ulIvLen : 0;
		mo->tag = g.pTag;
		mo->tag_cap = g.pTag ? tagLen : 0;
		return;
	}
	if ((mode & MP_AEAD) && n == sizeof(CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS)) {
		CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS c;
		CK_ULONG nonceLen;
		memcpy(&c, p, sizeof c);
		if (c.ulNonceBits > 8 * MSG_MAX_IV) {
			fr_fail(f, CKR_MECHANISM_PARAM_INVALID);
			return;
		}
		nonceLen = (c.ulNonceBits + 7) / 8;
		fr_u8(f, 3);
		fr_item_b_rv(f, c.pNonce, nonceLen, CKR_MECHANISM_PARAM_INVALID);
		fr_u64(f, (uint64_t)c.ulNonceBits);
		fr_msg_tag(f, c.pTag, MSG_TAG_MAX, mode);
		mo->iv = c.pNonce;
		mo->iv_cap = c.pNonce ? nonceLen : 0;
		mo->tag = c.pTag;
		mo->tag_cap = c.pTag ? MSG_TAG_MAX : 0;
		return;
	}
	fr_u8(f, 1);
	fr_item_b(f, p, n);
}

void rp_item_y(frame_rep *r, frame_y *y, const frame_msg *mo)
{
	memset(y, 0, sizeof *y);
	y->iv_n = rp_u32(r);
	y->iv = rp_take(r, y->iv_n);
	y->tag_n = rp_u32(r);
	y->tag = rp_take(r, y->tag_n);
	/* A generated IV fills the caller's IV exactly; a tag fits pTag. */
	if (y->iv_n && (!mo->iv || (uint64_t)y->iv_n != (uint64_t)mo->iv_cap))
		r->bad = 1;
	if (y->tag_n && (!mo->tag || (uint64_t)y->tag_n > (uint64_t)mo->tag_cap))
		r->bad = 1;
}

void out_y(const frame_y *y, CK_RV rv, const frame_msg *mo)
{
	if (rv != CKR_OK)
		return;
	if (y->iv_n)
		memcpy(mo->iv, y->iv, y->iv_n);
	if (y->tag_n)
		memcpy(mo->tag, y->tag, y->tag_n);
}

/* ---- operation life cycle ---- */

/* MK_NULL: no CK_MECHANISM at all (core.mechKindNull). */
#define MK_NULL 0xFF

void fr_item_m_or_null(frame_req *f, const CK_MECHANISM *m)
{
	if (m) {
		fr_item_m(f, m);
		return;
	}
	fr_u64(f, 0);
	fr_u8(f, MK_NULL);
}
