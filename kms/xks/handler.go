package xks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/openhsm/openhsm/kms/sigv4"
)

// Service is the SigV4 service name of every XKS request.
const Service = "kms-xks-proxy"

// apiRoot is the part of every API path after the prefix.
const apiRoot = "/kms/xks/v1/"

// The key status values of GetKeyMetadata, and the health values of
// GetHealthStatus.
const (
	KeyEnabled  = "ENABLED"
	KeyDisabled = "DISABLED"

	HealthActive      = "ACTIVE"
	HealthDegraded    = "DEGRADED"
	HealthUnavailable = "UNAVAILABLE"
)

// The operations, as Event.Operation names them.
const (
	OpHealth   = "GetHealthStatus"
	OpMetadata = "GetKeyMetadata"
	OpEncrypt  = "Encrypt"
	OpDecrypt  = "Decrypt"
)

// Metadata is what the Backend knows of an external key.
type Metadata struct {
	KeySpec   string   // "AES_256"
	KeyUsage  []string // at least "ENCRYPT" and "DECRYPT"; at most 10 values
	KeyStatus string   // KeyEnabled or KeyDisabled: whether the key is usable now
}

// NodeHealth is one HSM node's state, one entry of ekmFleetDetails.
type NodeHealth struct {
	ID     string // the node's ID in its cluster
	Model  string // product and version
	Status string // HealthActive, HealthDegraded or HealthUnavailable
}

// Backend is the HSM cluster behind the proxy. The handler calls it only
// for requests that passed SigV4, validation and secondary authorization;
// CallerFrom(ctx) tells who asked. Errors: see ErrKeyNotFound and the
// others, or return an *Error; anything else is InternalException.
type Backend interface {
	// KeyMetadata describes the external key keyID (an HSM AES-256 key).
	KeyMetadata(ctx context.Context, keyID string) (Metadata, error)
	// Encrypt encrypts plaintext with AES-256-GCM under the current version
	// of keyID, with the 12-byte iv given (made here from crypto/rand) and
	// aad as the GCM AAD, and answers the ciphertext (as long as the
	// plaintext), the 16-byte tag and the key version used. A disabled key
	// is ErrKeyDisabled.
	Encrypt(ctx context.Context, keyID string, plaintext, aad, iv []byte) (ciphertext, tag []byte, keyVersion uint32, err error)
	// Decrypt decrypts with version keyVersion of keyID. A tag that does
	// not verify, or a version that does not exist, is ErrInvalidCiphertext.
	Decrypt(ctx context.Context, keyID string, keyVersion uint32, ciphertext, aad, iv, tag []byte) ([]byte, error)
	// Health reports each node of the cluster, as it is now (or as a
	// check at most a minute old found it: KMS waits 250 ms at most).
	Health(ctx context.Context) []NodeHealth
}

// Caller is who sent a request, for the Backend and the Event.
type Caller struct {
	Prefix      string // the URI path prefix, "" for none
	AccessKeyID string // the SigV4 access key that signed it
	Metadata    RequestMetadata
}

type callerKey struct{}

// CallerFrom answers the Caller of the request a Backend call serves.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Event reports one answered API request (never a ping): for the audit
// trail and the spec's logging advice. It holds no plaintext, key or
// secret.
type Event struct {
	Operation   string // one of the Op* constants; "" when the path named none
	Prefix      string
	KeyID       string
	AccessKeyID string // "" before SigV4 passed
	Metadata    RequestMetadata
	Status      int    // the HTTP status answered
	ErrorName   string // "" on success
	Rule        int    // the secondary authorization rule that allowed it, -1 for none
	Duration    time.Duration
}

// Limits bounds the sizes the proxy accepts; a larger value is refused
// with UnsupportedOperationException, as the spec's error table says.
type Limits struct {
	Plaintext int // plaintext (Encrypt) and ciphertext (Decrypt) bytes; 0 is 4300, the spec's minimum
	AAD       int // additionalAuthenticatedData bytes; 0 is 8192, the spec's minimum; at most 65535
}

// Config configures a Handler.
type Config struct {
	Backend     Backend      // required
	Credentials *Credentials // required; may be changed while serving
	// MetadataKey authenticates ciphertextMetadata (MetadataKeySize bytes).
	// Every node serving the same keys must have the same one, and it must
	// outlive every ciphertext: without it nothing can be decrypted.
	MetadataKey []byte
	// Authorizer is the secondary authorization; nil is none.
	Authorizer *Authorizer
	Limits     Limits
	// Verifier checks SigV4; nil builds one for Service that accepts every
	// region. One given must have Service set to Service.
	Verifier *sigv4.Verifier
	// PingPath is the load balancers' health path (GET or HEAD, no
	// authentication); "" is "/ping".
	PingPath string
	// Vendor and Model fill xksProxyVendor/ekmVendor and xksProxyModel;
	// FleetSize is xksProxyFleetSize (0 is 1).
	Vendor, Model string
	FleetSize     int
	// Observe, if set, is called once per API request, after the answer.
	Observe func(Event)
	// Now is the clock of Event.Duration; nil is time.Now.
	Now func() time.Time
}

// Handler serves the XKS Proxy API. It is safe for concurrent use.
type Handler struct {
	c       Config
	v       *sigv4.Verifier
	maxBody int64
}

// New checks c and makes its Handler.
func New(c Config) (*Handler, error) {
	switch {
	case c.Backend == nil:
		return nil, errors.New("xks: Config.Backend is required")
	case c.Credentials == nil:
		return nil, errors.New("xks: Config.Credentials is required")
	case len(c.MetadataKey) != MetadataKeySize:
		return nil, fmt.Errorf("xks: Config.MetadataKey must be %d bytes", MetadataKeySize)
	case c.Limits.Plaintext < 0 || c.Limits.AAD < 0 || c.Limits.AAD > 65535:
		return nil, errors.New("xks: Config.Limits: sizes are 0 (the default) or positive, and AAD is at most 65535")
	}
	if c.Limits.Plaintext == 0 {
		c.Limits.Plaintext = 4300
	}
	if c.Limits.AAD == 0 {
		c.Limits.AAD = 8192
	}
	if c.PingPath == "" {
		c.PingPath = "/ping"
	}
	if c.Vendor == "" {
		c.Vendor = "openhsm"
	}
	if c.Model == "" {
		c.Model = "openhsm XKS proxy (API v1)"
	}
	if c.FleetSize <= 0 {
		c.FleetSize = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.MetadataKey = bytes.Clone(c.MetadataKey)
	v := c.Verifier
	if v == nil {
		v = &sigv4.Verifier{Service: Service, Regions: func(r string) bool { return r != "" }}
	} else if v.Service != Service {
		return nil, fmt.Errorf("xks: Config.Verifier.Service is %q, not %q", v.Service, Service)
	}
	// Base64 of both limits, and room for requestMetadata (ARNs up to 2048
	// characters each) and the rest.
	maxBody := int64(4*(c.Limits.Plaintext+c.Limits.AAD+2*metadataLen+32)/3) + 64<<10
	return &Handler{c: c, v: v, maxBody: maxBody}, nil
}

// keyIDForm is the spec's externalKeyId: 1-128 of A-Z a-z 0-9 - _ .
var keyIDForm = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// route is a parsed API path.
type route struct {
	prefix, op, keyID string
}

// parsePath reads <prefix>/kms/xks/v1/health and
// <prefix>/kms/xks/v1/keys/<keyId>/{metadata,encrypt,decrypt}; the prefix
// ends at the first /kms/xks/v1/. ok is false for any other path.
func parsePath(p string) (route, bool) {
	i := strings.Index(p, apiRoot)
	if i < 0 {
		return route{}, false
	}
	r := route{prefix: p[:i]}
	rest := p[i+len(apiRoot):]
	if rest == "health" {
		r.op = OpHealth
		return r, true
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] != "keys" {
		return route{}, false
	}
	switch parts[2] {
	case "metadata":
		r.op = OpMetadata
	case "encrypt":
		r.op = OpEncrypt
	case "decrypt":
		r.op = OpDecrypt
	default:
		return route{}, false
	}
	r.keyID = parts[1]
	return r, true
}

// ServeHTTP answers one request; see the package doc for the order of the
// checks.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == h.c.PingPath {
		h.ping(w, r)
		return
	}
	start := h.c.Now()
	ev := Event{Rule: -1}
	rt, ok := parsePath(r.URL.Path)
	if ok {
		ev.Operation, ev.Prefix, ev.KeyID = rt.op, rt.prefix, rt.keyID
	}
	status, errName := h.serve(w, r, rt, ok, &ev)
	if h.c.Observe != nil {
		ev.Status, ev.ErrorName, ev.Duration = status, errName, h.c.Now().Sub(start)
		h.c.Observe(ev)
	}
}

// serve answers an API request and reports the status and errorName sent.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt route, routed bool, ev *Event) (int, string) {
	if !routed {
		return writeError(w, newError(InvalidURIPathException, "The URI path is not an XKS Proxy API v1 path."))
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XKS Proxy API requests must be POST.", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed, ""
	}
	if !validPrefix(rt.prefix) || !h.c.Credentials.has(rt.prefix) {
		return writeError(w, newError(InvalidURIPathException, "No external key store is served under this URI path."))
	}
	if rt.op != OpHealth && !keyIDForm.MatchString(rt.keyID) {
		return writeError(w, newError(InvalidURIPathException, "The external key ID in the URI path is not 1 to 128 of A-Z, a-z, 0-9, '-', '_' and '.'."))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return writeError(w, newError(UnsupportedOperationException, fmt.Sprintf("The request body is larger than this proxy accepts (%d bytes).", h.maxBody)))
		}
		return writeError(w, newError(ValidationException, "The request body could not be read."))
	}
	id, err := h.v.Verify(r, body, h.c.Credentials.secrets(rt.prefix))
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return writeError(w, newError(AuthenticationFailedException, cleanMessage(se.Code+": "+se.Message)))
		}
		return writeError(w, newError(InternalException, "The credentials could not be read."))
	}
	ev.AccessKeyID = id.AccessKeyID
	caller := Caller{Prefix: rt.prefix, AccessKeyID: id.AccessKeyID}

	var out any
	var xe *Error
	switch rt.op {
	case OpHealth:
		out, xe = h.health(r.Context(), body, &caller, ev)
	case OpMetadata:
		out, xe = h.metadata(r.Context(), rt.keyID, body, &caller, ev)
	case OpEncrypt:
		out, xe = h.encrypt(r.Context(), rt.keyID, body, &caller, ev)
	case OpDecrypt:
		out, xe = h.decrypt(r.Context(), rt.keyID, body, &caller, ev)
	}
	if xe != nil {
		return writeError(w, xe)
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK, ""
}

// ping is the load balancers' health check: 200 "OK" while at least one
// HSM node is ACTIVE or DEGRADED, 503 otherwise. It needs no signature
// and tells nothing but that.
func (h *Handler) ping(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if usable(h.c.Backend.Health(r.Context())) == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "UNAVAILABLE\n")
		return
	}
	io.WriteString(w, "OK\n")
}

// usable counts the nodes that can serve traffic.
func usable(nodes []NodeHealth) int {
	n := 0
	for _, nd := range nodes {
		if nd.Status == HealthActive || nd.Status == HealthDegraded {
			n++
		}
	}
	return n
}

// decode reads body into v; a body that is not one JSON object of the
// right shape is ValidationException. Unknown fields are ignored (KMS may
// add requestMetadata fields).
func decode(body []byte, v any) *Error {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return newError(ValidationException, "The request body is not valid JSON of this operation's shape (Base64 fields must be standard Base64).")
	}
	if d.More() {
		return newError(ValidationException, "The request body has data after its JSON object.")
	}
	return nil
}

// checkMetadata refuses a requestMetadata without the fields the spec
// makes REQUIRED for op; their values are not otherwise checked.
func checkMetadata(op string, md *RequestMetadata) *Error {
	if md == nil {
		return newError(ValidationException, "requestMetadata is required.")
	}
	var missing []string
	if md.KMSRequestID == "" {
		missing = append(missing, "kmsRequestId")
	}
	if md.KMSOperation == "" {
		missing = append(missing, "kmsOperation")
	}
	if op != OpHealth && md.AWSPrincipalARN == "" {
		missing = append(missing, "awsPrincipalArn")
	}
	if (op == OpEncrypt || op == OpDecrypt) && md.KMSKeyARN == "" {
		missing = append(missing, "kmsKeyArn")
	}
	if len(missing) > 0 {
		return newError(ValidationException, "requestMetadata lacks "+strings.Join(missing, ", ")+".")
	}
	return nil
}

// authorize runs the secondary authorization and puts the caller in ctx.
func (h *Handler) authorize(ctx context.Context, op, keyID string, md *RequestMetadata, c *Caller, ev *Event) (context.Context, *Error) {
	if e := checkMetadata(op, md); e != nil {
		return ctx, e
	}
	c.Metadata = *md
	ev.Metadata = *md
	if op != OpHealth {
		ok, rule := h.c.Authorizer.Allow(keyID, *md)
		ev.Rule = rule
		if !ok {
			return ctx, newError(AccessDeniedException, "The proxy's secondary authorization does not allow this principal, KMS key and operation on this external key.")
		}
	}
	return context.WithValue(ctx, callerKey{}, *c), nil
}

func (h *Handler) health(ctx context.Context, body []byte, c *Caller, ev *Event) (any, *Error) {
	var req HealthRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	ctx, e := h.authorize(ctx, OpHealth, "", req.RequestMetadata, c, ev)
	if e != nil {
		return nil, e
	}
	nodes := h.c.Backend.Health(ctx)
	if usable(nodes) == 0 {
		return nil, newError(InternalException, "No HSM node of the cluster can serve requests.")
	}
	out := HealthResponse{
		XKSProxyFleetSize: h.c.FleetSize,
		XKSProxyVendor:    h.c.Vendor,
		XKSProxyModel:     h.c.Model,
		EKMVendor:         h.c.Vendor,
	}
	for _, n := range nodes {
		if len(out.EKMFleetDetails) == 10 { // the spec's maximum
			break
		}
		st := n.Status
		if st != HealthActive && st != HealthDegraded {
			st = HealthUnavailable
		}
		out.EKMFleetDetails = append(out.EKMFleetDetails, FleetDetail{ID: n.ID, Model: n.Model, HealthStatus: st})
	}
	return out, nil
}

func (h *Handler) metadata(ctx context.Context, keyID string, body []byte, c *Caller, ev *Event) (any, *Error) {
	var req MetadataRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	ctx, e := h.authorize(ctx, OpMetadata, keyID, req.RequestMetadata, c, ev)
	if e != nil {
		return nil, e
	}
	m, err := h.c.Backend.KeyMetadata(ctx, keyID)
	if err != nil {
		return nil, backendError(err)
	}
	if m.KeySpec == "" || len(m.KeyUsage) == 0 || len(m.KeyUsage) > 10 ||
		(m.KeyStatus != KeyEnabled && m.KeyStatus != KeyDisabled) {
		return nil, newError(InternalException, "The HSM cluster described the key in a form the API cannot carry.")
	}
	return MetadataResponse{KeySpec: m.KeySpec, KeyUsage: m.KeyUsage, KeyStatus: m.KeyStatus}, nil
}

// ivSize is the IV this proxy makes: 96 bits, GCM's native size.
const ivSize = 12

// tagSize is the spec's authentication tag size.
const tagSize = 16

func (h *Handler) checkAlgorithm(alg string) *Error {
	if alg != "AES_GCM" {
		return newError(ValidationException, "encryptionAlgorithm must be AES_GCM.")
	}
	return nil
}

func (h *Handler) checkSizes(what string, n, aad int) *Error {
	if n > h.c.Limits.Plaintext {
		return newError(UnsupportedOperationException, fmt.Sprintf("The %s is %d bytes; this proxy accepts at most %d.", what, n, h.c.Limits.Plaintext))
	}
	if aad > h.c.Limits.AAD {
		return newError(UnsupportedOperationException, fmt.Sprintf("The additionalAuthenticatedData is %d bytes; this proxy accepts at most %d.", aad, h.c.Limits.AAD))
	}
	return nil
}

func (h *Handler) encrypt(ctx context.Context, keyID string, body []byte, c *Caller, ev *Event) (any, *Error) {
	var req EncryptRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	ctx, e := h.authorize(ctx, OpEncrypt, keyID, req.RequestMetadata, c, ev)
	if e != nil {
		return nil, e
	}
	if req.Plaintext == nil {
		return nil, newError(ValidationException, "plaintext is required.")
	}
	if e := h.checkAlgorithm(req.EncryptionAlgorithm); e != nil {
		return nil, e
	}
	if a := req.CiphertextDataIntegrityValueAlgorithm; a != "" && a != "SHA_256" {
		return nil, newError(ValidationException, "ciphertextDataIntegrityValueAlgorithm must be SHA_256.")
	}
	pt, aad := *req.Plaintext, req.AdditionalAuthenticatedData
	if e := h.checkSizes("plaintext", len(pt), len(aad)); e != nil {
		return nil, e
	}
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, newError(InternalException, "No random IV could be made.")
	}
	full := gcmAAD(aad)
	ct, tag, version, err := h.c.Backend.Encrypt(ctx, keyID, pt, full, iv)
	if err != nil {
		return nil, backendError(err)
	}
	if len(ct) != len(pt) || len(tag) != tagSize {
		return nil, newError(InternalException, "The HSM cluster answered an AES-GCM result of the wrong size.")
	}
	md := sealMetadata(h.c.MetadataKey, keyID, version, iv, tag)
	out := EncryptResponse{Ciphertext: ct, CiphertextMetadata: md, InitializationVector: iv, AuthenticationTag: tag}
	if req.CiphertextDataIntegrityValueAlgorithm != "" {
		// Appendix C: the CDIV first, then a decryption of exactly what is
		// returned, so that a fault after the encryption shows now.
		out.CiphertextDataIntegrityValue = cdiv(aad, md, iv, ct, tag)
		back, err := h.c.Backend.Decrypt(ctx, keyID, version, bytes.Clone(ct), full, bytes.Clone(iv), bytes.Clone(tag))
		if err != nil || !bytes.Equal(back, pt) {
			return nil, newError(InternalException, "The HSM cluster could not decrypt the ciphertext it had just made.")
		}
	}
	return out, nil
}

func (h *Handler) decrypt(ctx context.Context, keyID string, body []byte, c *Caller, ev *Event) (any, *Error) {
	var req DecryptRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	ctx, e := h.authorize(ctx, OpDecrypt, keyID, req.RequestMetadata, c, ev)
	if e != nil {
		return nil, e
	}
	if e := h.checkAlgorithm(req.EncryptionAlgorithm); e != nil {
		return nil, e
	}
	if req.Ciphertext == nil {
		return nil, newError(ValidationException, "ciphertext is required.")
	}
	ct, aad := *req.Ciphertext, req.AdditionalAuthenticatedData
	if e := h.checkSizes("ciphertext", len(ct), len(aad)); e != nil {
		return nil, e
	}
	if len(req.CiphertextMetadata) > metadataLen {
		return nil, newError(ValidationException, "ciphertextMetadata is longer than 20 bytes.")
	}
	iv, tag := req.InitializationVector, req.AuthenticationTag
	switch {
	case len(iv) != 12 && len(iv) != 16:
		return nil, newError(InvalidCiphertextException, "initializationVector must be 12 or 16 bytes.")
	case len(tag) != tagSize:
		return nil, newError(InvalidCiphertextException, "authenticationTag must be 16 bytes.")
	case len(req.CiphertextMetadata) == 0:
		return nil, newError(InvalidCiphertextException, "ciphertextMetadata is missing; this proxy returns one with every ciphertext.")
	}
	version, ok := openMetadata(h.c.MetadataKey, keyID, req.CiphertextMetadata, iv, tag)
	if !ok {
		return nil, newError(InvalidCiphertextException, msgInvalidCiphertext)
	}
	pt, err := h.c.Backend.Decrypt(ctx, keyID, version, ct, gcmAAD(aad), iv, tag)
	if err != nil {
		return nil, backendError(err)
	}
	if len(pt) != len(ct) {
		return nil, newError(InternalException, "The HSM cluster answered a plaintext of the wrong size.")
	}
	return DecryptResponse{Plaintext: pt}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errorName":"InternalException"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *Error) (int, string) {
	st := e.Status()
	writeJSON(w, st, ErrorResponse{ErrorName: e.Name, ErrorMessage: cleanMessage(e.Message)})
	return st, e.Name
}
