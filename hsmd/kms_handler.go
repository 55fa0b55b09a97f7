package hsmd

import (
	"net/http"

	"github.com/openhsm/openhsm/kms/httpapi"
)

// newKMSHandler is the KMS API's HTTP handler (kms/httpapi) over the
// node's parts.
func newKMSHandler(p kmsHandlerParts) (http.Handler, error) {
	ready := func() error {
		if !p.Ready() {
			return errNotReady
		}
		return nil
	}
	return httpapi.New(httpapi.Config{
		Verifier: p.Verifier,
		Secrets:  p.Secrets,
		Service:  p.Service,
		Audit:    p.Audit,
		Ready:    ready,
		Log:      p.Log,
		Answered: p.Metrics.KMSRequest,
	}), nil
}
