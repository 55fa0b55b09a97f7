package client

import (
	"context"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
)

// RevokedCert is an entry of the cluster's certificate deny-list.
type RevokedCert struct {
	Fingerprint string    // SHA-256 of the certificate DER, lower-case hex
	Name        string    // its common name, as the revoker gave it
	By          string    // the crypto officer who revoked it
	Time        time.Time // when
}

// RevokeCert puts a certificate on the cluster's deny-list (crypto
// officer): every node then refuses it, on new connections and on calls
// over connections already open. fingerprint is the SHA-256 of the
// certificate DER in hex (pki.ParseFingerprint's forms); name is recorded
// for the list. Revoking twice is harmless, so the call may be retried.
func (c *Client) RevokeCert(ctx context.Context, fingerprint, name string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.RevokeCert(ctx, &hsmpb.RevokeCertRequest{Fingerprint: fingerprint, Name: name})
		return err
	})
}

// ListRevokedCerts lists the deny-list, ordered by fingerprint.
func (c *Client) ListRevokedCerts(ctx context.Context) ([]RevokedCert, error) {
	var r *hsmpb.ListRevokedCertsResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListRevokedCerts(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]RevokedCert, 0, len(r.GetCerts()))
	for _, e := range r.GetCerts() {
		out = append(out, RevokedCert{Fingerprint: e.GetFingerprint(), Name: e.GetName(), By: e.GetBy(), Time: time.Unix(e.GetTime(), 0).UTC()})
	}
	return out, nil
}
