package hsmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
)

// The crypto officer's HSM clusters of custom key stores (docs/kms.md,
// "Custom key stores"): thin handlers over kms.Service's AddHSMCluster,
// ListHSMClusters and RemoveHSMCluster. Each checks the caller's role and
// its input first (the role before anything else, so a crypto user learns
// nothing of the input's faults), and refuses bad input with
// CKR_ARGUMENTS_BAD and a message that names the field and never holds key
// material. The private key is in the add request only: it is sealed by
// the service and never answered or logged.

// Limits of an add request.
const (
	maxHSMClusterNodes = 64       // as the state's apply allows
	maxHSMClusterPEM   = 64 << 10 // of the certificate and of the key
)

// kmsClusterOfficer returns the node's KMS service for a crypto officer's
// call on HSM clusters.
func (s *Server) kmsClusterOfficer(ctx context.Context, what string) (*kms.Service, error) {
	if callerFrom(ctx).Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may %s the HSM clusters of the KMS", what)
	}
	if s.KMS == nil {
		return nil, errNoKMS
	}
	return s.KMS, nil
}

func badCluster(format string, args ...any) error {
	return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, format, args...)
}

// checkAddHSMCluster checks an add request: the ID, the node addresses,
// and a certificate and key that make a pair, where the certificate is a
// client certificate bound to that cluster ID (pki's binding), so a
// certificate of another cluster is refused here rather than at connect.
func checkAddHSMCluster(r *hsmpb.KMSAddHSMClusterRequest) error {
	id := r.GetClusterId()
	if err := pki.ValidateClusterID(id); err != nil {
		return badCluster("cluster_id: %v", err)
	}
	nodes := r.GetNodes()
	if len(nodes) == 0 || len(nodes) > maxHSMClusterNodes {
		return badCluster("nodes: give 1 to %d node addresses (host:port)", maxHSMClusterNodes)
	}
	for i, n := range nodes {
		host, port, err := net.SplitHostPort(n)
		if err != nil || host == "" || port == "" {
			return badCluster("nodes: %q is not host:port", n)
		}
		if slices.Contains(nodes[:i], n) {
			return badCluster("nodes: %q is given twice", n)
		}
	}
	if len(r.GetCertPem()) == 0 || len(r.GetKeyPem()) == 0 {
		return badCluster("a client certificate and its private key are both needed")
	}
	if len(r.GetCertPem()) > maxHSMClusterPEM || len(r.GetKeyPem()) > maxHSMClusterPEM {
		return badCluster("the certificate or the key is larger than %d bytes", maxHSMClusterPEM)
	}
	pair, err := tls.X509KeyPair([]byte(r.GetCertPem()), r.GetKeyPem())
	if err != nil {
		// tls's message names the fault (no PEM block, key mismatch), not
		// the key's bytes.
		return badCluster("the client certificate and key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return badCluster("the client certificate: %v", err)
	}
	if !slices.Equal(leaf.Subject.OrganizationalUnit, []string{pki.KindClient}) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return badCluster("the certificate is not a client certificate (a node's key stays on its node): issue one with 'hsm cluster issue-client' on that cluster")
	}
	bound, err := pki.ClusterIDOf(leaf)
	if err != nil {
		return badCluster("the client certificate: %v", err)
	}
	if bound != id {
		return badCluster("the client certificate is bound to cluster %s, not %s", bound, id)
	}
	return nil
}

func (s *Server) KMSAddHSMCluster(ctx context.Context, r *hsmpb.KMSAddHSMClusterRequest) (*hsmpb.Empty, error) {
	svc, err := s.kmsClusterOfficer(ctx, "add")
	if err != nil {
		return nil, err
	}
	if err := checkAddHSMCluster(r); err != nil {
		return nil, err
	}
	if err := svc.AddHSMCluster(ctx, callerFrom(ctx), r.GetClusterId(), r.GetNodes(), []byte(r.GetCertPem()), r.GetKeyPem()); err != nil {
		return nil, kmsRefusal(err)
	}
	s.audit(ctx, "added KMS HSM cluster", "target", r.GetClusterId(), "nodes", len(r.GetNodes()))
	return empty, nil
}

func (s *Server) KMSListHSMClusters(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.KMSListHSMClustersResponse, error) {
	svc, err := s.kmsClusterOfficer(ctx, "list")
	if err != nil {
		return nil, err
	}
	list, err := svc.ListHSMClusters(callerFrom(ctx))
	if err != nil {
		return nil, kmsRefusal(err)
	}
	out := &hsmpb.KMSListHSMClustersResponse{Clusters: make([]*hsmpb.KMSHSMCluster, 0, len(list))}
	for _, h := range list {
		out.Clusters = append(out.Clusters, &hsmpb.KMSHSMCluster{ClusterId: h.ID, Nodes: h.Nodes, CertPem: h.CertPEM, AddedUnix: h.Added})
	}
	return out, nil
}

func (s *Server) KMSRemoveHSMCluster(ctx context.Context, r *hsmpb.KMSHSMClusterRequest) (*hsmpb.Empty, error) {
	svc, err := s.kmsClusterOfficer(ctx, "remove")
	if err != nil {
		return nil, err
	}
	if err := pki.ValidateClusterID(r.GetClusterId()); err != nil {
		return nil, badCluster("cluster_id: %v", err)
	}
	if err := svc.RemoveHSMCluster(ctx, callerFrom(ctx), r.GetClusterId()); err != nil {
		return nil, kmsRefusal(err)
	}
	s.audit(ctx, "removed KMS HSM cluster", "target", r.GetClusterId())
	return empty, nil
}
