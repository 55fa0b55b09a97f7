package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/sigv4"
)

// TestErrorMapping is the table of the package doc's Errors section:
// what each kind of error an operation (or a layer) returns is answered
// with, through the handler, and whether its cause goes to the log.
func TestErrorMapping(t *testing.T) {
	const cause = "cause-that-stays-in-the-log"
	cases := []struct {
		name   string
		err    error
		status int
		typ    string
		msg    string // "" wants no message
		logged bool
	}{
		{"kmserr as is", kmserr.New(kmserr.Disabled, "%s is disabled.", testKeyARN),
			400, "DisabledException", testKeyARN + " is disabled.", false},
		{"kmserr wrapped", fmt.Errorf("encrypt: %w", kmserr.New(kmserr.InvalidCiphertext, "")),
			400, "InvalidCiphertextException", "", false},
		{"kmserr without a message", &kmserr.Error{Type: kmserr.IncorrectKey},
			400, "IncorrectKeyException", "", false},
		{"kmserr 5xx is sent as is and logged", kmserr.New(kmserr.KeyUnavailable, "The key is unavailable."),
			500, "KeyUnavailableException", "The key is unavailable.", true},
		{"kmserr DependencyTimeout", kmserr.New(kmserr.DependencyTimeout, "Try again."),
			503, "DependencyTimeoutException", "Try again.", true},
		{"kmserr without a type", &kmserr.Error{Message: cause},
			500, "KMSInternalException", kmserr.InternalMessage, true},
		{"model error", &model.Error{Exception: model.ValidationException, Message: "1 validation error detected: x"},
			400, "ValidationException", "1 validation error detected: x", false},
		{"sigv4 error", &sigv4.Error{Code: sigv4.CodeInvalidSignature, Message: "Signature expired: x"},
			400, "InvalidSignatureException", "Signature expired: x", false},
		{"hsmerr with a kms- reason", hsmerr.KMSf(kmserr.NotFound, "Key '%s' does not exist", testKeyARN),
			400, "NotFoundException", "Key '" + testKeyARN + "' does not exist", false},
		{"hsmerr by its RV", &hsmerr.Error{RV: ck.CKR_ENCRYPTED_DATA_INVALID, Msg: "bad tag", Err: errors.New(cause)},
			400, "InvalidCiphertextException", "bad tag", false},
		{"hsmerr to a 503", &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "no quorum"},
			503, "DependencyTimeoutException", "no quorum", true},
		{"hsmerr without a KMS exception", &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: cause},
			500, "KMSInternalException", kmserr.InternalMessage, true},
		{"any other error", errors.New(cause),
			500, "KMSInternalException", kmserr.InternalMessage, true},
		{"a context error", fmt.Errorf("%s: %w", cause, context.Canceled),
			500, "KMSInternalException", kmserr.InternalMessage, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			f.svc.ops = map[string]func(*call.Request) (model.Object, error){
				"GenerateRandom": func(*call.Request) (model.Object, error) { return nil, c.err },
			}
			body := []byte(`{"NumberOfBytes":16}`)
			r := kmsRequest("GenerateRandom", body)
			sign(t, r, body, testAKID, testSecret)
			w := f.serve(r)
			assert.Equal(t, c.status, w.Code)
			typ, msg, _ := errorAnswer(t, w)
			assert.Equal(t, c.typ, typ)
			assert.Equal(t, c.msg, msg)
			if c.typ == "KMSInternalException" {
				assert.NotContains(t, w.Body.String(), cause, "an internal cause never reaches the client")
			}
			log := f.log.String()
			if c.logged {
				assert.Contains(t, log, "request_id="+w.Header().Get("x-amzn-RequestId"))
				assert.Contains(t, log, "exception="+c.typ)
			} else {
				assert.Empty(t, log)
			}
			events := f.trail.all()
			require.Len(t, events, 1)
			assert.Equal(t, c.typ, events[0].Error)
		})
	}
}

// TestPanicIsInternal: an operation that panics is answered
// KMSInternalException and logged; the trail still gets its event.
func TestPanicIsInternal(t *testing.T) {
	f := newFixture(t, Config{})
	f.svc.ops = map[string]func(*call.Request) (model.Object, error){
		"GenerateRandom": func(*call.Request) (model.Object, error) { panic("operation bug") },
	}
	body := []byte(`{"NumberOfBytes":16}`)
	r := kmsRequest("GenerateRandom", body)
	sign(t, r, body, testAKID, testSecret)
	w := f.serve(r)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	typ, msg, _ := errorAnswer(t, w)
	assert.Equal(t, "KMSInternalException", typ)
	assert.Equal(t, kmserr.InternalMessage, msg)
	assert.Contains(t, f.log.String(), "operation bug")
	require.Len(t, f.trail.all(), 1)
}

// TestOutputThatDoesNotMarshal: an output value the model does not know
// is an internal error, not a half-written answer.
func TestOutputThatDoesNotMarshal(t *testing.T) {
	f := newFixture(t, Config{})
	f.svc.ops = map[string]func(*call.Request) (model.Object, error){
		"GenerateRandom": func(*call.Request) (model.Object, error) {
			return model.Object{"Plaintext": 3.5}, nil
		},
	}
	body := []byte(`{"NumberOfBytes":16}`)
	r := kmsRequest("GenerateRandom", body)
	sign(t, r, body, testAKID, testSecret)
	w := f.serve(r)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	typ, _, _ := errorAnswer(t, w)
	assert.Equal(t, "KMSInternalException", typ)
	assert.Contains(t, f.log.String(), "does not marshal")
}

// TestSecretsFailure: a Secrets that cannot answer now (not an unknown
// key) is the service's fault: a 500, logged, with the access key ID in
// the trail.
func TestSecretsFailure(t *testing.T) {
	f := newFixture(t, Config{Secrets: sigv4.SecretsFunc(func(string) ([]byte, string, error) {
		return nil, "", errors.New("sealed store unreadable")
	})})
	body := []byte(`{"NumberOfBytes":16}`)
	r := kmsRequest("GenerateRandom", body)
	sign(t, r, body, testAKID, testSecret)
	w := f.serve(r)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	typ, _, _ := errorAnswer(t, w)
	assert.Equal(t, "KMSInternalException", typ)
	assert.Contains(t, f.log.String(), "sealed store unreadable")
	assert.Zero(t, f.svc.calls.Load())
	events := f.trail.all()
	require.Len(t, events, 1)
	assert.Equal(t, testAKID, events[0].Principal)
}
