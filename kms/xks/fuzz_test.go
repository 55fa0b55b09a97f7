package xks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// FuzzHandler sends correctly signed requests with any path tail and body
// to a Handler over the test double: it must not panic, every answer is
// 200, 405, or an error of the spec's table with its status, and no
// answer holds a secret access key or the plaintext of a successful
// Encrypt.
func FuzzHandler(f *testing.F) {
	pt := []byte("fuzz plaintext")
	seedEnc, _ := json.Marshal(encReq(pt, []byte("aad")))
	seedCDIV := bytes.Replace(seedEnc, []byte(`"AES_GCM"`), []byte(`"AES_GCM","ciphertextDataIntegrityValueAlgorithm":"SHA_256"`), 1)
	seedMeta, _ := json.Marshal(MetadataRequest{RequestMetadata: cryptoMD("DescribeKey")})
	seedHealth, _ := json.Marshal(HealthRequest{RequestMetadata: healthMD()})
	ct := []byte("0123456789")
	seedDec, _ := json.Marshal(DecryptRequest{RequestMetadata: cryptoMD("Decrypt"), Ciphertext: &ct, CiphertextMetadata: make([]byte, 20),
		EncryptionAlgorithm: "AES_GCM", InitializationVector: make([]byte, 12), AuthenticationTag: make([]byte, 16)})
	f.Add(uint8(0), "", seedHealth)
	f.Add(uint8(1), "key-1", seedMeta)
	f.Add(uint8(2), "key-1", seedEnc)
	f.Add(uint8(2), "key-1", seedCDIV)
	f.Add(uint8(3), "key-1", seedDec)
	f.Add(uint8(4), "keys/key-1/encrypt", seedEnc)
	f.Add(uint8(2), "off", []byte(`{"requestMetadata":null}`))
	f.Add(uint8(3), "key-2", []byte(`{"ciphertext":"","initializationVector":"AAAA"}`))

	b := newMemBackend()
	creds := &Credentials{}
	if err := creds.Set(prefix, akid1, secret1); err != nil {
		f.Fatal(err)
	}
	authz := &Authorizer{}
	h, err := New(Config{Backend: b, Credentials: creds, MetadataKey: testMetadataKey, Authorizer: authz})
	if err != nil {
		f.Fatal(err)
	}
	signer := v4.NewSigner()
	f.Fuzz(func(t *testing.T, op uint8, tail string, body []byte) {
		var path string
		switch op % 5 {
		case 0:
			path = prefix + "/kms/xks/v1/health"
		case 1:
			path = prefix + "/kms/xks/v1/keys/" + tail + "/metadata"
		case 2:
			path = prefix + "/kms/xks/v1/keys/" + tail + "/encrypt"
		case 3:
			path = prefix + "/kms/xks/v1/keys/" + tail + "/decrypt"
		default:
			path = prefix + "/kms/xks/v1/" + tail
		}
		if strings.ContainsAny(path, "?#%") {
			return // not a path a request line can carry as given
		}
		u, err := url.Parse("http://xks.example.com" + path)
		if err != nil {
			return // nor is this
		}
		r := httptest.NewRequest("POST", "http://xks.example.com/", bytes.NewReader(body))
		r.URL = u
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid1, SecretAccessKey: secret1}, r,
			hex.EncodeToString(sum[:]), Service, region, time.Now()); err != nil {
			t.Skip()
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		out := w.Body.Bytes()
		if bytes.Contains(out, []byte(secret1)) {
			t.Fatalf("answer holds the secret: %s", out)
		}
		switch w.Code {
		case 200, 405:
			return
		}
		var e ErrorResponse
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatalf("status %d, body not an error object: %q", w.Code, out)
		}
		st, ok := errorStatus[e.ErrorName]
		if !ok || st != w.Code {
			t.Fatalf("status %d with errorName %q", w.Code, e.ErrorName)
		}
		if len(e.ErrorMessage) >= 512 {
			t.Fatalf("errorMessage of %d characters", len(e.ErrorMessage))
		}
	})
}
