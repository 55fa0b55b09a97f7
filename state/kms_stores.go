package state

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/seal"
)

// kmsUserClaimMeta is the row that says this cluster's KMS made KMSUser
// (its first principal did) and owns it: from then on apply refuses to
// make, delete or set the password of a user of that name (notKMSUser).
const kmsUserClaimMeta = "kms/kmsuser_claim"

// kmsUserClaim is the claim row: when the claim was made.
type kmsUserClaim struct {
	Time int64 `json:"time"`
}

func claimKMSUser(tx Tx, s *seal.Sealer, t int64) error {
	return putKMSRow(tx, s, kmsUserClaimMeta, kmsUserClaim{Time: t})
}

// kmsUserClaimed says whether this cluster's KMS owns KMSUser: the claim
// row exists, or (a state written before claims were recorded) the KMS
// has a principal or a key, which only a claimed kmsuser allows.
func kmsUserClaimed(tx Tx, s *seal.Sealer) (bool, error) {
	var cl kmsUserClaim
	err := readRow(tx, s, kmsUserClaimMeta, &cl)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	for _, prefix := range []string{KMSPrincipalPrefix, KMSKeyPrefix} {
		keys, err := tx.MetaKeys(prefix, 1)
		if err != nil {
			return false, err
		}
		if len(keys) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// ---- HSM clusters and custom key stores ----
//
// A custom key store of type AWS_CLOUDHSM keeps its keys' material in
// another openhsm cluster, as that cluster's crypto user KMSUser. AWS finds
// a CloudHSM cluster by its ID; this KMS must be told where the cluster's
// nodes are and with which client certificate to reach them: an HSM
// cluster row (kms_hsm_cluster, a crypto officer's). A store row
// (kms_key_store) names the cluster by its ID and holds kmsuser's
// password sealed under the domain key; its connection state changes by
// the principal's Connect and Disconnect and by the nodes' connector
// (kms_key_store_state), which records how an attempt ended.

// Ops of custom key stores.
const (
	OpKMSHSMCluster    Op = "kms_hsm_cluster"     // Actor (CO), KMS.Change (add|remove), KMS.HSMCluster (add) or KMS.Name (remove)
	OpKMSKeyStore      Op = "kms_key_store"       // KMS.Principal, KMS.Region, KMS.Change (create|update|delete|connect|disconnect), KMS.Store
	OpKMSKeyStoreState Op = "kms_key_store_state" // no actor (a node's connector): KMS.Region, KMS.Store (ID, Attempt, ConnectionState, ErrorCode, Password)
)

// Store changes (KMSCommand.Change of kms_key_store and kms_hsm_cluster).
const (
	KMSStoreCreate     = "create"
	KMSStoreUpdate     = "update"
	KMSStoreDelete     = "delete"
	KMSStoreConnect    = "connect"
	KMSStoreDisconnect = "disconnect"
	KMSClusterAdd      = "add"
	KMSClusterRemove   = "remove"
)

// Store types, connection states and the origin of their keys, as AWS
// names them.
const (
	KMSStoreCloudHSM      = "AWS_CLOUDHSM"
	KMSStoreExternal      = "EXTERNAL_KEY_STORE"
	KMSOriginCloudHSM     = "AWS_CLOUDHSM"
	KMSOriginExternalKS   = "EXTERNAL_KEY_STORE"
	KMSStoreConnected     = "CONNECTED"
	KMSStoreConnecting    = "CONNECTING"
	KMSStoreFailed        = "FAILED"
	KMSStoreDisconnected  = "DISCONNECTED"
	KMSStoreDisconnecting = "DISCONNECTING"
	kmsMaxStores          = 10 // AWS's quota of custom key stores per account and region
)

// KMSStoreErrorCodes are the ConnectionErrorCodes the connector records
// (AWS's, those that apply to an openhsm cluster).
var KMSStoreErrorCodes = []string{"INVALID_CREDENTIALS", "USER_LOCKED_OUT", "USER_LOGGED_IN", "USER_NOT_FOUND",
	"CLUSTER_NOT_FOUND", "NETWORK_ERRORS", "INSUFFICIENT_CLOUDHSM_HSMS", "INTERNAL_ERROR",
	// EXTERNAL_KEY_STORE's.
	"XKS_PROXY_ACCESS_DENIED", "XKS_PROXY_INVALID_CONFIGURATION", "XKS_PROXY_INVALID_RESPONSE",
	"XKS_PROXY_INVALID_TLS_CONFIGURATION", "XKS_PROXY_NOT_REACHABLE", "XKS_PROXY_TIMED_OUT"}

// Meta keys of the rows.
const (
	KMSHSMClusterPrefix = "kms/hsmcluster/" // + cluster ID
	KMSStorePrefix      = "kms/cks/"        // + region + "/" + store ID
)

// KMSStoreMeta is the meta key of a store's row.
func KMSStoreMeta(region, id string) string { return KMSStorePrefix + region + "/" + id }

// KMSHSMCluster is where another openhsm cluster's nodes are and how this
// KMS reaches them: a client certificate issued by that cluster's CA and
// its key, sealed under the domain key to KMSClusterKeyOwner(ID).
type KMSHSMCluster struct {
	ID      string   `json:"id"`
	Nodes   []string `json:"nodes"` // host:port of its HSM API
	CertPEM string   `json:"cert_pem"`
	Key     []byte   `json:"key"` // sealed PEM
	Added   int64    `json:"added"`
}

// KMSClusterKeyOwner is the owner string a cluster's client key is sealed to.
func KMSClusterKeyOwner(id string) string { return "kms hsm cluster " + id }

// KMSStoreSecretOwner is the owner string a store's kmsuser password (or
// XKS secret) is sealed to.
func KMSStoreSecretOwner(id string) string { return "kms custom key store " + id }

// KMSKeyStore is a custom key store's row.
type KMSKeyStore struct {
	ID      string `json:"id"` // cks- and 17 hex digits
	Name    string `json:"name"`
	Region  string `json:"region"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	// ConnectionState and ErrorCode (set while FAILED); Attempt counts
	// connects, so a connector's late answer to an old one is dropped.
	ConnectionState string `json:"connection_state"`
	ErrorCode       string `json:"error_code,omitempty"`
	Attempt         int    `json:"attempt,omitempty"`
	// AWS_CLOUDHSM: the cluster, its CA (the trust anchor) and kmsuser's
	// password, sealed to KMSStoreSecretOwner(ID). PasswordRotated says
	// the password is one the connector chose (AWS rotates it on connect).
	ClusterID       string `json:"cluster_id,omitempty"`
	TrustAnchor     string `json:"trust_anchor,omitempty"`
	Password        []byte `json:"password,omitempty"`
	PasswordRotated bool   `json:"password_rotated,omitempty"`
	// EXTERNAL_KEY_STORE: the proxy's endpoint, path, connectivity and
	// credential (the secret sealed to KMSStoreSecretOwner(ID)).
	XksEndpoint     string `json:"xks_endpoint,omitempty"`
	XksPath         string `json:"xks_path,omitempty"`
	XksConnectivity string `json:"xks_connectivity,omitempty"`
	XksAccessKeyID  string `json:"xks_access_key_id,omitempty"`
	XksSecret       []byte `json:"xks_secret,omitempty"`
}

// ValidKMSStoreID says whether id is "cks-" and 17 lowercase hex digits.
func ValidKMSStoreID(id string) bool {
	if len(id) != 21 || id[:4] != "cks-" {
		return false
	}
	for _, r := range id[4:] {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func applyKMSHSMCluster(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.KMS == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s without its KMS payload", c.Op)
	}
	switch c.KMS.Change {
	case KMSClusterAdd:
		h := c.KMS.HSMCluster
		if h == nil || pki.ValidateClusterID(h.ID) != nil || len(h.Nodes) == 0 || len(h.Nodes) > 64 || h.CertPEM == "" {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "an HSM cluster needs its ID, its nodes and a client certificate")
		}
		for _, n := range h.Nodes {
			if _, _, err := net.SplitHostPort(n); err != nil {
				return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "node address %q is not host:port", n)
			}
		}
		key, err := s.Open(0, KMSClusterKeyOwner(h.ID), h.Key)
		if err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the client key does not open for its cluster")
		}
		_, err = tls.X509KeyPair([]byte(h.CertPEM), key)
		clear(key)
		if err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the client certificate and key do not make a pair")
		}
		nh := *h
		nh.Added = c.Time
		// Adding again replaces the nodes and the certificate: a store
		// that names the cluster uses them from its next connection.
		return nil, putKMSRow(tx, s, KMSHSMClusterPrefix+h.ID, nh)
	case KMSClusterRemove:
		var h KMSHSMCluster
		if err := readRow(tx, s, KMSHSMClusterPrefix+c.KMS.Name, &h); errors.Is(err, ErrNotFound) {
			return nil, hsmerr.KMSf("CloudHsmClusterNotFoundException", "The HSM cluster %s is not known to this KMS", c.KMS.Name)
		} else if err != nil {
			return nil, err
		}
		stores, err := allKMSStores(tx, s)
		if err != nil {
			return nil, err
		}
		for _, st := range stores {
			if st.ClusterID == h.ID {
				return nil, hsmerr.KMSf("CloudHsmClusterInUseException", "The custom key store %s uses the HSM cluster %s: delete it first", st.ID, h.ID)
			}
		}
		return nil, tx.DeleteMeta(KMSHSMClusterPrefix + h.ID)
	}
	return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown HSM cluster change %q", c.KMS.Change)
}

// allKMSStores reads every store row, of every region.
func allKMSStores(tx Tx, s *seal.Sealer) ([]KMSKeyStore, error) {
	keys, err := tx.MetaKeys(KMSStorePrefix, 1<<20)
	if err != nil {
		return nil, err
	}
	out := make([]KMSKeyStore, 0, len(keys))
	for _, k := range keys {
		var st KMSKeyStore
		if err := readRow(tx, s, k, &st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func storeNotFound(id string) error {
	return hsmerr.KMSf("CustomKeyStoreNotFoundException", "Custom key store %s does not exist", id)
}

func storeFor(tx Tx, s *seal.Sealer, region, id string) (*KMSKeyStore, error) {
	var st KMSKeyStore
	err := readRow(tx, s, KMSStoreMeta(region, id), &st)
	if errors.Is(err, ErrNotFound) {
		return nil, storeNotFound(id)
	}
	return &st, err
}

// checkStoreFields checks what a store row holds for its type, as apply
// must see it (the service validated the request before).
func checkStoreFields(tx Tx, s *seal.Sealer, st *KMSKeyStore) error {
	if st.Name == "" || len(st.Name) > 256 {
		return hsmerr.KMSf("ValidationException", "A custom key store name is 1 to 256 characters")
	}
	switch st.Type {
	case KMSStoreCloudHSM:
		var h KMSHSMCluster
		if err := readRow(tx, s, KMSHSMClusterPrefix+st.ClusterID, &h); errors.Is(err, ErrNotFound) {
			return hsmerr.KMSf("CloudHsmClusterNotFoundException", "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: %s is not known to this KMS (a crypto officer adds it with `hsm kms cluster add`)", st.ClusterID)
		} else if err != nil {
			return err
		}
		pw, err := s.Open(0, KMSStoreSecretOwner(st.ID), st.Password)
		if err != nil || len(pw) == 0 {
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the store's password does not open for it")
		}
		clear(pw)
		if st.TrustAnchor == "" {
			return hsmerr.KMSf("ValidationException", "An AWS_CLOUDHSM key store needs a TrustAnchorCertificate")
		}
	case KMSStoreExternal:
		if st.XksEndpoint == "" || st.XksPath == "" || st.XksAccessKeyID == "" || st.XksConnectivity != "PUBLIC_ENDPOINT" {
			return hsmerr.KMSf("ValidationException", "An EXTERNAL_KEY_STORE needs XksProxyUriEndpoint, XksProxyUriPath, XksProxyAuthenticationCredential and XksProxyConnectivity PUBLIC_ENDPOINT")
		}
		sec, err := s.Open(0, KMSStoreSecretOwner(st.ID), st.XksSecret)
		if err != nil || len(sec) == 0 {
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the store's proxy secret does not open for it")
		}
		clear(sec)
	default:
		return hsmerr.KMSf("ValidationException", "Unknown custom key store type %q", st.Type)
	}
	return nil
}

// checkStoreUnique refuses a name another store of the region has, and a
// cluster or proxy URI another store uses.
func checkStoreUnique(tx Tx, s *seal.Sealer, st *KMSKeyStore) error {
	stores, err := allKMSStores(tx, s)
	if err != nil {
		return err
	}
	n := 0
	for _, o := range stores {
		if o.ID == st.ID || o.Region != st.Region {
			continue
		}
		n++
		if o.Name == st.Name {
			return hsmerr.KMSf("CustomKeyStoreNameInUseException", "The custom key store name %s is already in use in this region", st.Name)
		}
		if st.Type == KMSStoreCloudHSM && o.ClusterID == st.ClusterID {
			return hsmerr.KMSf("CloudHsmClusterInUseException", "The cluster %s is already associated with the custom key store %s", st.ClusterID, o.ID)
		}
		if st.Type == KMSStoreExternal && o.XksEndpoint == st.XksEndpoint && o.XksPath == st.XksPath {
			return hsmerr.KMSf("ValidationException", "The proxy URI %s%s is already used by the custom key store %s", st.XksEndpoint, st.XksPath, o.ID)
		}
	}
	if n >= kmsMaxStores {
		return hsmerr.KMSf("LimitExceededException", "This region has %d custom key stores, the most it may have", kmsMaxStores)
	}
	return nil
}

// checkXKSKey is kms_create_key's rule for a key in an external key store:
// a symmetric key, in an EXTERNAL_KEY_STORE of the key's region that is
// CONNECTED, naming an external key of the XKS form that no other key of
// the store names (AWS's XksKeyAlreadyInUseException). Its inner layer's
// AES key travels in the command like any new key's.
func checkXKSKey(tx Tx, s *seal.Sealer, k *KMSKey) error {
	if k.KeySpec != "SYMMETRIC_DEFAULT" || k.KeyUsage != "ENCRYPT_DECRYPT" {
		return hsmerr.KMSf("UnsupportedOperationException", "Keys in an external key store must be SYMMETRIC_DEFAULT keys for ENCRYPT_DECRYPT")
	}
	if !ValidXksKeyID(k.XksKeyID) {
		return hsmerr.KMSf("ValidationException", "XksKeyId must be 1 to 128 of A-Z, a-z, 0-9, '.', '-' and '_'")
	}
	st, err := storeFor(tx, s, k.Region, k.CustomKeyStoreID)
	if err != nil {
		return err
	}
	if st.Type != KMSStoreExternal {
		return hsmerr.KMSf("ValidationException", "A key of Origin EXTERNAL_KEY_STORE must be in an EXTERNAL_KEY_STORE")
	}
	if st.ConnectionState != KMSStoreConnected {
		return hsmerr.KMSf("CustomKeyStoreInvalidStateException", "This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again.")
	}
	inUse := false
	if err := eachStoreKey(tx, s, st, func(key *KMSKey) { inUse = inUse || key.XksKeyID == k.XksKeyID }); err != nil {
		return err
	}
	if inUse {
		return hsmerr.KMSf("XksKeyAlreadyInUseException", "The external key %s is already associated with a KMS key in this external key store", k.XksKeyID)
	}
	return nil
}

// ValidXksKeyID says whether id has the form of an external key ID.
func ValidXksKeyID(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// kmsStoreKeys counts the keys of a store, in its region.
func kmsStoreKeys(tx Tx, s *seal.Sealer, st *KMSKeyStore) (int, error) {
	n := 0
	err := eachStoreKey(tx, s, st, func(*KMSKey) { n++ })
	return n, err
}

// eachStoreKey calls f with every key of a store, in its region.
func eachStoreKey(tx Tx, s *seal.Sealer, st *KMSKeyStore, f func(*KMSKey)) error {
	keys, err := tx.MetaKeys(KMSKeyPrefix+st.Region+"/", 1<<20)
	if err != nil {
		return err
	}
	for _, k := range keys {
		var key KMSKey
		if err := readRow(tx, s, k, &key); err != nil {
			return err
		}
		if key.CustomKeyStoreID == st.ID {
			f(&key)
		}
	}
	return nil
}

func applyKMSKeyStore(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k := c.KMS
	if k.Store == nil || !ValidKMSStoreID(k.Store.ID) || k.Region == "" {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s needs a store and a region", c.Op)
	}
	in := k.Store
	if k.Change == KMSStoreCreate {
		if _, err := storeFor(tx, s, k.Region, in.ID); err == nil {
			return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "custom key store ID collision")
		}
		st := *in
		st.Region, st.Created, st.ConnectionState, st.ErrorCode, st.Attempt, st.PasswordRotated = k.Region, c.Time, KMSStoreDisconnected, "", 0, false
		if err := checkStoreFields(tx, s, &st); err != nil {
			return nil, err
		}
		if err := checkStoreUnique(tx, s, &st); err != nil {
			return nil, err
		}
		return nil, putKMSRow(tx, s, KMSStoreMeta(k.Region, st.ID), st)
	}
	st, err := storeFor(tx, s, k.Region, in.ID)
	if err != nil {
		return nil, err
	}
	switch k.Change {
	case KMSStoreUpdate:
		// The service sends the whole row as it wants it; only the name,
		// the cluster, the password and the proxy settings may change.
		changesMore := in.ClusterID != st.ClusterID || in.Password != nil || in.XksEndpoint != st.XksEndpoint ||
			in.XksPath != st.XksPath || in.XksAccessKeyID != st.XksAccessKeyID || in.XksSecret != nil || in.XksConnectivity != st.XksConnectivity
		if st.ConnectionState != KMSStoreDisconnected && (st.Type == KMSStoreCloudHSM || changesMore) {
			return nil, hsmerr.KMSf("CustomKeyStoreInvalidStateException", "The custom key store %s must be DISCONNECTED to be updated; it is %s", st.ID, st.ConnectionState)
		}
		nst := *st
		nst.Name, nst.ClusterID = in.Name, in.ClusterID
		nst.XksEndpoint, nst.XksPath, nst.XksAccessKeyID, nst.XksConnectivity = in.XksEndpoint, in.XksPath, in.XksAccessKeyID, in.XksConnectivity
		if in.Password != nil {
			nst.Password, nst.PasswordRotated = in.Password, false
		}
		if in.XksSecret != nil {
			nst.XksSecret = in.XksSecret
		}
		if err := checkStoreFields(tx, s, &nst); err != nil {
			return nil, err
		}
		if err := checkStoreUnique(tx, s, &nst); err != nil {
			return nil, err
		}
		return nil, putKMSRow(tx, s, KMSStoreMeta(k.Region, st.ID), nst)
	case KMSStoreDelete:
		if st.ConnectionState != KMSStoreDisconnected {
			return nil, hsmerr.KMSf("CustomKeyStoreInvalidStateException", "The custom key store %s must be DISCONNECTED to be deleted; it is %s", st.ID, st.ConnectionState)
		}
		n, err := kmsStoreKeys(tx, s, st)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, hsmerr.KMSf("CustomKeyStoreHasCMKsException", "The custom key store %s has %d KMS keys: delete them first (ScheduleKeyDeletion)", st.ID, n)
		}
		return nil, tx.DeleteMeta(KMSStoreMeta(k.Region, st.ID))
	case KMSStoreConnect:
		switch st.ConnectionState {
		case KMSStoreConnected, KMSStoreConnecting:
			return nil, nil // already connected or connecting: success, as AWS answers
		case KMSStoreFailed, KMSStoreDisconnecting:
			return nil, hsmerr.KMSf("CustomKeyStoreInvalidStateException", "The custom key store %s is %s: disconnect it before you connect it again", st.ID, st.ConnectionState)
		}
		st.ConnectionState, st.ErrorCode = KMSStoreConnecting, ""
		st.Attempt++
		return nil, putKMSRow(tx, s, KMSStoreMeta(k.Region, st.ID), st)
	case KMSStoreDisconnect:
		st.ConnectionState, st.ErrorCode = KMSStoreDisconnected, ""
		return nil, putKMSRow(tx, s, KMSStoreMeta(k.Region, st.ID), st)
	}
	return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown custom key store change %q", k.Change)
}

// applyKMSKeyStoreState records how a connection attempt ended. An answer
// to an attempt that is no longer the store's (disconnected, or connected
// again since) changes nothing.
func applyKMSKeyStoreState(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k := c.KMS
	if c.Actor != "" || k == nil || k.Principal != "" || k.Store == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s is the nodes' own", c.Op)
	}
	in := k.Store
	st, err := storeFor(tx, s, k.Region, in.ID)
	if err != nil {
		return nil, err
	}
	if st.ConnectionState != KMSStoreConnecting || st.Attempt != in.Attempt {
		return nil, nil
	}
	switch in.ConnectionState {
	case KMSStoreConnected:
		st.ErrorCode = ""
	case KMSStoreFailed:
		if !slices.Contains(KMSStoreErrorCodes, in.ErrorCode) {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown connection error code %q", in.ErrorCode)
		}
		st.ErrorCode = in.ErrorCode
	default:
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a connection ends CONNECTED or FAILED")
	}
	st.ConnectionState = in.ConnectionState
	if in.Password != nil {
		pw, err := s.Open(0, KMSStoreSecretOwner(st.ID), in.Password)
		if err != nil || len(pw) == 0 {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the rotated password does not open for the store")
		}
		clear(pw)
		st.Password, st.PasswordRotated = in.Password, true
	}
	return nil, putKMSRow(tx, s, KMSStoreMeta(k.Region, st.ID), st)
}

// checkStoreKey is kms_create_key's rule for a key of Origin AWS_CLOUDHSM:
// a symmetric key, in an AWS_CLOUDHSM store of the key's region that is
// CONNECTED, made without objects here (its material is on the store's
// cluster, made by the service before the command).
func checkStoreKey(tx Tx, s *seal.Sealer, c *Command, k *KMSKey) error {
	if k.KeySpec != "SYMMETRIC_DEFAULT" {
		return hsmerr.KMSf("UnsupportedOperationException", "Keys in a custom key store must be SYMMETRIC_DEFAULT")
	}
	if len(c.Objects) != 0 {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a key of a custom key store has no objects here")
	}
	st, err := storeFor(tx, s, k.Region, k.CustomKeyStoreID)
	if err != nil {
		return err
	}
	if st.Type != KMSStoreCloudHSM {
		return hsmerr.KMSf("ValidationException", "A key of Origin AWS_CLOUDHSM must be in an AWS_CLOUDHSM key store")
	}
	if st.ConnectionState != KMSStoreConnected {
		return hsmerr.KMSf("CustomKeyStoreInvalidStateException", "The custom key store %s is %s; CreateKey needs it CONNECTED", st.ID, st.ConnectionState)
	}
	return nil
}
