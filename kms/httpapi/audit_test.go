package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/model"
)

// TestAuditEvents: the event of a request that reached the operation,
// allowed or refused, for operations with and without contexts.
func TestAuditEvents(t *testing.T) {
	ciphertext := base64.StdEncoding.EncodeToString([]byte("opaque-ciphertext"))
	cases := []struct {
		name   string
		op     string
		body   string
		result error
		want   audit.KMSEvent // RequestID and Time are checked apart
	}{
		{"ReEncrypt: both contexts, merged, sorted, once each", "ReEncrypt",
			`{"CiphertextBlob":"` + ciphertext + `","DestinationKeyId":"alias/b",` +
				`"SourceEncryptionContext":{"zeta":"v1","alpha":"v2","shared":"v3"},` +
				`"DestinationEncryptionContext":{"shared":"v4","beta":"v5"}}`, nil,
			audit.KMSEvent{Principal: testPrincipal, Op: "ReEncrypt", Key: testKeyARN,
				ContextKeys: []string{"alpha", "beta", "shared", "zeta"}, Source: "192.0.2.7"}},
		{"Decrypt refused keeps its context keys", "Decrypt",
			`{"CiphertextBlob":"` + ciphertext + `","EncryptionContext":{"b":"x","a":"y"}}`,
			errors.New("boom"),
			audit.KMSEvent{Principal: testPrincipal, Op: "Decrypt", Key: testKeyARN,
				ContextKeys: []string{"a", "b"}, Source: "192.0.2.7", Error: "KMSInternalException"}},
		{"an empty context has no keys", "Encrypt",
			`{"KeyId":"alias/a","Plaintext":"aGk=","EncryptionContext":{}}`, nil,
			audit.KMSEvent{Principal: testPrincipal, Op: "Encrypt", Key: testKeyARN, Source: "192.0.2.7"}},
		{"no context member", "ListKeys", `{}`, nil,
			audit.KMSEvent{Principal: testPrincipal, Op: "ListKeys", Key: testKeyARN, Source: "192.0.2.7"}},
		{"grant constraints are not the request's context", "CreateGrant",
			`{"KeyId":"k","GranteePrincipal":"p","Operations":["Decrypt"],` +
				`"Constraints":{"EncryptionContextEquals":{"c":"d"}}}`, nil,
			audit.KMSEvent{Principal: testPrincipal, Op: "CreateGrant", Key: testKeyARN, Source: "192.0.2.7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			f.svc.ops = map[string]func(*call.Request) (model.Object, error){
				c.op: func(r *call.Request) (model.Object, error) {
					r.KeyARN = testKeyARN
					return model.Object{}, c.result
				},
			}
			r := kmsRequest(c.op, []byte(c.body))
			sign(t, r, []byte(c.body), testAKID, testSecret)
			w := f.serve(r)
			events := f.trail.all()
			require.Len(t, events, 1, "answer: %s", w.Body.String())
			got := events[0]
			assert.Equal(t, w.Header().Get("x-amzn-RequestId"), got.RequestID)
			assert.Equal(t, signTime.Unix()+1, got.Time)
			got.RequestID, got.Time = "", 0
			assert.Equal(t, c.want, got)
			for _, v := range []string{"v1", "v2", "v3", "v4", "v5", "opaque"} {
				assert.NotContains(t, strings.Join(got.ContextKeys, ","), v)
			}
		})
	}
}

// TestAuthorizationAccessKeyID: the access key ID the trail records for
// a request refused before SigV4 read it.
func TestAuthorizationAccessKeyID(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"SDK form", []string{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"}, "AKIDEXAMPLE"},
		{"no spaces after commas", []string{"AWS4-HMAC-SHA256 SignedHeaders=host,Credential=AKID2/x,Signature=abc"}, "AKID2"},
		{"no slash", []string{"AWS4-HMAC-SHA256 Credential=AKID3"}, "AKID3"},
		{"none", nil, ""},
		{"two headers", []string{"AWS4-HMAC-SHA256 Credential=A/x", "AWS4-HMAC-SHA256 Credential=B/x"}, ""},
		{"no Credential", []string{"AWS4-HMAC-SHA256 Signature=abc"}, ""},
		{"empty Credential", []string{"AWS4-HMAC-SHA256 Credential=/x"}, ""},
		{"not an access key ID", []string{"AWS4-HMAC-SHA256 Credential=AK<script>/x"}, ""},
		{"too long", []string{"AWS4-HMAC-SHA256 Credential=" + strings.Repeat("A", 129) + "/x"}, ""},
		{"longest", []string{"AWS4-HMAC-SHA256 Credential=" + strings.Repeat("A", 128) + "/x"}, strings.Repeat("A", 128)},
		{"Basic auth", []string{"Basic dXNlcjpwYXNz"}, ""},
		{"only a word", []string{"AWS4-HMAC-SHA256"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, authorizationAccessKeyID(c.values))
		})
	}
}

// TestClientIP: the trail's source address.
func TestClientIP(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:5555":   "192.0.2.1",
		"[2001:db8::1]:80": "2001:db8::1",
		"@":                "@", // a Unix socket's peer
		"":                 "",
	} {
		assert.Equal(t, want, clientIP(remote), remote)
	}
}

// TestNothingSecretInLogs: an internal failure of an Encrypt logs its
// cause and request ID, and never the plaintext, the body, the secret
// or the Authorization header.
func TestNothingSecretInLogs(t *testing.T) {
	plaintext := []byte("the plaintext nobody may log")
	b64 := base64.StdEncoding.EncodeToString(plaintext)
	f := newFixture(t, Config{})
	f.svc.ops = map[string]func(*call.Request) (model.Object, error){
		"Encrypt": func(*call.Request) (model.Object, error) { return nil, errors.New("hsm went away") },
	}
	body := []byte(`{"KeyId":"alias/a","Plaintext":"` + b64 + `","EncryptionContext":{"k":"context-value"}}`)
	r := kmsRequest("Encrypt", body)
	sign(t, r, body, testAKID, testSecret)
	auth := r.Header.Get("Authorization")
	_, sig, _ := strings.Cut(auth, "Signature=")
	w := f.serve(r)
	require.Equal(t, http.StatusInternalServerError, w.Code)
	log := f.log.String()
	assert.Contains(t, log, "hsm went away")
	for _, s := range []string{string(plaintext), b64, "context-value", sig, string(body)} {
		assert.NotContains(t, log, s)
		assert.NotContains(t, w.Body.String(), s)
	}
	noSecrets(t, log)
}

// TestAuditOptional: no Audit function is fine.
func TestAuditOptional(t *testing.T) {
	f := newFixture(t, Config{})
	f.h.cfg.Audit = nil
	w := f.serve(kmsRequest("GenerateRandom", []byte(`{}`)))
	assert.Equal(t, http.StatusBadRequest, w.Code)
}
