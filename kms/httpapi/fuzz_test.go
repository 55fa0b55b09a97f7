package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fuzzMethods = []string{http.MethodPost, http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions, "BREW"}

// FuzzHandler: whatever the method, path, headers and body, and whether
// the request is signed, the handler does not panic; it answers an
// operation's JSON output (200) or a JSON error with its __type, carries
// its headers, and leaves one audit event that names the same exception.
// Signed requests reach validation and, when valid, the operation, whose
// stub answers the decoded input as its output.
func FuzzHandler(f *testing.F) {
	for _, s := range []struct {
		method      byte
		path        string
		target, ct  string
		body        string
		signRequest bool
	}{
		{0, "/", "TrentService.GenerateRandom", ContentType, `{"NumberOfBytes":16}`, true},
		{0, "/", "TrentService.Encrypt", ContentType, `{"KeyId":"alias/a","Plaintext":"aGk=","EncryptionContext":{"a":"b"}}`, true},
		{0, "/", "TrentService.ReEncrypt", ContentType, `{"CiphertextBlob":"AAAA","DestinationKeyId":"k","SourceEncryptionContext":{"x":"y"}}`, true},
		{0, "/", "TrentService.CreateKey", ContentType, `{"Tags":[{"TagKey":"a","TagValue":"b"}],"MultiRegion":true}`, true},
		{0, "/", "TrentService.ListKeys", ContentType, `null`, true},
		{0, "/", "TrentService.Encrypt", ContentType, `{"Plaintext":"not base64"}`, true},
		{0, "/", "TrentService.GenerateRandom", ContentType, `{"NumberOfBytes":`, true},
		{0, "/", "TrentService.GenerateRandom", ContentType, `{"NumberOfBytes":16}`, false},
		{0, "/", "TrentService.Nope", ContentType, `{}`, true},
		{0, "/", "", "application/json", `{}`, true},
		{1, "/healthz", "", "", ``, false},
		{3, "/x", "TrentService.GenerateRandom", ContentType, `{}`, true},
	} {
		f.Add(s.method, s.path, s.target, s.ct, []byte(s.body), s.signRequest)
	}
	f.Fuzz(func(t *testing.T, method byte, path, target, ct string, body []byte, signRequest bool) {
		fx := newFixture(t, Config{MaxBody: 1 << 16})
		r := httptest.NewRequest(http.MethodPost, "https://kms.test/", bytes.NewReader(body))
		r.Method = fuzzMethods[int(method)%len(fuzzMethods)]
		r.URL.Path, r.URL.RawPath = path, ""
		r.RemoteAddr = testRemote
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if signRequest {
			sign(t, r, body, testAKID, testSecret)
		}
		health := path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead)

		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)

		assert.Regexp(t, uuidV4, w.Header().Get("x-amzn-RequestId"))
		if health {
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Empty(t, fx.trail.all())
			return
		}
		assert.Equal(t, ContentType, w.Header().Get("Content-Type"))
		require.True(t, json.Valid(w.Body.Bytes()), "answer is JSON: %q", w.Body.String())
		var answer map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &answer), "answer is an object: %q", w.Body.String())
		events := fx.trail.all()
		require.Len(t, events, 1)
		if w.Code == http.StatusOK {
			assert.Empty(t, events[0].Error)
			assert.EqualValues(t, 1, fx.svc.calls.Load())
			return
		}
		typ, _ := answer["__type"].(string)
		require.NotEmpty(t, typ, "an error names its exception: %q", w.Body.String())
		assert.Equal(t, typ, events[0].Error)
		assert.GreaterOrEqual(t, w.Code, 400)
		if w.Code >= 500 {
			assert.Equal(t, "KMSInternalException", typ, "the stub never fails: a 5xx is a bug")
		}
		noSecrets(t, w.Body.String())
	})
}
