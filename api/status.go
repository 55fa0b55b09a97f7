package api

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// InternalMessage is the whole message of a status for an error that is no
// *hsmerr.Error: its text may hold anything, so the daemon logs it and
// sends this.
const InternalMessage = "internal error"

// ToStatus is how the daemon answers with err: the gRPC code the table in
// hsmerr/table.go gives err's CKR and reason, the message, and
// ErrorDetail{ckr, reason}. An *hsmerr.Error's message is its Error()
// (safe to send by its contract); any other error answers
// hsmerr.DefaultRV with InternalMessage. nil is nil.
func ToStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	rv, reason, msg := hsmerr.DefaultRV, hsmerr.Reason(""), InternalMessage
	var te *hsmerr.Error
	if errors.As(err, &te) {
		rv, reason, msg = hsmerr.RV(te), te.Reason, te.Error()
		if !hsmerr.KnownReason(rv, reason) {
			reason = ""
		}
	}
	code := hsmerr.CodeFor(rv, reason)
	st, derr := status.New(code, msg).WithDetails(&hsmpb.ErrorDetail{Ckr: rv, Reason: string(reason)})
	if derr != nil {
		return status.New(code, msg)
	}
	return st
}

// FromStatus is how a client reads an error of a call: an *hsmerr.Error.
// A status with an ErrorDetail gives its CKR and, if the table knows it
// for that CKR, its reason (a daemon that sends none still says it by the
// code, hsmerr.ReasonForCode); without one the code alone decides
// (hsmerr.FromCode). A context that ended before the call was made reads
// as the status gRPC gives it (DeadlineExceeded, Canceled). Msg is the
// status message without the leading "CKR_NAME: " the daemon's message
// has. An *hsmerr.Error is returned as it is, nil as nil.
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
		// Not from gRPC: a context that ended before the call was made,
		// or something the caller made.
		var msg string
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			msg = "timed out"
		case errors.Is(err, context.Canceled):
			msg = "canceled"
		default:
			return &hsmerr.Error{RV: hsmerr.DefaultRV, Msg: err.Error()}
		}
		rv, reason := hsmerr.FromCode(status.FromContextError(err).Code())
		return &hsmerr.Error{RV: rv, Reason: reason, Msg: msg, Err: err}
	}
	if ed := Detail(st); ed != nil {
		rv, reason := ed.GetCkr(), hsmerr.Reason(ed.GetReason())
		if !hsmerr.KnownReason(rv, reason) {
			reason = hsmerr.ReasonForCode(rv, st.Code())
		}
		return &hsmerr.Error{RV: rv, Reason: reason, Msg: trimRV(rv, st.Message())}
	}
	rv, reason := hsmerr.FromCode(st.Code())
	return &hsmerr.Error{RV: rv, Reason: reason, Msg: st.Message()}
}

// Detail returns the ErrorDetail of a status, or nil. Only an answer of the
// daemon carries one; transport errors do not.
func Detail(st *status.Status) *hsmpb.ErrorDetail {
	for _, d := range st.Details() {
		if ed, ok := d.(*hsmpb.ErrorDetail); ok {
			return ed
		}
	}
	return nil
}

// HasDetail reports whether err is a status with an ErrorDetail.
func HasDetail(err error) bool {
	st, ok := status.FromError(err)
	return ok && Detail(st) != nil
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
