package xks

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// The errorName values of the spec's "Error codes" table, each with its
// HTTP status (errorStatus).
const (
	ValidationException           = "ValidationException"           // 400
	InvalidStateException         = "InvalidStateException"         // 400
	InvalidCiphertextException    = "InvalidCiphertextException"    // 400
	InvalidKeyUsageException      = "InvalidKeyUsageException"      // 400
	AuthenticationFailedException = "AuthenticationFailedException" // 401
	AccessDeniedException         = "AccessDeniedException"         // 403
	KeyNotFoundException          = "KeyNotFoundException"          // 404
	InvalidURIPathException       = "InvalidUriPathException"       // 404
	ThrottlingException           = "ThrottlingException"           // 429
	UnsupportedOperationException = "UnsupportedOperationException" // 501
	DependencyTimeoutException    = "DependencyTimeoutException"    // 503
	InternalException             = "InternalException"             // 500
)

// errorStatus is the spec's table: errorName -> HTTP status.
var errorStatus = map[string]int{
	ValidationException:           http.StatusBadRequest,
	InvalidStateException:         http.StatusBadRequest,
	InvalidCiphertextException:    http.StatusBadRequest,
	InvalidKeyUsageException:      http.StatusBadRequest,
	AuthenticationFailedException: http.StatusUnauthorized,
	AccessDeniedException:         http.StatusForbidden,
	KeyNotFoundException:          http.StatusNotFound,
	InvalidURIPathException:       http.StatusNotFound,
	ThrottlingException:           http.StatusTooManyRequests,
	UnsupportedOperationException: http.StatusNotImplemented,
	DependencyTimeoutException:    http.StatusServiceUnavailable,
	InternalException:             http.StatusInternalServerError,
}

// Error is an XKS error answer: {"errorName": Name, "errorMessage":
// Message}, with the HTTP status of Name. A Backend may return one (or
// wrap one) to choose the answer itself; Message must then hold nothing
// secret.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return "xks: " + e.Name + ": " + e.Message }

// Status is the HTTP status of e's Name (500 for a name not in the table).
func (e *Error) Status() int {
	if s, ok := errorStatus[e.Name]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func newError(name, msg string) *Error { return &Error{Name: name, Message: msg} }

// Errors a Backend returns (or wraps) for the common refusals; the handler
// answers each with the errorName named.
var (
	// ErrKeyNotFound: no external key has that ID (KeyNotFoundException).
	ErrKeyNotFound = errors.New("xks: external key not found")
	// ErrKeyDisabled: the key exists but is not usable now, or the key
	// store is disabled (InvalidStateException).
	ErrKeyDisabled = errors.New("xks: external key is not enabled")
	// ErrInvalidCiphertext: the tag did not verify, or the key version
	// does not exist (InvalidCiphertextException).
	ErrInvalidCiphertext = errors.New("xks: ciphertext, IV, AAD or tag is invalid")
	// ErrKeyUsage: the key does not allow the operation
	// (InvalidKeyUsageException).
	ErrKeyUsage = errors.New("xks: key usage does not allow the operation")
	// ErrDependencyTimeout: the HSM cluster did not answer in time
	// (DependencyTimeoutException). A context deadline is taken as one.
	ErrDependencyTimeout = errors.New("xks: the HSM cluster did not answer in time")
)

// backendError turns what a Backend returned into the answer. Unknown
// errors become InternalException with a fixed message: their text is
// never shown (it might name something internal).
func backendError(err error) *Error {
	var xe *Error
	switch {
	case errors.As(err, &xe):
		return newError(xe.Name, xe.Message)
	case errors.Is(err, ErrKeyNotFound):
		return newError(KeyNotFoundException, "The external key was not found.")
	case errors.Is(err, ErrKeyDisabled):
		return newError(InvalidStateException, "The external key is not enabled.")
	case errors.Is(err, ErrInvalidCiphertext):
		return newError(InvalidCiphertextException, msgInvalidCiphertext)
	case errors.Is(err, ErrKeyUsage):
		return newError(InvalidKeyUsageException, "The external key does not allow this operation.")
	case errors.Is(err, ErrDependencyTimeout), errors.Is(err, context.DeadlineExceeded):
		return newError(DependencyTimeoutException, "The HSM cluster did not answer in time.")
	}
	return newError(InternalException, "The HSM cluster failed the request.")
}

const msgInvalidCiphertext = "The ciphertext, initialization vector, additional authenticated data, authentication tag or ciphertext metadata is invalid."

// maxMessage bounds errorMessage: the spec asks for fewer than 512
// characters, printable ASCII only.
const maxMessage = 511

// cleanMessage makes m a valid errorMessage: non-printable or non-ASCII
// bytes become '?', and it is cut to maxMessage characters.
func cleanMessage(m string) string {
	var b strings.Builder
	for i := 0; i < len(m) && b.Len() < maxMessage; i++ {
		c := m[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}
