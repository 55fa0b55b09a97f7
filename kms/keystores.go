package kms

// Custom key stores (docs/kms.md, "Custom key stores"): the six
// operations, over the store rows of state/kms_stores.go. A store of type
// AWS_CLOUDHSM is another openhsm cluster, reached as its crypto user
// kmsuser; ConnectCustomKeyStore records CONNECTING and returns, and a
// goroutine of this node (the connector, keystore_cloudhsm.go) records
// CONNECTED or FAILED. An EXTERNAL_KEY_STORE is an XKS proxy, which the
// connector asks for its health (keystore_xks.go).

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/state"
)

// Exceptions of custom key stores (AWS's names) that only this package
// answers; the ones kms/xksclient answers too are kmserr's.
const (
	excStoreNotFound        = "CustomKeyStoreNotFoundException"
	excIncorrectTrust       = "IncorrectTrustAnchorException"
	excClusterNotFound      = "CloudHsmClusterNotFoundException"
	excClusterNotActive     = "CloudHsmClusterNotActiveException"
	excClusterInvalidConfig = "CloudHsmClusterInvalidConfigurationException"
)

func newStoreID() (string, error) {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "cks-" + hex.EncodeToString(b[:])[:17], nil
}

// readStore reads a store's row in the region.
func (s *Service) readStore(region, id string) (*state.KMSKeyStore, error) {
	sl, err := s.sealer()
	if err != nil {
		return nil, err
	}
	var st state.KMSKeyStore
	err = state.ReadKMSRow(s.store.Meta, sl, state.KMSStoreMeta(region, id), &st)
	if errors.Is(err, state.ErrNotFound) {
		return nil, kmserr.New(excStoreNotFound, "Custom key store %s does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// stores reads every store of the region, in ID order.
func (s *Service) stores(region string) ([]state.KMSKeyStore, error) {
	sl, err := s.sealer()
	if err != nil {
		return nil, err
	}
	rows, err := s.store.MetaScan(state.KMSStorePrefix+region+"/", "", 1<<16)
	if err != nil {
		return nil, err
	}
	out := make([]state.KMSKeyStore, 0, len(rows))
	for _, row := range rows {
		var st state.KMSKeyStore
		if err := state.KMSRow(sl, row.Key, row.Value, &st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// checkTrustAnchor checks a TrustAnchorCertificate: one PEM certificate
// of a CA (AWS: IncorrectTrustAnchorException when it is not the
// cluster's; the connector checks it against the cluster itself).
func checkTrustAnchor(p string) error {
	b, rest := pem.Decode([]byte(p))
	if b == nil || b.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		return kmserr.New(excIncorrectTrust, "The trust anchor certificate is not one PEM-encoded certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !c.IsCA {
		return kmserr.New(excIncorrectTrust, "The trust anchor certificate is not a CA certificate")
	}
	return nil
}

// storeInput fills st from a Create or Update request; create says which.
func (s *Service) storeInput(r *call.Request, st *state.KMSKeyStore, create bool) error {
	in := r.Input
	sl, err := s.sealer()
	if err != nil {
		return err
	}
	nameMember := "NewCustomKeyStoreName"
	if create {
		nameMember = "CustomKeyStoreName"
	}
	if n, ok := in.String(nameMember); ok {
		st.Name = n
	}
	cloud := []string{"CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword"}
	xks := []string{"XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential", "XksProxyConnectivity",
		"XksProxyVpcEndpointServiceName", "XksProxyVpcEndpointServiceOwner"}
	other := xks
	if st.Type == state.KMSStoreExternal {
		other = cloud
	}
	for _, m := range other {
		if _, ok := in[m]; ok {
			return kmserr.New(kmserr.Validation, "%s is not a parameter of a custom key store of type %s", m, st.Type)
		}
	}
	switch st.Type {
	case state.KMSStoreCloudHSM:
		if create {
			for _, m := range cloud {
				if _, ok := in[m]; !ok {
					return kmserr.New(kmserr.Validation, "A custom key store of type AWS_CLOUDHSM needs %s", m)
				}
			}
		} else if _, ok := in["TrustAnchorCertificate"]; ok {
			return kmserr.New(kmserr.Validation, "UpdateCustomKeyStore does not take TrustAnchorCertificate")
		}
		if id, ok := in.String("CloudHsmClusterId"); ok {
			if err := pki.ValidateClusterID(id); err != nil {
				return kmserr.New(excClusterNotFound, "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: %s", id)
			}
			if !create && id != st.ClusterID {
				// AWS allows a related cluster (a backup's); an openhsm
				// cluster has no such relation yet.
				return kmserr.New("CloudHsmClusterNotRelatedException", "The cluster %s is not related to %s", id, st.ClusterID)
			}
			st.ClusterID = id
		}
		if ta, ok := in.String("TrustAnchorCertificate"); ok {
			if err := checkTrustAnchor(ta); err != nil {
				return err
			}
			st.TrustAnchor = ta
		}
		st.Password = nil
		if pw, ok := in.String("KeyStorePassword"); ok {
			if st.Password, err = sl.Seal(0, state.KMSStoreSecretOwner(st.ID), []byte(pw)); err != nil {
				return err
			}
		}
	case state.KMSStoreExternal:
		if create {
			for _, m := range []string{"XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential", "XksProxyConnectivity"} {
				if _, ok := in[m]; !ok {
					return kmserr.New(kmserr.Validation, "A custom key store of type EXTERNAL_KEY_STORE needs %s", m)
				}
			}
		}
		if c, ok := in.String("XksProxyConnectivity"); ok {
			if c != "PUBLIC_ENDPOINT" {
				return kmserr.New(kmserr.UnsupportedOperation, "XksProxyConnectivity %s is not supported by this service: use PUBLIC_ENDPOINT", c)
			}
			st.XksConnectivity = c
		}
		for _, m := range []string{"XksProxyVpcEndpointServiceName", "XksProxyVpcEndpointServiceOwner"} {
			if _, ok := in[m]; ok {
				return kmserr.New(kmserr.XksProxyInvalidConfig, "%s applies to VPC_ENDPOINT_SERVICE connectivity, which this service does not support", m)
			}
		}
		if e, ok := in.String("XksProxyUriEndpoint"); ok {
			st.XksEndpoint = e
		}
		if p, ok := in.String("XksProxyUriPath"); ok {
			st.XksPath = p
		}
		st.XksSecret = nil
		if cred, ok := in.Object("XksProxyAuthenticationCredential"); ok {
			akid, _ := cred.String("AccessKeyId")
			secret, _ := cred.String("RawSecretAccessKey")
			if akid == "" || secret == "" {
				return kmserr.New(kmserr.Validation, "XksProxyAuthenticationCredential needs AccessKeyId and RawSecretAccessKey")
			}
			st.XksAccessKeyID = akid
			if st.XksSecret, err = sl.Seal(0, state.KMSStoreSecretOwner(st.ID), []byte(secret)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) createCustomKeyStore(ctx context.Context, r *call.Request) (model.Object, error) {
	typ, ok := r.Input.String("CustomKeyStoreType")
	if !ok {
		typ = state.KMSStoreCloudHSM
	}
	if typ != state.KMSStoreCloudHSM && typ != state.KMSStoreExternal {
		return nil, kmserr.New(kmserr.Validation, "CustomKeyStoreType %s is not supported", typ)
	}
	id, err := newStoreID()
	if err != nil {
		return nil, err
	}
	st := &state.KMSKeyStore{ID: id, Type: typ}
	if err := s.storeInput(r, st, true); err != nil {
		return nil, err
	}
	if typ == state.KMSStoreCloudHSM {
		if err := s.checkStoreCluster(ctx, st); err != nil {
			return nil, err
		}
	}
	if err := s.submit(ctx, &state.Command{Op: state.OpKMSKeyStore,
		KMS: &state.KMSCommand{Principal: r.Principal, Region: r.Region, Change: state.KMSStoreCreate, Store: st}}); err != nil {
		return nil, err
	}
	return model.Object{"CustomKeyStoreId": id}, nil
}

func (s *Service) updateCustomKeyStore(ctx context.Context, r *call.Request) (model.Object, error) {
	id, _ := r.Input.String("CustomKeyStoreId")
	st, err := s.readStore(r.Region, id)
	if err != nil {
		return nil, err
	}
	if err := s.storeInput(r, st, false); err != nil {
		return nil, err
	}
	return model.Object{}, s.submit(ctx, &state.Command{Op: state.OpKMSKeyStore,
		KMS: &state.KMSCommand{Principal: r.Principal, Region: r.Region, Change: state.KMSStoreUpdate, Store: st}})
}

// storeChange submits a change that names only the store.
func (s *Service) storeChange(ctx context.Context, r *call.Request, change string) (*state.KMSKeyStore, error) {
	id, _ := r.Input.String("CustomKeyStoreId")
	st, err := s.readStore(r.Region, id)
	if err != nil {
		return nil, err
	}
	return st, s.submit(ctx, &state.Command{Op: state.OpKMSKeyStore,
		KMS: &state.KMSCommand{Principal: r.Principal, Region: r.Region, Change: change, Store: &state.KMSKeyStore{ID: st.ID}}})
}

func (s *Service) deleteCustomKeyStore(ctx context.Context, r *call.Request) (model.Object, error) {
	_, err := s.storeChange(ctx, r, state.KMSStoreDelete)
	return model.Object{}, err
}

func (s *Service) disconnectCustomKeyStore(ctx context.Context, r *call.Request) (model.Object, error) {
	id, _ := r.Input.String("CustomKeyStoreId")
	_, err := s.storeChange(ctx, r, state.KMSStoreDisconnect)
	if err == nil {
		s.dropStoreClient(id)
	}
	return model.Object{}, err
}

func (s *Service) connectCustomKeyStore(ctx context.Context, r *call.Request) (model.Object, error) {
	id, _ := r.Input.String("CustomKeyStoreId")
	st, err := s.readStore(r.Region, id)
	if err != nil {
		return nil, err
	}
	if st.ConnectionState == state.KMSStoreConnected || st.ConnectionState == state.KMSStoreConnecting {
		return model.Object{}, nil
	}
	if _, err := s.storeChange(ctx, r, state.KMSStoreConnect); err != nil {
		return nil, err
	}
	st, err = s.readStore(r.Region, id)
	if err != nil {
		return nil, err
	}
	if st.ConnectionState == state.KMSStoreConnecting {
		go s.connectStore(*st)
	}
	return model.Object{}, nil
}

func (s *Service) describeCustomKeyStores(_ context.Context, r *call.Request) (model.Object, error) {
	id, byID := r.Input.String("CustomKeyStoreId")
	name, byName := r.Input.String("CustomKeyStoreName")
	if byID && byName {
		return nil, kmserr.New(kmserr.Validation, "You cannot specify both CustomKeyStoreId and CustomKeyStoreName")
	}
	limit, marker := page(r.Input)
	all, err := s.stores(r.Region)
	if err != nil {
		return nil, err
	}
	var sel []state.KMSKeyStore
	for _, st := range all {
		if (!byID || st.ID == id) && (!byName || st.Name == name) {
			sel = append(sel, st)
		}
	}
	if (byID || byName) && len(sel) == 0 {
		what := id
		if byName {
			what = name
		}
		return nil, kmserr.New(excStoreNotFound, "Custom key store %s does not exist", what)
	}
	if marker != "" {
		i := slices.IndexFunc(sel, func(st state.KMSKeyStore) bool { return st.ID > marker })
		if !state.ValidKMSStoreID(marker) {
			return nil, kmserr.New(kmserr.InvalidMarker, "Invalid marker")
		}
		if i < 0 {
			sel = nil
		} else {
			sel = sel[i:]
		}
	}
	more := len(sel) > limit
	if more {
		sel = sel[:limit]
	}
	items := make([]any, 0, len(sel))
	last := ""
	for i := range sel {
		items = append(items, storeEntry(&sel[i]))
		last = sel[i].ID
	}
	out := listPage("CustomKeyStores", items, more, last)
	return out, nil
}

// storeEntry is a CustomKeyStoresListEntry: never a password or secret.
func storeEntry(st *state.KMSKeyStore) model.Object {
	e := model.Object{
		"CustomKeyStoreId":   st.ID,
		"CustomKeyStoreName": st.Name,
		"CustomKeyStoreType": st.Type,
		"ConnectionState":    st.ConnectionState,
		"CreationDate":       unix(st.Created),
	}
	if st.ErrorCode != "" {
		e["ConnectionErrorCode"] = st.ErrorCode
	}
	switch st.Type {
	case state.KMSStoreCloudHSM:
		e["CloudHsmClusterId"] = st.ClusterID
		e["TrustAnchorCertificate"] = st.TrustAnchor
	case state.KMSStoreExternal:
		e["XksProxyConfiguration"] = model.Object{"Connectivity": st.XksConnectivity, "AccessKeyId": st.XksAccessKeyID,
			"UriEndpoint": st.XksEndpoint, "UriPath": st.XksPath}
	}
	return e
}

// AddHSMCluster records where another openhsm cluster's nodes are and the
// client certificate and key (PEM, issued by that cluster's CA) this KMS
// reaches it with; the key is sealed under the domain key. The caller must
// be a crypto officer; adding a known cluster again replaces its row.
func (s *Service) AddHSMCluster(ctx context.Context, c engine.Caller, id string, nodes []string, certPEM, keyPEM []byte) error {
	if c.Role != object.RoleCO {
		return kmserr.New(kmserr.AccessDenied, "only a crypto officer may add HSM clusters")
	}
	sl, err := s.sealer()
	if err != nil {
		return err
	}
	sealed, err := sl.Seal(0, state.KMSClusterKeyOwner(id), keyPEM)
	if err != nil {
		return err
	}
	return s.submit(ctx, &state.Command{Op: state.OpKMSHSMCluster, Actor: c.User, Role: c.Role, KMS: &state.KMSCommand{
		Change: state.KMSClusterAdd, HSMCluster: &state.KMSHSMCluster{ID: id, Nodes: nodes, CertPEM: string(certPEM), Key: sealed}}})
}

// RemoveHSMCluster forgets a cluster no store uses (crypto officer).
func (s *Service) RemoveHSMCluster(ctx context.Context, c engine.Caller, id string) error {
	if c.Role != object.RoleCO {
		return kmserr.New(kmserr.AccessDenied, "only a crypto officer may remove HSM clusters")
	}
	return s.submit(ctx, &state.Command{Op: state.OpKMSHSMCluster, Actor: c.User, Role: c.Role,
		KMS: &state.KMSCommand{Change: state.KMSClusterRemove, Name: id}})
}

// HSMClusterInfo is a cluster as `hsm kms cluster list` shows it: never
// its key.
type HSMClusterInfo struct {
	ID      string
	Nodes   []string
	CertPEM string
	Added   int64
}

// ListHSMClusters lists the clusters this KMS knows (crypto officer).
func (s *Service) ListHSMClusters(c engine.Caller) ([]HSMClusterInfo, error) {
	if c.Role != object.RoleCO {
		return nil, kmserr.New(kmserr.AccessDenied, "only a crypto officer may list HSM clusters")
	}
	sl, err := s.sealer()
	if err != nil {
		return nil, err
	}
	rows, err := s.store.MetaScan(state.KMSHSMClusterPrefix, "", 1<<16)
	if err != nil {
		return nil, err
	}
	var out []HSMClusterInfo
	for _, row := range rows {
		var h state.KMSHSMCluster
		if err := state.KMSRow(sl, row.Key, row.Value, &h); err != nil {
			return nil, err
		}
		out = append(out, HSMClusterInfo{ID: h.ID, Nodes: h.Nodes, CertPEM: h.CertPEM, Added: h.Added})
	}
	return out, nil
}

// checkStoreCluster is CreateCustomKeyStore's check of an AWS_CLOUDHSM
// store's cluster, as AWS makes it: the cluster is known
// (CloudHsmClusterNotFoundException), the trust anchor is its CA
// (IncorrectTrustAnchorException), it answers over TLS with node
// certificates that chain to the trust anchor
// (CloudHsmClusterNotActiveException), it is the cluster named
// (CloudHsmClusterNotFoundException), and at least two of its members are
// reachable (CloudHsmClusterInvalidConfigurationException). kmsuser's
// password is checked by ConnectCustomKeyStore, as in AWS.
func (s *Service) checkStoreCluster(ctx context.Context, st *state.KMSKeyStore) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.anchorsClusterCert(st); err != nil {
		return err
	}
	cl, code := s.dialStore(ctx, st)
	n := 0
	if code == "" {
		n, code = checkCluster(ctx, cl, st)
		cl.Close()
	}
	switch code {
	case "":
		return nil
	case "CLUSTER_NOT_FOUND":
		return kmserr.New(excClusterNotFound, "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: %s", st.ClusterID)
	case "NETWORK_ERRORS":
		return kmserr.New(excClusterNotActive, "The AWS CloudHSM cluster %s does not answer: none of its nodes could be reached", st.ClusterID)
	case "INSUFFICIENT_CLOUDHSM_HSMS":
		return kmserr.New(excClusterInvalidConfig, "The AWS CloudHSM cluster %s has %d reachable nodes; a custom key store needs at least two", st.ClusterID, n)
	}
	return kmserr.New(kmserr.Internal, kmserr.InternalMessage)
}

// anchorsClusterCert checks that the store's trust anchor is the CA of the
// cluster row's client certificate (which `hsm kms cluster add` checked is
// bound to that cluster): a trust anchor of another CA could never verify
// the cluster's nodes either (IncorrectTrustAnchorException).
func (s *Service) anchorsClusterCert(st *state.KMSKeyStore) error {
	sl, err := s.sealer()
	if err != nil {
		return err
	}
	var h state.KMSHSMCluster
	if err := state.ReadKMSRow(s.store.Meta, sl, state.KMSHSMClusterPrefix+st.ClusterID, &h); errors.Is(err, state.ErrNotFound) {
		return kmserr.New(excClusterNotFound, "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: %s", st.ClusterID)
	} else if err != nil {
		return err
	}
	blk, _ := pem.Decode([]byte(h.CertPEM))
	if blk == nil {
		return kmserr.New(kmserr.Internal, kmserr.InternalMessage)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return kmserr.New(kmserr.Internal, kmserr.InternalMessage)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(st.TrustAnchor)) {
		return kmserr.New(excIncorrectTrust, "The trust anchor certificate in the request is not the trust anchor certificate for the specified AWS CloudHSM cluster.")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return kmserr.New(excIncorrectTrust, "The trust anchor certificate in the request is not the trust anchor certificate for the specified AWS CloudHSM cluster.")
	}
	return nil
}
