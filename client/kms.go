package client

import (
	"context"
	"errors"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/pki"
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

// CreateKMSPrincipalWithPolicy is CreateKMSPrincipal with an identity
// policy for the new principal (an IAM policy document; "" for none).
func (c *Client) CreateKMSPrincipalWithPolicy(ctx context.Context, name, policy string) (*KMSCredentials, error) {
	return c.kmsCredentials(ctx, name, func(ctx context.Context, hc hsmpb.HSMClient, r *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSCredentials, error) {
		r.Policy = policy
		return hc.KMSCreatePrincipal(ctx, r)
	})
}

// PutKMSPrincipalPolicy sets a KMS principal's identity policy (crypto
// officer); a document that does not parse is refused with
// MalformedPolicyDocumentException's message.
func (c *Client) PutKMSPrincipalPolicy(ctx context.Context, name, policy string) error {
	if err := api.CheckPrincipalName("name", name); err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.KMSPutPrincipalPolicy(ctx, &hsmpb.KMSPrincipalPolicy{Name: name, Policy: policy})
		return err
	})
}

// GetKMSPrincipalPolicy reads a KMS principal's identity policy, "" when
// it has none (crypto officer).
func (c *Client) GetKMSPrincipalPolicy(ctx context.Context, name string) (string, error) {
	if err := api.CheckPrincipalName("name", name); err != nil {
		return "", err
	}
	var r *hsmpb.KMSPrincipalPolicy
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.KMSGetPrincipalPolicy(ctx, &hsmpb.KMSPrincipalRequest{Name: name})
		return err
	})
	return r.GetPolicy(), err
}

// DeleteKMSPrincipalPolicy removes a KMS principal's identity policy
// (crypto officer).
func (c *Client) DeleteKMSPrincipalPolicy(ctx context.Context, name string) error {
	if err := api.CheckPrincipalName("name", name); err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.KMSDeletePrincipalPolicy(ctx, &hsmpb.KMSPrincipalRequest{Name: name})
		return err
	})
}

// KMSExplainRequest asks for the access decision of a principal, key and
// action (docs/kms-access.md, "explain").
type KMSExplainRequest struct {
	Principal string
	Key       string // key ID, key ARN, alias name or alias ARN
	Action    string // e.g. kms:Encrypt
	Region    string // of a key ID or alias name; "" is us-east-1
	Context   map[string]string
	SourceIP  string
}

// KMSDecision is the access decision and its reason.
type KMSDecision struct {
	Allowed bool
	Reason  string
}

// ExplainKMS asks the cluster's one access decision for a principal, key
// and action, and why (crypto officer).
func (c *Client) ExplainKMS(ctx context.Context, q KMSExplainRequest) (*KMSDecision, error) {
	if err := api.CheckPrincipalName("principal", q.Principal); err != nil {
		return nil, err
	}
	var r *hsmpb.KMSExplainResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.KMSExplain(ctx, &hsmpb.KMSExplainRequest{Principal: q.Principal, Key: q.Key, Action: q.Action,
			Region: q.Region, Context: q.Context, SourceIp: q.SourceIP})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &KMSDecision{Allowed: r.GetAllowed(), Reason: r.GetReason()}, nil
}

// KMSHSMCluster is another openhsm cluster as the KMS knows it, for custom
// key stores of type AWS_CLOUDHSM (docs/kms.md, "Custom key stores"):
// where its nodes are and the client certificate the KMS reaches them
// with. It never holds the private key.
type KMSHSMCluster struct {
	ClusterID string
	Nodes     []string // host:port
	CertPEM   string
	Added     time.Time // zero if the node did not say
}

// AddKMSHSMCluster tells the KMS where the nodes of the cluster clusterID
// are, and gives it a client certificate and its private key (PEM, issued
// by that cluster's CA and bound to its ID) to reach them with (crypto
// officer). The key is sent this once; the cluster keeps it sealed and
// never answers it. Adding a known cluster again replaces its nodes and
// certificate. The ID and the addresses are checked here, before anything
// is sent.
func (c *Client) AddKMSHSMCluster(ctx context.Context, clusterID string, nodes []string, certPEM, keyPEM []byte) error {
	if err := pki.ValidateClusterID(clusterID); err != nil {
		return err
	}
	if len(nodes) == 0 {
		return errors.New("client: an HSM cluster needs at least one node address")
	}
	for _, n := range nodes {
		if err := CheckNodeAddr(n); err != nil {
			return err
		}
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.KMSAddHSMCluster(ctx, &hsmpb.KMSAddHSMClusterRequest{ClusterId: clusterID, Nodes: nodes,
			CertPem: string(certPEM), KeyPem: keyPEM})
		return err
	})
}

// ListKMSHSMClusters lists the HSM clusters the KMS knows, without their
// keys (crypto officer).
func (c *Client) ListKMSHSMClusters(ctx context.Context) ([]KMSHSMCluster, error) {
	var r *hsmpb.KMSListHSMClustersResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.KMSListHSMClusters(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]KMSHSMCluster, 0, len(r.GetClusters()))
	for _, h := range r.GetClusters() {
		if h == nil {
			continue
		}
		k := KMSHSMCluster{ClusterID: h.GetClusterId(), Nodes: h.GetNodes(), CertPEM: h.GetCertPem()}
		if h.GetAddedUnix() != 0 {
			k.Added = time.Unix(h.GetAddedUnix(), 0).UTC()
		}
		out = append(out, k)
	}
	return out, nil
}

// RemoveKMSHSMCluster makes the KMS forget an HSM cluster that no custom
// key store uses (crypto officer).
func (c *Client) RemoveKMSHSMCluster(ctx context.Context, clusterID string) error {
	if err := pki.ValidateClusterID(clusterID); err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.KMSRemoveHSMCluster(ctx, &hsmpb.KMSHSMClusterRequest{ClusterId: clusterID})
		return err
	})
}
