package hsmd

// STAND-IN, TO DELETE when kms/httpapi lands. It answers GET /healthz from
// Ready, as the real handler does, so the wiring, the load balancer's
// checks and their tests run before the API exists, and answers every
// other request KMSInternalException. Its replacement, kms_handler.go:
//
//	package hsmd
//
//	import (
//		"net/http"
//
//		"github.com/openhsm/openhsm/kms/httpapi"
//	)
//
//	func newKMSHandler(p kmsHandlerParts) (http.Handler, error) {
//		return httpapi.New(httpapi.Config{
//			Verifier: p.Verifier,
//			Secrets:  p.Secrets,
//			Service:  p.Service,
//			// TODO(s16-audit): Audit: newKMSAuditor(...).Record (hsmd/kmsaudit.go).
//			Ready: p.Ready,
//			Log:   p.Log,
//		})
//	}

import (
	"encoding/json"
	"net/http"

	"github.com/openhsm/openhsm/kms/kmserr"
)

func newKMSHandler(p kmsHandlerParts) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if p.Ready() {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"__type": kmserr.Internal, "message": "this node's KMS API handler is a stand-in: kms/httpapi is not built in yet"})
	}), nil
}
