// Package sigv4 verifies AWS Signature Version 4 on the requests of the KMS
// API (docs/kms.md, Authentication).
//
// # Contract
//
// Verifier.Verify(r, body, secrets) answers either an *Identity (the
// principal, the access key ID, the region of the credential scope and the
// signing time) or an error. It reads r and body and changes neither.
//
//   - A refused request is an *Error: AWS's exception name (Code) and AWS's
//     message, to be answered with HTTP 400 as
//     {"__type": Code, "message": Message}. The codes are
//     MissingAuthenticationTokenException (no Authorization header, or not
//     a SigV4 one), IncompleteSignatureException (a SigV4 header that cannot
//     be read), InvalidSignatureException (a signature that does not match,
//     is outside the window, or whose scope names another region, service,
//     date or terminator) and UnrecognizedClientException (an access key
//     that Secrets does not know, or a session token). errors.go lists each
//     message with the source it was checked against.
//   - Any other error comes from Secrets (a secret that exists but cannot be
//     read now) and is the service's fault: answer it with a 5xx.
//   - Nothing Verify returns holds a secret access key, a signing key or the
//     signature it computed. Verify logs nothing.
//
// What is checked, in the order AWS checks it, so that a request with
// several faults gets the answer AWS would give:
//
//  1. Presigned (query-string) authentication is refused: the KMS clients
//     (the AWS SDKs and the AWS CLI) sign with the Authorization header, and
//     KMS has no use for presigned URLs. With an Authorization header as
//     well, the answer is AWS's "Found both ..." refusal.
//  2. An Authorization header, exactly one, starting "AWS4-".
//  3. Its parameters: Credential, SignedHeaders and Signature, and an
//     X-Amz-Date header (or, without one, Date) in ISO 8601 basic format
//     (Date may also be an HTTP date).
//  4. The time: at most Window (5 minutes) before or after Now.
//  5. host, and the date header used, among the signed headers.
//  6. The algorithm: AWS4-HMAC-SHA256.
//  7. The credential scope AKID/YYYYMMDD/region/service/aws4_request: the
//     region one that Regions accepts, the service Service ("kms"), the
//     terminator aws4_request, the date the date of X-Amz-Date.
//  8. No X-Amz-Security-Token (this service issues no temporary
//     credentials), and an access key ID that Secrets knows.
//  9. X-Amz-Content-Sha256, when present, is the SHA-256 of body.
//  10. The signature: the canonical request is rebuilt from exactly the
//     signed headers (names lowercased, values trimmed and runs of spaces
//     collapsed, repeated headers joined by commas), the path encoded twice
//     as every service but S3 signs it, the query sorted after encoding,
//     and the SHA-256 of body; the string to sign and the signing key are
//     derived from the scope; the two signatures are compared with
//     hmac.Equal. Headers that are not signed are ignored, so a proxy may
//     add some.
//
// Signing keys are cached per access key, secret, date, region and service
// (the map key is a SHA-256 of them all, so a rotated secret never meets a
// stale key), at most CacheSize of them; a full cache drops an entry at
// random. A Verifier is safe for concurrent use and must not be copied
// after its first use.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnknownAccessKey is what Secrets answers for an access key ID it does
// not know (or an error that wraps it); Verify turns it into
// UnrecognizedClientException.
var ErrUnknownAccessKey = errors.New("sigv4: unknown access key ID")

// Secrets finds the secret access key of an access key ID, and the
// principal that owns it.
//
// Secret answers ErrUnknownAccessKey (or an error wrapping it) for a key it
// does not know, and any other error when it cannot tell now (a sealed
// store that cannot be read): Verify passes that error on untouched, for a
// 5xx answer. Verify does not keep or change the secret slice.
type Secrets interface {
	Secret(accessKeyID string) (secret []byte, principal string, err error)
}

// SecretsFunc is a function that is a Secrets.
type SecretsFunc func(accessKeyID string) ([]byte, string, error)

// Secret calls f.
func (f SecretsFunc) Secret(accessKeyID string) ([]byte, string, error) { return f(accessKeyID) }

// Identity is who signed a verified request.
type Identity struct {
	Principal   string    // from Secrets
	AccessKeyID string    // from the credential scope
	Region      string    // from the credential scope; one that Regions accepts
	Time        time.Time // the signing time (X-Amz-Date or Date), UTC
}

// DefaultWindow is how far a signing time may be from the server's clock,
// either way, as AWS allows.
const DefaultWindow = 5 * time.Minute

// DefaultCacheSize bounds the signing key cache when CacheSize is 0.
const DefaultCacheSize = 4096

// Verifier verifies SigV4 requests. Its zero value takes the defaults
// below but accepts no region: set Regions.
type Verifier struct {
	// Service is the service every credential scope must name; "" is "kms".
	Service string
	// Regions accepts the regions this service serves. nil accepts none.
	Regions func(region string) bool
	// Now is the server's clock; nil is time.Now.
	Now func() time.Time
	// Window is how far the signing time may be from Now, either way; 0 is
	// DefaultWindow.
	Window time.Duration
	// CacheSize bounds the signing key cache; 0 is DefaultCacheSize, and a
	// negative size caches nothing.
	CacheSize int

	mu   sync.Mutex
	keys map[[32]byte][32]byte
}

// RegionSet is a Regions function that accepts exactly the names given.
func RegionSet(names ...string) func(string) bool {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return func(r string) bool {
		_, ok := set[r]
		return ok
	}
}

func (v *Verifier) service() string {
	if v.Service == "" {
		return "kms"
	}
	return v.Service
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

func (v *Verifier) window() time.Duration {
	if v.Window <= 0 {
		return DefaultWindow
	}
	return v.Window
}

// Verify checks the SigV4 signature of r, whose body (already read by the
// caller) is body, against the secrets of s. See the package doc for what
// is checked and what it answers.
func (v *Verifier) Verify(r *http.Request, body []byte, s Secrets) (*Identity, error) {
	authHeaders := r.Header.Values("Authorization")
	presigned := r.URL.Query().Has("X-Amz-Algorithm")
	switch {
	case presigned && len(authHeaders) > 0:
		return nil, newError(CodeInvalidSignature, msgBothAuth)
	case presigned:
		return nil, newError(CodeIncompleteSignature, msgPresigned)
	case len(authHeaders) == 0 || !strings.HasPrefix(strings.TrimSpace(authHeaders[0]), "AWS4-"):
		return nil, newError(CodeMissingAuthenticationToken, msgMissingToken)
	case len(authHeaders) > 1:
		return nil, newError(CodeIncompleteSignature, msgManyAuthorization)
	}
	header := authHeaders[0]

	// The date: X-Amz-Date, or else Date.
	dateName, dateValues := "X-Amz-Date", r.Header.Values("X-Amz-Date")
	if len(dateValues) == 0 {
		dateName, dateValues = "Date", r.Header.Values("Date")
	}
	auth, aerr := parseAuthorization(header, len(dateValues) > 0)
	if aerr != nil {
		return nil, aerr
	}
	dateText := strings.Join(dateValues, ",")
	t, ok := parseDate(dateName, dateText)
	if !ok {
		return nil, errDateFormat(dateText)
	}
	amzDate := isoBasic(t)

	now := v.now()
	w := v.window()
	if t.Before(now.Add(-w)) {
		return nil, errExpired(t, now, w)
	}
	if t.After(now.Add(w)) {
		return nil, errNotYetCurrent(t, now, w)
	}

	if !slices.Contains(auth.SignedHeaders, "host") {
		return nil, newError(CodeInvalidSignature, msgHostUnsigned)
	}
	if !slices.Contains(auth.SignedHeaders, strings.ToLower(dateName)) {
		return nil, errDateUnsigned(dateName)
	}
	if auth.Algorithm != algorithm {
		return nil, errAlgorithm(auth.Algorithm)
	}
	scope, aerr := parseCredential(auth.Credential)
	if aerr != nil {
		return nil, aerr
	}
	fail := func(e *Error) (*Identity, error) {
		e.AccessKeyID = scope.AccessKeyID
		return nil, e
	}
	var faults []string
	if v.Regions == nil || !v.Regions(scope.Region) {
		faults = append(faults, scopeRegion(scope.Region))
	}
	if scope.Service != v.service() {
		faults = append(faults, scopeService(v.service()))
	}
	if scope.Terminator != terminator {
		faults = append(faults, scopeTerminator(scope.Terminator))
	}
	if want := t.Format("20060102"); scope.Date != want {
		faults = append(faults, scopeDate(scope.Date, want, amzDate))
	}
	if len(faults) > 0 {
		return fail(newError(CodeInvalidSignature, strings.Join(faults, " ")))
	}

	if len(r.Header.Values("X-Amz-Security-Token")) > 0 {
		return fail(newError(CodeUnrecognizedClient, msgUnknownKey))
	}
	secret, principal, err := s.Secret(scope.AccessKeyID)
	if errors.Is(err, ErrUnknownAccessKey) {
		return fail(newError(CodeUnrecognizedClient, msgUnknownKey))
	}
	if err != nil {
		return nil, err
	}

	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if given := r.Header.Values("X-Amz-Content-Sha256"); len(given) > 0 {
		if len(given) != 1 || given[0] != payloadHash {
			return fail(newError(CodeInvalidSignature, msgContentSHA256))
		}
	}

	canonical, ok := canonicalRequest(r, auth.SignedHeaders, payloadHash)
	toSign := stringToSign(amzDate, scope, canonical)
	if !ok {
		return fail(mismatch(canonical, toSign))
	}
	key := v.signingKey(scope, secret)
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(toSign))
	expected := make([]byte, hex.EncodedLen(sha256.Size))
	hex.Encode(expected, m.Sum(nil))
	if !hmac.Equal(expected, []byte(auth.Signature)) {
		return fail(mismatch(canonical, toSign))
	}
	return &Identity{Principal: principal, AccessKeyID: scope.AccessKeyID, Region: scope.Region, Time: t}, nil
}

// parseDate reads the signing time: X-Amz-Date in ISO 8601 basic format;
// Date in that format or as an HTTP date.
func parseDate(name, value string) (time.Time, bool) {
	if t, err := time.Parse(isoBasicLayout, value); err == nil && len(value) == len(isoBasicLayout) {
		return t, true
	}
	if name == "Date" {
		if t, err := http.ParseTime(value); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// signingKey is the scope's signing key for secret, from the cache when it
// is there.
func (v *Verifier) signingKey(scope credentialScope, secret []byte) [32]byte {
	limit := v.CacheSize
	if limit == 0 {
		limit = DefaultCacheSize
	}
	if limit < 0 {
		return signingKey(secret, scope.Date, scope.Region, scope.Service)
	}
	id := cacheID(scope, secret)
	v.mu.Lock()
	key, ok := v.keys[id]
	v.mu.Unlock()
	if ok {
		return key
	}
	key = signingKey(secret, scope.Date, scope.Region, scope.Service)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		v.keys = make(map[[32]byte][32]byte)
	}
	for len(v.keys) >= limit {
		for k := range v.keys { // Go's map order is random: a random victim
			delete(v.keys, k)
			break
		}
	}
	v.keys[id] = key
	return key
}

// cacheID names a signing key in the cache: a SHA-256 of everything the key
// depends on, each part length-prefixed so no two inputs share a name.
func cacheID(scope credentialScope, secret []byte) [32]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(scope.AccessKeyID), []byte(scope.Date), []byte(scope.Region), []byte(scope.Service), secret} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var id [32]byte
	h.Sum(id[:0])
	return id
}
