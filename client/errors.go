package client

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmd/hsmpb"
	"github.com/openhsm/openhsm/hsmerr"
)

// RV returns the PKCS#11 return value an error carries: CKR_OK for nil,
// the RV of a *hsmerr.Error, CKR_FUNCTION_FAILED otherwise. It is
// hsmerr.RV; every error of a failed call is a *hsmerr.Error.
func RV(err error) uint64 { return hsmerr.RV(err) }

// FromStatus turns an error of a gRPC call into a *hsmerr.Error. The RV
// comes from the status's hsmpb.ErrorDetail; without one it follows the
// status code:
//
//	Unauthenticated                 CKR_USER_NOT_LOGGED_IN
//	Unavailable, DeadlineExceeded   CKR_DEVICE_ERROR
//	InvalidArgument                 CKR_ARGUMENTS_BAD
//	anything else                   CKR_FUNCTION_FAILED
//
// Msg is the status message. A *hsmerr.Error is returned as it is, nil as
// nil.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	var te *hsmerr.Error
	if errors.As(err, &te) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC: a context ended before the call was made.
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "timed out", Err: err}
		case errors.Is(err, context.Canceled):
			return &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "canceled", Err: err}
		}
		return &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: err.Error()}
	}
	for _, d := range st.Details() {
		if ed, ok := d.(*hsmpb.ErrorDetail); ok {
			return &hsmerr.Error{RV: ed.GetCkr(), Msg: trimRV(ed.GetCkr(), st.Message())}
		}
	}
	return &hsmerr.Error{RV: rvForCode(st.Code()), Msg: st.Message()}
}

// trimRV drops a leading "CKR_NAME: " from a message that already carries
// the return value, since (*hsmerr.Error).Error adds it again.
func trimRV(rv uint64, msg string) string {
	name := ck.RVName(rv)
	if rest, ok := strings.CutPrefix(msg, name); ok && (rest == "" || strings.HasPrefix(rest, ": ")) {
		return strings.TrimPrefix(rest, ": ")
	}
	return msg
}

func rvForCode(c codes.Code) uint64 {
	switch c {
	case codes.Unauthenticated:
		return ck.CKR_USER_NOT_LOGGED_IN
	case codes.Unavailable, codes.DeadlineExceeded:
		return ck.CKR_DEVICE_ERROR
	case codes.InvalidArgument:
		return ck.CKR_ARGUMENTS_BAD
	}
	return ck.CKR_FUNCTION_FAILED
}

// nodeDown reports whether a call's error says the node could not be
// reached (as opposed to an answer from the node, even an error one).
func nodeDown(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

func argErr(format string, args ...any) error {
	return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, format, args...)
}
