// Package call is the contract between the KMS API's HTTP handler
// (kms/httpapi) and the operations (kms): one verified, validated request
// in, its output or a KMS error out. Neither side imports the other.
package call

import (
	"context"

	"github.com/openhsm/openhsm/kms/model"
)

// Request is one KMS API request that passed SigV4 and validation.
type Request struct {
	Op          string       // the operation, X-Amz-Target's suffix ("Encrypt")
	Input       model.Object // the input model.Validate decoded
	Principal   string       // the signing principal, as the Secrets of SigV4 named it (kms: its ARN)
	AccessKeyID string       // the access key it signed with
	Region      string       // the region of the credential scope
	Source      string       // the client's address (IP), for the trail
	RequestID   string       // the x-amzn-RequestId the answer carries

	// KeyARN is set by the operation to the ARN of the key the request
	// resolved to (for the trail); "" when none.
	KeyARN string

	// State is the service's own state of the request while it runs (the
	// KMS service keeps its access decisions here); callers leave it nil.
	State any
}

// Service runs operations. Call returns the operation's output, or an
// error: a *kmserr.Error, an *hsmerr.Error (its row's KMS exception), or
// anything else, which the handler answers as KMSInternalException and
// logs.
type Service interface {
	Call(ctx context.Context, r *Request) (model.Object, error)
}
