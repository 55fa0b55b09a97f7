package client

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// RV returns the PKCS#11 return value an error carries: CKR_OK for nil,
// the RV of a *hsmerr.Error, hsmerr.DefaultRV otherwise. It is hsmerr.RV;
// every error of a failed call is a *hsmerr.Error (read from the daemon's
// status by api.FromStatus, through the table in hsmerr/table.go).
func RV(err error) uint64 { return hsmerr.RV(err) }

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
