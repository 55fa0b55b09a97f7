package sigv4

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

// TestSDKSignedRequestsVerify: requests signed by aws-sdk-go-v2's SigV4
// signer, sent over a real connection to a server on 127.0.0.1, verify,
// whatever their method, path, query, body, headers and region.
func TestSDKSignedRequestsVerify(t *testing.T) {
	jsonBody := []byte(`{"KeyId":"alias/test","Plaintext":"aGVsbG8="}`)
	big := bytes.Repeat([]byte{0x00, 0xff, 'a', '\n'}, 2048)
	kmsHeaders := map[string][]string{
		"X-Amz-Target": {"TrentService.Encrypt"},
		"Content-Type": {"application/x-amz-json-1.1"},
	}
	cases := []struct {
		name    string
		method  string
		path    string // with the query, if any
		body    []byte
		headers map[string][]string
		region  string
	}{
		{"KMS POST, JSON body", "POST", "/", jsonBody, kmsHeaders, "us-east-1"},
		{"KMS POST, empty body", "POST", "/", nil, map[string][]string{"X-Amz-Target": {"TrentService.ListKeys"}}, "us-east-1"},
		{"KMS POST, empty JSON", "POST", "/", []byte("{}"), kmsHeaders, "eu-west-1"},
		{"binary 8 KiB body", "POST", "/", big, kmsHeaders, "ap-southeast-2"},
		{"GET, no body", "GET", "/", nil, nil, "us-east-1"},
		{"PUT", "PUT", "/", []byte("x"), nil, "eu-west-1"},
		{"DELETE", "DELETE", "/", nil, nil, "us-east-1"},
		{"query string, unsorted, repeated, encoded", "GET",
			"/?b=2&a=1&a=0&space=a%20b&slash=a%2Fb&dash=a-b&tilde=~x&utf8=%C3%A9&empty=&flag", nil, nil, "us-east-1"},
		{"query with '+'", "GET", "/?q=a+b&r=c%2Bd", nil, nil, "us-east-1"},
		{"nested path", "POST", "/a/b/c", jsonBody, kmsHeaders, "us-east-1"},
		{"path with escaped bytes", "GET", "/a%20b/c%2Fd/%C3%A9", nil, nil, "us-east-1"},
		{"header values with runs of spaces", "POST", "/", jsonBody, map[string][]string{
			"X-Amz-Target": {"TrentService.Encrypt"},
			"X-Custom":     {"  a   b    c  "},
		}, "us-east-1"},
		{"repeated header", "POST", "/", jsonBody, map[string][]string{
			"X-Amz-Target": {"TrentService.Encrypt"},
			"X-Multi":      {"one", " two  three ", "four"},
		}, "us-east-1"},
		{"x-amz-content-sha256 given", "POST", "/", jsonBody, map[string][]string{
			"X-Amz-Target":         {"TrentService.Encrypt"},
			"X-Amz-Content-Sha256": {payloadHash(jsonBody)},
		}, "us-east-1"},
		{"x-amz-content-sha256 of empty body", "GET", "/", nil, map[string][]string{
			"X-Amz-Content-Sha256": {payloadHash(nil)},
		}, "eu-west-1"},
	}
	now := signTime.Add(3 * time.Second)
	srv := startKMSServer(t, testVerifier(now), testKeys())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRequest(t, c.method, srv.URL+c.path, c.body)
			for k, vs := range c.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			sdkSign(t, r, c.body, testAKID, testSecret, "", "kms", c.region, signTime)
			resp, err := srv.Client().Do(r)
			require.NoError(t, err)
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := srv.taken()
			require.Equal(t, http.StatusOK, resp.StatusCode, "answer: %s", answer)
			require.Len(t, got, 1)
			require.NoError(t, got[0].err)
			assert.Equal(t, &Identity{Principal: testPrincipal, AccessKeyID: testAKID, Region: c.region, Time: signTime}, got[0].id)
		})
	}
}

// TestSDKSignedInProcess: the same signer on requests handed straight to
// Verify (no wire), as a handler test would; Content-Length lives in
// ContentLength only there.
func TestSDKSignedInProcess(t *testing.T) {
	body := []byte(`{"NumberOfBytes":32}`)
	r := newRequest(t, "POST", "http://kms.us-east-1.amazonaws.com/", body)
	r.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
	sdkSign(t, r, body, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	id, err := testVerifier(signTime).Verify(r, body, testKeys())
	require.NoError(t, err)
	assert.Equal(t, "alice", id.Principal)
}

// TestSigningKeyVector: the signing key of AWS's documented derivation
// example (IAM user guide, "Deriving a signing key": the example secret,
// 20120215, us-east-1, iam).
func TestSigningKeyVector(t *testing.T) {
	k := signingKey([]byte(testSecret), "20120215", "us-east-1", "iam")
	assert.Equal(t, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d", hexOf(k[:]))
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}
