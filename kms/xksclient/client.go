// Package xksclient is the KMS's side of an external key store: a client of
// the XKS Proxy API v1 (the same API kms/xks serves) that signs its
// requests with SigV4 (service "kms-xks-proxy") and turns the proxy's
// answers into AWS KMS exceptions.
//
// # Contract
//
//   - New checks a Config against the forms AWS KMS gives an external key
//     store (XksProxyUriEndpoint "https://host[:port]" with no path, query
//     or fragment; XksProxyUriPath an optional prefix of a-z A-Z 0-9 / _ -
//     then "/kms/xks/v1", at most 128 characters; an access key ID of 20-30
//     of A-Z 2-7; a secret of 43-64 of A-Z a-z 0-9 / + =; a Region) and
//     answers a *Client. Its errors never hold the secret. AWS's model
//     allows no port in the endpoint; this client does (tests, and proxies
//     not on 443).
//   - The Client is safe for concurrent use and reuses its connections
//     (HTTP keep-alive, TLS 1.2 or later, Config.RootCAs, no proxy from the
//     environment, no redirects). Each call is bounded by Config.Timeout
//     (DefaultTimeout when 0) and the caller's context, and reads at most
//     MaxResponse bytes of answer.
//   - Health, KeyMetadata, Encrypt and Decrypt POST JSON (kms/xks's wire
//     types) to Endpoint+Path+"/health" and "/keys/<id>/metadata",
//     "/encrypt", "/decrypt", signed with the aws-sdk-go-v2 SigV4 signer
//     for service "kms-xks-proxy" in Config.Region, with the body's
//     SHA-256. The key ID must have the spec's form (1-128 of A-Z a-z 0-9
//   - _ .). Encrypt sends encryptionAlgorithm AES_GCM and the AAD;
//     Decrypt sends back the ciphertext, IV, tag and ciphertextMetadata.
//   - An error answer of the proxy (a JSON body with an errorName) is a
//     *xks.Error (its errorName and errorMessage, which is for logs, never
//     for KMS callers). A call that got no usable answer is a
//     *TransportError wrapping ErrUnreachable (refused, reset, DNS),
//     ErrTLS (handshake or certificate), ErrTimeout (the deadline or the
//     caller's context) or ErrInvalidResponse (not the API's answer: a
//     status without an XKS error body, bad JSON, too large, or a success
//     answer that breaks the spec: an IV not 12 or 16 bytes, a tag not 16,
//     a ciphertext or plaintext not as long as its input, metadata over 20
//     bytes, a health answer without its required fields or with 0 or
//     more than 10 ekmFleetDetails).
//   - Health answers the proxy's report even when every key manager is
//     UNAVAILABLE, together with an error wrapping ErrKeyManagerUnavailable.
//   - CheckKeyMetadata says whether GetKeyMetadata's answer describes a key
//     KMS can use (AES_256, ENCRYPT and DECRYPT, ENABLED), as CreateKey
//     requires.
//   - Exception maps any error of those calls, for the KMS operation that
//     made it, to the KMS exception type and message AWS KMS answers
//     (Mapping is the table). ConnectionErrorCode is the
//     ConnectionErrorCode of a failed ConnectCustomKeyStore.
//   - Nothing secret is logged (this package logs nothing) or put in an
//     error: no secret key, plaintext or key material; ciphertext only as
//     lengths.
//
// # Sources
//
// [S] AWS, "External Key Store Proxy API Specification" v1.0.3
// (github.com/aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md):
// "API operations" (URIs, XksProxyUriPath's characters and length),
// "Encrypt", "Decrypt", "GetHealthStatus" (required fields, IV, tag and
// metadata sizes, the 250 ms timeout), "Error codes" and its "KMS
// Considerations" table (the exceptions and their exact messages), and
// Appendix A (SigV4, the credential forms).
//
// [K] The AWS KMS API reference as the KMS API model in kms/model has it:
// the XksProxy* field patterns and lengths, each operation's error list
// (CreateKey, CreateCustomKeyStore, UpdateCustomKeyStore, Encrypt,
// Decrypt, ...), and ConnectionErrorCodeType.
//
// [D] The AWS KMS developer guide, "Troubleshooting external key stores"
// (xks-troubleshooting): cryptographic operations answer
// KMSInvalidStateException for every failure of the external key store,
// with the message saying which; and the XksProxyUriUnreachableException
// description: also thrown when GetHealthStatus reports every external
// key manager unavailable.
package xksclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openhsm/openhsm/kms/xks"
)

// Config is one external key store's proxy as the KMS knows it.
type Config struct {
	// Endpoint is XksProxyUriEndpoint: "https://host[:port]".
	Endpoint string
	// Path is XksProxyUriPath: an optional prefix then "/kms/xks/v1".
	Path string
	// AccessKeyID and SecretAccessKey are XksProxyAuthenticationCredential.
	AccessKeyID     string
	SecretAccessKey string
	// Region is the signing region (the KMS's region).
	Region string
	// RootCAs verifies the proxy's TLS certificate; nil is the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds one call (0: AWS's 250 ms is too short for tests on a
	// loaded machine; the client picks a default of a few seconds).
	Timeout time.Duration
}

// Ciphertext is what the proxy's Encrypt answers and Decrypt takes back.
type Ciphertext struct {
	Ciphertext         []byte
	IV                 []byte
	Tag                []byte
	CiphertextMetadata []byte
}

// TransportError is a call that got no XKS answer: the proxy could not be
// reached, the TLS handshake failed, the call timed out, or the answer was
// not the API's.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return "xks proxy " + e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// What a TransportError wraps, and the other failures Exception knows.
var (
	// ErrUnreachable: no connection (refused, reset, no route, DNS).
	ErrUnreachable = errors.New("cannot connect to the proxy")
	// ErrTLS: the TLS handshake failed or the certificate was refused.
	ErrTLS = errors.New("TLS connection to the proxy failed")
	// ErrTimeout: no complete answer within the timeout or the caller's
	// context.
	ErrTimeout = errors.New("the proxy did not answer in time")
	// ErrInvalidResponse: the answer is not the API's.
	ErrInvalidResponse = errors.New("the proxy's answer is not a valid XKS API answer")
	// ErrKeyManagerUnavailable: GetHealthStatus reports no external key
	// manager ACTIVE or DEGRADED.
	ErrKeyManagerUnavailable = errors.New("the proxy reports every external key manager UNAVAILABLE")
	// ErrKeyInvalidConfiguration: GetKeyMetadata describes a key that is
	// not AES_256 or does not allow both ENCRYPT and DECRYPT.
	ErrKeyInvalidConfiguration = errors.New("the external key is not an AES_256 key for ENCRYPT and DECRYPT")
	// ErrKeyNotEnabled: GetKeyMetadata reports a keyStatus other than
	// ENABLED.
	ErrKeyNotEnabled = errors.New("the external key is not ENABLED")
	// ErrProxyPlaintextInvalid is for the caller: the plaintext the proxy's
	// Decrypt answered does not decrypt under the KMS-held layer (the
	// "proxy returns an invalid ciphertext" row of [S]).
	ErrProxyPlaintextInvalid = errors.New("the proxy's plaintext failed the KMS-held layer")
)

// MaxResponse bounds the body of an answer: the largest valid one (a
// 4300-byte Encrypt in Base64, or ten health entries) is far smaller.
const MaxResponse = 64 << 10

// Client calls one proxy.
type Client struct {
	cfg    Config
	base   string // Endpoint + Path
	http   *http.Client
	signer *v4.Signer
	creds  aws.Credentials
}

// New checks cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs},
		TLSHandshakeTimeout:   cfg.Timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &Client{
		cfg:  cfg,
		base: cfg.Endpoint + cfg.Path,
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		signer: v4.NewSigner(),
		creds:  aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, Source: "xksclient"},
	}, nil
}

// Close drops the Client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// keyIDForm is the spec's externalKeyId.
var keyIDForm = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Health is GetHealthStatus.
func (c *Client) Health(ctx context.Context, md xks.RequestMetadata) (*xks.HealthResponse, error) {
	var out xks.HealthResponse
	if err := c.call(ctx, "health", "/health", xks.HealthRequest{RequestMetadata: &md}, &out, func() error { return checkHealth(&out) }); err != nil {
		return nil, err
	}
	for _, d := range out.EKMFleetDetails {
		if d.HealthStatus != "UNAVAILABLE" {
			return &out, nil
		}
	}
	return &out, fmt.Errorf("xks proxy health: %w", ErrKeyManagerUnavailable)
}

// KeyMetadata is GetKeyMetadata of the external key keyID.
func (c *Client) KeyMetadata(ctx context.Context, keyID string, md xks.RequestMetadata) (*xks.MetadataResponse, error) {
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	var out xks.MetadataResponse
	if err := c.call(ctx, "metadata", "/keys/"+keyID+"/metadata", xks.MetadataRequest{RequestMetadata: &md}, &out, func() error { return checkMetadata(&out) }); err != nil {
		return nil, err
	}
	return &out, nil
}

// Encrypt is Encrypt (AES_GCM) of plaintext under the external key keyID
// with aad as additionalAuthenticatedData.
func (c *Client) Encrypt(ctx context.Context, keyID string, md xks.RequestMetadata, plaintext, aad []byte) (*Ciphertext, error) {
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	pt := plaintext
	if pt == nil {
		pt = []byte{}
	}
	req := xks.EncryptRequest{RequestMetadata: &md, Plaintext: &pt, EncryptionAlgorithm: "AES_GCM", AdditionalAuthenticatedData: aad}
	var out xks.EncryptResponse
	if err := c.call(ctx, "encrypt", "/keys/"+keyID+"/encrypt", req, &out, func() error { return checkEncrypt(&out, len(plaintext)) }); err != nil {
		return nil, err
	}
	return &Ciphertext{Ciphertext: out.Ciphertext, IV: out.InitializationVector, Tag: out.AuthenticationTag, CiphertextMetadata: out.CiphertextMetadata}, nil
}

// Decrypt is Decrypt of ct under the external key keyID with aad.
func (c *Client) Decrypt(ctx context.Context, keyID string, md xks.RequestMetadata, ct *Ciphertext, aad []byte) ([]byte, error) {
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	if ct == nil {
		return nil, errors.New("xksclient: Decrypt needs a Ciphertext")
	}
	body := ct.Ciphertext
	if body == nil {
		body = []byte{}
	}
	req := xks.DecryptRequest{RequestMetadata: &md, Ciphertext: &body, CiphertextMetadata: ct.CiphertextMetadata,
		EncryptionAlgorithm: "AES_GCM", AdditionalAuthenticatedData: aad, InitializationVector: ct.IV, AuthenticationTag: ct.Tag}
	var out xks.DecryptResponse
	if err := c.call(ctx, "decrypt", "/keys/"+keyID+"/decrypt", req, &out, func() error { return checkDecrypt(&out, len(body)) }); err != nil {
		return nil, err
	}
	if out.Plaintext == nil {
		out.Plaintext = []byte{}
	}
	return out.Plaintext, nil
}

func checkKeyID(id string) error {
	if !keyIDForm.MatchString(id) {
		return fmt.Errorf("xksclient: external key ID %q is not 1 to 128 of A-Z, a-z, 0-9, '-', '_' and '.'", id)
	}
	return nil
}

// call POSTs in as JSON to base+path, signed, and decodes a 200 answer
// into out and checks it with check. Other answers become a *xks.Error or
// a *TransportError.
func (c *Client) call(ctx context.Context, op, path string, in, out any, check func() error) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("xksclient: %s: encoding the request: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("xksclient: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), xks.Service, c.cfg.Region, time.Now()); err != nil {
		return fmt.Errorf("xksclient: %s: signing: %w", op, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{Op: op, Err: classify(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return &TransportError{Op: op, Err: classify(err)}
	}
	if len(raw) > MaxResponse {
		return invalid(op, "the answer is larger than %d bytes", MaxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var e xks.ErrorResponse
		if json.Unmarshal(raw, &e) == nil && e.ErrorName != "" {
			return &xks.Error{Name: e.ErrorName, Message: e.ErrorMessage}
		}
		return invalid(op, "HTTP status %d without an XKS error body", resp.StatusCode)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return invalid(op, "the body is not the operation's JSON")
	}
	if err := check(); err != nil {
		return &TransportError{Op: op, Err: err}
	}
	return nil
}

func invalid(op, format string, args ...any) error {
	return &TransportError{Op: op, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidResponse}, args...)...)}
}

// classify names the kind of a failed round trip. Timeouts first: a
// handshake that times out is a timeout, not a TLS failure.
func classify(err error) error {
	var ne net.Error
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert),
		strings.Contains(err.Error(), "tls: "):
		return fmt.Errorf("%w: %v", ErrTLS, err)
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

var healthStatuses = map[string]bool{"ACTIVE": true, "DEGRADED": true, "UNAVAILABLE": true}

// The checks of a 200 answer ([S]: each operation's "Response Payload
// Parameters"). Their errors wrap ErrInvalidResponse and name lengths only.
func checkHealth(h *xks.HealthResponse) error {
	switch {
	case h.XKSProxyFleetSize < 1:
		return fmt.Errorf("%w: xksProxyFleetSize is missing or not positive", ErrInvalidResponse)
	case h.XKSProxyVendor == "" || h.XKSProxyModel == "" || h.EKMVendor == "":
		return fmt.Errorf("%w: xksProxyVendor, xksProxyModel or ekmVendor is missing", ErrInvalidResponse)
	case len(h.EKMFleetDetails) < 1 || len(h.EKMFleetDetails) > 10:
		return fmt.Errorf("%w: ekmFleetDetails has %d entries, not 1 to 10", ErrInvalidResponse, len(h.EKMFleetDetails))
	}
	for i, d := range h.EKMFleetDetails {
		if d.ID == "" || d.Model == "" || !healthStatuses[d.HealthStatus] {
			return fmt.Errorf("%w: ekmFleetDetails[%d] lacks id or model, or healthStatus is not ACTIVE, DEGRADED or UNAVAILABLE", ErrInvalidResponse, i)
		}
	}
	return nil
}

func checkMetadata(m *xks.MetadataResponse) error {
	if m.KeySpec == "" || len(m.KeyUsage) == 0 || m.KeyStatus == "" {
		return fmt.Errorf("%w: keySpec, keyUsage or keyStatus is missing", ErrInvalidResponse)
	}
	return nil
}

func checkEncrypt(e *xks.EncryptResponse, ptLen int) error {
	switch {
	case e.Ciphertext == nil && ptLen > 0, len(e.Ciphertext) != ptLen:
		return fmt.Errorf("%w: ciphertext is %d bytes for %d bytes of plaintext", ErrInvalidResponse, len(e.Ciphertext), ptLen)
	case len(e.InitializationVector) != 12 && len(e.InitializationVector) != 16:
		return fmt.Errorf("%w: initializationVector is %d bytes, not 12 or 16", ErrInvalidResponse, len(e.InitializationVector))
	case len(e.AuthenticationTag) != 16:
		return fmt.Errorf("%w: authenticationTag is %d bytes, not 16", ErrInvalidResponse, len(e.AuthenticationTag))
	case len(e.CiphertextMetadata) > 20:
		return fmt.Errorf("%w: ciphertextMetadata is %d bytes, more than 20", ErrInvalidResponse, len(e.CiphertextMetadata))
	}
	return nil
}

func checkDecrypt(d *xks.DecryptResponse, ctLen int) error {
	if (d.Plaintext == nil && ctLen > 0) || len(d.Plaintext) != ctLen {
		return fmt.Errorf("%w: plaintext is %d bytes for %d bytes of ciphertext", ErrInvalidResponse, len(d.Plaintext), ctLen)
	}
	return nil
}

// CheckKeyMetadata is nil when m describes a key CreateKey accepts in an
// external key store: keySpec AES_256, keyUsage holding ENCRYPT and
// DECRYPT, keyStatus ENABLED. Otherwise it wraps ErrKeyInvalidConfiguration
// or ErrKeyNotEnabled (Exception maps both).
func CheckKeyMetadata(m *xks.MetadataResponse) error {
	var enc, dec bool
	for _, u := range m.KeyUsage {
		enc = enc || u == "ENCRYPT"
		dec = dec || u == "DECRYPT"
	}
	switch {
	case m.KeySpec != "AES_256" || !enc || !dec:
		return fmt.Errorf("xks key metadata: %w (keySpec %q, keyUsage %q)", ErrKeyInvalidConfiguration, m.KeySpec, m.KeyUsage)
	case m.KeyStatus != xks.KeyEnabled:
		return fmt.Errorf("xks key metadata: %w (keyStatus %q)", ErrKeyNotEnabled, m.KeyStatus)
	}
	return nil
}
