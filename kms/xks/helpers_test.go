package xks

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
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

// memBackend is a test double of the HSM cluster behind the Backend
// interface: real AES-256-GCM in memory, keys with numbered versions. The
// issue allows it here because the handler, not the HSM, is under test;
// the HSM-backed Backend is tested where hsmd wires it.
type memBackend struct {
	mu    sync.Mutex
	keys  map[string]*memKey
	nodes []NodeHealth
	fail  error // returned by every key operation when set
	calls int   // Encrypt and Decrypt calls
}

type memKey struct {
	versions [][]byte // versions[i] is version i+1
	disabled bool
}

func newMemBackend() *memBackend {
	b := &memBackend{keys: map[string]*memKey{}, nodes: []NodeHealth{
		{ID: "node-1", Model: "openhsm test", Status: HealthActive},
		{ID: "node-2", Model: "openhsm test", Status: HealthDegraded},
	}}
	b.addKey("key-1", 2) // two versions: new encryptions use version 2
	b.addKey("key-2", 1)
	b.addKey("off", 1)
	b.keys["off"].disabled = true
	return b
}

// addKey makes keyID with n versions, each a distinct key derived from its
// name (deterministic, so failures can be reproduced).
func (b *memBackend) addKey(keyID string, n int) {
	k := &memKey{}
	for v := 1; v <= n; v++ {
		s := sha256.Sum256([]byte(keyID + "/" + string(rune('0'+v))))
		k.versions = append(k.versions, s[:])
	}
	b.mu.Lock()
	b.keys[keyID] = k
	b.mu.Unlock()
}

// rotate adds a version to keyID.
func (b *memBackend) rotate(keyID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.keys[keyID]
	s := sha256.Sum256([]byte(keyID + "/rotated/" + string(rune('0'+len(k.versions)))))
	k.versions = append(k.versions, s[:])
}

func (b *memBackend) key(keyID string) (*memKey, error) {
	if b.fail != nil {
		return nil, b.fail
	}
	k, ok := b.keys[keyID]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return k, nil
}

func gcmOf(key []byte, ivLen int) cipher.AEAD {
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCMWithNonceSize(blk, ivLen)
	if err != nil {
		panic(err)
	}
	return g
}

func (b *memBackend) KeyMetadata(ctx context.Context, keyID string) (Metadata, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, err := b.key(keyID)
	if err != nil {
		return Metadata{}, err
	}
	st := KeyEnabled
	if k.disabled {
		st = KeyDisabled
	}
	return Metadata{KeySpec: "AES_256", KeyUsage: []string{"ENCRYPT", "DECRYPT"}, KeyStatus: st}, nil
}

func (b *memBackend) Encrypt(ctx context.Context, keyID string, plaintext, aad, iv []byte) ([]byte, []byte, uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	k, err := b.key(keyID)
	if err != nil {
		return nil, nil, 0, err
	}
	if k.disabled {
		return nil, nil, 0, ErrKeyDisabled
	}
	v := len(k.versions)
	out := gcmOf(k.versions[v-1], len(iv)).Seal(nil, iv, plaintext, aad)
	n := len(plaintext)
	return out[:n], out[n:], uint32(v), nil
}

func (b *memBackend) Decrypt(ctx context.Context, keyID string, version uint32, ct, aad, iv, tag []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	k, err := b.key(keyID)
	if err != nil {
		return nil, err
	}
	if k.disabled {
		return nil, ErrKeyDisabled
	}
	if version == 0 || int(version) > len(k.versions) {
		return nil, ErrInvalidCiphertext
	}
	pt, err := gcmOf(k.versions[version-1], len(iv)).Open(nil, iv, append(bytes.Clone(ct), tag...), aad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}

func (b *memBackend) Health(ctx context.Context) []NodeHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]NodeHealth(nil), b.nodes...)
}

// The test credentials: access key IDs and secrets of the forms AWS KMS
// accepts. They are test values; the tests check no answer holds them.
const (
	akid1   = "AKIDXKSTESTONE234567A"
	secret1 = "xksTestSecretOne0000000000000000000000000000="
	akid2   = "AKIDXKSTESTTWO234567B"
	secret2 = "xksTestSecretTwo1111111111111111111111111111+"
	prefix  = "/tenant-a"
	region  = "us-east-2"
)

var testMetadataKey = bytes.Repeat([]byte{0x5a}, MetadataKeySize)

// proxy is a Handler over a memBackend on a real server on 127.0.0.1.
type proxy struct {
	t      *testing.T
	h      *Handler
	b      *memBackend
	creds  *Credentials
	authz  *Authorizer
	srv    *httptest.Server
	events chan Event
}

func newProxy(t *testing.T, edit ...func(*Config)) *proxy {
	t.Helper()
	p := &proxy{t: t, b: newMemBackend(), creds: &Credentials{}, authz: &Authorizer{}, events: make(chan Event, 1000)}
	require.NoError(t, p.creds.Set(prefix, akid1, secret1))
	require.NoError(t, p.creds.Set("", akid2, secret2))
	c := Config{Backend: p.b, Credentials: p.creds, MetadataKey: testMetadataKey, Authorizer: p.authz,
		Observe: func(e Event) {
			select {
			case p.events <- e:
			default:
			}
		}}
	for _, e := range edit {
		e(&c)
	}
	h, err := New(c)
	require.NoError(t, err)
	p.h = h
	p.srv = httptest.NewServer(h)
	t.Cleanup(p.srv.Close)
	return p
}

// signing is how a test request is signed; the zero value is akid1's
// credential, now, for kms-xks-proxy.
type signing struct {
	none            bool
	akid, secret    string
	service, region string
	at              time.Time
	after           func(*http.Request) // runs after signing
}

func (s signing) fill() signing {
	if s.akid == "" {
		s.akid, s.secret = akid1, secret1
	}
	if s.service == "" {
		s.service = Service
	}
	if s.region == "" {
		s.region = region
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	return s
}

type answer struct {
	status int
	body   []byte
	header http.Header
}

// errorName reads the answer's errorName ("" if the body is not an error).
func (a answer) errorName() string {
	var e ErrorResponse
	_ = json.Unmarshal(a.body, &e)
	return e.ErrorName
}

func (p *proxy) do(method, path string, body []byte, s signing) answer {
	p.t.Helper()
	r, err := http.NewRequest(method, p.srv.URL+path, bytes.NewReader(body))
	require.NoError(p.t, err)
	r.Header.Set("Content-Type", "application/json")
	if !s.none {
		s = s.fill()
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: s.akid, SecretAccessKey: s.secret}
		require.NoError(p.t, v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), s.service, s.region, s.at))
	}
	if s.after != nil {
		s.after(r)
	}
	resp, err := p.srv.Client().Do(r)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	for _, sec := range []string{secret1, secret2} {
		require.NotContains(p.t, string(b), sec, "an answer holds a secret access key")
	}
	return answer{status: resp.StatusCode, body: b, header: resp.Header}
}

// post sends v as JSON, signed as akid1, under prefix.
func (p *proxy) post(path string, v any) answer {
	p.t.Helper()
	return p.do("POST", prefix+path, mustJSON(p.t, v), signing{})
}

func mustJSON(t testing.TB, v any) []byte {
	if b, ok := v.([]byte); ok {
		return b
	}
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func cryptoMD(op string) *RequestMetadata {
	return &RequestMetadata{
		AWSPrincipalARN: "arn:aws:iam::123456789012:user/Alice",
		KMSKeyARN:       "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		KMSOperation:    op,
		KMSRequestID:    "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
		KMSViaService:   "ebs",
	}
}

func healthMD() *RequestMetadata {
	return &RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "req-health-1"}
}

func encReq(pt, aad []byte) EncryptRequest {
	return EncryptRequest{RequestMetadata: cryptoMD("Encrypt"), Plaintext: &pt, EncryptionAlgorithm: "AES_GCM", AdditionalAuthenticatedData: aad}
}

func decReq(ct []byte, e EncryptResponse, aad []byte) DecryptRequest {
	return DecryptRequest{RequestMetadata: cryptoMD("Decrypt"), Ciphertext: &ct, CiphertextMetadata: e.CiphertextMetadata,
		EncryptionAlgorithm: "AES_GCM", AdditionalAuthenticatedData: aad,
		InitializationVector: e.InitializationVector, AuthenticationTag: e.AuthenticationTag}
}

// encrypt encrypts through the proxy and requires success.
func (p *proxy) encrypt(keyID string, pt, aad []byte) EncryptResponse {
	p.t.Helper()
	a := p.post("/kms/xks/v1/keys/"+keyID+"/encrypt", encReq(pt, aad))
	require.Equal(p.t, http.StatusOK, a.status, string(a.body))
	var out EncryptResponse
	require.NoError(p.t, json.Unmarshal(a.body, &out))
	return out
}

var errBoom = errors.New("backend exploded: /var/lib/hsm/node-3 secret detail")

func repeat(n int) []byte { return bytes.Repeat([]byte("p"), n) }

func lower(s string) string { return strings.ToLower(s) }
