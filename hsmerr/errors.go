package hsmerr

import (
	"errors"
	"fmt"

	"github.com/openhsm/openhsm/ck"
)

// Error is the one error type of the engine. It carries the PKCS#11 return
// value that a caller of the library will see, and a message that is safe to
// log and to send to the client: it never holds key bytes or passwords.
type Error struct {
	RV  uint64 // a CKR_ value
	Msg string // what went wrong, naming the field or attribute
	Err error  // optional cause
}

func (e *Error) Error() string {
	s := ck.RVName(e.RV)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error with the given return value.
func Errorf(rv uint64, format string, args ...any) *Error {
	return &Error{RV: rv, Msg: fmt.Sprintf(format, args...)}
}

// RV maps any error to a PKCS#11 return value. Errors that are not *Error
// become CKR_FUNCTION_FAILED.
func RV(err error) uint64 {
	if err == nil {
		return ck.CKR_OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.RV
	}
	return ck.CKR_FUNCTION_FAILED
}

// IsRV reports whether err carries the given return value.
func IsRV(err error, rv uint64) bool { return err != nil && RV(err) == rv }
