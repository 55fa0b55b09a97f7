package hsmd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/hsmerr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// markNotExecuted sets api.TrailerRetry on the call: the request was not
// executed, so the client may send it to another node.
func markNotExecuted(ctx context.Context) {
	grpc.SetTrailer(ctx, metadata.Pairs(api.TrailerRetry, api.RetryOtherNode))
}

// toStatus turns an error from a handler into a gRPC status, through the
// error table (api.ToStatus). Engine errors carry safe messages; anything
// else is logged here and answered with a generic message. A status that
// is not an engine error (a Peer call's refusal, from package cluster)
// passes as it is.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isEngineError(err) {
		return err
	}
	if errors.Is(err, cluster.ErrNotExecuted) {
		markNotExecuted(ctx)
	}
	if isEngineError(err) {
		if rv := hsmerr.RV(err); rv == ck.CKR_GENERAL_ERROR || rv == ck.CKR_FUNCTION_FAILED {
			log.ErrorContext(ctx, "operation failed", "err", err.Error())
		}
	} else {
		log.ErrorContext(ctx, "internal error", "err", err.Error())
	}
	return api.ToStatus(err).Err()
}

// refuse is the status of an engine error made here: what the
// interceptors and the tap answer before a handler runs.
func refuse(rv uint64, msg string) error {
	return api.ToStatus(&hsmerr.Error{RV: rv, Msg: msg}).Err()
}

// unauthenticated refuses a call without a valid session
// (hsmerr.ReasonNoSession: the client logs in again).
func unauthenticated(msg string) error {
	return api.ToStatus(hsmerr.Reasonf(hsmerr.ReasonNoSession, "%s", msg)).Err()
}

func isEngineError(err error) bool {
	var te *hsmerr.Error
	return errors.As(err, &te)
}
