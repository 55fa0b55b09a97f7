package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFramingRefusals: every refusal before the operation runs answers
// its exception with the right status, never reaches the service, and
// leaves exactly one audit event naming the exception.
func TestFramingRefusals(t *testing.T) {
	random := []byte(`{"NumberOfBytes":16}`)
	signed := func(op string, body []byte) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := kmsRequest(op, body)
			sign(t, r, body, testAKID, testSecret)
			return r
		}
	}
	// withHeaders signs a GenerateRandom request after changing its headers.
	withHeaders := func(edit func(http.Header)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", random)
			edit(r.Header)
			sign(t, r, random, testAKID, testSecret)
			return r
		}
	}
	cases := []struct {
		name      string
		maxBody   int64
		build     func(t *testing.T) *http.Request
		status    int
		typ       string
		msg       string // the message's start; "" wants none
		principal string
		op        string
	}{
		{name: "unknown target", build: signed("NoSuchOperation", random),
			status: 400, typ: "UnknownOperationException", principal: testAKID},
		{name: "target of another service", build: withHeaders(func(h http.Header) {
			h.Set("X-Amz-Target", "Kinesis_20131202.GenerateRandom")
		}), status: 400, typ: "UnknownOperationException", principal: testAKID},
		{name: "target without prefix", build: withHeaders(func(h http.Header) {
			h.Set("X-Amz-Target", "GenerateRandom")
		}), status: 400, typ: "UnknownOperationException", principal: testAKID},
		{name: "target in another case", build: withHeaders(func(h http.Header) {
			h.Set("X-Amz-Target", "TrentService.generaterandom")
		}), status: 400, typ: "UnknownOperationException", principal: testAKID},
		{name: "two targets", build: withHeaders(func(h http.Header) {
			h.Add("X-Amz-Target", "TrentService.GenerateRandom")
		}), status: 400, typ: "UnknownOperationException", principal: testAKID},
		{name: "no target", build: signed("", random),
			status: 400, typ: "UnknownOperationException", principal: testAKID},
		{name: "wrong content type", build: withHeaders(func(h http.Header) {
			h.Set("Content-Type", "application/json")
		}), status: 400, typ: "UnknownOperationException", msg: "Content-Type must be application/x-amz-json-1.1.",
			principal: testAKID, op: "GenerateRandom"},
		{name: "JSON 1.0 content type", build: withHeaders(func(h http.Header) {
			h.Set("Content-Type", "application/x-amz-json-1.0")
		}), status: 400, typ: "UnknownOperationException", msg: "Content-Type must be",
			principal: testAKID, op: "GenerateRandom"},
		{name: "no content type", build: withHeaders(func(h http.Header) { h.Del("Content-Type") }),
			status: 400, typ: "UnknownOperationException", msg: "Content-Type must be",
			principal: testAKID, op: "GenerateRandom"},
		{name: "wrong method GET", build: func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", nil)
			r.Method = http.MethodGet
			sign(t, r, nil, testAKID, testSecret)
			return r
		}, status: 400, typ: "AccessDeniedException", msg: "Unable to determine service/operation name to be authorized",
			principal: testAKID, op: "GenerateRandom"},
		{name: "wrong method PUT, unsigned", build: func(t *testing.T) *http.Request {
			r := kmsRequest("", random)
			r.Method = http.MethodPut
			return r
		}, status: 400, typ: "AccessDeniedException", msg: "Unable to determine service/operation name to be authorized"},
		{name: "wrong path", build: func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", random)
			r.URL.Path = "/kms"
			sign(t, r, random, testAKID, testSecret)
			return r
		}, status: 400, typ: "UnknownOperationException", msg: "The KMS API is served at POST / only.",
			principal: testAKID, op: "GenerateRandom"},
		{name: "POST to the health path", build: func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", random)
			r.URL.Path = HealthPath
			return r
		}, status: 400, typ: "UnknownOperationException", msg: "The KMS API is served at POST / only.",
			op: "GenerateRandom"},
		{name: "oversized body with a Content-Length", maxBody: 64,
			build:  signed("GenerateRandom", []byte(`{"NumberOfBytes":16,"x":"`+strings.Repeat("a", 64)+`"}`)),
			status: 413, typ: "RequestEntityTooLargeException", msg: "Request body is larger than the 64 bytes",
			principal: testAKID, op: "GenerateRandom"},
		{name: "oversized chunked body", maxBody: 64, build: func(t *testing.T) *http.Request {
			body := []byte(`{"NumberOfBytes":16,"x":"` + strings.Repeat("a", 64) + `"}`)
			r := kmsRequest("GenerateRandom", body)
			sign(t, r, body, testAKID, testSecret)
			r.ContentLength = -1 // as a chunked request arrives
			r.Body = io.NopCloser(bytes.NewReader(body))
			return r
		}, status: 413, typ: "RequestEntityTooLargeException", msg: "Request body is larger than the 64 bytes",
			principal: testAKID, op: "GenerateRandom"},
		{name: "body of exactly the bound is read", maxBody: int64(len(`{"NumberOfBytes":1025}`)),
			build:  signed("GenerateRandom", []byte(`{"NumberOfBytes":1025}`)),
			status: 400, typ: "ValidationException",
			msg:       "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
			principal: testPrincipal, op: "GenerateRandom"},
		{name: "malformed JSON", build: signed("GenerateRandom", []byte(`{"NumberOfBytes":`)),
			status: 400, typ: "SerializationException", principal: testPrincipal, op: "GenerateRandom"},
		{name: "empty body", build: signed("GenerateRandom", nil),
			status: 400, typ: "SerializationException", principal: testPrincipal, op: "GenerateRandom"},
		{name: "wrong JSON type", build: signed("GenerateRandom", []byte(`{"NumberOfBytes":"16"}`)),
			status: 400, typ: "SerializationException", msg: "STRING_VALUE can not be converted to an Integer",
			principal: testPrincipal, op: "GenerateRandom"},
		{name: "unsigned", build: func(t *testing.T) *http.Request { return kmsRequest("GenerateRandom", random) },
			status: 400, typ: "MissingAuthenticationTokenException", msg: "Request is missing Authentication Token",
			op: "GenerateRandom"},
		{name: "bad signature", build: func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", random)
			sign(t, r, random, testAKID, "not-the-secret")
			return r
		}, status: 400, typ: "InvalidSignatureException",
			msg:       "The request signature we calculated does not match the signature you provided.",
			principal: testAKID, op: "GenerateRandom"},
		{name: "body changed after signing", build: func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", []byte(`{"NumberOfBytes":17}`))
			sign(t, r, random, testAKID, testSecret)
			return r
		}, status: 400, typ: "InvalidSignatureException",
			msg:       "The request signature we calculated does not match the signature you provided.",
			principal: testAKID, op: "GenerateRandom"},
		{name: "unknown access key", build: func(t *testing.T) *http.Request {
			r := kmsRequest("GenerateRandom", random)
			sign(t, r, random, "AKIDUNKNOWN", testSecret)
			return r
		}, status: 400, typ: "UnrecognizedClientException", msg: "The security token included in the request is invalid.",
			principal: "AKIDUNKNOWN", op: "GenerateRandom"},
		{name: "malformed Authorization", build: withHeaders(func(h http.Header) {}), // replaced below
			status: 400, typ: "IncompleteSignatureException", op: "GenerateRandom",
			msg: "'Credential' not a valid key=value pair (missing equal-sign) in Authorization header"},
	}
	// The last case: a SigV4 header without its parameters.
	cases[len(cases)-1].build = func(t *testing.T) *http.Request {
		r := kmsRequest("GenerateRandom", random)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential")
		return r
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{MaxBody: c.maxBody})
			w := f.serve(c.build(t))
			assert.Equal(t, c.status, w.Code, "body: %s", w.Body.String())
			typ, msg, hasMsg := errorAnswer(t, w)
			assert.Equal(t, c.typ, typ)
			if c.msg == "" {
				assert.False(t, hasMsg, "no message: %q", msg)
			} else {
				assert.True(t, strings.HasPrefix(msg, c.msg), "message %q starts with %q", msg, c.msg)
			}
			noSecrets(t, w.Body.String())
			assert.Zero(t, f.svc.calls.Load(), "the service is never reached")

			events := f.trail.all()
			require.Len(t, events, 1)
			ev := events[0]
			assert.Equal(t, c.typ, ev.Error)
			assert.Equal(t, c.principal, ev.Principal)
			assert.Equal(t, c.op, ev.Op)
			assert.Equal(t, w.Header().Get("x-amzn-RequestId"), ev.RequestID)
			assert.Equal(t, "192.0.2.7", ev.Source)
			assert.Equal(t, signTime.Add(time.Second).Unix(), ev.Time)
			assert.Empty(t, ev.Key)
			assert.Empty(t, ev.ContextKeys)
		})
	}
}

// TestContentTypeForms: the media type is compared without its
// parameters and case, as MIME says.
func TestContentTypeForms(t *testing.T) {
	for _, ct := range []string{
		"application/x-amz-json-1.1",
		"application/x-amz-json-1.1; charset=utf-8",
		"Application/X-Amz-Json-1.1",
	} {
		t.Run(ct, func(t *testing.T) {
			f := newFixture(t, Config{})
			body := []byte(`{"NumberOfBytes":16}`)
			r := kmsRequest("GenerateRandom", body)
			r.Header.Set("Content-Type", ct)
			sign(t, r, body, testAKID, testSecret)
			w := f.serve(r)
			assert.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body.String())
			assert.EqualValues(t, 1, f.svc.calls.Load())
		})
	}
}
