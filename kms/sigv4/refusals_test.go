package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refusalBody is the body of every request in the refusals table.
var refusalBody = []byte(`{"KeyId":"alias/test","Plaintext":"aGVsbG8="}`)

// kmsRequest is a server-side KMS Encrypt request as a handler receives it,
// unsigned.
func kmsRequest() *http.Request {
	r := httptest.NewRequest("POST", "http://127.0.0.1:8443/", strings.NewReader(string(refusalBody)))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	return r
}

// setAuth rewrites the Authorization header of r with edit.
func setAuth(r *http.Request, edit func(string) string) {
	r.Header.Set("Authorization", edit(r.Header.Get("Authorization")))
}

// replaceIn returns an edit that replaces old by new.
func replaceIn(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// The credential and the signed headers the SDK writes for kmsRequest.
const (
	goodCredential    = "Credential=AKIDEXAMPLE/20260301/us-east-1/kms/aws4_request"
	goodSignedHeaders = "SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target"
)

// TestRefusals: each way a request can fail gets AWS's exception name and
// message. Requests are signed by the AWS SDK for Go's signer and then
// spoiled, or signed wrongly on purpose.
func TestRefusals(t *testing.T) {
	type signing struct {
		akid, secret, token, service, region string
		at                                   time.Time
	}
	good := signing{testAKID, testSecret, "", "kms", "us-east-1", signTime}
	cases := []struct {
		name  string
		sign  *signing // nil: not signed at all
		now   time.Time
		spoil func(r *http.Request)
		body  []byte // the body received, when not the one signed
		code  string
		msg   string // the exact message; for a mismatch, its first sentence
	}{
		{name: "no Authorization header", sign: nil,
			code: CodeMissingAuthenticationToken, msg: "Request is missing Authentication Token"},
		{name: "empty Authorization header", sign: nil,
			spoil: func(r *http.Request) { r.Header.Set("Authorization", "") },
			code:  CodeMissingAuthenticationToken, msg: "Request is missing Authentication Token"},
		{name: "Authorization that is not SigV4", sign: &good,
			spoil: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc.def") },
			code:  CodeMissingAuthenticationToken, msg: "Request is missing Authentication Token"},
		{name: "SigV2-style Authorization", sign: nil,
			spoil: func(r *http.Request) { r.Header.Set("Authorization", "AWS AKIDEXAMPLE:c2lnbmF0dXJl") },
			code:  CodeMissingAuthenticationToken, msg: "Request is missing Authentication Token"},

		{name: "unknown access key", sign: &signing{"AKIDUNKNOWN", testSecret, "", "kms", "us-east-1", signTime},
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid."},
		{name: "session token", sign: &signing{testAKID, testSecret, "FwoGZXIvYXdzEXAMPLE", "kms", "us-east-1", signTime},
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid."},
		{name: "wrong secret", sign: &signing{testAKID, "not-the-secret", "", "kms", "us-east-1", signTime},
			code: CodeInvalidSignature, msg: msgMismatch},

		{name: "older than 5 minutes", sign: &good, now: signTime.Add(5*time.Minute + time.Second),
			code: CodeInvalidSignature,
			msg:  "Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z (20260301T120501Z - 5 min.)"},
		{name: "more than 5 minutes in the future", sign: &good, now: signTime.Add(-5*time.Minute - time.Second),
			code: CodeInvalidSignature,
			msg:  "Signature not yet current: 20260301T120000Z is still later than 20260301T115959Z (20260301T115459Z + 5 min.)"},

		{name: "changed body", sign: &good,
			body: []byte(`{"KeyId":"alias/other","Plaintext":"aGVsbG8="}`),
			code: CodeInvalidSignature, msg: msgMismatch},
		{name: "changed signed header", sign: &good,
			spoil: func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.Decrypt") },
			code:  CodeInvalidSignature, msg: msgMismatch},
		{name: "changed host", sign: &good,
			spoil: func(r *http.Request) { r.Host = "127.0.0.2:8443" },
			code:  CodeInvalidSignature, msg: msgMismatch},
		{name: "changed method", sign: &good,
			spoil: func(r *http.Request) { r.Method = "PUT" },
			code:  CodeInvalidSignature, msg: msgMismatch},
		{name: "added query parameter", sign: &good,
			spoil: func(r *http.Request) { r.URL.RawQuery = "a=1" },
			code:  CodeInvalidSignature, msg: msgMismatch},
		{name: "changed signature", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn("Signature=", "Signature=0")) },
			code:  CodeInvalidSignature, msg: msgMismatch},
		{name: "signed header dropped from SignedHeaders", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn(";x-amz-target", "")) },
			code:  CodeInvalidSignature, msg: msgMismatch},
		{name: "x-amz-content-sha256 not the body's", sign: &good,
			spoil: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", payloadHash([]byte("other"))) },
			code:  CodeInvalidSignature, msg: "The provided 'x-amz-content-sha256' header does not match what was computed."},
		{name: "UNSIGNED-PAYLOAD", sign: &good,
			spoil: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") },
			code:  CodeInvalidSignature, msg: "The provided 'x-amz-content-sha256' header does not match what was computed."},

		{name: "only the algorithm", sign: &good,
			spoil: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256") },
			code:  CodeIncompleteSignature,
			msg:   "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"},
		{name: "no Signature", sign: &good,
			spoil: func(r *http.Request) {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 "+goodCredential+", "+goodSignedHeaders)
			},
			code: CodeIncompleteSignature,
			msg:  "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 " + goodCredential + ", " + goodSignedHeaders},
		{name: "no SignedHeaders, empty Signature", sign: &good,
			spoil: func(r *http.Request) {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 "+goodCredential+", Signature=")
			},
			code: CodeIncompleteSignature,
			msg:  "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 " + goodCredential + ", Signature="},
		{name: "no date header", sign: &good,
			spoil: func(r *http.Request) {
				r.Header.Del("X-Amz-Date")
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 "+goodCredential)
			},
			code: CodeIncompleteSignature,
			msg:  "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 " + goodCredential},
		{name: "space after Credential=", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn("Credential=", "Credential= ")) },
			code:  CodeIncompleteSignature,
			msg:   "'AKIDEXAMPLE/20260301/us-east-1/kms/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '"},
		{name: "parameter twice", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, func(s string) string { return s + ", Signature=00" }) },
			code:  CodeIncompleteSignature, msg: "Authorization header has more than one 'Signature' parameter."},
		{name: "two Authorization headers", sign: &good,
			spoil: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) },
			code:  CodeIncompleteSignature, msg: "The request has more than one Authorization header."},
		{name: "date not ISO 8601 basic", sign: &good,
			spoil: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-03-01T12:00:00Z") },
			code:  CodeIncompleteSignature,
			msg:   "Date must be in ISO-8601 'basic format'. Got '2026-03-01T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "host not signed", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn(";host;", ";")) },
			code:  CodeInvalidSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "x-amz-date not signed", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn(";x-amz-date;", ";")) },
			code:  CodeInvalidSignature, msg: "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "unsupported algorithm", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")) },
			code:  CodeIncompleteSignature,
			msg:   "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256' (only AWS4-HMAC-SHA256 for now). "},
		{name: "credential of four parts", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn("/kms/aws4_request", "/aws4_request")) },
			code:  CodeIncompleteSignature,
			msg:   "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20260301/us-east-1/aws4_request'"},
		{name: "credential of six parts", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn("Credential=", "Credential=x/")) },
			code:  CodeIncompleteSignature,
			msg:   "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'x/AKIDEXAMPLE/20260301/us-east-1/kms/aws4_request'"},
		{name: "bad terminator", sign: &good,
			spoil: func(r *http.Request) { setAuth(r, replaceIn("aws4_request", "aws5_request")) },
			code:  CodeInvalidSignature,
			msg:   "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."},

		{name: "wrong service", sign: &signing{testAKID, testSecret, "", "s3", "us-east-1", signTime},
			code: CodeInvalidSignature, msg: "Credential should be scoped to correct service: 'kms'."},
		{name: "unknown region", sign: &signing{testAKID, testSecret, "", "kms", "xx-nowhere-1", signTime},
			code: CodeInvalidSignature, msg: "Credential should be scoped to a valid region, not 'xx-nowhere-1'."},
		{name: "unknown region and wrong service", sign: &signing{testAKID, testSecret, "", "sqs", "us-west-9", signTime},
			code: CodeInvalidSignature,
			msg:  "Credential should be scoped to a valid region, not 'us-west-9'. Credential should be scoped to correct service: 'kms'."},
		{name: "scope date not the date of X-Amz-Date",
			sign: &signing{testAKID, testSecret, "", "kms", "us-east-1", time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)},
			now:  time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
			spoil: func(r *http.Request) {
				r.Header.Set("X-Amz-Date", "20260302T000100Z")
			},
			code: CodeInvalidSignature,
			msg:  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260301' != '20260302', from '20260302T000100Z'."},

		{name: "presigned URL", sign: nil,
			spoil: func(r *http.Request) { presign(r) },
			code:  CodeIncompleteSignature, msg: msgPresigned},
		{name: "presigned URL and an Authorization header", sign: &good,
			spoil: func(r *http.Request) { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" },
			code:  CodeInvalidSignature,
			msg:   "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kmsRequest()
			body := refusalBody
			if c.sign != nil {
				s := c.sign
				sdkSign(t, r, body, s.akid, s.secret, s.token, s.service, s.region, s.at)
			}
			if c.spoil != nil {
				c.spoil(r)
			}
			if c.body != nil {
				body = c.body
			}
			now := c.now
			if now.IsZero() {
				now = signTime.Add(10 * time.Second)
			}
			id, err := testVerifier(now).Verify(r, body, testKeys())
			require.Nil(t, id)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, c.code, e.Code)
			if c.msg == msgMismatch || strings.HasSuffix(c.msg, "' not a valid key=value pair (missing equal-sign) in Authorization header: '") {
				assert.True(t, strings.HasPrefix(e.Message, c.msg), "message: %q", e.Message)
			} else {
				assert.Equal(t, c.msg, e.Message)
			}
			assert.Equal(t, 400, e.HTTPStatus())
			assert.NotContains(t, e.Error(), testSecret)
		})
	}
}

// presign turns r into a presigned URL request, as the SDK's presigner
// makes them.
func presign(r *http.Request) {
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, payloadHash(refusalBody), "kms", "us-east-1", signTime)
	if err != nil {
		panic(err)
	}
	r.URL.RawQuery = strings.SplitN(u, "?", 2)[1]
}

// TestMismatchMessage: a signature that does not match is answered with
// AWS's sentence, the canonical request and the string to sign, and
// never with the signature this service computed, the signing key or the
// secret.
func TestMismatchMessage(t *testing.T) {
	r := kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	right := signatureOf(r)
	wrong := kmsRequest()
	sdkSign(t, wrong, refusalBody, testAKID, "guessed-secret", "", "kms", "us-east-1", signTime)
	require.NotEqual(t, right, signatureOf(wrong))

	_, err := testVerifier(signTime).Verify(wrong, refusalBody, testKeys())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, testAKID, e.AccessKeyID)
	want := msgMismatch + "\n\nThe Canonical String for this request should have been\n'" +
		"POST\n/\n\ncontent-length:45\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:8443\n" +
		"x-amz-date:20260301T120000Z\nx-amz-target:TrentService.Encrypt\n\n" +
		"content-length;content-type;host;x-amz-date;x-amz-target\n" + payloadHash(refusalBody) + "'\n\n" +
		"The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260301T120000Z\n20260301/us-east-1/kms/aws4_request\n"
	assert.True(t, strings.HasPrefix(e.Message, want), "message: %q", e.Message)
	key := signingKey([]byte(testSecret), "20260301", "us-east-1", "kms")
	for _, secret := range []string{right, testSecret, hexOf(key[:])} {
		assert.NotContains(t, e.Message, secret)
		assert.NotContains(t, e.Error(), secret)
	}
}

// TestWindowEdges: a signing time exactly Window away, either way, is
// accepted; a Window that is not the default is the one applied and named.
func TestWindowEdges(t *testing.T) {
	for _, now := range []time.Time{signTime.Add(5 * time.Minute), signTime.Add(-5 * time.Minute), signTime} {
		r := kmsRequest()
		sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
		_, err := testVerifier(now).Verify(r, refusalBody, testKeys())
		require.NoError(t, err, "now %s", now)
	}
	r := kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	v := testVerifier(signTime.Add(2 * time.Minute))
	v.Window = time.Minute
	_, err := v.Verify(r, refusalBody, testKeys())
	assert.EqualError(t, err, "InvalidSignatureException: Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T120200Z - 1 min.)")
}

// TestAddedUnsignedHeaders: headers that are not signed may be added or
// changed (a proxy's, a client library's) and the request still verifies.
func TestAddedUnsignedHeaders(t *testing.T) {
	r := kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	r.Header.Set("User-Agent", "something else")
	r.Header.Add("X-Forwarded-For", "127.0.0.9")
	r.Header.Set("X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000000")
	id, err := testVerifier(signTime).Verify(r, refusalBody, testKeys())
	require.NoError(t, err)
	assert.Equal(t, testPrincipal, id.Principal)
}

// TestRegionsRequired: a Verifier with no Regions accepts no region; one
// with another service takes that one.
func TestRegionsRequired(t *testing.T) {
	r := kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	_, err := (&Verifier{Now: func() time.Time { return signTime }}).Verify(r, refusalBody, testKeys())
	assert.EqualError(t, err, "InvalidSignatureException: Credential should be scoped to a valid region, not 'us-east-1'.")

	r = kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "sts", "us-east-1", signTime)
	v := testVerifier(signTime)
	v.Service = "sts"
	_, err = v.Verify(r, refusalBody, testKeys())
	assert.NoError(t, err)
}

// TestSecretsFailure: a Secrets that cannot answer now is not the client's
// fault: its error comes back as it is, not as an *Error.
func TestSecretsFailure(t *testing.T) {
	sealed := errors.New("the secret store is sealed")
	r := kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	_, err := testVerifier(signTime).Verify(r, refusalBody, SecretsFunc(func(string) ([]byte, string, error) {
		return nil, "", sealed
	}))
	require.ErrorIs(t, err, sealed)
	var e *Error
	assert.False(t, errors.As(err, &e))

	// An error that wraps ErrUnknownAccessKey is an unknown key.
	_, err = testVerifier(signTime).Verify(r, refusalBody, SecretsFunc(func(id string) ([]byte, string, error) {
		return nil, "", errors.Join(ErrUnknownAccessKey, errors.New("deleted"))
	}))
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeUnrecognizedClient, e.Code)
	assert.Equal(t, testAKID, e.AccessKeyID)
}

// TestDateHeader: without X-Amz-Date, a signed Date header (an HTTP date or
// ISO 8601 basic) is the signing time. No SDK signs this way, so the
// signature here is this package's own: the test shows the Date path is
// checked like the X-Amz-Date one.
func TestDateHeader(t *testing.T) {
	for _, date := range []string{"Sun, 01 Mar 2026 12:00:00 GMT", "20260301T120000Z"} {
		r := kmsRequest()
		r.Header.Set("Date", date)
		signed := []string{"content-type", "date", "host", "x-amz-target"}
		scope := credentialScope{testAKID, "20260301", "us-east-1", "kms", "aws4_request"}
		canonical, ok := canonicalRequest(r, signed, payloadHash(refusalBody))
		require.True(t, ok)
		key := signingKey([]byte(testSecret), scope.Date, scope.Region, scope.Service)
		sig := hexOf(hmacSHA256(key[:], stringToSign("20260301T120000Z", scope, canonical)))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/"+scope.String()+
			", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
		id, err := testVerifier(signTime.Add(time.Minute)).Verify(r, refusalBody, testKeys())
		require.NoError(t, err, date)
		assert.Equal(t, signTime, id.Time)

		r.Header.Set("Date", "Sun, 01 Mar 2026 12:00:01 GMT")
		_, err = testVerifier(signTime.Add(time.Minute)).Verify(r, refusalBody, testKeys())
		require.ErrorContains(t, err, msgMismatch)
	}
}

// TestRequestUnchanged: Verify changes nothing of the request it reads,
// verified or refused.
func TestRequestUnchanged(t *testing.T) {
	for _, secret := range []string{testSecret, "not-the-secret"} {
		r := kmsRequest()
		r.Header.Add("X-Spaces", "  a   b  ")
		r.Header.Add("X-Spaces", " c  d ")
		r.URL.RawQuery = "b=1&a=x+y"
		sdkSign(t, r, refusalBody, testAKID, secret, "", "kms", "us-east-1", signTime)
		header, url, host := r.Header.Clone(), *r.URL, r.Host
		body := append([]byte(nil), refusalBody...)
		_, err := testVerifier(signTime).Verify(r, body, testKeys())
		if secret == testSecret {
			require.NoError(t, err)
		} else {
			require.Error(t, err)
		}
		assert.Equal(t, header, r.Header)
		assert.Equal(t, url, *r.URL)
		assert.Equal(t, host, r.Host)
		assert.Equal(t, refusalBody, body)
	}
}
