package hsmd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/hsmd/hsmpb"
	"github.com/openhsm/openhsm/hsmerr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rvCodes maps PKCS#11 return values to gRPC codes; anything not listed is
// Internal. The CKR itself always rides along in an ErrorDetail.
var rvCodes = map[uint64]codes.Code{
	ck.CKR_ARGUMENTS_BAD:              codes.InvalidArgument,
	ck.CKR_ATTRIBUTE_TYPE_INVALID:     codes.InvalidArgument,
	ck.CKR_ATTRIBUTE_VALUE_INVALID:    codes.InvalidArgument,
	ck.CKR_ATTRIBUTE_READ_ONLY:        codes.InvalidArgument,
	ck.CKR_TEMPLATE_INCOMPLETE:        codes.InvalidArgument,
	ck.CKR_TEMPLATE_INCONSISTENT:      codes.InvalidArgument,
	ck.CKR_MECHANISM_INVALID:          codes.InvalidArgument,
	ck.CKR_MECHANISM_PARAM_INVALID:    codes.InvalidArgument,
	ck.CKR_DATA_LEN_RANGE:             codes.InvalidArgument,
	ck.CKR_DATA_INVALID:               codes.InvalidArgument,
	ck.CKR_ENCRYPTED_DATA_INVALID:     codes.InvalidArgument,
	ck.CKR_ENCRYPTED_DATA_LEN_RANGE:   codes.InvalidArgument,
	ck.CKR_KEY_SIZE_RANGE:             codes.InvalidArgument,
	ck.CKR_KEY_TYPE_INCONSISTENT:      codes.InvalidArgument,
	ck.CKR_WRAPPED_KEY_INVALID:        codes.InvalidArgument,
	ck.CKR_WRAPPED_KEY_LEN_RANGE:      codes.InvalidArgument,
	ck.CKR_SIGNATURE_LEN_RANGE:        codes.InvalidArgument,
	ck.CKR_CURVE_NOT_SUPPORTED:        codes.InvalidArgument,
	ck.CKR_PIN_LEN_RANGE:              codes.InvalidArgument,
	ck.CKR_PIN_INVALID:                codes.InvalidArgument,
	ck.CKR_DOMAIN_PARAMS_INVALID:      codes.InvalidArgument,
	ck.CKR_SIGNATURE_INVALID:          codes.FailedPrecondition,
	ck.CKR_KEY_FUNCTION_NOT_PERMITTED: codes.FailedPrecondition,
	ck.CKR_KEY_UNEXTRACTABLE:          codes.FailedPrecondition,
	ck.CKR_KEY_NOT_WRAPPABLE:          codes.FailedPrecondition,
	ck.CKR_ACTION_PROHIBITED:          codes.PermissionDenied,
	ck.CKR_USER_NOT_LOGGED_IN:         codes.PermissionDenied,
	ck.CKR_USER_ALREADY_LOGGED_IN:     codes.FailedPrecondition,
	ck.CKR_PIN_INCORRECT:              codes.Unauthenticated,
	ck.CKR_PIN_LOCKED:                 codes.Unauthenticated,
	ck.CKR_OBJECT_HANDLE_INVALID:      codes.NotFound,
	ck.CKR_KEY_HANDLE_INVALID:         codes.NotFound,
	ck.CKR_USER_PIN_NOT_INITIALIZED:   codes.NotFound,
	ck.CKR_DEVICE_MEMORY:              codes.ResourceExhausted,
	ck.CKR_FUNCTION_REJECTED:          codes.ResourceExhausted,
	ck.CKR_CRYPTOKI_NOT_INITIALIZED:   codes.Unavailable,
	ck.CKR_DEVICE_ERROR:               codes.Unavailable,
}

// RetryTrailer is the trailer that tells a client its request was not
// executed, so it may send it to another node.
const RetryTrailer = "x-hsm-retry"

// markNotExecuted sets RetryTrailer on the call.
func markNotExecuted(ctx context.Context) {
	grpc.SetTrailer(ctx, metadata.Pairs(RetryTrailer, "other-node"))
}

func statusWith(code codes.Code, rv uint64, msg string) error {
	st, err := status.New(code, msg).WithDetails(&hsmpb.ErrorDetail{Ckr: rv})
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// toStatus turns an error from a handler into a gRPC status. Engine errors
// carry safe messages; anything else is logged here and answered with a
// generic message.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var bf *badField
	if errors.As(err, &bf) {
		rv := bf.rv
		if rv == 0 {
			rv = ck.CKR_ARGUMENTS_BAD
		}
		return statusWith(codes.InvalidArgument, rv, bf.Error())
	}
	if _, ok := status.FromError(err); ok && !isEngineError(err) {
		return err
	}
	if errors.Is(err, cluster.ErrNotExecuted) {
		markNotExecuted(ctx)
	}
	var te *hsmerr.Error
	if errors.As(err, &te) {
		code, ok := rvCodes[te.RV]
		if !ok {
			code = codes.Internal
		}
		if te.RV == ck.CKR_GENERAL_ERROR || te.RV == ck.CKR_FUNCTION_FAILED {
			log.ErrorContext(ctx, "operation failed", "err", te.Error())
		}
		return statusWith(code, te.RV, te.Error())
	}
	log.ErrorContext(ctx, "internal error", "err", err.Error())
	return statusWith(codes.Internal, ck.CKR_DEVICE_ERROR, "internal error")
}

func isEngineError(err error) bool {
	var te *hsmerr.Error
	return errors.As(err, &te)
}
