package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/sigv4"
)

// The wire constants of AWS JSON 1.1 for KMS.
const (
	ContentType  = "application/x-amz-json-1.1"
	TargetPrefix = "TrentService."
	// HealthPath is the unauthenticated readiness check (GET or HEAD).
	HealthPath = "/healthz"
)

// DefaultMaxBody bounds a request body when Config.MaxBody is 0: 2 MiB.
// The package doc (Body size) shows the largest valid requests it holds.
const DefaultMaxBody = 2 << 20

// Config is what the handler is built from.
type Config struct {
	// Verifier checks SigV4; required.
	Verifier *sigv4.Verifier
	// Secrets finds the secret of an access key; required.
	Secrets sigv4.Secrets
	// Service runs the operations; required.
	Service call.Service
	// Audit receives one event per KMS request (every request but the
	// health check), before the answer is written; nil records none. It
	// must not block for long and must not keep the event's slices.
	Audit func(audit.KMSEvent)
	// Ready says whether the node can serve; GET /healthz answers 503 with
	// its error. nil is always ready.
	Ready func() error
	// Log receives the causes of internal errors; nil is slog.Default().
	Log *slog.Logger
	// MaxBody bounds a request body in bytes; 0 is DefaultMaxBody.
	MaxBody int64
	// Now is the clock of the audit events' Time; nil is time.Now.
	Now func() time.Time
	// Answered, if set, hears of every KMS request but the health check
	// once its answer is made: the operation ("" when unknown), the
	// exception ("" for success) and the time since it arrived (the
	// daemon's metrics). It must be cheap and must not block.
	Answered func(op, exception string, took time.Duration)
}

// Handler serves the KMS API. It is safe for concurrent use.
type Handler struct {
	cfg Config
}

// New makes the handler. It panics when Verifier, Secrets or Service is
// nil: that is a wiring mistake, not a request's fault.
func New(cfg Config) *Handler {
	if cfg.Verifier == nil || cfg.Secrets == nil || cfg.Service == nil {
		panic("httpapi: Config needs a Verifier, Secrets and a Service")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := h.cfg.Now()
	id := newRequestID()
	hdr := w.Header()
	hdr.Set("x-amzn-RequestId", id)

	if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.health(w)
		return
	}

	ev := audit.KMSEvent{
		Time:      arrived.Unix(),
		Principal: authorizationAccessKeyID(r.Header.Values("Authorization")),
		Source:    clientIP(r.RemoteAddr),
		RequestID: id,
	}
	out, err := h.serve(w, r, id, &ev)
	var body []byte
	status := http.StatusOK
	if err == nil {
		body, err = model.Marshal(out)
		if err != nil {
			err = fmt.Errorf("httpapi: the output of %s does not marshal: %w", ev.Op, err)
		}
	}
	if err != nil {
		a := answerFor(err)
		if a.internal || a.status >= 500 {
			h.cfg.Log.Error("kms request failed", "request_id", id, "op", ev.Op,
				"exception", a.typ, "error", err.Error())
		}
		ev.Error = a.typ
		status, body = a.status, a.body()
	}
	if h.cfg.Audit != nil {
		h.cfg.Audit(ev)
	}
	if h.cfg.Answered != nil {
		h.cfg.Answered(ev.Op, ev.Error, h.cfg.Now().Sub(arrived))
	}
	hdr.Set("Content-Type", ContentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serve runs one request through the steps of the package doc and fills
// ev as it learns the operation, principal, context keys and key.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, id string, ev *audit.KMSEvent) (model.Object, error) {
	op, opOK := target(r.Header.Values("X-Amz-Target"))
	if opOK {
		ev.Op = op
	}
	switch {
	case r.Method != http.MethodPost:
		return nil, errMethod
	case r.URL.Path != "/":
		return nil, errPath
	case !jsonContentType(r.Header.Values("Content-Type")):
		return nil, errContentType
	case !opOK:
		return nil, errUnknownOperation
	}

	body, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}

	who, err := h.cfg.Verifier.Verify(r, body, h.cfg.Secrets)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) && se.AccessKeyID != "" {
			ev.Principal = se.AccessKeyID
		}
		return nil, err
	}
	ev.Principal = who.Principal

	in, err := model.Validate(op, body)
	if err != nil {
		return nil, err
	}
	ev.ContextKeys = contextKeys(in)

	req := &call.Request{
		Op:          op,
		Input:       in,
		Principal:   who.Principal,
		AccessKeyID: who.AccessKeyID,
		Region:      who.Region,
		Source:      ev.Source,
		RequestID:   id,
	}
	out, err := h.call(r.Context(), req)
	ev.Key = req.KeyARN
	return out, err
}

// readBody reads the body, at most MaxBody bytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	max := h.cfg.MaxBody
	if r.ContentLength > max {
		return nil, errTooLarge(max)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errTooLarge(max)
	case err != nil:
		return nil, errUnreadable
	}
	return buf.Bytes(), nil
}

// call runs the operation; a panic in it is an internal error, not a
// dropped connection.
func (h *Handler) call(ctx context.Context, req *call.Request) (out model.Object, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("httpapi: operation %s panicked: %v\n%s", req.Op, p, debug.Stack())
		}
	}()
	return h.cfg.Service.Call(ctx, req)
}

// health answers the readiness check.
func (h *Handler) health(w http.ResponseWriter) {
	status, text := http.StatusOK, "ok"
	if h.cfg.Ready != nil {
		if err := h.cfg.Ready(); err != nil {
			status, text = http.StatusServiceUnavailable, err.Error()
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(text)+1))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text+"\n")
}

// target is the operation X-Amz-Target names: exactly one header,
// "TrentService." and an operation of the model.
func target(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	op, ok := strings.CutPrefix(values[0], TargetPrefix)
	if !ok {
		return "", false
	}
	if _, ok := model.LookupOperation(op); !ok {
		return "", false
	}
	return op, true
}

// jsonContentType says whether the request's one Content-Type is AWS JSON
// 1.1 (parameters such as a charset allowed, case ignored).
func jsonContentType(values []string) bool {
	if len(values) != 1 {
		return false
	}
	mt, _, err := mime.ParseMediaType(values[0])
	return err == nil && mt == ContentType
}

// The members whose keys the trail records.
var contextMembers = []string{"EncryptionContext", "SourceEncryptionContext", "DestinationEncryptionContext"}

// contextKeys are the keys of the request's encryption contexts, sorted
// and without duplicates; never their values.
func contextKeys(in model.Object) []string {
	var keys []string
	for _, name := range contextMembers {
		m, _ := in.Map(name)
		for k := range m {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// clientIP is the host of a RemoteAddr ("192.0.2.1:5555" -> "192.0.2.1").
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// maxAccessKeyID bounds an access key ID taken from an unverified header.
const maxAccessKeyID = 128

// authorizationAccessKeyID is the access key ID of a SigV4 Authorization
// header's Credential parameter, for the trail of a request refused before
// SigV4 read it. It is "" unless there is exactly one header and the ID is
// 1..128 characters of [A-Za-z0-9_] (what AWS's access key IDs are made
// of), so an unverified header cannot put arbitrary text in the trail. The
// rest of the header (the signature) is never kept.
func authorizationAccessKeyID(values []string) string {
	if len(values) != 1 {
		return ""
	}
	_, params, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok {
		return ""
	}
	for p := range strings.SplitSeq(params, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(p), "Credential=")
		if !ok {
			continue
		}
		akid, _, _ := strings.Cut(v, "/")
		if akid == "" || len(akid) > maxAccessKeyID {
			return ""
		}
		for _, c := range []byte(akid) {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return ""
			}
		}
		return akid
	}
	return ""
}

var _ http.Handler = (*Handler)(nil)
