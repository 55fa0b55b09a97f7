package xksclient

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/xks"
)

// The client against the real proxy (kms/xks over the engine) over TLS.
func TestAgainstProxy(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t)
	c := newClient(t, p.config())

	t.Run("health", func(t *testing.T) {
		h, err := c.Health(ctx, healthMD())
		require.NoError(t, err)
		assert.GreaterOrEqual(t, h.XKSProxyFleetSize, 1)
		require.NotEmpty(t, h.EKMFleetDetails)
		assert.Equal(t, "ACTIVE", h.EKMFleetDetails[0].HealthStatus)
	})

	t.Run("metadata", func(t *testing.T) {
		m, err := c.KeyMetadata(ctx, "ext-1", cryptoMD("CreateKey"))
		require.NoError(t, err)
		assert.Equal(t, &xks.MetadataResponse{KeySpec: "AES_256", KeyUsage: []string{"ENCRYPT", "DECRYPT"}, KeyStatus: "ENABLED"}, m)
		assert.NoError(t, CheckKeyMetadata(m))
	})

	t.Run("encrypt and decrypt with AAD", func(t *testing.T) {
		pt := []byte("a 32-byte data key, as KMS sends")
		aad := []byte("kms-held layer header")
		ct, err := c.Encrypt(ctx, "ext-1", cryptoMD("Encrypt"), pt, aad)
		require.NoError(t, err)
		assert.Len(t, ct.Ciphertext, len(pt))
		assert.Len(t, ct.IV, 12)
		assert.Len(t, ct.Tag, 16)
		assert.Len(t, ct.CiphertextMetadata, 20)
		assert.NotEqual(t, pt, ct.Ciphertext)

		got, err := c.Decrypt(ctx, "ext-1", cryptoMD("Decrypt"), ct, aad)
		require.NoError(t, err)
		assert.Equal(t, pt, got)

		// Any change is the proxy's InvalidCiphertextException, which
		// Decrypt answers as KMSInvalidStateException ([S]).
		tamper := map[string]func(x *Ciphertext) ([]byte, *Ciphertext){
			"tag":      func(x *Ciphertext) ([]byte, *Ciphertext) { x.Tag[0] ^= 1; return aad, x },
			"iv":       func(x *Ciphertext) ([]byte, *Ciphertext) { x.IV[3] ^= 1; return aad, x },
			"metadata": func(x *Ciphertext) ([]byte, *Ciphertext) { x.CiphertextMetadata[7] ^= 1; return aad, x },
			"body":     func(x *Ciphertext) ([]byte, *Ciphertext) { x.Ciphertext[0] ^= 1; return aad, x },
			"aad":      func(x *Ciphertext) ([]byte, *Ciphertext) { return []byte("other"), x },
		}
		for name, f := range tamper {
			t.Run(name, func(t *testing.T) {
				x := &Ciphertext{Ciphertext: clone(ct.Ciphertext), IV: clone(ct.IV), Tag: clone(ct.Tag), CiphertextMetadata: clone(ct.CiphertextMetadata)}
				a, x := f(x)
				_, err := c.Decrypt(ctx, "ext-1", cryptoMD("Decrypt"), x, a)
				var xe *xks.Error
				require.ErrorAs(t, err, &xe)
				assert.Equal(t, xks.InvalidCiphertextException, xe.Name)
				typ, msg := Exception(err, "Decrypt")
				assert.Equal(t, "KMSInvalidStateException", typ)
				assert.Equal(t, msgInvalidCiphertext, msg)
				noSecret(t, err, string(pt))
			})
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		_, err := c.KeyMetadata(ctx, "no-such-key", cryptoMD("CreateKey"))
		typ, msg := Exception(err, "CreateKey")
		assert.Equal(t, "XksKeyNotFoundException", typ)
		assert.Equal(t, msgKeyNotFound, msg)
		_, err = c.Encrypt(ctx, "no-such-key", cryptoMD("Encrypt"), []byte("x"), nil)
		typ, _ = Exception(err, "Encrypt")
		assert.Equal(t, "KMSInvalidStateException", typ)
	})

	t.Run("wrong secret", func(t *testing.T) {
		cfg := p.config()
		cfg.SecretAccessKey = secret2 // akid1 with akid2's secret
		bad := newClient(t, cfg)
		_, err := bad.Health(ctx, healthMD())
		var xe *xks.Error
		require.ErrorAs(t, err, &xe)
		assert.Equal(t, xks.AuthenticationFailedException, xe.Name)
		for op, want := range map[string]string{
			"CreateCustomKeyStore": "XksProxyIncorrectAuthenticationCredentialException",
			"CreateKey":            "CustomKeyStoreInvalidStateException",
			"Encrypt":              "KMSInvalidStateException",
		} {
			typ, msg := Exception(err, op)
			assert.Equal(t, want, typ, op)
			assert.Equal(t, msgAuthFailed, msg)
		}
		assert.Equal(t, "INVALID_CREDENTIALS", ConnectionErrorCode(err))
		noSecret(t, err)
	})

	t.Run("second credential, then rotated out", func(t *testing.T) {
		cfg := p.config()
		cfg.AccessKeyID, cfg.SecretAccessKey = akid2, secret2
		two := newClient(t, cfg)
		_, err := two.Health(ctx, healthMD())
		require.NoError(t, err)
		require.True(t, p.creds.Remove(prefix, akid2))
		_, err = two.Health(ctx, healthMD())
		typ, _ := Exception(err, "UpdateCustomKeyStore")
		assert.Equal(t, "XksProxyIncorrectAuthenticationCredentialException", typ)
	})

	t.Run("wrong path prefix", func(t *testing.T) {
		cfg := p.config()
		cfg.Path = "/keystores/other" + APIPath
		_, err := newClient(t, cfg).Health(ctx, healthMD())
		typ, msg := Exception(err, "CreateCustomKeyStore")
		assert.Equal(t, "XksProxyInvalidConfigurationException", typ)
		assert.Equal(t, msgInvalidURIPath, msg)
	})

	t.Run("connections are reused", func(t *testing.T) {
		fresh := newClient(t, p.config())
		before := p.conns.Load()
		for range 5 {
			_, err := fresh.Health(ctx, healthMD())
			require.NoError(t, err)
		}
		assert.Equal(t, int32(1), p.conns.Load()-before)
	})

	t.Run("wrong CA", func(t *testing.T) {
		// Every httptest server has the same certificate; a pool without
		// it trusts nothing the proxy shows, as would the system pool.
		cfg := p.config()
		cfg.RootCAs = x509.NewCertPool()
		_, err := newClient(t, cfg).Health(ctx, healthMD())
		var te *TransportError
		require.ErrorAs(t, err, &te)
		require.ErrorIs(t, err, ErrTLS)
		typ, msg := Exception(err, "CreateCustomKeyStore")
		assert.Equal(t, "XksProxyUriUnreachableException", typ)
		assert.Equal(t, msgNoTLS, msg)
		assert.Equal(t, "XKS_PROXY_INVALID_TLS_CONFIGURATION", ConnectionErrorCode(err))
		noSecret(t, err)
	})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// A closed port: no TCP connection.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c := newClient(t, Config{Endpoint: "https://" + addr, Path: APIPath, AccessKeyID: akid1, SecretAccessKey: secret1, Region: region})
	_, err = c.Health(context.Background(), healthMD())
	require.ErrorIs(t, err, ErrUnreachable)
	for op, want := range map[string]string{
		"CreateCustomKeyStore": "XksProxyUriUnreachableException",
		"CreateKey":            "CustomKeyStoreInvalidStateException",
		"Decrypt":              "KMSInvalidStateException",
	} {
		typ, msg := Exception(err, op)
		assert.Equal(t, want, typ, op)
		assert.Equal(t, msgNoTCP, msg)
	}
	assert.Equal(t, "XKS_PROXY_NOT_REACHABLE", ConnectionErrorCode(err))
	noSecret(t, err)
}

// A proxy slower than the timeout.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	s, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newClient(t, Config{Endpoint: s.URL, Path: APIPath, AccessKeyID: akid1, SecretAccessKey: secret1, Region: region,
		RootCAs: pool, Timeout: 200 * time.Millisecond})
	// The proxy answers only when released: the call can end only by its
	// own timeout.
	_, err := c.Encrypt(context.Background(), "k", cryptoMD("Encrypt"), []byte("secret plaintext"), nil)
	require.ErrorIs(t, err, ErrTimeout)
	typ, msg := Exception(err, "UpdateCustomKeyStore")
	assert.Equal(t, "XksProxyUriUnreachableException", typ)
	assert.Equal(t, msgTimeout, msg)
	typ, _ = Exception(err, "Encrypt")
	assert.Equal(t, "KMSInvalidStateException", typ)
	noSecret(t, err, "secret plaintext")
}

// Answers that are not the API's: each is ErrInvalidResponse, which is
// XksProxyInvalidResponseException for the key store operations.
func TestInvalidAnswers(t *testing.T) {
	iv := `"AAAAAAAAAAAAAAAA"` // 12 bytes
	tag := `"AAAAAAAAAAAAAAAAAAAAAA=="`
	cases := []struct {
		name   string
		call   string // health, metadata, encrypt, decrypt
		status int
		body   string
	}{
		{"garbage", "health", 200, "not json at all"},
		{"trailing data", "health", 200, `{"xksProxyFleetSize":1} x`},
		{"status without XKS body", "health", 500, "internal server error"},
		{"redirect", "health", 302, ""},
		{"error JSON without errorName", "health", 400, `{"errorMessage":"no name"}`},
		{"health without fields", "health", 200, `{"xksProxyFleetSize":1}`},
		{"health fleet size 0", "health", 200, `{"xksProxyFleetSize":0,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"1","model":"m","healthStatus":"ACTIVE"}]}`},
		{"health no details", "health", 200, `{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[]}`},
		{"health bad status", "health", 200, `{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"1","model":"m","healthStatus":"FINE"}]}`},
		{"metadata without status", "metadata", 200, `{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"]}`},
		{"IV of 5 bytes", "encrypt", 200, `{"ciphertext":"AAAA","initializationVector":"AAAAAAA=","authenticationTag":` + tag + `}`},
		{"tag of 12 bytes", "encrypt", 200, `{"ciphertext":"AAAA","initializationVector":` + iv + `,"authenticationTag":"AAAAAAAAAAAAAAAA"}`},
		{"ciphertext too short", "encrypt", 200, `{"ciphertext":"AA==","initializationVector":` + iv + `,"authenticationTag":` + tag + `}`},
		{"metadata of 21 bytes", "encrypt", 200, `{"ciphertext":"AAAA","ciphertextMetadata":"AAAAAAAAAAAAAAAAAAAAAAAAAAAA","initializationVector":` + iv + `,"authenticationTag":` + tag + `}`},
		{"bad base64", "encrypt", 200, `{"ciphertext":"!!!!","initializationVector":` + iv + `,"authenticationTag":` + tag + `}`},
		{"plaintext too long", "decrypt", 200, `{"plaintext":"AAAAAAAA"}`},
		{"no plaintext", "decrypt", 200, `{}`},
		{"too large", "health", 200, `{"xksProxyVendor":"` + string(make([]byte, MaxResponse)) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			c := newClient(t, Config{Endpoint: s.URL, Path: APIPath, AccessKeyID: akid1, SecretAccessKey: secret1, Region: region, RootCAs: pool})
			ctx := context.Background()
			var err error
			switch tc.call {
			case "health":
				_, err = c.Health(ctx, healthMD())
			case "metadata":
				_, err = c.KeyMetadata(ctx, "k", cryptoMD("CreateKey"))
			case "encrypt":
				_, err = c.Encrypt(ctx, "k", cryptoMD("Encrypt"), []byte("abc"), nil)
			case "decrypt":
				_, err = c.Decrypt(ctx, "k", cryptoMD("Decrypt"), &Ciphertext{Ciphertext: []byte("abc"), IV: make([]byte, 12), Tag: make([]byte, 16)}, nil)
			}
			require.ErrorIs(t, err, ErrInvalidResponse)
			var te *TransportError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, tc.call, te.Op)
			typ, msg := Exception(err, "CreateCustomKeyStore")
			assert.Equal(t, "XksProxyInvalidResponseException", typ)
			assert.Equal(t, msgCannotInterpret, msg)
			typ, _ = Exception(err, "CreateKey")
			assert.Equal(t, "CustomKeyStoreInvalidStateException", typ)
			noSecret(t, err, "abc")
		})
	}
}

// The request the client sends: method, path, headers, body.
func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	s, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		body = make([]byte, r.ContentLength)
		_, _ = r.Body.Read(body)
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"errorName":"ThrottlingException","errorMessage":"slow down"}`))
	})
	c := newClient(t, Config{Endpoint: s.URL, Path: "/a_b/c-d" + APIPath, AccessKeyID: akid1, SecretAccessKey: secret1, Region: region, RootCAs: pool})
	_, err := c.Encrypt(context.Background(), "key.1_x-y", cryptoMD("GenerateDataKey"), []byte{1, 2, 3}, []byte{9})
	var xe *xks.Error
	require.ErrorAs(t, err, &xe)
	assert.Equal(t, &xks.Error{Name: "ThrottlingException", Message: "slow down"}, xe)
	typ, msg := Exception(err, "GenerateDataKey")
	assert.Equal(t, "KMSInvalidStateException", typ)
	assert.Equal(t, msgThrottling, msg)

	require.NotNil(t, got)
	assert.Equal(t, http.MethodPost, got.Method)
	assert.Equal(t, "/a_b/c-d/kms/xks/v1/keys/key.1_x-y/encrypt", got.URL.Path)
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	auth := got.Header.Get("Authorization")
	assert.Contains(t, auth, "AWS4-HMAC-SHA256 Credential="+akid1+"/")
	assert.Contains(t, auth, "/"+region+"/kms-xks-proxy/aws4_request")
	assert.NotEmpty(t, got.Header.Get("X-Amz-Date"))
	assert.JSONEq(t, `{"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::111122223333:role/app",
		"kmsKeyArn":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"kmsOperation":"GenerateDataKey","kmsRequestId":"5112f4d6-db54-4af4-ae30-c55a22a8dfae"},
		"plaintext":"AQID","encryptionAlgorithm":"AES_GCM","additionalAuthenticatedData":"CQ=="}`, string(body))
}

// A health answer whose every key manager is UNAVAILABLE is returned with
// ErrKeyManagerUnavailable.
func TestHealthAllUnavailable(t *testing.T) {
	s, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"xksProxyFleetSize":2,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"1","model":"m","healthStatus":"UNAVAILABLE"}]}`))
	})
	c := newClient(t, Config{Endpoint: s.URL, Path: APIPath, AccessKeyID: akid1, SecretAccessKey: secret1, Region: region, RootCAs: pool})
	h, err := c.Health(context.Background(), healthMD())
	require.ErrorIs(t, err, ErrKeyManagerUnavailable)
	require.NotNil(t, h)
	assert.Equal(t, 2, h.XKSProxyFleetSize)
	typ, _ := Exception(err, "ConnectCustomKeyStore")
	assert.Equal(t, "XksProxyUriUnreachableException", typ)
}

func TestCallerErrors(t *testing.T) {
	c := newClient(t, Config{Endpoint: "https://xks.example.com", Path: APIPath, AccessKeyID: akid1, SecretAccessKey: secret1, Region: region})
	ctx := context.Background()
	for _, id := range []string{"", "a/b", "a b", string(make([]byte, 129))} {
		_, err := c.KeyMetadata(ctx, id, cryptoMD("CreateKey"))
		require.Error(t, err)
		assert.False(t, errors.Is(err, ErrUnreachable))
	}
	_, err := c.Decrypt(ctx, "k", cryptoMD("Decrypt"), nil, nil)
	require.Error(t, err)
	typ, _ := Exception(err, "Decrypt")
	assert.Equal(t, "KMSInternalException", typ)
	assert.Equal(t, "INTERNAL_ERROR", ConnectionErrorCode(err))
}
