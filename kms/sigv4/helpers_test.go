package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"
)

// The test principal. The secret is AWS's documentation example; no test
// prints it, and the tests check that no answer holds it.
const (
	testAKID      = "AKIDEXAMPLE"
	testSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testPrincipal = "alice"
)

// signTime is when the test requests are signed.
var signTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keyring is a Secrets over a map: access key ID -> secret, principal.
type keyring map[string][2]string

func (k keyring) Secret(id string) ([]byte, string, error) {
	e, ok := k[id]
	if !ok {
		return nil, "", ErrUnknownAccessKey
	}
	return []byte(e[0]), e[1], nil
}

func testKeys() keyring { return keyring{testAKID: {testSecret, testPrincipal}} }

// testVerifier serves us-east-1 and eu-west-1 on a clock that stands at
// now.
func testVerifier(now time.Time) *Verifier {
	return &Verifier{
		Regions: RegionSet("us-east-1", "eu-west-1", "ap-southeast-2"),
		Now:     func() time.Time { return now },
	}
}

func payloadHash(body []byte) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}

// sdkSign signs r with the AWS SDK for Go's SigV4 signer (the one every
// Go KMS client uses), as akid/secret, for service and region at t.
func sdkSign(t testing.TB, r *http.Request, body []byte, akid, secret, token, service, region string, at time.Time) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, r, payloadHash(body), service, region, at))
}

// signatureOf is the Signature parameter of r's Authorization header.
func signatureOf(r *http.Request) string {
	_, sig, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
	return sig
}

// outcome is what a test server's handler saw for one request.
type outcome struct {
	id  *Identity
	err error
}

// kmsServer is an httptest server on 127.0.0.1 whose handler runs Verify on
// every request and answers as the KMS handler will: 400 with AWS's JSON
// error, or 200 with a ListKeys-shaped answer.
type kmsServer struct {
	*httptest.Server
	mu       sync.Mutex
	outcomes []outcome
}

func startKMSServer(t *testing.T, v *Verifier, s Secrets) *kmsServer {
	t.Helper()
	ks := &kmsServer{}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusInternalServerError)
			return
		}
		id, verr := v.Verify(r, body, s)
		ks.mu.Lock()
		ks.outcomes = append(ks.outcomes, outcome{id, verr})
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		var e *Error
		switch {
		case errors.As(verr, &e):
			w.WriteHeader(e.HTTPStatus())
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
		case verr != nil:
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": "KMSInternalException", "message": "internal"})
		case r.Header.Get("X-Amz-Target") == "TrentService.ListKeys":
			_, _ = io.WriteString(w, `{"Keys":[],"Truncated":false}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(ks.Close)
	return ks
}

// taken returns and forgets the outcomes seen so far.
func (ks *kmsServer) taken() []outcome {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	o := ks.outcomes
	ks.outcomes = nil
	return o
}

// newRequest is a client request with body.
func newRequest(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	return r
}
