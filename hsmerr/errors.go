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
	// Reason refines RV where PKCS#11 has no value of its own for a case a
	// caller must tell apart ("" mostly; table.go lists the reasons). It
	// crosses every boundary RV crosses, so callers test it with
	// errors.Is(err, ErrUserExists) instead of reading Msg.
	Reason Reason
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

// Is makes errors.Is(err, sentinel) true for the sentinels of reasons
// (ErrUserExists, ErrNoSession): an *Error matches a sentinel with the same
// RV and reason, whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason != "" && t.Reason == e.Reason && t.RV == e.RV
}

// Errorf makes an *Error with the given return value.
func Errorf(rv uint64, format string, args ...any) *Error {
	return &Error{RV: rv, Msg: fmt.Sprintf(format, args...)}
}

// Reasonf makes an *Error with a reason and the return value the table
// gives that reason. An unknown reason is a programming error: it gives
// DefaultRV without a reason.
func Reasonf(reason Reason, format string, args ...any) *Error {
	e := &Error{RV: DefaultRV, Msg: fmt.Sprintf(format, args...)}
	if rv, ok := reasonRV[reason]; ok {
		e.RV, e.Reason = rv, reason
	}
	return e
}

// RV maps any error to a PKCS#11 return value: the first mapping of the
// table (engine error -> CKR). nil is CKR_OK; an *Error (anywhere in the
// chain) gives its RV. The one default, DefaultRV (CKR_FUNCTION_FAILED), is
// for everything else, and for an *Error that carries CKR_OK by mistake.
func RV(err error) uint64 {
	if err == nil {
		return ck.CKR_OK
	}
	var e *Error
	if errors.As(err, &e) && e.RV != ck.CKR_OK {
		return e.RV
	}
	return DefaultRV
}

// ReasonOf returns the reason an error carries, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// IsRV reports whether err carries the given return value.
func IsRV(err error, rv uint64) bool { return err != nil && RV(err) == rv }
