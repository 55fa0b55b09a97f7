package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/sigv4"
)

// The test principal. The secret is AWS's documentation example; the
// tests check that no answer and no log line holds it.
const (
	testAKID      = "AKIDEXAMPLE"
	testSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testPrincipal = "alice"
	testRegion    = "us-east-1"
	testRemote    = "192.0.2.7:40123"
)

// signTime is when the direct (recorder) tests sign; their verifier's
// clock stands a little after it.
var signTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testSecrets() sigv4.Secrets {
	return sigv4.SecretsFunc(func(id string) ([]byte, string, error) {
		if id != testAKID {
			return nil, "", sigv4.ErrUnknownAccessKey
		}
		return []byte(testSecret), testPrincipal, nil
	})
}

// stubService answers each operation with its function in ops, and
// counts the calls. An operation without a function answers its input.
type stubService struct {
	ops   map[string]func(*call.Request) (model.Object, error)
	calls atomic.Int64
	mu    sync.Mutex
	last  *call.Request
}

func (s *stubService) Call(ctx context.Context, r *call.Request) (model.Object, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.last = r
	s.mu.Unlock()
	if f, ok := s.ops[r.Op]; ok {
		return f(r)
	}
	return r.Input, nil
}

func (s *stubService) lastRequest() *call.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// auditLog keeps the events the handler sends.
type auditLog struct {
	mu     sync.Mutex
	events []audit.KMSEvent
}

func (a *auditLog) record(e audit.KMSEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *auditLog) all() []audit.KMSEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.KMSEvent(nil), a.events...)
}

// syncBuffer is a log sink the handler may write from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is a handler over a stub service, with its trail and log.
type fixture struct {
	h     *Handler
	svc   *stubService
	trail *auditLog
	log   *syncBuffer
}

// newFixture builds a handler whose verifier's clock stands at signTime
// (plus 2 s); cfg's Verifier, Secrets, Service, Audit and Log are filled
// in where nil.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{svc: &stubService{}, trail: &auditLog{}, log: &syncBuffer{}}
	if cfg.Verifier == nil {
		cfg.Verifier = &sigv4.Verifier{
			Regions: sigv4.RegionSet(testRegion),
			Now:     func() time.Time { return signTime.Add(2 * time.Second) },
		}
	}
	if cfg.Secrets == nil {
		cfg.Secrets = testSecrets()
	}
	if cfg.Service == nil {
		cfg.Service = f.svc
	}
	if cfg.Audit == nil {
		cfg.Audit = f.trail.record
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(f.log, nil))
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return signTime.Add(time.Second) }
	}
	f.h = New(cfg)
	return f
}

// kmsRequest is a KMS request of op with body, from testRemote.
func kmsRequest(op string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://kms.test/", bytes.NewReader(body))
	r.RemoteAddr = testRemote
	r.Header.Set("Content-Type", ContentType)
	if op != "" {
		r.Header.Set("X-Amz-Target", TargetPrefix+op)
	}
	return r
}

// sign signs r (whose body is body) with aws-sdk-go-v2's SigV4 signer
// at signTime.
func sign(t testing.TB, r *http.Request, body []byte, akid, secret string) {
	t.Helper()
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), "kms", testRegion, signTime)
	require.NoError(t, err)
}

// serve runs r through the handler and returns the recorded answer.
func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// errorAnswer checks the headers every KMS answer carries and decodes an
// error body: its __type and message (and whether message was present).
func errorAnswer(t testing.TB, w *httptest.ResponseRecorder) (typ, msg string, hasMsg bool) {
	t.Helper()
	assert.Equal(t, ContentType, w.Header().Get("Content-Type"))
	assert.Regexp(t, uuidV4, w.Header().Get("x-amzn-RequestId"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), "body: %s", w.Body.String())
	for k := range m {
		assert.Contains(t, []string{"__type", "message"}, k, "an error body has only __type and message")
	}
	typ, _ = m["__type"].(string)
	msg, hasMsg = m["message"].(string)
	if hasMsg {
		assert.NotEmpty(t, msg, "an empty message is left out")
	}
	return typ, msg, hasMsg
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// noSecrets checks that s holds no secret of the tests.
func noSecrets(t testing.TB, s string, extra ...string) {
	t.Helper()
	for _, secret := range append([]string{testSecret}, extra...) {
		assert.NotContains(t, s, secret)
	}
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
