// Package kmserr is the KMS API's error: an AWS exception name, its
// message, and the HTTP status it is sent with. Every layer of the KMS
// service (validation, SigV4, the operations) answers with one, and the
// handler writes it as AWS JSON 1.1 does: {"__type": Type, "message":
// Message}. Client errors are HTTP 400, as AWS sends them; only
// KMSInternalException, DependencyTimeoutException and
// KeyUnavailableException are 5xx.
//
// Messages never hold a secret (plaintext, key material, a secret access
// key); they name keys by ID or ARN and principals by ARN.
package kmserr

import (
	"errors"
	"fmt"
	"net/http"
)

// The exception names, as AWS spells them.
const (
	NotFound              = "NotFoundException"
	Disabled              = "DisabledException"
	InvalidState          = "KMSInvalidStateException"
	InvalidCiphertext     = "InvalidCiphertextException"
	IncorrectKey          = "IncorrectKeyException"
	InvalidKeyUsage       = "InvalidKeyUsageException"
	Validation            = "ValidationException"
	AlreadyExists         = "AlreadyExistsException"
	LimitExceeded         = "LimitExceededException"
	UnsupportedOperation  = "UnsupportedOperationException"
	InvalidSignature      = "KMSInvalidSignatureException"
	InvalidMac            = "KMSInvalidMacException"
	AccessDenied          = "AccessDeniedException"
	InvalidArn            = "InvalidArnException"
	InvalidAliasName      = "InvalidAliasNameException"
	InvalidMarker         = "InvalidMarkerException"
	InvalidGrantToken     = "InvalidGrantTokenException"
	InvalidGrantID        = "InvalidGrantIdException"
	Tag                   = "TagException"
	MalformedPolicy       = "MalformedPolicyDocumentException"
	InvalidImportToken    = "InvalidImportTokenException"
	IncorrectKeyMaterial  = "IncorrectKeyMaterialException"
	ExpiredImportToken    = "ExpiredImportTokenException"
	Internal              = "KMSInternalException"
	DependencyTimeout     = "DependencyTimeoutException"
	KeyUnavailable        = "KeyUnavailableException"
	Serialization         = "SerializationException"
	UnknownOperation      = "UnknownOperationException"
	CustomKeyStoreInvalid = "CustomKeyStoreInvalidStateException"
	XksProxyInvalidConfig = "XksProxyInvalidConfigurationException"
	NotAuthorized         = "NotAuthorizedException"
	DryRun                = "DryRunOperationException"
)

// status is the HTTP status of each exception that is not a 400.
var status = map[string]int{
	Internal:          http.StatusInternalServerError,
	DependencyTimeout: http.StatusServiceUnavailable,
	KeyUnavailable:    http.StatusInternalServerError,
}

// Error is one KMS API error.
type Error struct {
	Type    string // the exception name
	Message string // "" sends no message member
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// Status is the HTTP status the error is sent with.
func (e *Error) Status() int {
	if s, ok := status[e.Type]; ok {
		return s
	}
	return http.StatusBadRequest
}

// New makes an error of the exception with a formatted message.
func New(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// Is says whether err is a KMS error of the exception.
func Is(err error, typ string) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == typ
}

// InternalMessage is what a 5xx KMSInternalException says: the cause stays
// in the node's log, never in the answer.
const InternalMessage = "The request failed because of an internal error. Try again later."
