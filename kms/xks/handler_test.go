package xks

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	pHealth = prefix + "/kms/xks/v1/health"
	pMeta   = prefix + "/kms/xks/v1/keys/key-1/metadata"
	pEnc    = prefix + "/kms/xks/v1/keys/key-1/encrypt"
	pDec    = prefix + "/kms/xks/v1/keys/key-1/decrypt"
)

// TestRequests is the table of requests: every route, the happy paths,
// every error class the handler sends, 405, SigV4 refusals, sizes and
// secondary authorization. Each case runs on a fresh proxy.
func TestRequests(t *testing.T) {
	metaReq := MetadataRequest{RequestMetadata: cryptoMD("DescribeKey")}
	healthReq := HealthRequest{RequestMetadata: healthMD()}
	good := encReq([]byte("Hello World!"), []byte("project=nile,department=marketing"))
	withMD := func(edit func(*RequestMetadata)) EncryptRequest {
		r := encReq([]byte("x"), nil)
		edit(r.RequestMetadata)
		return r
	}
	iv16 := make([]byte, 16)
	ct := []byte("ciphertext!!")
	fakeDec := func(edit func(*DecryptRequest)) DecryptRequest {
		d := DecryptRequest{RequestMetadata: cryptoMD("Decrypt"), Ciphertext: &ct, CiphertextMetadata: make([]byte, 20),
			EncryptionAlgorithm: "AES_GCM", InitializationVector: make([]byte, 12), AuthenticationTag: make([]byte, 16)}
		edit(&d)
		return d
	}
	rules := func(r ...Rule) func(*proxy) {
		return func(p *proxy) { require.NoError(t, p.authz.SetRules(r)) }
	}
	cases := []struct {
		name    string
		method  string // "" is POST
		path    string
		body    any
		sign    signing
		setup   func(*proxy)
		status  int
		errName string
		check   func(*testing.T, answer)
	}{
		// Happy paths.
		{name: "health", path: pHealth, body: healthReq, status: 200, check: func(t *testing.T, a answer) {
			var h HealthResponse
			require.NoError(t, json.Unmarshal(a.body, &h))
			assert.Equal(t, 1, h.XKSProxyFleetSize)
			assert.Equal(t, "openhsm", h.XKSProxyVendor)
			assert.Equal(t, "openhsm", h.EKMVendor)
			assert.NotEmpty(t, h.XKSProxyModel)
			assert.Equal(t, []FleetDetail{{"node-1", "openhsm test", "ACTIVE"}, {"node-2", "openhsm test", "DEGRADED"}}, h.EKMFleetDetails)
			assert.Equal(t, "application/json", a.header.Get("Content-Type"))
		}},
		{name: "health, no prefix, second credential", path: "/kms/xks/v1/health", body: healthReq,
			sign: signing{akid: akid2, secret: secret2}, status: 200},
		{name: "health: a kmsOperation of any value", path: pHealth,
			body: `{"requestMetadata":{"kmsRequestId":"x","kmsOperation":"SomeFutureOperation","newField":1}}`, status: 200},
		{name: "metadata", path: pMeta, body: metaReq, status: 200, check: func(t *testing.T, a answer) {
			assert.JSONEq(t, `{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}`, string(a.body))
		}},
		{name: "metadata without kmsKeyArn (CreateKey)", path: pMeta,
			body: `{"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::1:root","kmsOperation":"CreateKey","kmsRequestId":"r"}}`, status: 200},
		{name: "metadata of a disabled key", path: prefix + "/kms/xks/v1/keys/off/metadata", body: metaReq, status: 200,
			check: func(t *testing.T, a answer) { assert.Contains(t, string(a.body), `"keyStatus":"DISABLED"`) }},
		{name: "encrypt", path: pEnc, body: good, status: 200, check: func(t *testing.T, a answer) {
			var e EncryptResponse
			require.NoError(t, json.Unmarshal(a.body, &e))
			assert.Len(t, e.Ciphertext, 12)
			assert.Len(t, e.InitializationVector, 12)
			assert.Len(t, e.AuthenticationTag, 16)
			assert.Len(t, e.CiphertextMetadata, 20)
			assert.Nil(t, e.CiphertextDataIntegrityValue)
			assert.NotContains(t, string(a.body), base64.StdEncoding.EncodeToString([]byte("Hello World!")))
		}},
		{name: "encrypt, empty plaintext", path: pEnc, body: encReq([]byte{}, nil), status: 200},
		{name: "encrypt, key ID with every allowed character", path: prefix + "/kms/xks/v1/keys/a-Z_0.9/encrypt", body: good,
			setup: func(p *proxy) { p.b.addKey("a-Z_0.9", 1) }, status: 200},
		{name: "encrypt, 128-character key ID", path: prefix + "/kms/xks/v1/keys/" + strings.Repeat("k", 128) + "/encrypt", body: good,
			setup: func(p *proxy) { p.b.addKey(strings.Repeat("k", 128), 1) }, status: 200},

		// Sizes.
		{name: "plaintext of 4300 bytes", path: pEnc, body: encReq(repeat(4300), nil), status: 200},
		{name: "plaintext of 4301 bytes", path: pEnc, body: encReq(repeat(4301), nil), status: 501, errName: UnsupportedOperationException},
		{name: "AAD of 8192 bytes", path: pEnc, body: encReq(repeat(10), repeat(8192)), status: 200},
		{name: "AAD of 8193 bytes", path: pEnc, body: encReq(repeat(10), repeat(8193)), status: 501, errName: UnsupportedOperationException},
		{name: "both at their limit", path: pEnc, body: encReq(repeat(4300), repeat(8192)), status: 200},
		{name: "ciphertext of 4301 bytes", path: pDec, body: fakeDec(func(d *DecryptRequest) { c := repeat(4301); d.Ciphertext = &c }),
			status: 501, errName: UnsupportedOperationException},
		{name: "decrypt AAD of 8193 bytes", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.AdditionalAuthenticatedData = repeat(8193) }),
			status: 501, errName: UnsupportedOperationException},
		{name: "body over the bound", path: pEnc, body: `{"x":"` + strings.Repeat("a", 200<<10) + `"}`,
			status: 501, errName: UnsupportedOperationException},
		{name: "raised limits", path: pEnc, body: encReq(repeat(6000), nil), status: 200,
			setup: nil},

		// 405 and paths.
		{name: "GET health", method: "GET", path: pHealth, status: 405},
		{name: "GET metadata", method: "GET", path: pMeta, status: 405},
		{name: "GET encrypt", method: "GET", path: pEnc, status: 405},
		{name: "GET decrypt", method: "GET", path: pDec, status: 405},
		{name: "PUT encrypt", method: "PUT", path: pEnc, body: good, status: 405},
		{name: "GET with a body", method: "GET", path: pEnc, body: good, status: 405},
		{name: "unknown operation", path: prefix + "/kms/xks/v1/keys/key-1/sign", body: good, status: 404, errName: InvalidURIPathException},
		{name: "v2", path: prefix + "/kms/xks/v2/health", body: healthReq, status: 404, errName: InvalidURIPathException},
		{name: "extra path segment", path: prefix + "/kms/xks/v1/keys/key-1/encrypt/x", body: good, status: 404, errName: InvalidURIPathException},
		{name: "no key ID", path: prefix + "/kms/xks/v1/keys//encrypt", body: good, status: 404, errName: InvalidURIPathException},
		{name: "key ID with a bad character", path: prefix + "/kms/xks/v1/keys/key%21/encrypt", body: good, status: 404, errName: InvalidURIPathException},
		{name: "key ID of 129 characters", path: prefix + "/kms/xks/v1/keys/" + strings.Repeat("k", 129) + "/encrypt", body: good,
			status: 404, errName: InvalidURIPathException},
		{name: "unserved prefix", path: "/tenant-b/kms/xks/v1/health", body: healthReq, status: 404, errName: InvalidURIPathException},
		{name: "prefix with a trailing slash", path: prefix + "//kms/xks/v1/health", body: healthReq, status: 404, errName: InvalidURIPathException},
		{name: "root", path: "/", body: healthReq, status: 404, errName: InvalidURIPathException},

		// SigV4.
		{name: "unsigned", path: pEnc, body: good, sign: signing{none: true}, status: 401, errName: AuthenticationFailedException},
		{name: "unknown access key", path: pEnc, body: good, sign: signing{akid: "AKIDXKSUNKNOWN2345672", secret: secret1},
			status: 401, errName: AuthenticationFailedException},
		{name: "wrong secret", path: pEnc, body: good, sign: signing{akid: akid1, secret: secret2}, status: 401, errName: AuthenticationFailedException},
		{name: "credential of another prefix", path: pEnc, body: good, sign: signing{akid: akid2, secret: secret2},
			status: 401, errName: AuthenticationFailedException},
		{name: "service kms", path: pEnc, body: good, sign: signing{service: "kms"}, status: 401, errName: AuthenticationFailedException,
			check: func(t *testing.T, a answer) { assert.Contains(t, string(a.body), "kms-xks-proxy") }},
		{name: "expired (6 minutes old)", path: pEnc, body: good, sign: signing{at: time.Now().Add(-6 * time.Minute)},
			status: 401, errName: AuthenticationFailedException},
		{name: "from the future (6 minutes)", path: pEnc, body: good, sign: signing{at: time.Now().Add(6 * time.Minute)},
			status: 401, errName: AuthenticationFailedException},
		{name: "body changed after signing", path: pEnc, body: good, status: 401, errName: AuthenticationFailedException,
			sign: signing{after: func(r *http.Request) {
				b := mustJSON(t, encReq([]byte("Hello World?"), nil))
				r.Body = http.NoBody
				r.Body = nopCloser{strings.NewReader(string(b))}
				r.ContentLength = int64(len(b))
			}}},
		{name: "path changed after signing", path: pEnc, body: good, status: 401, errName: AuthenticationFailedException,
			sign: signing{after: func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "key-1", "key-2", 1) }}},
		{name: "health needs a signature too", path: pHealth, body: healthReq, sign: signing{none: true},
			status: 401, errName: AuthenticationFailedException},

		// Validation.
		{name: "not JSON", path: pEnc, body: "plaintext=abc", status: 400, errName: ValidationException},
		{name: "JSON then more", path: pMeta, body: `{"requestMetadata":{}} {}`, status: 400, errName: ValidationException},
		{name: "empty body", path: pMeta, body: "", status: 400, errName: ValidationException},
		{name: "no requestMetadata", path: pMeta, body: `{}`, status: 400, errName: ValidationException},
		{name: "health without kmsRequestId", path: pHealth, body: `{"requestMetadata":{"kmsOperation":"KmsHealthCheck"}}`,
			status: 400, errName: ValidationException},
		{name: "no kmsOperation", path: pEnc, body: withMD(func(m *RequestMetadata) { m.KMSOperation = "" }), status: 400, errName: ValidationException},
		{name: "no awsPrincipalArn", path: pEnc, body: withMD(func(m *RequestMetadata) { m.AWSPrincipalARN = "" }), status: 400, errName: ValidationException},
		{name: "no kmsKeyArn on encrypt", path: pEnc, body: withMD(func(m *RequestMetadata) { m.KMSKeyARN = "" }), status: 400, errName: ValidationException},
		{name: "no plaintext", path: pEnc, body: `{"requestMetadata":` + string(mustJSON(t, cryptoMD("Encrypt"))) + `,"encryptionAlgorithm":"AES_GCM"}`,
			status: 400, errName: ValidationException},
		{name: "plaintext not Base64", path: pEnc, body: `{"requestMetadata":` + string(mustJSON(t, cryptoMD("Encrypt"))) + `,"plaintext":"!!!","encryptionAlgorithm":"AES_GCM"}`,
			status: 400, errName: ValidationException},
		{name: "plaintext a number", path: pEnc, body: `{"requestMetadata":` + string(mustJSON(t, cryptoMD("Encrypt"))) + `,"plaintext":5,"encryptionAlgorithm":"AES_GCM"}`,
			status: 400, errName: ValidationException},
		{name: "algorithm AES_CBC", path: pEnc, body: func() EncryptRequest { r := good; r.EncryptionAlgorithm = "AES_CBC"; return r }(),
			status: 400, errName: ValidationException},
		{name: "no algorithm", path: pEnc, body: func() EncryptRequest { r := good; r.EncryptionAlgorithm = ""; return r }(),
			status: 400, errName: ValidationException},
		{name: "CDIV algorithm MD5", path: pEnc, body: func() EncryptRequest { r := good; r.CiphertextDataIntegrityValueAlgorithm = "MD5"; return r }(),
			status: 400, errName: ValidationException},
		{name: "decrypt, no ciphertext", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.Ciphertext = nil }), status: 400, errName: ValidationException},
		{name: "decrypt, metadata of 21 bytes", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.CiphertextMetadata = make([]byte, 21) }),
			status: 400, errName: ValidationException},
		{name: "decrypt, algorithm wrong", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.EncryptionAlgorithm = "AES" }),
			status: 400, errName: ValidationException},

		// Ciphertext shape (Decrypt).
		{name: "IV of 13 bytes", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.InitializationVector = make([]byte, 13) }),
			status: 400, errName: InvalidCiphertextException},
		{name: "no IV", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.InitializationVector = nil }), status: 400, errName: InvalidCiphertextException},
		{name: "IV of 16 bytes, forged metadata", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.InitializationVector = iv16 }),
			status: 400, errName: InvalidCiphertextException},
		{name: "tag of 15 bytes", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.AuthenticationTag = make([]byte, 15) }),
			status: 400, errName: InvalidCiphertextException},
		{name: "no metadata", path: pDec, body: fakeDec(func(d *DecryptRequest) { d.CiphertextMetadata = nil }),
			status: 400, errName: InvalidCiphertextException},
		{name: "forged metadata", path: pDec, body: fakeDec(func(*DecryptRequest) {}), status: 400, errName: InvalidCiphertextException},

		// Backend errors.
		{name: "key not found (metadata)", path: prefix + "/kms/xks/v1/keys/nokey/metadata", body: metaReq, status: 404, errName: KeyNotFoundException},
		{name: "key not found (encrypt)", path: prefix + "/kms/xks/v1/keys/nokey/encrypt", body: good, status: 404, errName: KeyNotFoundException},
		{name: "disabled key (encrypt)", path: prefix + "/kms/xks/v1/keys/off/encrypt", body: good, status: 400, errName: InvalidStateException},
		{name: "backend failure", path: pEnc, body: good, setup: func(p *proxy) { p.b.fail = errBoom }, status: 500, errName: InternalException,
			check: func(t *testing.T, a answer) { assert.NotContains(t, string(a.body), "node-3") }},
		{name: "backend timeout", path: pMeta, body: metaReq, setup: func(p *proxy) { p.b.fail = ErrDependencyTimeout }, status: 503, errName: DependencyTimeoutException},
		{name: "backend key usage", path: pEnc, body: good, setup: func(p *proxy) { p.b.fail = ErrKeyUsage }, status: 400, errName: InvalidKeyUsageException},
		{name: "backend's own *Error", path: pEnc, body: good, setup: func(p *proxy) { p.b.fail = &Error{Name: ThrottlingException, Message: "slow down"} },
			status: 429, errName: ThrottlingException},
		{name: "no usable node", path: pHealth, body: healthReq, status: 500, errName: InternalException,
			setup: func(p *proxy) { p.b.nodes = []NodeHealth{{ID: "n1", Status: HealthUnavailable}} }},
		{name: "no node at all", path: pHealth, body: healthReq, status: 500, errName: InternalException,
			setup: func(p *proxy) { p.b.nodes = nil }},
		{name: "twelve nodes: ten reported, odd status as UNAVAILABLE", path: pHealth, body: healthReq, status: 200,
			setup: func(p *proxy) {
				p.b.nodes = nil
				for i := range 12 {
					st := HealthActive
					if i == 1 {
						st = "weird"
					}
					p.b.nodes = append(p.b.nodes, NodeHealth{ID: string(rune('a' + i)), Model: "m", Status: st})
				}
			},
			check: func(t *testing.T, a answer) {
				var h HealthResponse
				require.NoError(t, json.Unmarshal(a.body, &h))
				require.Len(t, h.EKMFleetDetails, 10)
				assert.Equal(t, HealthUnavailable, h.EKMFleetDetails[1].HealthStatus)
			}},

		// Secondary authorization.
		{name: "authz: allowed by a global rule", path: pEnc, body: good, status: 200,
			setup: rules(Rule{Principal: "arn:aws:iam::123456789012:user/*"})},
		{name: "authz: another principal", path: pEnc, body: good, status: 403, errName: AccessDeniedException,
			setup: rules(Rule{Principal: "arn:aws:iam::123456789012:user/Bob"})},
		{name: "authz: rule for another key", path: pEnc, body: good, status: 403, errName: AccessDeniedException,
			setup: rules(Rule{Key: "key-2"})},
		{name: "authz: rule for this key", path: pEnc, body: good, status: 200,
			setup: rules(Rule{Key: "key-2"}, Rule{Key: "key-1", Operation: "Encrypt", KeyARN: "arn:aws:kms:us-east-2:123456789012:key/*"})},
		{name: "authz: operation not granted", path: pEnc, body: good, status: 403, errName: AccessDeniedException,
			setup: rules(Rule{Key: "key-*", Operation: "Decrypt"})},
		{name: "authz: key ARN of another account", path: pEnc, body: good, status: 403, errName: AccessDeniedException,
			setup: rules(Rule{KeyARN: "arn:aws:kms:*:999999999999:key/*"})},
		{name: "authz: metadata refused", path: pMeta, body: metaReq, status: 403, errName: AccessDeniedException,
			setup: rules(Rule{Operation: "Encrypt"})},
		{name: "authz: health is never checked", path: pHealth, body: healthReq, status: 200,
			setup: rules(Rule{Principal: "nobody"})},
		{name: "authz: before the key lookup", path: prefix + "/kms/xks/v1/keys/nokey/encrypt", body: good, status: 403, errName: AccessDeniedException,
			setup: rules(Rule{Key: "key-1"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *proxy
			if tc.name == "raised limits" {
				p = newProxy(t, func(c *Config) { c.Limits.Plaintext = 6000 })
			} else {
				p = newProxy(t)
			}
			if tc.setup != nil {
				tc.setup(p)
			}
			method := tc.method
			if method == "" {
				method = "POST"
			}
			var body []byte
			if tc.body != nil {
				body = mustJSON(t, tc.body)
			}
			a := p.do(method, tc.path, body, tc.sign)
			require.Equal(t, tc.status, a.status, "body: %.300s", a.body)
			if tc.status == 405 {
				assert.Equal(t, "POST", a.header.Get("Allow"))
			}
			if tc.status != 200 && tc.status != 405 {
				var e ErrorResponse
				require.NoError(t, json.Unmarshal(a.body, &e), "%s", a.body)
				assert.Equal(t, tc.errName, e.ErrorName)
				assert.Equal(t, errorStatus[e.ErrorName], a.status)
				assert.Less(t, len(e.ErrorMessage), 512)
				for _, c := range []byte(e.ErrorMessage) {
					assert.True(t, c >= 0x20 && c <= 0x7e, "errorMessage byte %#x", c)
				}
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }
