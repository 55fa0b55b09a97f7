// Package xksclient is the KMS's side of an external key store: a client of
// the XKS Proxy API v1 (the same API kms/xks serves) that signs its
// requests with SigV4 (service "kms-xks-proxy") and turns the proxy's
// answers into AWS KMS exceptions.
//
// Contract (skeleton: the methods are filled in by issue 11's XKS client
// work; the signatures are fixed so the custom key store code can build on
// them):
//
//   - New checks a Config and answers a *Client. The Client is safe for
//     concurrent use and reuses its connections.
//   - Health, KeyMetadata, Encrypt and Decrypt call the proxy's four
//     operations under Config.Path (XksProxyUriPath, which ends in
//     "/kms/xks/v1"). An error answer of the proxy is returned as a
//     *xks.Error (its errorName and errorMessage); a transport failure
//     (refused, reset, timeout, TLS) as a *TransportError.
//   - Exception maps any error of those four calls, for the KMS operation
//     that made it, to the KMS exception type and message AWS KMS answers
//     (the XKS spec's table of error mappings).
package xksclient

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

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

// Client calls one proxy.
type Client struct{ cfg Config }

var errNotYet = errors.New("xksclient: not implemented yet")

// New checks cfg.
func New(cfg Config) (*Client, error) { return &Client{cfg: cfg}, nil }

// Health is GetHealthStatus.
func (c *Client) Health(ctx context.Context, md xks.RequestMetadata) (*xks.HealthResponse, error) {
	return nil, errNotYet
}

// KeyMetadata is GetKeyMetadata of the external key keyID.
func (c *Client) KeyMetadata(ctx context.Context, keyID string, md xks.RequestMetadata) (*xks.MetadataResponse, error) {
	return nil, errNotYet
}

// Encrypt is Encrypt (AES_GCM) of plaintext under the external key keyID
// with aad as additionalAuthenticatedData.
func (c *Client) Encrypt(ctx context.Context, keyID string, md xks.RequestMetadata, plaintext, aad []byte) (*Ciphertext, error) {
	return nil, errNotYet
}

// Decrypt is Decrypt of ct under the external key keyID with aad.
func (c *Client) Decrypt(ctx context.Context, keyID string, md xks.RequestMetadata, ct *Ciphertext, aad []byte) ([]byte, error) {
	return nil, errNotYet
}

// Exception is the KMS exception type and message for an error of a call
// made for the KMS operation op (e.g. "Encrypt", "CreateKey",
// "ConnectCustomKeyStore").
func Exception(err error, op string) (typ, msg string) {
	return "XksProxyInvalidResponseException", "The XKS proxy did not answer as expected."
}
