package client

import (
	"context"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
)

// KMSPrincipal is a KMS principal (docs/kms.md): a user of the KMS API
// with an access key. It never holds the secret.
type KMSPrincipal struct {
	Name        string
	ARN         string
	AccessKeyID string
	Created     time.Time // zero if the node did not say
}

// KMSCredentials are a principal's new access key, as create and rotate
// answer: the secret is shown this once, and the cluster keeps it only
// sealed, so it cannot be read back. Print it to whoever needs it, then
// drop it.
type KMSCredentials struct {
	KMSPrincipal
	SecretAccessKey string
}

// CreateKMSPrincipal makes a KMS principal with a new access key (crypto
// officer). The name follows IAM's rule for user names
// (api.CheckPrincipalName); a name that breaks it is refused here, before
// anything is sent.
func (c *Client) CreateKMSPrincipal(ctx context.Context, name string) (*KMSCredentials, error) {
	return c.kmsCredentials(ctx, name, func(ctx context.Context, hc hsmpb.HSMClient, r *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSCredentials, error) {
		return hc.KMSCreatePrincipal(ctx, r)
	})
}

// RotateKMSPrincipalKey gives a KMS principal a new access key and ends
// its old one (crypto officer).
func (c *Client) RotateKMSPrincipalKey(ctx context.Context, name string) (*KMSCredentials, error) {
	return c.kmsCredentials(ctx, name, func(ctx context.Context, hc hsmpb.HSMClient, r *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSCredentials, error) {
		return hc.KMSRotatePrincipalKey(ctx, r)
	})
}

func (c *Client) kmsCredentials(ctx context.Context, name string,
	rpc func(context.Context, hsmpb.HSMClient, *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSCredentials, error)) (*KMSCredentials, error) {
	if err := api.CheckPrincipalName("name", name); err != nil {
		return nil, err
	}
	var r *hsmpb.KMSCredentials
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = rpc(ctx, hc, &hsmpb.KMSPrincipalRequest{Name: name})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &KMSCredentials{KMSPrincipal: kmsPrincipalFromPB(r.GetPrincipal()), SecretAccessKey: r.GetSecretAccessKey()}, nil
}

// ListKMSPrincipals lists the KMS principals, without their secrets
// (crypto officer).
func (c *Client) ListKMSPrincipals(ctx context.Context) ([]KMSPrincipal, error) {
	var r *hsmpb.KMSListPrincipalsResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.KMSListPrincipals(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]KMSPrincipal, 0, len(r.GetPrincipals()))
	for _, p := range r.GetPrincipals() {
		if p != nil {
			out = append(out, kmsPrincipalFromPB(p))
		}
	}
	return out, nil
}

// DeleteKMSPrincipal removes a KMS principal; its access key stops working
// on every node (crypto officer).
func (c *Client) DeleteKMSPrincipal(ctx context.Context, name string) error {
	if err := api.CheckPrincipalName("name", name); err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.KMSDeletePrincipal(ctx, &hsmpb.KMSPrincipalRequest{Name: name})
		return err
	})
}

func kmsPrincipalFromPB(p *hsmpb.KMSPrincipal) KMSPrincipal {
	out := KMSPrincipal{Name: p.GetName(), ARN: p.GetArn(), AccessKeyID: p.GetAccessKeyId()}
	if p.GetCreatedUnix() != 0 {
		out.Created = time.Unix(p.GetCreatedUnix(), 0).UTC()
	}
	return out
}
