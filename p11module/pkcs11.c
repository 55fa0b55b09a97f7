/* pkcs11.c: the PKCS#11 v2.40 and v3.0 entry points.
 *
 * Mechanical, by design (docs/pkcs11-library.md): each function checks that
 * the library is initialized, then its pointers and lengths, marshals its
 * arguments into a frame (the items of wire.h), sends it, and copies the
 * reply's outputs back the way PKCS#11 says for the CK_RV it got: lengths
 * for CKR_OK and CKR_BUFFER_TOO_SMALL, each attribute's ulValueLen for
 * C_GetAttributeValue for the four CK_RVs that define them (CKR_OK,
 * CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID,
 * CKR_BUFFER_TOO_SMALL; any other error leaves the template as it was),
 * handles and structures for
 * CKR_OK. A malformed reply is CKR_DEVICE_ERROR, and then nothing is
 * written. No caller pointer is kept after a function returns.
 *
 * Answered here without Go: C_GetFunctionList, C_GetInterfaceList,
 * C_GetInterface, C_GetFunctionStatus, C_CancelFunction and
 * C_WaitForSlotEvent. */
#include <string.h>
#include <time.h>

#include "transport.h"
#include "wire.h"

#define INIT_CHECK()                                    \
	do {                                            \
		if (!lib_initialized())                 \
			return CKR_CRYPTOKI_NOT_INITIALIZED; \
	} while (0)

#define UNUSED(x) (void)(x)

/* ---- shapes shared by many functions ---- */

/* finish sends a call whose reply has no items. */
static CK_RV finish(call *c)
{
	if (call_send(c))
		call_check(c);
	return call_end(c);
}

/* finish_o sends a call whose reply is one o item. */
static CK_RV finish_o(call *c, CK_BYTE_PTR out, CK_ULONG cap, CK_ULONG_PTR pulOutLen)
{
	frame_out o;
	if (call_send(c)) {
		rp_item_o(&c->rep, &o, cap, out != NULL);
		if (call_check(c))
			out_o(&o, c->result, out, pulOutLen);
	}
	return call_end(c);
}

/* finish_h sends a call whose reply is one h item. */
static CK_RV finish_h(call *c, CK_ULONG_PTR out, CK_ULONG cap, CK_ULONG_PTR pulCount)
{
	frame_out o;
	if (call_send(c)) {
		rp_item_h(&c->rep, &o, cap, out != NULL);
		if (call_check(c))
			out_h(&o, c->result, out, pulCount);
	}
	return call_end(c);
}

/* finish_p sends a call whose reply is one p item (a handle); ph may be
 * NULL (C_DeriveKey). */
static CK_RV finish_p(call *c, CK_ULONG_PTR ph)
{
	uint64_t v;
	if (call_send(c)) {
		v = rp_u64(&c->rep);
		if (call_check(c) && c->result == CKR_OK && ph)
			*ph = (CK_ULONG)v;
	}
	return call_end(c);
}

/* u b o -> o */
static CK_RV op_bo(uint32_t fn, CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inLen,
		   CK_BYTE_PTR out, CK_ULONG_PTR pulOutLen)
{
	call c;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pulOutLen)
		return CKR_ARGUMENTS_BAD;
	cap = *pulOutLen;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_b(&c.req, in, inLen);
	fr_item_o(&c.req, out, cap);
	return finish_o(&c, out, cap, pulOutLen);
}

/* u o -> o */
static CK_RV op_o(uint32_t fn, CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR pulOutLen)
{
	call c;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pulOutLen)
		return CKR_ARGUMENTS_BAD;
	cap = *pulOutLen;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_o(&c.req, out, cap);
	return finish_o(&c, out, cap, pulOutLen);
}

/* u b */
static CK_RV op_b(uint32_t fn, CK_ULONG u, CK_BYTE_PTR in, CK_ULONG inLen)
{
	call c;
	INIT_CHECK();
	if (!in && inLen)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, fn);
	fr_item_u(&c.req, u);
	fr_item_b(&c.req, in, inLen);
	return finish(&c);
}

/* u b b */
static CK_RV op_bb(uint32_t fn, CK_ULONG u, CK_BYTE_PTR a, CK_ULONG aLen, CK_BYTE_PTR b,
		   CK_ULONG bLen)
{
	call c;
	INIT_CHECK();
	if ((!a && aLen) || (!b && bLen))
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, fn);
	fr_item_u(&c.req, u);
	fr_item_b(&c.req, a, aLen);
	fr_item_b(&c.req, b, bLen);
	return finish(&c);
}

/* u m u (the functions that take no NULL mechanism) */
static CK_RV op_mu(uint32_t fn, CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	call c;
	INIT_CHECK();
	if (!m)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_m(&c.req, m);
	fr_item_u(&c.req, key);
	return finish(&c);
}

/* u m u for C_*Init, where a NULL mechanism is passed on (PKCS#11 3.0:
 * it cancels the operation). */
static CK_RV op_init(uint32_t fn, CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	call c;
	INIT_CHECK();
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_m_or_null(&c.req, m);
	fr_item_u(&c.req, key);
	return finish(&c);
}

/* u */
static CK_RV op_u(uint32_t fn, CK_ULONG u)
{
	call c;
	INIT_CHECK();
	call_begin(&c, fn);
	fr_item_u(&c.req, u);
	return finish(&c);
}

/* u u */
static CK_RV op_uu(uint32_t fn, CK_ULONG u, CK_ULONG v)
{
	call c;
	INIT_CHECK();
	call_begin(&c, fn);
	fr_item_u(&c.req, u);
	fr_item_u(&c.req, v);
	return finish(&c);
}

/* ---- general purpose ---- */

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_C_INITIALIZE_ARGS a;
	CK_FLAGS flags = 0;
	int n;

	if (pInitArgs) {
		memcpy(&a, pInitArgs, sizeof a);
		if (a.pReserved)
			return CKR_ARGUMENTS_BAD;
		n = (a.CreateMutex != NULL) + (a.DestroyMutex != NULL) +
		    (a.LockMutex != NULL) + (a.UnlockMutex != NULL);
		if (n != 0 && n != 4)
			return CKR_ARGUMENTS_BAD;
		/* CKF_LIBRARY_CANT_CREATE_OS_THREADS is accepted, as most
		 * modules do: GnuTLS (through p11-kit) always sets it, and the
		 * Go runtime's threads exist from the moment the library is
		 * loaded, before C_Initialize could refuse anything. */
		/* With or without the application's mutex functions, the
		 * library locks with the operating system's primitives. */
		flags = a.flags;
	}
	return lib_initialize(flags);
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	INIT_CHECK();
	if (pReserved)
		return CKR_ARGUMENTS_BAD;
	return lib_finalize();
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
	call c;
	CK_INFO v;
	INIT_CHECK();
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETINFO);
	if (call_send(&c)) {
		rp_info(&c.rep, &v);
		if (call_check(&c) && c.result == CKR_OK)
			*pInfo = v;
	}
	return call_end(&c);
}

/* ---- slots and tokens ---- */

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
	call c;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	cap = *pulCount;
	call_begin(&c, WIRE_GETSLOTLIST);
	fr_item_u(&c.req, tokenPresent ? 1 : 0);
	fr_item_h(&c.req, pSlotList, cap);
	return finish_h(&c, pSlotList, cap, pulCount);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	call c;
	CK_SLOT_INFO v;
	INIT_CHECK();
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETSLOTINFO);
	fr_item_u(&c.req, slotID);
	if (call_send(&c)) {
		rp_slot_info(&c.rep, &v);
		if (call_check(&c) && c.result == CKR_OK)
			*pInfo = v;
	}
	return call_end(&c);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	call c;
	CK_TOKEN_INFO v;
	INIT_CHECK();
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETTOKENINFO);
	fr_item_u(&c.req, slotID);
	if (call_send(&c)) {
		rp_token_info(&c.rep, &v);
		if (call_check(&c) && c.result == CKR_OK)
			*pInfo = v;
	}
	return call_end(&c);
}

/* C_WaitForSlotEvent asks Go again and again, each call waiting at most
 * lib_wait_slice_ms() (in the helper 0: then it sleeps here between calls,
 * so that the helper's socket is free for other threads), until there is an
 * event, an error, or C_Finalize on another thread. */
CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	call c;
	CK_RV rv;
	uint64_t wait;
	struct timespec nap = { 0, 100 * 1000 * 1000 };
	INIT_CHECK();
	if (!pSlot || pReserved)
		return CKR_ARGUMENTS_BAD;
	for (;;) {
		wait = lib_wait_slice_ms();
		call_begin(&c, WIRE_WAITFORSLOTEVENT);
		fr_item_u(&c.req, flags);
		fr_item_u(&c.req, wait);
		rv = finish_p(&c, pSlot);
		if (!lib_initialized())
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		if (rv != CKR_NO_EVENT || (flags & CKF_DONT_BLOCK))
			return rv;
		if (wait == 0)
			nanosleep(&nap, NULL);
	}
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
			 CK_ULONG_PTR pulCount)
{
	call c;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	cap = *pulCount;
	call_begin(&c, WIRE_GETMECHANISMLIST);
	fr_item_u(&c.req, slotID);
	fr_item_h(&c.req, pMechanismList, cap);
	return finish_h(&c, pMechanismList, cap, pulCount);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	call c;
	CK_MECHANISM_INFO v;
	INIT_CHECK();
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETMECHANISMINFO);
	fr_item_u(&c.req, slotID);
	fr_item_u(&c.req, type);
	if (call_send(&c)) {
		rp_mechanism_info(&c.rep, &v);
		if (call_check(&c) && c.result == CKR_OK)
			*pInfo = v;
	}
	return call_end(&c);
}

CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
		  CK_UTF8CHAR_PTR pLabel)
{
	INIT_CHECK();
	if (!pLabel)
		return CKR_ARGUMENTS_BAD;
	/* The label is 32 bytes, blank padded. */
	return op_bb(WIRE_INITTOKEN, slotID, pPin, ulPinLen, pLabel, 32);
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	return op_b(WIRE_INITPIN, hSession, pPin, ulPinLen);
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
	       CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	return op_bb(WIRE_SETPIN, hSession, pOldPin, ulOldLen, pNewPin, ulNewLen);
}

/* ---- sessions ---- */

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
		    CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
	call c;
	/* Notification callbacks are never made. */
	UNUSED(pApplication);
	UNUSED(Notify);
	INIT_CHECK();
	if (!phSession)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_OPENSESSION);
	fr_item_u(&c.req, slotID);
	fr_item_u(&c.req, flags);
	return finish_p(&c, phSession);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_CLOSESESSION, hSession);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
	return op_u(WIRE_CLOSEALLSESSIONS, slotID);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	call c;
	CK_SESSION_INFO v;
	INIT_CHECK();
	if (!pInfo)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETSESSIONINFO);
	fr_item_u(&c.req, hSession);
	if (call_send(&c)) {
		rp_session_info(&c.rep, &v);
		if (call_check(&c) && c.result == CKR_OK)
			*pInfo = v;
	}
	return call_end(&c);
}

CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
			  CK_ULONG_PTR pulOperationStateLen)
{
	return op_o(WIRE_GETOPERATIONSTATE, hSession, pOperationState, pulOperationStateLen);
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
			  CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
			  CK_OBJECT_HANDLE hAuthenticationKey)
{
	call c;
	INIT_CHECK();
	if (!pOperationState && ulOperationStateLen)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_SETOPERATIONSTATE);
	fr_item_u(&c.req, hSession);
	fr_item_b(&c.req, pOperationState, ulOperationStateLen);
	fr_item_u(&c.req, hEncryptionKey);
	fr_item_u(&c.req, hAuthenticationKey);
	return finish(&c);
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
	      CK_ULONG ulPinLen)
{
	call c;
	INIT_CHECK();
	if (!pPin && ulPinLen)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_LOGIN);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, userType);
	fr_item_b(&c.req, pPin, ulPinLen);
	return finish(&c);
}

CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
		  CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
	call c;
	INIT_CHECK();
	if ((!pPin && ulPinLen) || (!pUsername && ulUsernameLen))
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_LOGINUSER);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, userType);
	fr_item_b(&c.req, pPin, ulPinLen);
	fr_item_b(&c.req, pUsername, ulUsernameLen);
	return finish(&c);
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_LOGOUT, hSession);
}

CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	return op_uu(WIRE_SESSIONCANCEL, hSession, flags);
}

/* ---- objects ---- */

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
		     CK_OBJECT_HANDLE_PTR phObject)
{
	call c;
	INIT_CHECK();
	if ((!pTemplate && ulCount) || !phObject)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_CREATEOBJECT);
	fr_item_u(&c.req, hSession);
	fr_item_t(&c.req, pTemplate, ulCount);
	return finish_p(&c, phObject);
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
	call c;
	INIT_CHECK();
	if ((!pTemplate && ulCount) || !phNewObject)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_COPYOBJECT);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, hObject);
	fr_item_t(&c.req, pTemplate, ulCount);
	return finish_p(&c, phNewObject);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	return op_uu(WIRE_DESTROYOBJECT, hSession, hObject);
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
	call c;
	INIT_CHECK();
	if (!pulSize)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETOBJECTSIZE);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, hObject);
	return finish_p(&c, pulSize);
}

/* rp_attr reads one attribute of a g reply and checks it against the
 * caller's entry; with write set (the second pass), it copies it out. */
/* rp_attr_array reads an array attribute's entry of a g reply: its length
 * counts CK_ATTRIBUTEs, and when copied the entries follow (u32 count, then
 * per entry u64 type, u64 length, u8 copied and if copied u32 n + n
 * bytes), written into the caller's array on the second pass. */
static void rp_attr_array(frame_rep *r, CK_ATTRIBUTE *a, int write)
{
	uint64_t len = rp_u64(r), ilen;
	uint8_t copied = rp_u8(r), icopied;
	uint32_t cnt = 0, j, n;
	const unsigned char *data;
	CK_ATTRIBUTE *in = a->pValue;

	if (copied > 1)
		r->bad = 1;
	if (copied == 1) {
		cnt = rp_u32(r);
		if (!in || (uint64_t)cnt > (uint64_t)(a->ulValueLen / sizeof(CK_ATTRIBUTE)) ||
		    (uint64_t)cnt != len)
			r->bad = 1;
		for (j = 0; j < cnt && !r->bad; j++) {
			uint64_t itype = rp_u64(r);
			ilen = rp_u64(r);
			icopied = rp_u8(r);
			n = 0;
			data = NULL;
			if (icopied > 1)
				r->bad = 1;
			if (icopied == 1) {
				n = rp_u32(r);
				data = rp_take(r, n);
				if (!in[j].pValue || (uint64_t)n > (uint64_t)in[j].ulValueLen || (uint64_t)n != ilen)
					r->bad = 1;
			}
			if (write && !r->bad) {
				in[j].type = (CK_ATTRIBUTE_TYPE)itype;
				in[j].ulValueLen = (CK_ULONG)ilen;
				if (data && n)
					memcpy(in[j].pValue, data, n);
			}
		}
	}
	if (!write || r->bad)
		return;
	if (len == (uint64_t)CK_UNAVAILABLE_INFORMATION)
		a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
	else
		a->ulValueLen = (CK_ULONG)(len * sizeof(CK_ATTRIBUTE));
}

static void rp_attr(frame_rep *r, CK_ATTRIBUTE *a, int write)
{
	uint64_t len;
	uint8_t copied;
	const unsigned char *data = NULL;
	uint32_t n = 0;
	if (fr_template_attr(a->type)) {
		rp_attr_array(r, a, write);
		return;
	}
	len = rp_u64(r);
	copied = rp_u8(r);

	if (copied > 1)
		r->bad = 1;
	if (copied == 1) {
		n = rp_u32(r);
		data = rp_take(r, n);
		if (!a->pValue || (uint64_t)n > (uint64_t)a->ulValueLen || (uint64_t)n != len)
			r->bad = 1;
	}
	if (!write || r->bad)
		return;
	a->ulValueLen = (CK_ULONG)len;
	if (data && n)
		memcpy(a->pValue, data, n);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	call c;
	frame_rep start;
	CK_ULONG i;
	INIT_CHECK();
	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GETATTRIBUTEVALUE);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, hObject);
	fr_item_g(&c.req, pTemplate, ulCount);
	if (call_send(&c)) {
		/* Read the whole reply first; write only if it is good. */
		start = c.rep;
		for (i = 0; i < ulCount && !c.rep.bad; i++)
			rp_attr(&c.rep, &pTemplate[i], 0);
		if (call_check(&c) &&
		    (c.result == CKR_OK || c.result == CKR_ATTRIBUTE_SENSITIVE ||
		     c.result == CKR_ATTRIBUTE_TYPE_INVALID || c.result == CKR_BUFFER_TOO_SMALL)) {
			c.rep = start;
			for (i = 0; i < ulCount; i++)
				rp_attr(&c.rep, &pTemplate[i], 1);
		}
	}
	return call_end(&c);
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	call c;
	INIT_CHECK();
	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_SETATTRIBUTEVALUE);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, hObject);
	fr_item_t(&c.req, pTemplate, ulCount);
	return finish(&c);
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	call c;
	INIT_CHECK();
	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_FINDOBJECTSINIT);
	fr_item_u(&c.req, hSession);
	fr_item_t(&c.req, pTemplate, ulCount);
	return finish(&c);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
		    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	call c;
	INIT_CHECK();
	if (!phObject || !pulObjectCount)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_FINDOBJECTS);
	fr_item_u(&c.req, hSession);
	fr_item_h(&c.req, phObject, ulMaxObjectCount);
	return finish_h(&c, phObject, ulMaxObjectCount, pulObjectCount);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_FINDOBJECTSFINAL, hSession);
}

/* ---- encryption and decryption ---- */

CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(WIRE_ENCRYPTINIT, hSession, pMechanism, hKey);
}

CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
		CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
	return op_bo(WIRE_ENCRYPT, hSession, pData, ulDataLen, pEncryptedData,
		     pulEncryptedDataLen);
}

CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
		      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	return op_bo(WIRE_ENCRYPTUPDATE, hSession, pPart, ulPartLen, pEncryptedPart,
		     pulEncryptedPartLen);
}

CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
		     CK_ULONG_PTR pulLastEncryptedPartLen)
{
	return op_o(WIRE_ENCRYPTFINAL, hSession, pLastEncryptedPart, pulLastEncryptedPartLen);
}

CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(WIRE_DECRYPTINIT, hSession, pMechanism, hKey);
}

CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData,
		CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	return op_bo(WIRE_DECRYPT, hSession, pEncryptedData, ulEncryptedDataLen, pData,
		     pulDataLen);
}

CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
		      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	return op_bo(WIRE_DECRYPTUPDATE, hSession, pEncryptedPart, ulEncryptedPartLen, pPart,
		     pulPartLen);
}

CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart,
		     CK_ULONG_PTR pulLastPartLen)
{
	return op_o(WIRE_DECRYPTFINAL, hSession, pLastPart, pulLastPartLen);
}

/* ---- digests ---- */

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	call c;
	INIT_CHECK();
	call_begin(&c, WIRE_DIGESTINIT);
	fr_item_u(&c.req, hSession);
	fr_item_m_or_null(&c.req, pMechanism);
	return finish(&c);
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	       CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	return op_bo(WIRE_DIGEST, hSession, pData, ulDataLen, pDigest, pulDigestLen);
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_b(WIRE_DIGESTUPDATE, hSession, pPart, ulPartLen);
}

CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	return op_uu(WIRE_DIGESTKEY, hSession, hKey);
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	return op_o(WIRE_DIGESTFINAL, hSession, pDigest, pulDigestLen);
}

/* ---- signatures ---- */

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(WIRE_SIGNINIT, hSession, pMechanism, hKey);
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	     CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return op_bo(WIRE_SIGN, hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_b(WIRE_SIGNUPDATE, hSession, pPart, ulPartLen);
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
		  CK_ULONG_PTR pulSignatureLen)
{
	return op_o(WIRE_SIGNFINAL, hSession, pSignature, pulSignatureLen);
}

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_OBJECT_HANDLE hKey)
{
	return op_init(WIRE_SIGNRECOVERINIT, hSession, pMechanism, hKey);
}

CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
		    CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return op_bo(WIRE_SIGNRECOVER, hSession, pData, ulDataLen, pSignature,
		     pulSignatureLen);
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(WIRE_VERIFYINIT, hSession, pMechanism, hKey);
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	       CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return op_bb(WIRE_VERIFY, hSession, pData, ulDataLen, pSignature, ulSignatureLen);
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_b(WIRE_VERIFYUPDATE, hSession, pPart, ulPartLen);
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return op_b(WIRE_VERIFYFINAL, hSession, pSignature, ulSignatureLen);
}

CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			  CK_OBJECT_HANDLE hKey)
{
	return op_init(WIRE_VERIFYRECOVERINIT, hSession, pMechanism, hKey);
}

CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
		      CK_ULONG ulSignatureLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	return op_bo(WIRE_VERIFYRECOVER, hSession, pSignature, ulSignatureLen, pData,
		     pulDataLen);
}

/* ---- dual-function ---- */

CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
			    CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	return op_bo(WIRE_DIGESTENCRYPTUPDATE, hSession, pPart, ulPartLen, pEncryptedPart,
		     pulEncryptedPartLen);
}

CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
			    CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,
			    CK_ULONG_PTR pulPartLen)
{
	return op_bo(WIRE_DECRYPTDIGESTUPDATE, hSession, pEncryptedPart, ulEncryptedPartLen,
		     pPart, pulPartLen);
}

CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
			  CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	return op_bo(WIRE_SIGNENCRYPTUPDATE, hSession, pPart, ulPartLen, pEncryptedPart,
		     pulEncryptedPartLen);
}

CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
			    CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,
			    CK_ULONG_PTR pulPartLen)
{
	return op_bo(WIRE_DECRYPTVERIFYUPDATE, hSession, pEncryptedPart, ulEncryptedPartLen,
		     pPart, pulPartLen);
}

/* ---- keys ---- */

CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
	call c;
	INIT_CHECK();
	if (!pMechanism || (!pTemplate && ulCount) || !phKey)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GENERATEKEY);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_t(&c.req, pTemplate, ulCount);
	return finish_p(&c, phKey);
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
			CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
			CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey,
			CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	call c;
	uint64_t pub, priv;
	INIT_CHECK();
	if (!pMechanism || (!pPublicKeyTemplate && ulPublicKeyAttributeCount) ||
	    (!pPrivateKeyTemplate && ulPrivateKeyAttributeCount) || !phPublicKey ||
	    !phPrivateKey)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GENERATEKEYPAIR);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_t(&c.req, pPublicKeyTemplate, ulPublicKeyAttributeCount);
	fr_item_t(&c.req, pPrivateKeyTemplate, ulPrivateKeyAttributeCount);
	if (call_send(&c)) {
		pub = rp_u64(&c.rep);
		priv = rp_u64(&c.rep);
		if (call_check(&c) && c.result == CKR_OK) {
			*phPublicKey = (CK_OBJECT_HANDLE)pub;
			*phPrivateKey = (CK_OBJECT_HANDLE)priv;
		}
	}
	return call_end(&c);
}

CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey,
		CK_ULONG_PTR pulWrappedKeyLen)
{
	call c;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pMechanism || !pulWrappedKeyLen)
		return CKR_ARGUMENTS_BAD;
	cap = *pulWrappedKeyLen;
	call_begin(&c, WIRE_WRAPKEY);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_u(&c.req, hWrappingKey);
	fr_item_u(&c.req, hKey);
	fr_item_o(&c.req, pWrappedKey, cap);
	return finish_o(&c, pWrappedKey, cap, pulWrappedKeyLen);
}

CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		  CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
		  CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount,
		  CK_OBJECT_HANDLE_PTR phKey)
{
	call c;
	INIT_CHECK();
	if (!pMechanism || (!pWrappedKey && ulWrappedKeyLen) ||
	    (!pTemplate && ulAttributeCount) || !phKey)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_UNWRAPKEY);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_u(&c.req, hUnwrappingKey);
	fr_item_b(&c.req, pWrappedKey, ulWrappedKeyLen);
	fr_item_t(&c.req, pTemplate, ulAttributeCount);
	return finish_p(&c, phKey);
}

CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		  CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount,
		  CK_OBJECT_HANDLE_PTR phKey)
{
	call c;
	INIT_CHECK();
	/* phKey may be NULL: some derivations return their keys elsewhere. */
	if (!pMechanism || (!pTemplate && ulAttributeCount))
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_DERIVEKEY);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_u(&c.req, hBaseKey);
	fr_item_t(&c.req, pTemplate, ulAttributeCount);
	return finish_p(&c, phKey);
}

/* ---- random numbers ---- */

CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	return op_b(WIRE_SEEDRANDOM, hSession, pSeed, ulSeedLen);
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen)
{
	call c;
	uint32_t n;
	const unsigned char *data;
	INIT_CHECK();
	if (!RandomData && ulRandomLen)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_GENERATERANDOM);
	fr_item_u(&c.req, hSession);
	fr_item_u(&c.req, ulRandomLen);
	if (call_send(&c)) {
		n = rp_u32(&c.rep);
		data = rp_take(&c.rep, n);
		/* On CKR_OK every byte asked for must come: a short answer would
		 * leave the caller's buffer looking random. */
		if ((uint64_t)n > (uint64_t)ulRandomLen ||
		    (c.result == CKR_OK && (uint64_t)n != (uint64_t)ulRandomLen))
			c.rep.bad = 1;
		if (call_check(&c) && c.result == CKR_OK && n)
			memcpy(RandomData, data, n);
	}
	return call_end(&c);
}

/* ---- legacy parallel functions ---- */

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	UNUSED(hSession);
	INIT_CHECK();
	return CKR_FUNCTION_NOT_PARALLEL;
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	UNUSED(hSession);
	INIT_CHECK();
	return CKR_FUNCTION_NOT_PARALLEL;
}

/* ---- message-based functions (v3.0) ----
 *
 * The message parameter crosses as an x item (frame.h); what Go writes back
 * into it (a generated IV, the tag) comes as a y item and is copied into the
 * caller's structure on CKR_OK. */

/* msg_init: u u x u. The mechanism's parameter, if any, is a message
 * parameter structure (it says nothing Go needs, but is checked). */
static CK_RV msg_init(uint32_t fn, CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	call c;
	frame_msg mo;
	INIT_CHECK();
	if (!m)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_u(&c.req, m->mechanism);
	fr_item_x(&c.req, &mo, m->pParameter, m->ulParameterLen, MP_AEAD);
	fr_item_u(&c.req, key);
	return finish(&c);
}

/* finish_oy sends a call whose reply is an o item and, when encrypting,
 * the y item of the message parameter mo. */
static CK_RV finish_oy(call *c, frame_msg *mo, int mode, CK_BYTE_PTR out, CK_ULONG cap,
		       CK_ULONG_PTR pulOutLen)
{
	frame_out o;
	frame_y y;
	if (call_send(c)) {
		rp_item_o(&c->rep, &o, cap, out != NULL);
		if (!(mode & MP_DECRYPT))
			rp_item_y(&c->rep, &y, mo);
		if (call_check(c)) {
			out_o(&o, c->result, out, pulOutLen);
			if (!(mode & MP_DECRYPT))
				out_y(&y, c->result, mo);
		}
	}
	return call_end(c);
}

/* msg_crypt: u x b b o -> o [y]: C_EncryptMessage (with y) and
 * C_DecryptMessage. */
static CK_RV msg_crypt(uint32_t fn, int mode, CK_SESSION_HANDLE h, CK_VOID_PTR param,
		       CK_ULONG paramLen, CK_BYTE_PTR aad, CK_ULONG aadLen, CK_BYTE_PTR in,
		       CK_ULONG inLen, CK_BYTE_PTR out, CK_ULONG_PTR pulOutLen)
{
	call c;
	frame_msg mo;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pulOutLen || (!aad && aadLen) || (!in && inLen))
		return CKR_ARGUMENTS_BAD;
	cap = *pulOutLen;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_x(&c.req, &mo, param, paramLen, mode);
	fr_item_b(&c.req, aad, aadLen);
	fr_item_b(&c.req, in, inLen);
	fr_item_o(&c.req, out, cap);
	return finish_oy(&c, &mo, mode, out, cap, pulOutLen);
}

/* msg_begin: u x b [-> y]: C_EncryptMessageBegin (with y) and
 * C_DecryptMessageBegin. */
static CK_RV msg_begin(uint32_t fn, int mode, CK_SESSION_HANDLE h, CK_VOID_PTR param,
		       CK_ULONG paramLen, CK_BYTE_PTR aad, CK_ULONG aadLen)
{
	call c;
	frame_msg mo;
	frame_y y;
	INIT_CHECK();
	if (!aad && aadLen)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_x(&c.req, &mo, param, paramLen, mode);
	fr_item_b(&c.req, aad, aadLen);
	if (mode & MP_DECRYPT)
		return finish(&c);
	if (call_send(&c)) {
		rp_item_y(&c.rep, &y, &mo);
		if (call_check(&c))
			out_y(&y, c.result, &mo);
	}
	return call_end(&c);
}

/* msg_next: u x b o u -> o [y]: C_EncryptMessageNext (with y) and
 * C_DecryptMessageNext. */
static CK_RV msg_next(uint32_t fn, int mode, CK_SESSION_HANDLE h, CK_VOID_PTR param,
		      CK_ULONG paramLen, CK_BYTE_PTR in, CK_ULONG inLen, CK_BYTE_PTR out,
		      CK_ULONG_PTR pulOutLen, CK_FLAGS flags)
{
	call c;
	frame_msg mo;
	CK_ULONG cap;
	INIT_CHECK();
	if (!pulOutLen || (!in && inLen))
		return CKR_ARGUMENTS_BAD;
	cap = *pulOutLen;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_x(&c.req, &mo, param, paramLen, mode);
	fr_item_b(&c.req, in, inLen);
	fr_item_o(&c.req, out, cap);
	fr_item_u(&c.req, flags);
	return finish_oy(&c, &mo, mode, out, cap, pulOutLen);
}

/* msg_x: u x (C_SignMessageBegin, C_VerifyMessageBegin). */
static CK_RV msg_x(uint32_t fn, CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG paramLen)
{
	call c;
	frame_msg mo;
	INIT_CHECK();
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_x(&c.req, &mo, param, paramLen, MP_RAW);
	return finish(&c);
}

/* msg_sign: u x b o [u] -> o (C_SignMessage; C_SignMessageNext, whose u
 * says whether this is the last part: pulSignatureLen is not NULL). */
static CK_RV msg_sign(uint32_t fn, CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG paramLen,
		      CK_BYTE_PTR data, CK_ULONG dataLen, CK_BYTE_PTR sig,
		      CK_ULONG_PTR pulSigLen, int next)
{
	call c;
	frame_msg mo;
	frame_out o;
	CK_ULONG cap = 0;
	INIT_CHECK();
	if ((!next && !pulSigLen) || (!data && dataLen))
		return CKR_ARGUMENTS_BAD;
	if (pulSigLen)
		cap = *pulSigLen;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_x(&c.req, &mo, param, paramLen, MP_RAW);
	fr_item_b(&c.req, data, dataLen);
	fr_item_o(&c.req, pulSigLen ? sig : NULL, cap);
	if (next)
		fr_item_u(&c.req, pulSigLen != NULL);
	if (call_send(&c)) {
		rp_item_o(&c.rep, &o, cap, pulSigLen && sig);
		if (call_check(&c) && pulSigLen)
			out_o(&o, c.result, sig, pulSigLen);
	}
	return call_end(&c);
}

/* msg_verify: u x b b (C_VerifyMessage, C_VerifyMessageNext: there a NULL
 * signature means more parts follow). */
static CK_RV msg_verify(uint32_t fn, CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG paramLen,
			CK_BYTE_PTR data, CK_ULONG dataLen, CK_BYTE_PTR sig, CK_ULONG sigLen)
{
	call c;
	frame_msg mo;
	INIT_CHECK();
	if ((!data && dataLen) || (!sig && sigLen))
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, fn);
	fr_item_u(&c.req, h);
	fr_item_x(&c.req, &mo, param, paramLen, MP_RAW);
	fr_item_b(&c.req, data, dataLen);
	fr_item_b(&c.req, sig, sigLen);
	return finish(&c);
}

CK_RV C_MessageEncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			   CK_OBJECT_HANDLE hKey)
{
	return msg_init(WIRE_MESSAGEENCRYPTINIT, hSession, pMechanism, hKey);
}

CK_RV C_EncryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
		       CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
		       CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext,
		       CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext,
		       CK_ULONG_PTR pulCiphertextLen)
{
	return msg_crypt(WIRE_ENCRYPTMESSAGE, MP_AEAD, hSession, pParameter, ulParameterLen,
			 pAssociatedData, ulAssociatedDataLen, pPlaintext, ulPlaintextLen,
			 pCiphertext, pulCiphertextLen);
}

CK_RV C_EncryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			    CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
			    CK_ULONG ulAssociatedDataLen)
{
	return msg_begin(WIRE_ENCRYPTMESSAGEBEGIN, MP_AEAD, hSession, pParameter, ulParameterLen,
			 pAssociatedData, ulAssociatedDataLen);
}

CK_RV C_EncryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			   CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart,
			   CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart,
			   CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags)
{
	return msg_next(WIRE_ENCRYPTMESSAGENEXT, MP_AEAD, hSession, pParameter, ulParameterLen,
			pPlaintextPart, ulPlaintextPartLen, pCiphertextPart,
			pulCiphertextPartLen, flags);
}

CK_RV C_MessageEncryptFinal(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_MESSAGEENCRYPTFINAL, hSession);
}

CK_RV C_MessageDecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			   CK_OBJECT_HANDLE hKey)
{
	return msg_init(WIRE_MESSAGEDECRYPTINIT, hSession, pMechanism, hKey);
}

CK_RV C_DecryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
		       CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
		       CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext,
		       CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext,
		       CK_ULONG_PTR pulPlaintextLen)
{
	return msg_crypt(WIRE_DECRYPTMESSAGE, MP_AEAD | MP_DECRYPT, hSession, pParameter,
			 ulParameterLen, pAssociatedData, ulAssociatedDataLen, pCiphertext,
			 ulCiphertextLen, pPlaintext, pulPlaintextLen);
}

CK_RV C_DecryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			    CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
			    CK_ULONG ulAssociatedDataLen)
{
	return msg_begin(WIRE_DECRYPTMESSAGEBEGIN, MP_AEAD | MP_DECRYPT, hSession, pParameter,
			 ulParameterLen, pAssociatedData, ulAssociatedDataLen);
}

CK_RV C_DecryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			   CK_ULONG ulParameterLen, CK_BYTE_PTR pCiphertextPart,
			   CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart,
			   CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags)
{
	return msg_next(WIRE_DECRYPTMESSAGENEXT, MP_AEAD | MP_DECRYPT, hSession, pParameter,
			ulParameterLen, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart,
			pulPlaintextPartLen, flags);
}

CK_RV C_MessageDecryptFinal(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_MESSAGEDECRYPTFINAL, hSession);
}

CK_RV C_MessageSignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_OBJECT_HANDLE hKey)
{
	return op_mu(WIRE_MESSAGESIGNINIT, hSession, pMechanism, hKey);
}

CK_RV C_SignMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
		    CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
		    CK_ULONG_PTR pulSignatureLen)
{
	return msg_sign(WIRE_SIGNMESSAGE, hSession, pParameter, ulParameterLen, pData, ulDataLen,
			pSignature, pulSignatureLen, 0);
}

CK_RV C_SignMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			 CK_ULONG ulParameterLen)
{
	return msg_x(WIRE_SIGNMESSAGEBEGIN, hSession, pParameter, ulParameterLen);
}

CK_RV C_SignMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
			CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return msg_sign(WIRE_SIGNMESSAGENEXT, hSession, pParameter, ulParameterLen, pData,
			ulDataLen, pSignature, pulSignatureLen, 1);
}

CK_RV C_MessageSignFinal(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_MESSAGESIGNFINAL, hSession);
}

CK_RV C_MessageVerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			  CK_OBJECT_HANDLE hKey)
{
	return op_mu(WIRE_MESSAGEVERIFYINIT, hSession, pMechanism, hKey);
}

CK_RV C_VerifyMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
		      CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
		      CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return msg_verify(WIRE_VERIFYMESSAGE, hSession, pParameter, ulParameterLen, pData,
			  ulDataLen, pSignature, ulSignatureLen);
}

CK_RV C_VerifyMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			   CK_ULONG ulParameterLen)
{
	return msg_x(WIRE_VERIFYMESSAGEBEGIN, hSession, pParameter, ulParameterLen);
}

CK_RV C_VerifyMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
			  CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
			  CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return msg_verify(WIRE_VERIFYMESSAGENEXT, hSession, pParameter, ulParameterLen, pData,
			  ulDataLen, pSignature, ulSignatureLen);
}

CK_RV C_MessageVerifyFinal(CK_SESSION_HANDLE hSession)
{
	return op_u(WIRE_MESSAGEVERIFYFINAL, hSession);
}

/* ---- PKCS#11 v3.2 ---- */

/* C_EncapsulateKey: u m u t o -> o p. The ciphertext follows the usual
 * length convention; the key handle is written only with CKR_OK, and no
 * key is made for a length query or a short buffer. */
CK_RV C_EncapsulateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		       CK_OBJECT_HANDLE hPublicKey, CK_ATTRIBUTE_PTR pTemplate,
		       CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
		       CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey)
{
	call c;
	CK_ULONG cap;
	frame_out o;
	uint64_t key;
	INIT_CHECK();
	if (!pMechanism || (!pTemplate && ulAttributeCount) || !pulCiphertextLen || !phKey)
		return CKR_ARGUMENTS_BAD;
	cap = *pulCiphertextLen;
	call_begin(&c, WIRE_ENCAPSULATEKEY);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_u(&c.req, hPublicKey);
	fr_item_t(&c.req, pTemplate, ulAttributeCount);
	fr_item_o(&c.req, pCiphertext, cap);
	if (call_send(&c)) {
		rp_item_o(&c.rep, &o, cap, pCiphertext != NULL);
		key = rp_u64(&c.rep);
		if (call_check(&c)) {
			out_o(&o, c.result, pCiphertext, pulCiphertextLen);
			if (c.result == CKR_OK && pCiphertext)
				*phKey = (CK_OBJECT_HANDLE)key;
		}
	}
	return call_end(&c);
}

/* C_DecapsulateKey: u m u t b -> p. */
CK_RV C_DecapsulateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		       CK_OBJECT_HANDLE hPrivateKey, CK_ATTRIBUTE_PTR pTemplate,
		       CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
		       CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey)
{
	call c;
	INIT_CHECK();
	if (!pMechanism || (!pTemplate && ulAttributeCount) || (!pCiphertext && ulCiphertextLen) ||
	    !phKey)
		return CKR_ARGUMENTS_BAD;
	call_begin(&c, WIRE_DECAPSULATEKEY);
	fr_item_u(&c.req, hSession);
	fr_item_m(&c.req, pMechanism);
	fr_item_u(&c.req, hPrivateKey);
	fr_item_t(&c.req, pTemplate, ulAttributeCount);
	fr_item_b(&c.req, pCiphertext, ulCiphertextLen);
	return finish_p(&c, phKey);
}

/* The other functions of the v3.2 list: not supported. */
static CK_RV not_supported(void)
{
	INIT_CHECK();
	return CKR_FUNCTION_NOT_SUPPORTED;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

CK_RV C_VerifySignatureInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			    CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return not_supported();
}

CK_RV C_VerifySignature(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen)
{
	return not_supported();
}

CK_RV C_VerifySignatureUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return not_supported();
}

CK_RV C_VerifySignatureFinal(CK_SESSION_HANDLE hSession)
{
	return not_supported();
}

CK_RV C_GetSessionValidationFlags(CK_SESSION_HANDLE hSession,
				  CK_SESSION_VALIDATION_FLAGS_TYPE type, CK_FLAGS_PTR pFlags)
{
	return not_supported();
}

CK_RV C_AsyncComplete(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
		      CK_ASYNC_DATA_PTR pResult)
{
	return not_supported();
}

CK_RV C_AsyncGetID(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG_PTR pulID)
{
	return not_supported();
}

CK_RV C_AsyncJoin(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG ulID,
		  CK_BYTE_PTR pData, CK_ULONG ulData)
{
	return not_supported();
}

CK_RV C_WrapKeyAuthenticated(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			     CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
			     CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
			     CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	return not_supported();
}

CK_RV C_UnwrapKeyAuthenticated(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			       CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
			       CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
			       CK_ULONG ulAttributeCount, CK_BYTE_PTR pAssociatedData,
			       CK_ULONG ulAssociatedDataLen, CK_OBJECT_HANDLE_PTR phKey)
{
	return not_supported();
}

#pragma GCC diagnostic pop

/* ---- function lists and interfaces ---- */

#define V240_FUNCTIONS                                       \
	.C_Initialize = C_Initialize,                        \
	.C_Finalize = C_Finalize,                            \
	.C_GetInfo = C_GetInfo,                              \
	.C_GetFunctionList = C_GetFunctionList,              \
	.C_GetSlotList = C_GetSlotList,                      \
	.C_GetSlotInfo = C_GetSlotInfo,                      \
	.C_GetTokenInfo = C_GetTokenInfo,                    \
	.C_GetMechanismList = C_GetMechanismList,            \
	.C_GetMechanismInfo = C_GetMechanismInfo,            \
	.C_InitToken = C_InitToken,                          \
	.C_InitPIN = C_InitPIN,                              \
	.C_SetPIN = C_SetPIN,                                \
	.C_OpenSession = C_OpenSession,                      \
	.C_CloseSession = C_CloseSession,                    \
	.C_CloseAllSessions = C_CloseAllSessions,            \
	.C_GetSessionInfo = C_GetSessionInfo,                \
	.C_GetOperationState = C_GetOperationState,          \
	.C_SetOperationState = C_SetOperationState,          \
	.C_Login = C_Login,                                  \
	.C_Logout = C_Logout,                                \
	.C_CreateObject = C_CreateObject,                    \
	.C_CopyObject = C_CopyObject,                        \
	.C_DestroyObject = C_DestroyObject,                  \
	.C_GetObjectSize = C_GetObjectSize,                  \
	.C_GetAttributeValue = C_GetAttributeValue,          \
	.C_SetAttributeValue = C_SetAttributeValue,          \
	.C_FindObjectsInit = C_FindObjectsInit,              \
	.C_FindObjects = C_FindObjects,                      \
	.C_FindObjectsFinal = C_FindObjectsFinal,            \
	.C_EncryptInit = C_EncryptInit,                      \
	.C_Encrypt = C_Encrypt,                              \
	.C_EncryptUpdate = C_EncryptUpdate,                  \
	.C_EncryptFinal = C_EncryptFinal,                    \
	.C_DecryptInit = C_DecryptInit,                      \
	.C_Decrypt = C_Decrypt,                              \
	.C_DecryptUpdate = C_DecryptUpdate,                  \
	.C_DecryptFinal = C_DecryptFinal,                    \
	.C_DigestInit = C_DigestInit,                        \
	.C_Digest = C_Digest,                                \
	.C_DigestUpdate = C_DigestUpdate,                    \
	.C_DigestKey = C_DigestKey,                          \
	.C_DigestFinal = C_DigestFinal,                      \
	.C_SignInit = C_SignInit,                            \
	.C_Sign = C_Sign,                                    \
	.C_SignUpdate = C_SignUpdate,                        \
	.C_SignFinal = C_SignFinal,                          \
	.C_SignRecoverInit = C_SignRecoverInit,              \
	.C_SignRecover = C_SignRecover,                      \
	.C_VerifyInit = C_VerifyInit,                        \
	.C_Verify = C_Verify,                                \
	.C_VerifyUpdate = C_VerifyUpdate,                    \
	.C_VerifyFinal = C_VerifyFinal,                      \
	.C_VerifyRecoverInit = C_VerifyRecoverInit,          \
	.C_VerifyRecover = C_VerifyRecover,                  \
	.C_DigestEncryptUpdate = C_DigestEncryptUpdate,      \
	.C_DecryptDigestUpdate = C_DecryptDigestUpdate,      \
	.C_SignEncryptUpdate = C_SignEncryptUpdate,          \
	.C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,      \
	.C_GenerateKey = C_GenerateKey,                      \
	.C_GenerateKeyPair = C_GenerateKeyPair,              \
	.C_WrapKey = C_WrapKey,                              \
	.C_UnwrapKey = C_UnwrapKey,                          \
	.C_DeriveKey = C_DeriveKey,                          \
	.C_SeedRandom = C_SeedRandom,                        \
	.C_GenerateRandom = C_GenerateRandom,                \
	.C_GetFunctionStatus = C_GetFunctionStatus,          \
	.C_CancelFunction = C_CancelFunction,                \
	.C_WaitForSlotEvent = C_WaitForSlotEvent

static CK_FUNCTION_LIST function_list_2_40 = {
	.version = { 2, 40 },
	V240_FUNCTIONS,
};

/* The functions PKCS#11 v3.0 added to the v2.40 list. */
#define V30_FUNCTIONS                                        \
	.C_GetInterfaceList = C_GetInterfaceList,            \
	.C_GetInterface = C_GetInterface,                    \
	.C_LoginUser = C_LoginUser,                          \
	.C_SessionCancel = C_SessionCancel,                  \
	.C_MessageEncryptInit = C_MessageEncryptInit,        \
	.C_EncryptMessage = C_EncryptMessage,                \
	.C_EncryptMessageBegin = C_EncryptMessageBegin,      \
	.C_EncryptMessageNext = C_EncryptMessageNext,        \
	.C_MessageEncryptFinal = C_MessageEncryptFinal,      \
	.C_MessageDecryptInit = C_MessageDecryptInit,        \
	.C_DecryptMessage = C_DecryptMessage,                \
	.C_DecryptMessageBegin = C_DecryptMessageBegin,      \
	.C_DecryptMessageNext = C_DecryptMessageNext,        \
	.C_MessageDecryptFinal = C_MessageDecryptFinal,      \
	.C_MessageSignInit = C_MessageSignInit,              \
	.C_SignMessage = C_SignMessage,                      \
	.C_SignMessageBegin = C_SignMessageBegin,            \
	.C_SignMessageNext = C_SignMessageNext,              \
	.C_MessageSignFinal = C_MessageSignFinal,            \
	.C_MessageVerifyInit = C_MessageVerifyInit,          \
	.C_VerifyMessage = C_VerifyMessage,                  \
	.C_VerifyMessageBegin = C_VerifyMessageBegin,        \
	.C_VerifyMessageNext = C_VerifyMessageNext,          \
	.C_MessageVerifyFinal = C_MessageVerifyFinal

static CK_FUNCTION_LIST_3_0 function_list_3_0 = {
	.version = { 3, 0 },
	V240_FUNCTIONS,
	V30_FUNCTIONS,
};

/* The v3.2 list: the v3.0 functions (the same as function_list_3_0),
 * then the v3.2 ones. */
static CK_FUNCTION_LIST_3_2 function_list_3_2 = {
	.v30 = {
		.version = { 3, 2 },
		V240_FUNCTIONS,
		V30_FUNCTIONS,
	},
	.C_EncapsulateKey = C_EncapsulateKey,
	.C_DecapsulateKey = C_DecapsulateKey,
	.C_VerifySignatureInit = C_VerifySignatureInit,
	.C_VerifySignature = C_VerifySignature,
	.C_VerifySignatureUpdate = C_VerifySignatureUpdate,
	.C_VerifySignatureFinal = C_VerifySignatureFinal,
	.C_GetSessionValidationFlags = C_GetSessionValidationFlags,
	.C_AsyncComplete = C_AsyncComplete,
	.C_AsyncGetID = C_AsyncGetID,
	.C_AsyncJoin = C_AsyncJoin,
	.C_WrapKeyAuthenticated = C_WrapKeyAuthenticated,
	.C_UnwrapKeyAuthenticated = C_UnwrapKeyAuthenticated,
};

static CK_CHAR interface_name[] = "PKCS 11";

/* The interfaces, the default first. Not CKF_INTERFACE_FORK_SAFE: a forked
 * child must call C_Initialize again. The default stays the v3.0 list, as
 * before v3.2; a caller that wants C_EncapsulateKey and C_DecapsulateKey
 * asks C_GetInterface for version 3.2 (or takes it from the list). */
static CK_INTERFACE interfaces[] = {
	{ interface_name, &function_list_3_0, 0 },
	{ interface_name, &function_list_2_40, 0 },
	{ interface_name, &function_list_3_2, 0 },
};

#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (!ppFunctionList)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &function_list_2_40;
	return CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	if (!pInterfacesList) {
		*pulCount = N_INTERFACES;
		return CKR_OK;
	}
	if (*pulCount < N_INTERFACES) {
		*pulCount = N_INTERFACES;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(pInterfacesList, interfaces, sizeof interfaces);
	*pulCount = N_INTERFACES;
	return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
		     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	size_t i;
	const CK_VERSION *v;

	if (!ppInterface)
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < N_INTERFACES; i++) {
		if (pInterfaceName &&
		    strcmp((const char *)pInterfaceName, (const char *)interfaces[i].pInterfaceName))
			continue;
		/* Each function list starts with its CK_VERSION. */
		v = (const CK_VERSION *)interfaces[i].pFunctionList;
		if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor))
			continue;
		if ((interfaces[i].flags & flags) != flags)
			continue;
		*ppInterface = &interfaces[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}
