package xksclient

import (
	"errors"

	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/xks"
)

// The failures of Mapping that are not an errorName of the proxy.
const (
	FailureConnect     = "no TCP connection"                       // ErrUnreachable
	FailureTLS         = "no TLS connection"                       // ErrTLS
	FailureTimeout     = "timeout"                                 // ErrTimeout
	FailureMalformed   = "malformed response"                      // ErrInvalidResponse, or an unknown errorName
	FailurePlaintext   = "proxy returns an invalid ciphertext"     // ErrProxyPlaintextInvalid
	FailureUnavailable = "every key manager UNAVAILABLE"           // ErrKeyManagerUnavailable
	FailureKeyConfig   = "key not AES_256 for ENCRYPT and DECRYPT" // ErrKeyInvalidConfiguration
)

// The KMS exceptions of Mapping, short for the table (the ones package
// kms answers as well are kmserr's).
const (
	excInvalidState      = kmserr.InvalidState
	excStoreInvalidState = kmserr.CustomKeyStoreInvalid
	excInvalidConfig     = kmserr.XksProxyInvalidConfig
	excInvalidResponse   = "XksProxyInvalidResponseException"
	excUnreachable       = "XksProxyUriUnreachableException"
	excIncorrectCred     = "XksProxyIncorrectAuthenticationCredentialException"
	excKeyInvalidConfig  = "XksKeyInvalidConfigurationException"
	excKeyNotFound       = "XksKeyNotFoundException"
)

// The messages of [S]'s "KMS Considerations" table, word for word (the
// table breaks them over lines; here they are joined with single spaces).
const (
	msgCannotInterpret   = "AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator."
	msgKeyNotEnabled     = "The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request."
	msgInvalidCiphertext = "The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid."
	msgProxyCiphertext   = "The ciphertext that the external key store proxy submitted for decryption, or the encryption context, is corrupted, missing, or otherwise invalid."
	msgKeyUsage          = "The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again."
	msgAuthFailed        = "The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary."
	msgAccessDenied      = "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again."
	msgKeyNotFound       = "The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID."
	msgInvalidURIPath    = "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary."
	msgUnsupported       = "The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator."
	msgDependencyTimeout = "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator."
	msgThrottling        = "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store."
	msgInternal          = "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available."
	msgNoTCP             = "AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external keystore."
	msgNoTLS             = "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate."
	msgTimeout           = "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator."

	// MsgNotConnected is [S]'s message for a KMS key whose external key
	// store is not CONNECTED (CustomKeyStoreInvalidStateException for
	// CreateKey, KMSInvalidStateException for cryptographic operations).
	MsgNotConnected = "This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again."

	// Ours: [S] has no row for these two.
	msgUnavailable = "The external key store proxy reports that none of its external key managers is available. Verify that the external key manager is available, and try the request again."
	msgKeyConfig   = "The external key associated with this KMS key in an external key store is not an AES_256 key that allows ENCRYPT and DECRYPT. Use an external key that meets the requirements of an external key store."

	// msgInternalError is for an error this package did not make (a bug
	// of the caller, never a proxy failure).
	msgInternalError = "The request was rejected because an internal exception occurred. The request can be retried."
)

// Row is one failure and what AWS KMS answers for it, by the kind of KMS
// operation that called the proxy.
type Row struct {
	// Failure is the proxy's errorName, or one of the Failure* names.
	Failure string
	// Store is the exception of CreateCustomKeyStore and
	// UpdateCustomKeyStore (and, for its log, ConnectCustomKeyStore),
	// which call GetHealthStatus.
	Store string
	// CreateKey is the exception of CreateKey, which calls GetKeyMetadata.
	CreateKey string
	// Crypto is the exception of every cryptographic operation (Encrypt,
	// Decrypt, ReEncrypt, GenerateDataKey*, ...) and of any other
	// operation: always KMSInvalidStateException ([D]).
	Crypto string
	// ConnectionErrorCode is the ConnectionErrorCode of a failed
	// ConnectCustomKeyStore ([K]'s ConnectionErrorCodeType).
	ConnectionErrorCode string
	// Message is the exception's message, the same for every operation.
	Message string
	// Ours names the cells [S] does not give (the choice is ours, from
	// [K]'s error lists); "" when [S] gives them all.
	Ours string
}

// Mapping is [S]'s "KMS Considerations" table, one row per failure, with
// the cells [S] leaves empty filled in (Row.Ours says which). Deviations
// from [S]: CreateKey's AccessDeniedException is
// CustomKeyStoreInvalidStateException, not [S]'s KMSInvalidStateException,
// which is not in CreateKey's error list [K]; CreateKey's
// UnsupportedOperationException is XksKeyInvalidConfigurationException, as
// [S]'s "XksKeyInvalidResponseException" is no KMS exception.
var Mapping = []Row{
	{xks.ValidationException, excInvalidResponse, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgCannotInterpret, "connection error code"},
	{xks.InvalidStateException, excInvalidConfig, excKeyInvalidConfig, excInvalidState, "XKS_PROXY_INVALID_CONFIGURATION", msgKeyNotEnabled, "store, connection error code"},
	{xks.InvalidCiphertextException, excInvalidResponse, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgInvalidCiphertext, "store, CreateKey, connection error code"},
	{xks.InvalidKeyUsageException, excInvalidResponse, excKeyInvalidConfig, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgKeyUsage, "store, connection error code"},
	{xks.AuthenticationFailedException, excIncorrectCred, excStoreInvalidState, excInvalidState, "INVALID_CREDENTIALS", msgAuthFailed, "connection error code"},
	{xks.AccessDeniedException, excInvalidConfig, excStoreInvalidState, excInvalidState, "XKS_PROXY_ACCESS_DENIED", msgAccessDenied, "store, CreateKey (see Mapping)"},
	{xks.KeyNotFoundException, excInvalidResponse, excKeyNotFound, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgKeyNotFound, "store, connection error code"},
	{xks.InvalidURIPathException, excInvalidConfig, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_CONFIGURATION", msgInvalidURIPath, "connection error code"},
	{xks.UnsupportedOperationException, excInvalidResponse, excKeyInvalidConfig, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgUnsupported, "store, CreateKey (see Mapping), connection error code"},
	{xks.DependencyTimeoutException, excUnreachable, excStoreInvalidState, excInvalidState, "XKS_PROXY_TIMED_OUT", msgDependencyTimeout, "connection error code"},
	{xks.ThrottlingException, excUnreachable, excStoreInvalidState, excInvalidState, "XKS_PROXY_TIMED_OUT", msgThrottling, "connection error code"},
	{xks.InternalException, excInvalidResponse, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgInternal, "connection error code"},
	{FailureConnect, excUnreachable, excStoreInvalidState, excInvalidState, "XKS_PROXY_NOT_REACHABLE", msgNoTCP, ""},
	{FailureTLS, excUnreachable, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_TLS_CONFIGURATION", msgNoTLS, ""},
	{FailureTimeout, excUnreachable, excStoreInvalidState, excInvalidState, "XKS_PROXY_TIMED_OUT", msgTimeout, ""},
	{FailureMalformed, excInvalidResponse, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgCannotInterpret, ""},
	{FailurePlaintext, excInvalidResponse, excStoreInvalidState, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgProxyCiphertext, "store, CreateKey, connection error code"},
	{FailureUnavailable, excUnreachable, excStoreInvalidState, excInvalidState, "XKS_PROXY_NOT_REACHABLE", msgUnavailable, "CreateKey, connection error code, message"},
	{FailureKeyConfig, excInvalidResponse, excKeyInvalidConfig, excInvalidState, "XKS_PROXY_INVALID_RESPONSE", msgKeyConfig, "store, connection error code, message"},
}

var mappingByFailure = func() map[string]*Row {
	m := make(map[string]*Row, len(Mapping))
	for i := range Mapping {
		m[Mapping[i].Failure] = &Mapping[i]
	}
	return m
}()

// errorRows are the failures named by this package's sentinel errors.
var errorRows = []struct {
	err     error
	failure string
}{
	{ErrTimeout, FailureTimeout},
	{ErrTLS, FailureTLS},
	{ErrUnreachable, FailureConnect},
	{ErrInvalidResponse, FailureMalformed},
	{ErrKeyManagerUnavailable, FailureUnavailable},
	{ErrKeyInvalidConfiguration, FailureKeyConfig},
	{ErrKeyNotEnabled, xks.InvalidStateException},
	{ErrProxyPlaintextInvalid, FailurePlaintext},
}

// RowOf is the Mapping row of err: by its *xks.Error's name (an unknown
// name is a malformed response), else by the sentinel it wraps. ok is
// false for an error this package did not make.
func RowOf(err error) (row Row, ok bool) {
	var xe *xks.Error
	if errors.As(err, &xe) {
		if r, ok := mappingByFailure[xe.Name]; ok {
			return *r, true
		}
		return *mappingByFailure[FailureMalformed], true
	}
	for _, e := range errorRows {
		if errors.Is(err, e.err) {
			return *mappingByFailure[e.failure], true
		}
	}
	return Row{}, false
}

// Exception is the KMS exception type and message for an error of a call
// made for the KMS operation op (e.g. "Encrypt", "CreateKey",
// "ConnectCustomKeyStore"). Create-, Update- and ConnectCustomKeyStore
// take Row.Store, CreateKey Row.CreateKey, any other operation Row.Crypto.
// An error this package did not make is KMSInternalException.
func Exception(err error, op string) (typ, msg string) {
	r, ok := RowOf(err)
	if !ok {
		return kmserr.Internal, msgInternalError
	}
	switch op {
	case "CreateCustomKeyStore", "UpdateCustomKeyStore", "ConnectCustomKeyStore":
		return r.Store, r.Message
	case "CreateKey":
		return r.CreateKey, r.Message
	}
	return r.Crypto, r.Message
}

// ConnectionErrorCode is the ConnectionErrorCode a ConnectCustomKeyStore
// that failed with err leaves on the key store (INTERNAL_ERROR for an
// error this package did not make).
func ConnectionErrorCode(err error) string {
	if r, ok := RowOf(err); ok {
		return r.ConnectionErrorCode
	}
	return "INTERNAL_ERROR"
}
