package hsmerr

import (
	"google.golang.org/grpc/codes"

	"github.com/openhsm/openhsm/ck"
)

// The error table: one row per PKCS#11 return value the code returns (and
// one per reason), with how each boundary shows it. Three mappings are
// derived from it, each with one default:
//
//	engine error -> CKR       RV: an *Error's RV; DefaultRV otherwise
//	CKR -> gRPC status code   Code: the row's Code; DefaultCode otherwise
//	gRPC status -> CKR        FromCode, for a status without an ErrorDetail:
//	                          the row that lists the code in Bare; DefaultRV
//	                          otherwise (api.FromStatus reads the
//	                          ErrorDetail first)
//
// api/status.go puts the first two on the wire (with ErrorDetail{ckr,
// reason}) and reads them back; api's round-trip test runs every CKR that
// appears in the source through a real gRPC server, so a value the code
// starts returning without a row here fails the build's tests.
//
// The KMS exceptions join this table: a row's KMS column names the
// exception the KMS API answers with when an engine or apply refusal of
// that row reaches it (KMSException); "" is KMSInternalException. The KMS
// state machine's own refusals are the rows with a "kms-" reason, one per
// exception (KMSf): their reason carries the exception through the log and
// every Forward answer, as any reason does.

// DefaultRV is the return value of an error that carries none: anything
// but an *Error (a store failure, a bug, a context error in the daemon),
// and a gRPC status without an ErrorDetail whose code no row claims.
const DefaultRV uint64 = ck.CKR_FUNCTION_FAILED

// DefaultCode is the gRPC code of a return value without a row.
const DefaultCode = codes.Internal

// Reason refines a CKR where PKCS#11 has no value of its own for a case a
// caller must tell apart. It rides in ErrorDetail.reason and in every
// record of a refusal (the request records, the leader's Forward answer),
// so it survives each trip its CKR survives.
type Reason string

const (
	// ReasonUserExists: CreateUser named a user that exists
	// (CKR_ARGUMENTS_BAD). C_InitPIN on the cluster slot then sets the
	// password instead.
	ReasonUserExists Reason = "user-exists"
	// ReasonNoSession: the call carries no valid session: none, expired,
	// logged out, of another certificate, or of a user whose credentials
	// changed (CKR_USER_NOT_LOGGED_IN). The client logs in again; without
	// the reason the same CKR means the caller's role may not do this.
	ReasonNoSession Reason = "no-session"
	// ReasonNotLeader: a node that does not lead was asked for what only
	// the leader does (a membership change); the asker tries the next
	// leader (CKR_DEVICE_ERROR).
	ReasonNotLeader Reason = "not-leader"
)

// Sentinels for errors.Is: an *Error matches one with the same RV and
// reason, whatever its message.
var (
	ErrUserExists = &Error{RV: ck.CKR_ARGUMENTS_BAD, Reason: ReasonUserExists, Msg: "the user exists"}
	ErrNoSession  = &Error{RV: ck.CKR_USER_NOT_LOGGED_IN, Reason: ReasonNoSession, Msg: "log in first"}
	ErrNotLeader  = &Error{RV: ck.CKR_DEVICE_ERROR, Reason: ReasonNotLeader, Msg: "not the leader"}
)

// Row is one line of the table.
type Row struct {
	RV     uint64 // the CKR_ value
	Reason Reason // "" for the CKR's own row
	// Code is the gRPC status code the daemon answers this with.
	Code codes.Code
	// Bare lists the codes that read as this row when a status carries no
	// ErrorDetail (a proxy, the gRPC runtime, a context that ended). A code
	// is in at most one row's Bare.
	Bare []codes.Code
	// KMS is the exception the KMS API answers with; "" is
	// KMSInternalException.
	KMS string
}

// table is every row. Grouped by gRPC code; within a group, by CKR. The
// rows marked "library" are the PKCS#11 library's own refusals, which never
// cross the wire today; they have rows so that the mapping stays total.
var table = []Row{
	// InvalidArgument: the request itself is wrong.
	{RV: ck.CKR_ARGUMENTS_BAD, Code: codes.InvalidArgument, Bare: []codes.Code{codes.InvalidArgument}},
	{RV: ck.CKR_ATTRIBUTE_READ_ONLY, Code: codes.InvalidArgument},
	{RV: ck.CKR_ATTRIBUTE_TYPE_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_ATTRIBUTE_VALUE_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_BUFFER_TOO_SMALL, Code: codes.InvalidArgument}, // library
	{RV: ck.CKR_CURVE_NOT_SUPPORTED, Code: codes.InvalidArgument},
	{RV: ck.CKR_PARAMETER_SET_NOT_SUPPORTED, Code: codes.InvalidArgument}, // PKCS#11 v3.2
	{RV: ck.CKR_DATA_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_DATA_LEN_RANGE, Code: codes.InvalidArgument},
	{RV: ck.CKR_DOMAIN_PARAMS_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_ENCRYPTED_DATA_INVALID, Code: codes.InvalidArgument, KMS: "InvalidCiphertextException"},
	{RV: ck.CKR_ENCRYPTED_DATA_LEN_RANGE, Code: codes.InvalidArgument},
	{RV: ck.CKR_KEY_SIZE_RANGE, Code: codes.InvalidArgument},
	{RV: ck.CKR_KEY_TYPE_INCONSISTENT, Code: codes.InvalidArgument},
	{RV: ck.CKR_MECHANISM_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_MECHANISM_PARAM_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_PIN_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_PIN_LEN_RANGE, Code: codes.InvalidArgument},
	{RV: ck.CKR_SIGNATURE_LEN_RANGE, Code: codes.InvalidArgument},
	{RV: ck.CKR_TEMPLATE_INCOMPLETE, Code: codes.InvalidArgument},
	{RV: ck.CKR_TEMPLATE_INCONSISTENT, Code: codes.InvalidArgument},
	{RV: ck.CKR_USER_TYPE_INVALID, Code: codes.InvalidArgument}, // library
	{RV: ck.CKR_WRAPPED_KEY_INVALID, Code: codes.InvalidArgument},
	{RV: ck.CKR_WRAPPED_KEY_LEN_RANGE, Code: codes.InvalidArgument},

	// AlreadyExists.
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: ReasonUserExists, Code: codes.AlreadyExists},

	// FailedPrecondition: the request is sound, the key or the state does
	// not allow it.
	{RV: ck.CKR_CRYPTOKI_ALREADY_INITIALIZED, Code: codes.FailedPrecondition}, // library
	{RV: ck.CKR_KEY_FUNCTION_NOT_PERMITTED, Code: codes.FailedPrecondition, KMS: "InvalidKeyUsageException"},
	{RV: ck.CKR_KEY_INDIGESTIBLE, Code: codes.FailedPrecondition}, // library
	{RV: ck.CKR_KEY_NOT_WRAPPABLE, Code: codes.FailedPrecondition},
	{RV: ck.CKR_KEY_UNEXTRACTABLE, Code: codes.FailedPrecondition},
	{RV: ck.CKR_OPERATION_ACTIVE, Code: codes.FailedPrecondition},             // library
	{RV: ck.CKR_OPERATION_NOT_INITIALIZED, Code: codes.FailedPrecondition},    // library
	{RV: ck.CKR_SESSION_READ_ONLY, Code: codes.FailedPrecondition},            // library
	{RV: ck.CKR_SESSION_READ_ONLY_EXISTS, Code: codes.FailedPrecondition},     // library
	{RV: ck.CKR_SESSION_READ_WRITE_SO_EXISTS, Code: codes.FailedPrecondition}, // library
	{RV: ck.CKR_SIGNATURE_INVALID, Code: codes.FailedPrecondition, KMS: "KMSInvalidSignatureException"},
	{RV: ck.CKR_USER_ALREADY_LOGGED_IN, Code: codes.FailedPrecondition},
	{RV: ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN, Code: codes.FailedPrecondition}, // library
	{RV: ck.CKR_DEVICE_ERROR, Reason: ReasonNotLeader, Code: codes.FailedPrecondition},

	// PermissionDenied: the caller may not do this (its role, its
	// certificate's kind, a rule of the cluster).
	{RV: ck.CKR_ACTION_PROHIBITED, Code: codes.PermissionDenied},
	{RV: ck.CKR_ATTRIBUTE_SENSITIVE, Code: codes.PermissionDenied},
	{RV: ck.CKR_FUNCTION_NOT_SUPPORTED, Code: codes.PermissionDenied}, // a method the daemon does not allow
	{RV: ck.CKR_USER_NOT_LOGGED_IN, Code: codes.PermissionDenied},

	// Unauthenticated: who the caller is was not shown.
	{RV: ck.CKR_PIN_INCORRECT, Code: codes.Unauthenticated},
	{RV: ck.CKR_PIN_LOCKED, Code: codes.Unauthenticated},
	{RV: ck.CKR_USER_NOT_LOGGED_IN, Reason: ReasonNoSession, Code: codes.Unauthenticated, Bare: []codes.Code{codes.Unauthenticated}},

	// NotFound.
	{RV: ck.CKR_KEY_HANDLE_INVALID, Code: codes.NotFound},
	{RV: ck.CKR_OBJECT_HANDLE_INVALID, Code: codes.NotFound},
	{RV: ck.CKR_SESSION_HANDLE_INVALID, Code: codes.NotFound}, // library
	{RV: ck.CKR_SLOT_ID_INVALID, Code: codes.NotFound},        // library
	{RV: ck.CKR_USER_PIN_NOT_INITIALIZED, Code: codes.NotFound},
	{RV: ck.CKR_TOKEN_NOT_PRESENT, Code: codes.NotFound}, // a public session on a token that is not there

	// ResourceExhausted: busy, throttled or over a quota.
	{RV: ck.CKR_DEVICE_MEMORY, Code: codes.ResourceExhausted},
	{RV: ck.CKR_FUNCTION_REJECTED, Code: codes.ResourceExhausted},

	// Unimplemented.
	{RV: ck.CKR_RANDOM_SEED_NOT_SUPPORTED, Code: codes.Unimplemented},      // library
	{RV: ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED, Code: codes.Unimplemented}, // library
	{RV: ck.CKR_STATE_UNSAVEABLE, Code: codes.Unimplemented},               // library

	// Unavailable: the node cannot serve now (behind, no leader, the
	// outcome of a write unknown); another node or a later try may.
	{RV: ck.CKR_CRYPTOKI_NOT_INITIALIZED, Code: codes.Unavailable},
	{RV: ck.CKR_DEVICE_ERROR, Code: codes.Unavailable, Bare: []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, KMS: "DependencyTimeoutException"},

	// The KMS state machine's refusals (KMSf). The CKR says what a PKCS#11
	// caller would be told; only the KMS API answers these.
	{RV: ck.CKR_OBJECT_HANDLE_INVALID, Reason: "kms-not-found", Code: codes.NotFound, KMS: "NotFoundException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-already-exists", Code: codes.InvalidArgument, KMS: "AlreadyExistsException"},
	{RV: ck.CKR_ACTION_PROHIBITED, Reason: "kms-invalid-state", Code: codes.FailedPrecondition, KMS: "KMSInvalidStateException"},
	{RV: ck.CKR_ACTION_PROHIBITED, Reason: "kms-disabled", Code: codes.FailedPrecondition, KMS: "DisabledException"},
	{RV: ck.CKR_DEVICE_MEMORY, Reason: "kms-limit-exceeded", Code: codes.ResourceExhausted, KMS: "LimitExceededException"},
	{RV: ck.CKR_FUNCTION_NOT_SUPPORTED, Reason: "kms-unsupported-operation", Code: codes.FailedPrecondition, KMS: "UnsupportedOperationException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-validation", Code: codes.InvalidArgument, KMS: "ValidationException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-invalid-arn", Code: codes.InvalidArgument, KMS: "InvalidArnException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-invalid-alias-name", Code: codes.InvalidArgument, KMS: "InvalidAliasNameException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-tag", Code: codes.InvalidArgument, KMS: "TagException"},
	{RV: ck.CKR_KEY_FUNCTION_NOT_PERMITTED, Reason: "kms-invalid-key-usage", Code: codes.FailedPrecondition, KMS: "InvalidKeyUsageException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-invalid-import-token", Code: codes.InvalidArgument, KMS: "InvalidImportTokenException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-expired-import-token", Code: codes.InvalidArgument, KMS: "ExpiredImportTokenException"},
	{RV: ck.CKR_WRAPPED_KEY_INVALID, Reason: "kms-incorrect-key-material", Code: codes.InvalidArgument, KMS: "IncorrectKeyMaterialException"},
	{RV: ck.CKR_USER_NOT_LOGGED_IN, Reason: "kms-access-denied", Code: codes.PermissionDenied, KMS: "AccessDeniedException"},
	{RV: ck.CKR_ACTION_PROHIBITED, Reason: "kms-not-authorized", Code: codes.PermissionDenied, KMS: "NotAuthorizedException"},
	// Custom key stores (docs/kms.md, "Custom key stores").
	{RV: ck.CKR_OBJECT_HANDLE_INVALID, Reason: "kms-cks-not-found", Code: codes.NotFound, KMS: "CustomKeyStoreNotFoundException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-cks-name-in-use", Code: codes.InvalidArgument, KMS: "CustomKeyStoreNameInUseException"},
	{RV: ck.CKR_ACTION_PROHIBITED, Reason: "kms-cks-invalid-state", Code: codes.FailedPrecondition, KMS: "CustomKeyStoreInvalidStateException"},
	{RV: ck.CKR_ACTION_PROHIBITED, Reason: "kms-cks-has-keys", Code: codes.FailedPrecondition, KMS: "CustomKeyStoreHasCMKsException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-hsm-cluster-in-use", Code: codes.InvalidArgument, KMS: "CloudHsmClusterInUseException"},
	{RV: ck.CKR_OBJECT_HANDLE_INVALID, Reason: "kms-hsm-cluster-not-found", Code: codes.NotFound, KMS: "CloudHsmClusterNotFoundException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-xks-key-in-use", Code: codes.InvalidArgument, KMS: "XksKeyAlreadyInUseException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-malformed-policy", Code: codes.InvalidArgument, KMS: "MalformedPolicyDocumentException"},
	{RV: ck.CKR_ARGUMENTS_BAD, Reason: "kms-invalid-grant-id", Code: codes.InvalidArgument, KMS: "InvalidGrantIdException"},

	// Operation life cycle and C_InitToken. The library answers
	// the first three itself; the daemon answers CKR_SESSION_EXISTS never,
	// but the library's InitToken may meet it in a test's error path.
	{RV: ck.CKR_KEY_NOT_NEEDED, Code: codes.InvalidArgument},      // library
	{RV: ck.CKR_SAVED_STATE_INVALID, Code: codes.InvalidArgument}, // library
	{RV: ck.CKR_NO_EVENT, Code: codes.FailedPrecondition},         // library
	{RV: ck.CKR_SESSION_EXISTS, Code: codes.FailedPrecondition},   // library
	// The message-based functions and the chapter suite: the
	// library answers these itself.
	{RV: ck.CKR_TOKEN_RESOURCE_EXCEEDED, Code: codes.ResourceExhausted}, // library: a message IV counter used up
	{RV: ck.CKR_WRAPPING_KEY_HANDLE_INVALID, Code: codes.NotFound},      // library
	{RV: ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID, Code: codes.NotFound},    // library

	// Internal: details are logged, not sent.
	{RV: ck.CKR_FUNCTION_FAILED, Code: codes.Internal},
	{RV: ck.CKR_GENERAL_ERROR, Code: codes.Internal},
}

type rowKey struct {
	rv     uint64
	reason Reason
}

var (
	rows     = map[rowKey]Row{}
	bare     = map[codes.Code]Row{}
	reasonRV = map[Reason]uint64{}
)

func init() {
	for _, r := range table {
		k := rowKey{r.RV, r.Reason}
		if _, dup := rows[k]; dup {
			panic("hsmerr: two rows for " + ck.RVName(r.RV) + " " + string(r.Reason))
		}
		rows[k] = r
		if r.Reason != "" {
			if _, dup := reasonRV[r.Reason]; dup {
				panic("hsmerr: reason " + string(r.Reason) + " in two rows")
			}
			reasonRV[r.Reason] = r.RV
		}
		for _, c := range r.Bare {
			if _, dup := bare[c]; dup {
				panic("hsmerr: code " + c.String() + " is Bare in two rows")
			}
			bare[c] = r
		}
	}
}

// Rows returns a copy of the table, in its order.
func Rows() []Row {
	out := make([]Row, len(table))
	for i, r := range table {
		out[i] = r
		out[i].Bare = append([]codes.Code(nil), r.Bare...)
	}
	return out
}

// Lookup returns the row of (rv, reason).
func Lookup(rv uint64, reason Reason) (Row, bool) {
	r, ok := rows[rowKey{rv, reason}]
	return r, ok
}

// Code is the second mapping (CKR -> gRPC code) for an error: CodeFor its
// RV and reason.
func Code(err error) codes.Code { return CodeFor(RV(err), ReasonOf(err)) }

// CodeFor is the code of the row of (rv, reason). A reason without a row
// counts as none; an RV without a row gets DefaultCode.
func CodeFor(rv uint64, reason Reason) codes.Code {
	if r, ok := rows[rowKey{rv, reason}]; ok {
		return r.Code
	}
	if r, ok := rows[rowKey{rv, ""}]; ok {
		return r.Code
	}
	return DefaultCode
}

// FromCode is the third mapping for a status without an ErrorDetail: the
// row that lists code in Bare, else DefaultRV with no reason.
func FromCode(code codes.Code) (uint64, Reason) {
	if r, ok := bare[code]; ok {
		return r.RV, r.Reason
	}
	return DefaultRV, ""
}

// KnownReason reports whether reason is one the table has for rv, so a
// reason read from the wire is kept only where it means something.
func KnownReason(rv uint64, reason Reason) bool {
	return reason != "" && reasonRV[reason] == rv
}

// ReasonForCode returns the reason whose row pairs rv with code, if any:
// a status from a daemon that sends no reason (an older one) still says
// which case it is by its code. A code that the CKR's own row has too, or
// that two reasons share, says nothing: no reason.
func ReasonForCode(rv uint64, code codes.Code) Reason {
	if base, ok := rows[rowKey{rv, ""}]; ok && base.Code == code {
		return ""
	}
	var found Reason
	for reason, r := range reasonRV {
		if r == rv && rows[rowKey{rv, reason}].Code == code {
			if found != "" {
				return ""
			}
			found = reason
		}
	}
	return found
}
