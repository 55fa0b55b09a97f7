package chapters

import (
	"github.com/openhsm/openhsm/ck"
)

// row is one case of one function: the driver's words for the call (see
// testdata/rows.c) and the CK_RV the specification asks for.
type row struct {
	chapter string // set by ordered()
	fn      string
	what    string
	// when is the phase the row runs in: "pre" (before C_Initialize),
	// "init" (before C_Initialize, and the call may initialize the
	// library), "pub" (initialized, no one logged in), "" (logged in as the
	// crypto user, with session keys aes, hmac, ecpriv/ecpub and a
	// session data object "data") or "out" (after C_Logout; the handles
	// of those keys are kept).
	when string
	args string
	want uint64
	// either lists other answers the specification allows as well: where
	// several errors apply, 5.1.7 lets a library return any of them (past
	// its ranking of session handle errors first).
	either []uint64
	// deviation: want is today's answer, not the specification's; the
	// text says what the specification asks and why the library differs.
	deviation string

	lenIs      *int64 // check=len/attr/count: the exact length written back
	lenAtLeast int64  // check=len/alive: at least this length written back
	alive      int64  // check=alive: the second call succeeds with this many bytes
}

func (r row) phase() string {
	if r.when == "" {
		return "user"
	}
	return r.when
}

// fn is a function of a chapter, for the rows every function has.
type fn struct {
	name string
	// session: the function takes a session handle first; args are the
	// otherwise valid words of its made-up-session row.
	session bool
	args    string
	// slot: the function takes a slot ID (made-up slot row).
	slot bool
	// exempt: callable before C_Initialize (C_GetFunctionList, ...).
	exempt bool
	// preArgs replace args before C_Initialize.
	preArgs string
}

type chapter struct {
	name string
	fns  []fn
	rows []row
}

func n(v int64) *int64 { return &v }

// chapters are PKCS#11 v3.0 section 5's function chapters, in order.
var chapters = []chapter{
	{
		name: "5.4 general-purpose",
		fns: []fn{
			{name: "C_Initialize", exempt: true}, {name: "C_Finalize", preArgs: "ptr=NULL"},
			{name: "C_GetInfo"}, {name: "C_GetFunctionList", exempt: true},
			{name: "C_GetInterfaceList", exempt: true}, {name: "C_GetInterface", exempt: true},
		},
		rows: []row{
			{fn: "C_Initialize", what: "pReserved set", when: "pre", args: "ptr=initreserved", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Initialize", what: "two of the four mutex functions", when: "pre", args: "ptr=inithalfmutex", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Initialize", what: "a second time", when: "pub", args: "ptr=NULL", want: ck.CKR_CRYPTOKI_ALREADY_INITIALIZED},
			{
				fn: "C_Initialize", what: "the application's mutex functions without CKF_OS_LOCKING_OK", when: "init", args: "ptr=initallmutex",
				want: ck.CKR_OK,
				deviation: "CK_C_INITIALIZE_ARGS: mutex functions without CKF_OS_LOCKING_OK must be used, or C_Initialize " +
					"answers CKR_CANT_LOCK; this library locks with the operating system's primitives and accepts them",
			},
			{fn: "C_Finalize", what: "pReserved not NULL", when: "pub", args: "ptr=one", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetInfo", what: "pInfo NULL", when: "pub", args: "ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetFunctionList", what: "ppFunctionList NULL", when: "pre", args: "ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetFunctionList", what: "before C_Initialize", when: "pre", args: "ptr=list", want: ck.CKR_OK},
			{fn: "C_GetInterfaceList", what: "pulCount NULL", when: "pre", args: "ptr=NULL outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetInterfaceList", what: "length query before C_Initialize", when: "pre", args: "ptr=NULL check=count", want: ck.CKR_OK, lenIs: n(3)},
			{fn: "C_GetInterfaceList", what: "short buffer", when: "pre", args: "outcap=1 check=count", want: ck.CKR_BUFFER_TOO_SMALL, lenIs: n(3)},
			{fn: "C_GetInterface", what: "ppInterface NULL", when: "pre", args: "in=NULL ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetInterface", what: "default interface before C_Initialize", when: "pre", args: "in=NULL ptr=iface", want: ck.CKR_OK},
			{fn: "C_GetInterface", what: "a version the library lacks", when: "pre", args: "in=NULL param=badversion ptr=iface", want: ck.CKR_ARGUMENTS_BAD},
		},
	},
	{
		name: "5.5 slot and token management",
		fns: []fn{
			{name: "C_GetSlotList"}, {name: "C_GetSlotInfo", slot: true}, {name: "C_GetTokenInfo", slot: true},
			{name: "C_WaitForSlotEvent", preArgs: "u=1"},
			{name: "C_GetMechanismList", slot: true, args: "outcap=1024"}, {name: "C_GetMechanismInfo", slot: true, args: "u=0x250"},
			{name: "C_InitToken", slot: true, args: "in=plain in2=label32"},
			{name: "C_InitPIN", session: true, args: "in=plain"},
			{name: "C_SetPIN", session: true, args: "in=plain in2=plain"},
		},
		rows: []row{
			{fn: "C_GetSlotList", what: "pulCount NULL", when: "pub", args: "outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetSlotList", what: "length query", when: "pub", args: "ph=NULL check=count", want: ck.CKR_OK, lenAtLeast: 1},
			{fn: "C_GetSlotList", what: "short buffer", when: "pub", args: "outcap=0 check=count", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 1},
			{fn: "C_GetSlotInfo", what: "pInfo NULL", when: "pub", args: "ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetTokenInfo", what: "pInfo NULL", when: "pub", args: "ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_WaitForSlotEvent", what: "pSlot NULL", when: "pub", args: "u=1 ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_WaitForSlotEvent", what: "CKF_DONT_BLOCK and no event", when: "pub", args: "u=1", want: ck.CKR_NO_EVENT},
			{fn: "C_GetMechanismList", what: "pulCount NULL", when: "pub", args: "outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetMechanismList", what: "length query", when: "pub", args: "ph=NULL check=count", want: ck.CKR_OK, lenIs: n(mechCount())},
			{fn: "C_GetMechanismList", what: "short buffer", when: "pub", args: "outcap=1 check=count", want: ck.CKR_BUFFER_TOO_SMALL, lenIs: n(mechCount())},
			{fn: "C_GetMechanismInfo", what: "pInfo NULL", when: "pub", args: "u=0x250 ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetMechanismInfo", what: "unknown mechanism", when: "pub", args: "u=0x80001234", want: ck.CKR_MECHANISM_INVALID},
			{fn: "C_InitToken", what: "pLabel NULL", when: "pub", args: "in=plain in2=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_InitToken", what: "pPin NULL with a length", when: "pub", args: "in=NULL inlen=3 in2=label32", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_InitPIN", what: "pPin NULL with a length", args: "in=NULL inlen=3", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_InitPIN", what: "the normal user is logged in, not the SO", args: "in=plain", want: ck.CKR_USER_NOT_LOGGED_IN},
			{fn: "C_SetPIN", what: "pOldPin NULL with a length", args: "in=NULL inlen=3 in2=plain", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SetPIN", what: "pNewPin NULL with a length", args: "in=plain in2=NULL in2len=3", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SetPIN", what: "read-only session", args: "sh=ro in=plain in2=plain", want: ck.CKR_SESSION_READ_ONLY},
		},
	},
	{
		name: "5.6 session management",
		fns: []fn{
			{name: "C_OpenSession", slot: true, args: "u=4"}, {name: "C_CloseSession", session: true},
			{name: "C_CloseAllSessions", slot: true}, {name: "C_GetSessionInfo", session: true},
			{name: "C_SessionCancel", session: true},
			{name: "C_GetOperationState", session: true},
			{name: "C_SetOperationState", session: true, args: "in=plain"},
			{name: "C_Login", session: true, args: "u=1 in=plain"},
			{name: "C_LoginUser", session: true, args: "u=1 in=plain in2=plain"},
			{name: "C_Logout", session: true},
		},
		rows: []row{
			{fn: "C_OpenSession", what: "phSession NULL", when: "pub", args: "u=4 ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_OpenSession", what: "without CKF_SERIAL_SESSION", when: "pub", args: "u=2", want: ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED},
			{fn: "C_CloseSession", what: "a closed session", args: "sh=closed", want: ck.CKR_SESSION_HANDLE_INVALID},
			{fn: "C_CloseSession", what: "session handle 0", args: "sh=0", want: ck.CKR_SESSION_HANDLE_INVALID},
			{fn: "C_GetSessionInfo", what: "pInfo NULL", args: "ptr=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetSessionInfo", what: "a closed session", args: "sh=closed", want: ck.CKR_SESSION_HANDLE_INVALID},
			{fn: "C_GetOperationState", what: "pulOperationStateLen NULL", args: "start=digest outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetOperationState", what: "short buffer during a digest", args: "start=digest outcap=1 check=len", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 2},
			{fn: "C_SetOperationState", what: "pOperationState NULL with a length", args: "in=NULL inlen=3", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SetOperationState", what: "a state the library never saved", args: "in=plain", want: ck.CKR_SAVED_STATE_INVALID},
			{fn: "C_Login", what: "pPin NULL with a length", when: "pub", args: "u=1 in=NULL inlen=3", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Login", what: "unknown user type", when: "pub", args: "u=7 in=plain", want: ck.CKR_USER_TYPE_INVALID},
			{fn: "C_Login", what: "already logged in", args: "u=1 in=pin", want: ck.CKR_USER_ALREADY_LOGGED_IN},
			{fn: "C_LoginUser", what: "pPin NULL with a length", when: "pub", args: "u=1 in=NULL inlen=3 in2=plain", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_LoginUser", what: "pUsername NULL with a length", when: "pub", args: "u=1 in=plain in2=NULL in2len=3", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_LoginUser", what: "already logged in", args: "u=1 in=pin in2=plain", want: ck.CKR_USER_ALREADY_LOGGED_IN},
			{fn: "C_Logout", what: "no one logged in", when: "pub", want: ck.CKR_USER_NOT_LOGGED_IN},
			// C_Logout (5.6): the handles of private objects become
			// invalid and private session objects are destroyed.
			{fn: "C_GetAttributeValue", what: "a private session object after C_Logout", when: "out", args: "obj=aes tmpl=label", want: ck.CKR_OBJECT_HANDLE_INVALID},
			{fn: "C_EncryptInit", what: "a private session key after C_Logout", when: "out", args: "mech=cbcpad obj=aes", want: ck.CKR_KEY_HANDLE_INVALID, either: []uint64{ck.CKR_USER_NOT_LOGGED_IN}},
			{fn: "C_GenerateKey", what: "a private key after C_Logout", when: "out", args: "mech=aesgen tmpl=aesprivate", want: ck.CKR_USER_NOT_LOGGED_IN},
			{fn: "C_Logout", what: "after C_Logout", when: "out", want: ck.CKR_USER_NOT_LOGGED_IN},
		},
	},
	{
		name: "5.7 object management",
		fns: []fn{
			{name: "C_CreateObject", session: true, args: "tmpl=data"},
			{name: "C_CopyObject", session: true, args: "obj=data"},
			{name: "C_DestroyObject", session: true, args: "obj=data"},
			{name: "C_GetObjectSize", session: true, args: "obj=data"},
			{name: "C_GetAttributeValue", session: true, args: "obj=data tmpl=label"},
			{name: "C_SetAttributeValue", session: true, args: "obj=data tmpl=label"},
			{name: "C_FindObjectsInit", session: true},
			{name: "C_FindObjects", session: true, args: "u=4"},
			{name: "C_FindObjectsFinal", session: true},
		},
		rows: []row{
			{fn: "C_CreateObject", what: "pTemplate NULL with a count", args: "tmpl=NULL count=2", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_CreateObject", what: "phObject NULL", args: "tmpl=data ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_CreateObject", what: "token object in a read-only session", args: "sh=ro tmpl=datatoken", want: ck.CKR_SESSION_READ_ONLY},
			{fn: "C_CreateObject", what: "private object, not logged in", when: "pub", args: "tmpl=dataprivate", want: ck.CKR_USER_NOT_LOGGED_IN},
			{fn: "C_CopyObject", what: "pTemplate NULL with a count", args: "obj=data tmpl=NULL count=1", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_CopyObject", what: "phNewObject NULL", args: "obj=data ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_CopyObject", what: "made-up object", args: "obj=bad", want: ck.CKR_OBJECT_HANDLE_INVALID},
			{fn: "C_CopyObject", what: "a token copy in a read-only session", args: "sh=ro obj=data tmpl=datatoken", want: ck.CKR_SESSION_READ_ONLY},
			{fn: "C_DestroyObject", what: "made-up object", args: "obj=bad", want: ck.CKR_OBJECT_HANDLE_INVALID},
			{fn: "C_DestroyObject", what: "object handle 0", args: "obj=0", want: ck.CKR_OBJECT_HANDLE_INVALID},
			{fn: "C_GetObjectSize", what: "pulSize NULL", args: "obj=data outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetObjectSize", what: "made-up object", args: "obj=bad", want: ck.CKR_OBJECT_HANDLE_INVALID},
			{fn: "C_GetAttributeValue", what: "pTemplate NULL with a count", args: "obj=data tmpl=NULL count=1", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GetAttributeValue", what: "made-up object (the template is left alone)", args: "obj=bad tmpl=label check=attr", want: ck.CKR_OBJECT_HANDLE_INVALID, lenIs: n(12)},
			{fn: "C_GetAttributeValue", what: "made-up session (the template is left alone)", args: "sh=bad obj=data tmpl=label check=attr", want: ck.CKR_SESSION_HANDLE_INVALID, lenIs: n(12)},
			{fn: "C_GetAttributeValue", what: "short buffer: ulValueLen is CK_UNAVAILABLE_INFORMATION", args: "obj=data tmpl=labelshort check=attr", want: ck.CKR_BUFFER_TOO_SMALL, lenIs: n(-1)},
			{fn: "C_SetAttributeValue", what: "pTemplate NULL with a count", args: "obj=data tmpl=NULL count=1", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SetAttributeValue", what: "made-up object", args: "obj=bad tmpl=label", want: ck.CKR_OBJECT_HANDLE_INVALID},
			{fn: "C_FindObjectsInit", what: "pTemplate NULL with a count", args: "tmpl=NULL count=1", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_FindObjectsInit", what: "a search is active", args: "start=find", want: ck.CKR_OPERATION_ACTIVE},
			{fn: "C_FindObjects", what: "phObject NULL", args: "start=find u=4 ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_FindObjects", what: "pulObjectCount NULL", args: "start=find u=4 outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_FindObjects", what: "no search", args: "u=4", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_FindObjectsFinal", what: "no search", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.8 encryption",
		fns: []fn{
			{name: "C_EncryptInit", session: true, args: "mech=cbcpad obj=aes"},
			{name: "C_Encrypt", session: true, args: "in=plain"},
			{name: "C_EncryptUpdate", session: true, args: "in=plain"},
			{name: "C_EncryptFinal", session: true},
		},
		rows: []row{
			{fn: "C_EncryptInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL obj=aes", want: ck.CKR_OK},
			{fn: "C_EncryptInit", what: "made-up key", args: "mech=cbcpad obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_EncryptInit", what: "key handle 0", args: "mech=cbcpad obj=0", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_EncryptInit", what: "not an encryption mechanism", args: "mech=sha256 obj=aes", want: ck.CKR_MECHANISM_INVALID},
			{fn: "C_EncryptInit", what: "an encryption is active", args: "start=encrypt mech=cbcpad obj=aes", want: ck.CKR_OPERATION_ACTIVE},
			{fn: "C_Encrypt", what: "pulEncryptedDataLen NULL", args: "start=encrypt in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Encrypt", what: "pData NULL with a length", args: "start=encrypt in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Encrypt", what: "no encryption", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_Encrypt", what: "short buffer", args: "start=encrypt in=plain outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 32, alive: 32},
			{fn: "C_EncryptUpdate", what: "pulEncryptedPartLen NULL", args: "start=encrypt in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_EncryptUpdate", what: "pPart NULL with a length", args: "start=encrypt in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_EncryptUpdate", what: "no encryption", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_EncryptUpdate", what: "short buffer", args: "start=encrypt in=ct outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 16, alive: 32},
			{fn: "C_EncryptFinal", what: "pulLastEncryptedPartLen NULL", args: "start=encrypt outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_EncryptFinal", what: "no encryption", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_EncryptFinal", what: "short buffer (the padding block)", args: "start=encrypt outcap=0 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 16, alive: 16},
		},
	},
	{
		name: "5.10 decryption",
		fns: []fn{
			{name: "C_DecryptInit", session: true, args: "mech=cbcpad obj=aes"},
			{name: "C_Decrypt", session: true, args: "in=ct"},
			{name: "C_DecryptUpdate", session: true, args: "in=ct"},
			{name: "C_DecryptFinal", session: true},
		},
		rows: []row{
			{fn: "C_DecryptInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL obj=aes", want: ck.CKR_OK},
			{fn: "C_DecryptInit", what: "made-up key", args: "mech=cbcpad obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_DecryptInit", what: "a decryption is active", args: "start=decrypt mech=cbcpad obj=aes", want: ck.CKR_OPERATION_ACTIVE},
			{fn: "C_Decrypt", what: "pulDataLen NULL", args: "start=decrypt in=ct outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Decrypt", what: "pEncryptedData NULL with a length", args: "start=decrypt in=NULL inlen=32", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Decrypt", what: "no decryption", args: "in=ct", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_Decrypt", what: "short buffer", args: "start=decrypt in=ct outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 16, alive: 16},
			{fn: "C_DecryptUpdate", what: "pulPartLen NULL", args: "start=decrypt in=ct outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptUpdate", what: "pEncryptedPart NULL with a length", args: "start=decrypt in=NULL inlen=32", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptUpdate", what: "no decryption", args: "in=ct", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DecryptUpdate", what: "short buffer (the last block is held back for the padding)", args: "start=decrypt in=ct outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 16, alive: 16},
			{fn: "C_DecryptFinal", what: "pulLastPartLen NULL", args: "start=decrypt outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptFinal", what: "no decryption", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.9 and 5.11 message-based encryption and decryption",
		fns: []fn{
			{name: "C_MessageEncryptInit", session: true, args: "mech=gcm obj=aes"},
			{name: "C_EncryptMessage", session: true, args: "param=gcm in=plain"},
			{name: "C_EncryptMessageBegin", session: true, args: "param=gcm"},
			{name: "C_EncryptMessageNext", session: true, args: "param=gcm in=plain"},
			{name: "C_MessageEncryptFinal", session: true},
			{name: "C_MessageDecryptInit", session: true, args: "mech=gcm obj=aes"},
			{name: "C_DecryptMessage", session: true, args: "param=gcm in=ct"},
			{name: "C_DecryptMessageBegin", session: true, args: "param=gcm"},
			{name: "C_DecryptMessageNext", session: true, args: "param=gcm in=ct"},
			{name: "C_MessageDecryptFinal", session: true},
		},
		rows: []row{
			{fn: "C_MessageEncryptInit", what: "pMechanism NULL", args: "mech=NULL obj=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_MessageEncryptInit", what: "made-up key", args: "mech=gcm obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_EncryptMessage", what: "pulCiphertextLen NULL", args: "param=gcm in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_EncryptMessage", what: "no message encryption", args: "param=gcm in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_EncryptMessageBegin", what: "no message encryption", args: "param=gcm", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_EncryptMessageNext", what: "pulCiphertextPartLen NULL", args: "param=gcm in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_EncryptMessageNext", what: "no message encryption", args: "param=gcm in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_MessageEncryptFinal", what: "no message encryption", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_MessageDecryptInit", what: "pMechanism NULL", args: "mech=NULL obj=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_MessageDecryptInit", what: "made-up key", args: "mech=gcm obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_DecryptMessage", what: "pulPlaintextLen NULL", args: "param=gcm in=ct outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptMessage", what: "no message decryption", args: "param=gcm in=ct", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DecryptMessageBegin", what: "no message decryption", args: "param=gcm", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DecryptMessageNext", what: "pulPlaintextPartLen NULL", args: "param=gcm in=ct outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptMessageNext", what: "no message decryption", args: "param=gcm in=ct", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_MessageDecryptFinal", what: "no message decryption", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.12 message digesting",
		fns: []fn{
			{name: "C_DigestInit", session: true, args: "mech=sha256"},
			{name: "C_Digest", session: true, args: "in=plain"},
			{name: "C_DigestUpdate", session: true, args: "in=plain"},
			{name: "C_DigestKey", session: true, args: "obj=aes"},
			{name: "C_DigestFinal", session: true},
		},
		rows: []row{
			{fn: "C_DigestInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL", want: ck.CKR_OK},
			{fn: "C_DigestInit", what: "not a digest mechanism", args: "mech=cbcpad", want: ck.CKR_MECHANISM_INVALID},
			{fn: "C_DigestInit", what: "a digest is active", args: "start=digest mech=sha256", want: ck.CKR_OPERATION_ACTIVE},
			{fn: "C_Digest", what: "pulDigestLen NULL", args: "start=digest in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Digest", what: "pData NULL with a length", args: "start=digest in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Digest", what: "no digest", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_Digest", what: "short buffer", args: "start=digest in=plain outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 32, alive: 32},
			{fn: "C_DigestUpdate", what: "pPart NULL with a length", args: "start=digest in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DigestUpdate", what: "no digest", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DigestKey", what: "no digest", args: "obj=aes", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DigestKey", what: "made-up key", args: "start=digest obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_DigestKey", what: "an extractable AES key", args: "start=digest obj=aes", want: ck.CKR_OK},
			{fn: "C_DigestFinal", what: "pulDigestLen NULL", args: "start=digest outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DigestFinal", what: "no digest", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DigestFinal", what: "short buffer", args: "start=digest outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 32, alive: 32},
		},
	},
	{
		name: "5.13 signing and MACing",
		fns: []fn{
			{name: "C_SignInit", session: true, args: "mech=hmac obj=hmac"},
			{name: "C_Sign", session: true, args: "in=plain"},
			{name: "C_SignUpdate", session: true, args: "in=plain"},
			{name: "C_SignFinal", session: true},
			{name: "C_SignRecoverInit", session: true, args: "mech=rsa obj=ecpriv"},
			{name: "C_SignRecover", session: true, args: "in=plain"},
		},
		rows: []row{
			{fn: "C_SignInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL obj=hmac", want: ck.CKR_OK},
			{fn: "C_SignInit", what: "made-up key", args: "mech=hmac obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_SignInit", what: "not a signing mechanism", args: "mech=cbcpad obj=hmac", want: ck.CKR_MECHANISM_INVALID},
			{fn: "C_SignInit", what: "a signature is active", args: "start=sign mech=hmac obj=hmac", want: ck.CKR_OPERATION_ACTIVE},
			{fn: "C_Sign", what: "pulSignatureLen NULL", args: "start=sign in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Sign", what: "pData NULL with a length", args: "start=sign in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Sign", what: "no signature", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{
				fn: "C_Sign", what: "made-up session and pulSignatureLen NULL", args: "start=sign sh=bad in=plain outlen=NULL",
				want: ck.CKR_ARGUMENTS_BAD,
				deviation: "PKCS#11 v3.0 5.1.7 ranks session handle errors (5.1.2) above the other errors (5.1.6), " +
					"so CKR_SESSION_HANDLE_INVALID; the C layer checks pointers before any session is looked up",
			},
			{fn: "C_Sign", what: "short buffer (HMAC)", args: "start=sign in=plain outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 32, alive: 32},
			{fn: "C_Sign", what: "short buffer (ECDSA P-256)", args: "start=signec in=plain outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 64, alive: 64},
			{fn: "C_SignUpdate", what: "pPart NULL with a length", args: "start=sign in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SignUpdate", what: "no signature", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_SignFinal", what: "pulSignatureLen NULL", args: "start=sign outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SignFinal", what: "no signature", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_SignFinal", what: "short buffer", args: "start=sign outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 32, alive: 32},
			{fn: "C_SignRecoverInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL obj=ecpriv", want: ck.CKR_OK},
			{fn: "C_SignRecoverInit", what: "made-up key", args: "mech=rsa obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_SignRecover", what: "pulSignatureLen NULL", args: "in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SignRecover", what: "no sign-recover operation", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.14 and 5.16 message-based signing and verifying",
		fns: []fn{
			{name: "C_MessageSignInit", session: true, args: "mech=ecdsa obj=ecpriv"},
			{name: "C_SignMessage", session: true, args: "in=plain"},
			{name: "C_SignMessageBegin", session: true},
			{name: "C_SignMessageNext", session: true, args: "in=plain"},
			{name: "C_MessageSignFinal", session: true},
			{name: "C_MessageVerifyInit", session: true, args: "mech=ecdsa obj=ecpub"},
			{name: "C_VerifyMessage", session: true, args: "in=plain in2=mac"},
			{name: "C_VerifyMessageBegin", session: true},
			{name: "C_VerifyMessageNext", session: true, args: "in=plain"},
			{name: "C_MessageVerifyFinal", session: true},
		},
		rows: []row{
			{fn: "C_MessageSignInit", what: "pMechanism NULL", args: "mech=NULL obj=ecpriv", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_MessageSignInit", what: "made-up key", args: "mech=ecdsa obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_SignMessage", what: "pulSignatureLen NULL", args: "in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SignMessage", what: "no message signing", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_SignMessageBegin", what: "no message signing", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_SignMessageNext", what: "no message signing", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_MessageSignFinal", what: "no message signing", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_MessageVerifyInit", what: "pMechanism NULL", args: "mech=NULL obj=ecpub", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_MessageVerifyInit", what: "made-up key", args: "mech=ecdsa obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_VerifyMessage", what: "pSignature NULL with a length", args: "in=plain in2=NULL in2len=64", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_VerifyMessage", what: "no message verification", args: "in=plain in2=mac", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_VerifyMessageBegin", what: "no message verification", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_VerifyMessageNext", what: "no message verification", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_MessageVerifyFinal", what: "no message verification", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.15 verifying signatures and MACs",
		fns: []fn{
			{name: "C_VerifyInit", session: true, args: "mech=hmac obj=hmac"},
			{name: "C_Verify", session: true, args: "in=plain in2=mac"},
			{name: "C_VerifyUpdate", session: true, args: "in=plain"},
			{name: "C_VerifyFinal", session: true, args: "in2=mac"},
			{name: "C_VerifyRecoverInit", session: true, args: "mech=rsa obj=ecpub"},
			{name: "C_VerifyRecover", session: true, args: "in=mac"},
		},
		rows: []row{
			{fn: "C_VerifyInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL obj=hmac", want: ck.CKR_OK},
			{fn: "C_VerifyInit", what: "made-up key", args: "mech=hmac obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_VerifyInit", what: "a verification is active", args: "start=verify mech=hmac obj=hmac", want: ck.CKR_OPERATION_ACTIVE},
			{fn: "C_Verify", what: "pData NULL with a length", args: "start=verify in=NULL inlen=16 in2=mac", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Verify", what: "pSignature NULL with a length", args: "start=verify in=plain in2=NULL in2len=32", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_Verify", what: "no verification", args: "in=plain in2=mac", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_Verify", what: "the right MAC", args: "start=verify in=plain in2=mac", want: ck.CKR_OK},
			{fn: "C_VerifyUpdate", what: "pPart NULL with a length", args: "start=verify in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_VerifyUpdate", what: "no verification", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_VerifyFinal", what: "pSignature NULL with a length", args: "start=verify in2=NULL in2len=32", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_VerifyFinal", what: "no verification", args: "in2=mac", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_VerifyRecoverInit", what: "pMechanism NULL cancels (v3.0: no operation is active, so nothing ends)", args: "mech=NULL obj=ecpub", want: ck.CKR_OK},
			{fn: "C_VerifyRecoverInit", what: "made-up key", args: "mech=rsa obj=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_VerifyRecover", what: "pulDataLen NULL", args: "in=mac outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_VerifyRecover", what: "no verify-recover operation", args: "in=mac", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.17 dual-function cryptographic functions",
		fns: []fn{
			{name: "C_DigestEncryptUpdate", session: true, args: "in=plain"},
			{name: "C_DecryptDigestUpdate", session: true, args: "in=ct"},
			{name: "C_SignEncryptUpdate", session: true, args: "in=plain"},
			{name: "C_DecryptVerifyUpdate", session: true, args: "in=ct"},
		},
		rows: []row{
			{fn: "C_DigestEncryptUpdate", what: "pulEncryptedPartLen NULL", args: "in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DigestEncryptUpdate", what: "neither operation active", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DigestEncryptUpdate", what: "only the digest active", args: "start=digest in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DecryptDigestUpdate", what: "pulPartLen NULL", args: "in=ct outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptDigestUpdate", what: "neither operation active", args: "in=ct", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_SignEncryptUpdate", what: "pulEncryptedPartLen NULL", args: "in=plain outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SignEncryptUpdate", what: "neither operation active", args: "in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_SignEncryptUpdate", what: "only the signature active", args: "start=sign in=plain", want: ck.CKR_OPERATION_NOT_INITIALIZED},
			{fn: "C_DecryptVerifyUpdate", what: "pulPartLen NULL", args: "in=ct outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecryptVerifyUpdate", what: "neither operation active", args: "in=ct", want: ck.CKR_OPERATION_NOT_INITIALIZED},
		},
	},
	{
		name: "5.18 key management",
		fns: []fn{
			{name: "C_GenerateKey", session: true, args: "mech=aesgen tmpl=aes"},
			{name: "C_GenerateKeyPair", session: true, args: "mech=ecgen tmpl=ecpub tmpl2=ecpriv"},
			{name: "C_WrapKey", session: true, args: "mech=kwp obj=aes obj2=hmac"},
			{name: "C_UnwrapKey", session: true, args: "mech=kwp obj=aes in=ct tmpl=aes"},
			{name: "C_DeriveKey", session: true, args: "mech=sha256 obj=aes tmpl=aes"},
			{name: "C_EncapsulateKey", session: true, args: "mech=sha256 obj=ecpub tmpl=aes"},
			{name: "C_DecapsulateKey", session: true, args: "mech=sha256 obj=ecpriv tmpl=aes in=ct"},
		},
		rows: []row{
			{fn: "C_GenerateKey", what: "pMechanism NULL", args: "mech=NULL tmpl=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKey", what: "pTemplate NULL with a count", args: "mech=aesgen tmpl=NULL count=2", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKey", what: "phKey NULL", args: "mech=aesgen tmpl=aes ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKey", what: "not a key generation mechanism", args: "mech=sha256 tmpl=aes", want: ck.CKR_MECHANISM_INVALID},
			{fn: "C_GenerateKey", what: "token key in a read-only session", args: "sh=ro mech=aesgen tmpl=aestoken", want: ck.CKR_SESSION_READ_ONLY},
			{fn: "C_GenerateKeyPair", what: "pMechanism NULL", args: "mech=NULL tmpl=ecpub tmpl2=ecpriv", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKeyPair", what: "pPublicKeyTemplate NULL with a count", args: "mech=ecgen tmpl=NULL count=3 tmpl2=ecpriv", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKeyPair", what: "pPrivateKeyTemplate NULL with a count", args: "mech=ecgen tmpl=ecpub tmpl2=NULL count2=3", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKeyPair", what: "phPublicKey NULL", args: "mech=ecgen tmpl=ecpub tmpl2=ecpriv ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateKeyPair", what: "phPrivateKey NULL", args: "mech=ecgen tmpl=ecpub tmpl2=ecpriv ph2=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_WrapKey", what: "pMechanism NULL", args: "mech=NULL obj=aes obj2=hmac", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_WrapKey", what: "pulWrappedKeyLen NULL", args: "mech=kwp obj=aes obj2=hmac outlen=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_WrapKey", what: "made-up wrapping key", args: "mech=kwp obj=bad obj2=hmac", want: ck.CKR_WRAPPING_KEY_HANDLE_INVALID},
			{fn: "C_WrapKey", what: "made-up key to wrap", args: "mech=kwp obj=aes obj2=bad", want: ck.CKR_KEY_HANDLE_INVALID},
			{fn: "C_WrapKey", what: "short buffer", args: "mech=kwp obj=aes obj2=hmac outcap=1 check=alive", want: ck.CKR_BUFFER_TOO_SMALL, lenAtLeast: 40, alive: 40},
			{fn: "C_UnwrapKey", what: "pMechanism NULL", args: "mech=NULL obj=aes in=ct tmpl=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_UnwrapKey", what: "pWrappedKey NULL with a length", args: "mech=kwp obj=aes in=NULL inlen=40 tmpl=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_UnwrapKey", what: "pTemplate NULL with a count", args: "mech=kwp obj=aes in=ct tmpl=NULL count=2", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_UnwrapKey", what: "phKey NULL", args: "mech=kwp obj=aes in=ct tmpl=aes ph=NULL", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_UnwrapKey", what: "made-up unwrapping key", args: "mech=kwp obj=bad in=ct tmpl=aes", want: ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID},
			{fn: "C_DeriveKey", what: "pMechanism NULL", args: "mech=NULL obj=ecpriv tmpl=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DeriveKey", what: "pTemplate NULL with a count", args: "mech=sha256 obj=ecpriv tmpl=NULL count=2", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_EncapsulateKey", what: "pMechanism NULL", args: "mech=NULL obj=ecpub tmpl=aes", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_DecapsulateKey", what: "pMechanism NULL", args: "mech=NULL obj=ecpriv tmpl=aes in=ct", want: ck.CKR_ARGUMENTS_BAD},
		},
	},
	{
		name: "5.19 random number generation",
		fns: []fn{
			{name: "C_SeedRandom", session: true, args: "in=plain"},
			{name: "C_GenerateRandom", session: true, args: "inlen=16"},
		},
		rows: []row{
			{fn: "C_SeedRandom", what: "pSeed NULL with a length", args: "in=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_SeedRandom", what: "a seed (the generator cannot be seeded)", args: "in=plain", want: ck.CKR_RANDOM_SEED_NOT_SUPPORTED},
			{fn: "C_GenerateRandom", what: "pRandomData NULL with a length", args: "out=NULL inlen=16", want: ck.CKR_ARGUMENTS_BAD},
			{fn: "C_GenerateRandom", what: "16 bytes", args: "inlen=16", want: ck.CKR_OK},
		},
	},
	{
		name: "5.20 parallel function management",
		fns: []fn{
			// Legacy functions: the specification says they answer
			// CKR_FUNCTION_NOT_PARALLEL, whatever the session.
			{name: "C_GetFunctionStatus"},
			{name: "C_CancelFunction"},
		},
		rows: []row{
			{fn: "C_GetFunctionStatus", what: "a session", want: ck.CKR_FUNCTION_NOT_PARALLEL},
			{fn: "C_GetFunctionStatus", what: "made-up session", args: "sh=bad", want: ck.CKR_FUNCTION_NOT_PARALLEL},
			{fn: "C_CancelFunction", what: "a session", want: ck.CKR_FUNCTION_NOT_PARALLEL},
			{fn: "C_CancelFunction", what: "made-up session", args: "sh=bad", want: ck.CKR_FUNCTION_NOT_PARALLEL},
		},
	},
}

// ordered returns every row of every chapter, the generic rows first in
// each chapter, sorted into the driver's phases: pre, pub, then user.
func ordered() []row {
	var all []row
	for _, c := range chapters {
		var rs []row
		for _, f := range c.fns {
			rs = append(rs, genericRows(f)...)
		}
		rs = append(rs, c.rows...)
		for _, r := range rs {
			r.chapter = c.name
			all = append(all, r)
		}
	}
	var out []row
	for _, phase := range []string{"pre", "init", "pub", "user", "out"} {
		for _, r := range all {
			if r.phase() == phase {
				out = append(out, r)
			}
		}
	}
	return out
}

// genericRows are the rows every function has: CKR_CRYPTOKI_NOT_INITIALIZED
// before C_Initialize (PKCS#11 v3.0 5.1.6: every function but C_Initialize,
// C_GetFunctionList, C_GetInterfaceList and C_GetInterface), a made-up
// session handle, a made-up slot ID.
func genericRows(f fn) []row {
	var rs []row
	if !f.exempt {
		args := f.args
		if f.preArgs != "" {
			args = f.preArgs
		}
		rs = append(rs, row{fn: f.name, what: "before C_Initialize", when: "pre", args: args,
			want: ck.CKR_CRYPTOKI_NOT_INITIALIZED})
	}
	if f.session {
		rs = append(rs, row{fn: f.name, what: "made-up session handle", args: "sh=bad " + f.args,
			want: ck.CKR_SESSION_HANDLE_INVALID})
	}
	if f.slot {
		rs = append(rs, row{fn: f.name, what: "made-up slot ID", when: "pub", args: "slot=bad " + f.args,
			want: ck.CKR_SLOT_ID_INVALID})
	}
	return rs
}
