package kms

// The connector of AWS_CLOUDHSM custom key stores: it reaches the store's
// cluster through the Go client (mutual TLS with the client certificate
// of the cluster's row, the store's trust anchor as the CA, failover
// between the cluster's nodes), logs in as kmsuser, rotates kmsuser's
// password as AWS does, and records CONNECTED or FAILED with AWS's
// ConnectionErrorCode through a replicated command.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/state"
)

// connectTimeout bounds one connection attempt.
const connectTimeout = 60 * time.Second

// storeClients are this node's logged-in clients of connected stores.
type storeClients struct {
	mu sync.Mutex
	m  map[string]*storeConn
}

// storeConn is a client of a store's cluster logged in as kmsuser, with
// the connection attempt whose password it logged in with (a later
// connect rotates the password, so a client of an older attempt is
// dropped) and the handles of the keys it found there.
type storeConn struct {
	c       *client.Client
	attempt int
	mu      sync.Mutex
	handles map[string]uint64 // KMS key ID -> object on the store's cluster
}

func (sc *storeConn) handle(keyID string) (uint64, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	h, ok := sc.handles[keyID]
	return h, ok
}

func (sc *storeConn) setHandle(keyID string, h uint64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.handles == nil {
		sc.handles = map[string]uint64{}
	}
	sc.handles[keyID] = h
}

func (sc *storeConn) forget(keyID string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	delete(sc.handles, keyID)
}

func (s *Service) dropStoreClient(id string) {
	s.cks.mu.Lock()
	c := s.cks.m[id]
	delete(s.cks.m, id)
	s.cks.mu.Unlock()
	if c != nil {
		c.c.Close()
	}
}

// dropStoreConn drops sc if it is still the store's.
func (s *Service) dropStoreConn(id string, sc *storeConn) {
	s.cks.mu.Lock()
	if s.cks.m[id] != sc {
		sc = nil
	} else {
		delete(s.cks.m, id)
	}
	s.cks.mu.Unlock()
	if sc != nil {
		sc.c.Close()
	}
}

// keepStoreClient installs c as the store's client of the attempt; if
// another one of that attempt got there first, c is closed and that one
// is kept. It returns the one kept.
func (s *Service) keepStoreClient(id string, attempt int, c *client.Client) *storeConn {
	s.cks.mu.Lock()
	if s.cks.m == nil {
		s.cks.m = map[string]*storeConn{}
	}
	old := s.cks.m[id]
	if old != nil && old.attempt == attempt {
		s.cks.mu.Unlock()
		c.Close()
		return old
	}
	sc := &storeConn{c: c, attempt: attempt}
	s.cks.m[id] = sc
	s.cks.mu.Unlock()
	if old != nil {
		old.c.Close()
	}
	return sc
}

// storeConnFor is this node's client of a CONNECTED store: the
// connector's, or (on another node, or after a restart) one this node
// dials and logs in as kmsuser with the password sealed in the row. It
// answers a ConnectionErrorCode when it cannot.
func (s *Service) storeConnFor(ctx context.Context, st *state.KMSKeyStore) (*storeConn, string) {
	s.cks.mu.Lock()
	sc := s.cks.m[st.ID]
	s.cks.mu.Unlock()
	if sc != nil && sc.attempt == st.Attempt {
		return sc, ""
	}
	cl, code := s.dialStore(ctx, st)
	if code != "" {
		return nil, code
	}
	if code := s.loginStore(ctx, cl, st); code != "" {
		cl.Close()
		return nil, code
	}
	return s.keepStoreClient(st.ID, st.Attempt, cl), ""
}

// connectStore runs one attempt and records how it ended.
func (s *Service) connectStore(st state.KMSKeyStore) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	var code string
	var sealedPW []byte
	var cl *client.Client
	if st.Type == state.KMSStoreExternal {
		code = s.tryConnectXKS(ctx, &st)
	} else {
		code, sealedPW, cl = s.tryConnect(ctx, &st)
	}
	res := &state.KMSKeyStore{ID: st.ID, Attempt: st.Attempt, ConnectionState: state.KMSStoreConnected, Password: sealedPW}
	if code != "" {
		res.ConnectionState, res.ErrorCode = state.KMSStoreFailed, code
	}
	// The new password is only on the store's cluster until this command
	// commits: try it a few times.
	var err error
	for i := 0; i < 5; i++ {
		if err = s.submit(ctx, &state.Command{Op: state.OpKMSKeyStoreState, KMS: &state.KMSCommand{Region: st.Region, Store: res}}); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		s.log.Error("kms: recording a custom key store's connection failed", "store", st.ID, "err", err)
	}
	if cl != nil && err == nil && code == "" {
		s.keepStoreClient(st.ID, st.Attempt, cl)
	} else if cl != nil {
		cl.Close()
	}
	s.log.Info("kms: custom key store connection", "store", st.ID, "state", res.ConnectionState, "error_code", code)
}

// dialStore opens a client of the store's cluster (not logged in).
func (s *Service) dialStore(ctx context.Context, st *state.KMSKeyStore) (*client.Client, string) {
	sl, err := s.sealer()
	if err != nil {
		return nil, "INTERNAL_ERROR"
	}
	var h state.KMSHSMCluster
	if err := state.ReadKMSRow(s.store.Meta, sl, state.KMSHSMClusterPrefix+st.ClusterID, &h); err != nil {
		return nil, "CLUSTER_NOT_FOUND"
	}
	key, err := sl.Open(0, state.KMSClusterKeyOwner(h.ID), h.Key)
	if err != nil {
		return nil, "INTERNAL_ERROR"
	}
	defer clear(key)
	cl, err := client.Dial(ctx, &client.Config{Nodes: h.Nodes, Timeout: 10 * time.Second,
		Creds: &client.Credentials{CA: []byte(st.TrustAnchor), Cert: []byte(h.CertPEM), Key: key}})
	if err != nil {
		return nil, "NETWORK_ERRORS"
	}
	return cl, ""
}

// loginStore logs cl in as kmsuser with the password sealed in the
// store's row; it answers "" or a ConnectionErrorCode.
func (s *Service) loginStore(ctx context.Context, cl *client.Client, st *state.KMSKeyStore) string {
	sl, err := s.sealer()
	if err != nil {
		return "INTERNAL_ERROR"
	}
	pw, err := sl.Open(0, state.KMSStoreSecretOwner(st.ID), st.Password)
	if err != nil {
		return "INTERNAL_ERROR"
	}
	err = cl.Login(ctx, state.KMSUser, string(pw))
	clear(pw)
	if err != nil {
		return loginCode(err)
	}
	return ""
}

// checkCluster checks, through cl, that it reached the store's cluster
// and that at least two of its members are reachable. It answers how many
// are and "" or a ConnectionErrorCode.
func checkCluster(ctx context.Context, cl *client.Client, st *state.KMSKeyStore) (int, string) {
	cs, err := cl.ClusterStatus(ctx)
	if err != nil {
		return 0, "NETWORK_ERRORS"
	}
	if cs.ClusterID != st.ClusterID {
		return 0, "CLUSTER_NOT_FOUND"
	}
	n := healthy(cs)
	if n < 2 {
		return n, "INSUFFICIENT_CLOUDHSM_HSMS"
	}
	return n, ""
}

// tryConnect answers "" and kmsuser's new password (sealed) and a logged
// in client, or a ConnectionErrorCode.
func (s *Service) tryConnect(ctx context.Context, st *state.KMSKeyStore) (string, []byte, *client.Client) {
	cl, code := s.dialStore(ctx, st)
	if code != "" {
		return code, nil, nil
	}
	fail := func(code string) (string, []byte, *client.Client) { cl.Close(); return code, nil, nil }
	if _, code := checkCluster(ctx, cl, st); code != "" {
		return fail(code)
	}
	if code := s.loginStore(ctx, cl, st); code != "" {
		return fail(code)
	}
	sl, err := s.sealer()
	if err != nil {
		return fail("INTERNAL_ERROR")
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fail("INTERNAL_ERROR")
	}
	npw := base64.RawURLEncoding.EncodeToString(b[:])
	sealed, err := sl.Seal(0, state.KMSStoreSecretOwner(st.ID), []byte(npw))
	if err != nil {
		return fail("INTERNAL_ERROR")
	}
	if err := cl.SetPassword(ctx, state.KMSUser, npw); err != nil {
		return fail(loginCode(err))
	}
	return "", sealed, cl
}

// healthy counts the store cluster's members that are reachable.
func healthy(cs *client.ClusterStatus) int {
	n := 0
	for _, m := range cs.Nodes {
		if m.Reachable {
			n++
		}
	}
	return n
}

// loginCode is the ConnectionErrorCode of a refused login or password
// change of kmsuser.
func loginCode(err error) string {
	switch hsmerr.RV(err) {
	case ck.CKR_PIN_INCORRECT:
		return "INVALID_CREDENTIALS"
	case ck.CKR_PIN_LOCKED:
		return "USER_LOCKED_OUT"
	case ck.CKR_USER_ALREADY_LOGGED_IN:
		return "USER_LOGGED_IN"
	case ck.CKR_USER_PIN_NOT_INITIALIZED:
		return "USER_NOT_FOUND"
	case ck.CKR_DEVICE_ERROR:
		return "NETWORK_ERRORS"
	}
	return "INTERNAL_ERROR"
}
