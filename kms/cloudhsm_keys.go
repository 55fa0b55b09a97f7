package kms

// Keys of AWS_CLOUDHSM custom key stores (docs/kms.md, "Custom key
// stores"): their material is an AES-256 token key of kmsuser on the
// store's cluster, labelled with the KMS key ID, made non-extractable and
// sensitive by CreateKey. Every cryptographic operation runs there,
// through this node's client of the store (storeConnFor); ciphertexts are
// the same blobs as the default store's, with the same AES-GCM nonce and
// additional data. A key whose store is not CONNECTED, whose cluster does
// not answer, or whose backing key is gone is unavailable
// (KMSInvalidStateException). Operations AWS does not support on keys in
// custom key stores are refused by a table (storeRefused).

import (
	"context"
	"crypto"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// storeOpTimeout bounds one operation on a store's cluster.
const storeOpTimeout = 15 * time.Second

// storeRefused is the table of operations that take a key and that AWS
// does not support on keys in custom key stores: they answer
// UnsupportedOperationException. The cryptographic operations left are
// Encrypt, Decrypt, ReEncrypt, GenerateDataKey and
// GenerateDataKeyWithoutPlaintext (and GenerateRandom, which names the
// store rather than a key).
var storeRefused = map[string]bool{
	"GenerateDataKeyPair":                 true,
	"GenerateDataKeyPairWithoutPlaintext": true,
	"Sign":                                true,
	"Verify":                              true,
	"GenerateMac":                         true,
	"VerifyMac":                           true,
	"GetPublicKey":                        true,
	"EnableKeyRotation":                   true,
	"RotateKeyOnDemand":                   true,
	"GetParametersForImport":              true,
	"ImportKeyMaterial":                   true,
	"DeleteImportedKeyMaterial":           true,
}

// refuseStoreOp is the table's answer for k in the request's operation.
func refuseStoreOp(r *call.Request, k *state.KMSKey) error {
	if k.CustomKeyStoreID == "" || !storeRefused[r.Op] {
		return nil
	}
	return kmserr.New(kmserr.UnsupportedOperation, "%s origin is %s which is not valid for this operation.", k.Arn(), k.Origin)
}

// keyUnavailable is AWS's answer for a key of a custom key store that
// cannot be used now.
func keyUnavailable(k *state.KMSKey) error {
	return kmserr.New(kmserr.InvalidState, "%s is unavailable.", k.Arn())
}

// customStore is the store of a key in a custom key store, which must be
// CONNECTED: a clusterStore, or an external key store's (xksStoreFor).
func (s *Service) customStore(r *call.Request, k *state.KMSKey) (KeyStore, error) {
	st, err := s.readStore(k.Region, k.CustomKeyStoreID)
	if err != nil {
		if kmserr.Is(err, excStoreNotFound) {
			return nil, keyUnavailable(k)
		}
		return nil, err
	}
	if st.Type == state.KMSStoreExternal {
		return s.xksStoreFor(r, k, st)
	}
	if st.Type != state.KMSStoreCloudHSM || st.ConnectionState != state.KMSStoreConnected {
		return nil, keyUnavailable(k)
	}
	return &clusterStore{s: s, st: st, k: k}, nil
}

// clusterStore is the KeyStore of one key of an AWS_CLOUDHSM store.
type clusterStore struct {
	s  *Service
	st *state.KMSKeyStore
	k  *state.KMSKey
}

func (c *clusterStore) NewVersion(keyID, spec, usage string) ([]*object.Object, error) {
	return nil, refuseStoreOp(&call.Request{Op: "RotateKeyOnDemand"}, c.k)
}

// do runs fn with this node's client of the store and the backing key's
// handle on the store's cluster. A handle that no longer names the key is
// looked up once more; a key that is not found, a cluster that does not
// answer and a kmsuser that cannot log in make the key unavailable.
// Errors of the data (a bad tag) pass through.
func (c *clusterStore) do(fn func(ctx context.Context, sc *storeConn, h uint64) ([]byte, error)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeOpTimeout)
	defer cancel()
	sc, code := c.s.storeConnFor(ctx, c.st)
	if code != "" {
		c.s.log.Warn("kms: a custom key store's cluster is unavailable", "store", c.st.ID, "error_code", code)
		return nil, keyUnavailable(c.k)
	}
	for try := 0; try < 2; try++ {
		h, ok := sc.handle(c.k.ID)
		if !ok {
			ids, err := ownBackingKeys(ctx, sc.c, c.k.ID)
			if err != nil {
				return nil, c.failed(sc, err)
			}
			if len(ids) != 1 {
				c.s.log.Warn("kms: the backing key of a key in a custom key store is not on its cluster", "store", c.st.ID, "key", c.k.ID, "found", len(ids))
				return nil, keyUnavailable(c.k)
			}
			h = ids[0]
			sc.setHandle(c.k.ID, h)
		}
		out, err := fn(ctx, sc, h)
		if err == nil {
			return out, nil
		}
		if hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID) || hsmerr.IsRV(err, ck.CKR_KEY_HANDLE_INVALID) {
			sc.forget(c.k.ID)
			continue
		}
		if hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_INVALID) || hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE) {
			return nil, err
		}
		return nil, c.failed(sc, err)
	}
	return nil, keyUnavailable(c.k)
}

// failed records why the cluster refused and answers the key
// unavailable; a client whose login no longer works is dropped, so the
// next request logs in again with the row's password.
func (c *clusterStore) failed(sc *storeConn, err error) error {
	rv := hsmerr.RV(err)
	if rv == ck.CKR_USER_NOT_LOGGED_IN || rv == ck.CKR_PIN_INCORRECT || rv == ck.CKR_PIN_LOCKED {
		c.s.dropStoreConn(c.st.ID, sc)
	}
	c.s.log.Warn("kms: a custom key store's cluster refused an operation", "store", c.st.ID, "key", c.k.ID, "rv", rv)
	return keyUnavailable(c.k)
}

func (c *clusterStore) Encrypt(_ *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	return c.do(func(ctx context.Context, sc *storeConn, h uint64) ([]byte, error) {
		return sc.c.Encrypt(ctx, h, m, data)
	})
}

func (c *clusterStore) Decrypt(_ *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	return c.do(func(ctx context.Context, sc *storeConn, h uint64) ([]byte, error) {
		return sc.c.Decrypt(ctx, h, m, data)
	})
}

func (c *clusterStore) Sign(*state.KMSKeyVersion, mech.Mech, []byte) ([]byte, error) {
	return nil, refuseStoreOp(&call.Request{Op: "Sign"}, c.k)
}

func (c *clusterStore) Verify(*state.KMSKeyVersion, mech.Mech, []byte, []byte) error {
	return refuseStoreOp(&call.Request{Op: "Verify"}, c.k)
}

func (c *clusterStore) PublicKey(*state.KMSKeyVersion) (crypto.PublicKey, error) {
	return nil, refuseStoreOp(&call.Request{Op: "GetPublicKey"}, c.k)
}

// ownBackingKeys finds the backing keys of a KMS key on its store's
// cluster: kmsuser's own keys labelled with the key ID. A key another
// crypto user of that cluster shared with kmsuser under the same label is
// never taken: it would let that user decrypt what the KMS encrypts.
func ownBackingKeys(ctx context.Context, c *client.Client, keyID string) ([]uint64, error) {
	objs, err := c.ListObjects(ctx, backingKeyTemplate(keyID), 16)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, o := range objs {
		if o.Owner == state.KMSUser {
			ids = append(ids, o.ID)
		}
	}
	return ids, nil
}

// backingKeyTemplate finds the backing key of a KMS key on its cluster.
func backingKeyTemplate(keyID string) object.Template {
	return object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte(keyID)},
	}
}

// checkStoreForKey is CreateKey's check of a CustomKeyStoreId for a key
// not of Origin EXTERNAL_KEY_STORE (prepareXKSKey checks those): the store
// exists, the origin is its type's (so the store is an AWS_CLOUDHSM one),
// the key is a symmetric encryption key, and the store is CONNECTED.
func (s *Service) checkStoreForKey(r *call.Request, id, origin, spec, use string) (*state.KMSKeyStore, error) {
	st, err := s.readStore(r.Region, id)
	if err != nil {
		return nil, err
	}
	if origin != st.Type {
		return nil, kmserr.New(kmserr.Validation, "A key in the custom key store %s must have Origin %s", id, st.Type)
	}
	if spec != "SYMMETRIC_DEFAULT" || use != "ENCRYPT_DECRYPT" {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "Custom key stores hold only symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)")
	}
	if st.ConnectionState != state.KMSStoreConnected {
		return nil, kmserr.New(kmserr.CustomKeyStoreInvalid, "The custom key store %s is %s; CreateKey needs it CONNECTED", id, st.ConnectionState)
	}
	return st, nil
}

// newStoreKey makes the backing key of a new KMS key on the store's
// cluster: an AES-256 token key of kmsuser, labelled with the key ID,
// non-extractable and sensitive. The cluster must have two healthy
// nodes, as AWS asks two active HSMs of CreateKey. It returns a function
// that destroys the key again, for a CreateKey that fails after.
func (s *Service) newStoreKey(ctx context.Context, st *state.KMSKeyStore, keyID string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, storeOpTimeout)
	defer cancel()
	sc, code := s.storeConnFor(ctx, st)
	if code != "" {
		s.log.Warn("kms: CreateKey cannot reach a custom key store's cluster", "store", st.ID, "error_code", code)
		return nil, kmserr.New(excClusterInvalidConfig, "The cluster %s of the custom key store %s does not answer: CreateKey needs at least two active HSMs", st.ClusterID, st.ID)
	}
	if n, code := checkCluster(ctx, sc.c, st); code != "" {
		return nil, kmserr.New(excClusterInvalidConfig, "The cluster %s has %d active HSMs: CreateKey needs at least two", st.ClusterID, n)
	}
	b := func(v bool) []byte { return object.EncodeBool(v) }
	tmpl := object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_KEY_TYPE, Value: object.EncodeUlong(ck.CKK_AES)},
		{Type: ck.CKA_TOKEN, Value: b(true)},
		{Type: ck.CKA_PRIVATE, Value: b(true)},
		{Type: ck.CKA_LABEL, Value: []byte(keyID)},
		{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
		{Type: ck.CKA_ENCRYPT, Value: b(true)},
		{Type: ck.CKA_DECRYPT, Value: b(true)},
		{Type: ck.CKA_SENSITIVE, Value: b(true)},
		{Type: ck.CKA_EXTRACTABLE, Value: b(false)},
		{Type: ck.CKA_WRAP, Value: b(false)},
		{Type: ck.CKA_UNWRAP, Value: b(false)},
		{Type: ck.CKA_SIGN, Value: b(false)},
		{Type: ck.CKA_VERIFY, Value: b(false)},
		{Type: ck.CKA_DERIVE, Value: b(false)},
	}
	h, err := sc.c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	if err != nil {
		s.log.Warn("kms: making a key on a custom key store's cluster failed", "store", st.ID, "rv", hsmerr.RV(err))
		return nil, kmserr.New(excClusterInvalidConfig, "The cluster %s of the custom key store %s could not make the key material", st.ClusterID, st.ID)
	}
	sc.setHandle(keyID, h)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeOpTimeout)
		defer cancel()
		sc.forget(keyID)
		if err := sc.c.DestroyObject(ctx, h); err != nil {
			s.log.Warn("kms: removing the key material of a CreateKey that failed", "store", st.ID, "key", keyID, "rv", hsmerr.RV(err))
		}
	}, nil
}

// destroyStoreKey destroys the backing key of a deleted KMS key on its
// store's cluster, when the store is connected; else the key stays there
// for the cluster's officer (as AWS leaves it). It only logs failures.
func (s *Service) destroyStoreKey(k *state.KMSKey) {
	st, err := s.readStore(k.Region, k.CustomKeyStoreID)
	if err != nil || st.Type != state.KMSStoreCloudHSM || st.ConnectionState != state.KMSStoreConnected {
		s.log.Info("kms: the backing key of a deleted key stays on its store's cluster (store not connected)", "store", k.CustomKeyStoreID, "key", k.ID)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpTimeout)
	defer cancel()
	sc, code := s.storeConnFor(ctx, st)
	if code != "" {
		s.log.Warn("kms: the backing key of a deleted key stays on its store's cluster", "store", st.ID, "key", k.ID, "error_code", code)
		return
	}
	ids, err := ownBackingKeys(ctx, sc.c, k.ID)
	if err != nil {
		s.log.Warn("kms: finding the backing key of a deleted key failed", "store", st.ID, "key", k.ID, "rv", hsmerr.RV(err))
		return
	}
	for _, id := range ids {
		if err := sc.c.DestroyObject(ctx, id); err != nil {
			s.log.Warn("kms: destroying the backing key of a deleted key failed", "store", st.ID, "key", k.ID, "rv", hsmerr.RV(err))
		}
	}
	sc.forget(k.ID)
}

// storeRandom is GenerateRandom with a CustomKeyStoreId: n bytes from the
// store's cluster, which must be a CONNECTED AWS_CLOUDHSM store.
func (s *Service) storeRandom(r *call.Request, id string, n int) (model.Object, error) {
	st, err := s.readStore(r.Region, id)
	if err != nil {
		return nil, err
	}
	if st.Type != state.KMSStoreCloudHSM {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "GenerateRandom is not supported in a custom key store of type %s", st.Type)
	}
	if st.ConnectionState != state.KMSStoreConnected {
		return nil, kmserr.New(kmserr.CustomKeyStoreInvalid, "The custom key store %s is %s; GenerateRandom needs it CONNECTED", id, st.ConnectionState)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpTimeout)
	defer cancel()
	sc, code := s.storeConnFor(ctx, st)
	if code != "" {
		return nil, kmserr.New(kmserr.CustomKeyStoreInvalid, "The cluster of the custom key store %s does not answer", id)
	}
	b, err := sc.c.GenerateRandom(ctx, n)
	if err != nil {
		return nil, kmserr.New(kmserr.CustomKeyStoreInvalid, "The cluster of the custom key store %s does not answer", id)
	}
	return model.Object{"Plaintext": b}, nil
}

// storeMetadata adds a store key's CustomKeyStoreId and CloudHsmClusterId
// to its KeyMetadata; while its store is not CONNECTED the key's state is
// Unavailable, as AWS reports it.
func (s *Service) storeMetadata(k *state.KMSKey, m model.Object) {
	if k.CustomKeyStoreID == "" {
		return
	}
	m["CustomKeyStoreId"] = k.CustomKeyStoreID
	st, err := s.readStore(k.Region, k.CustomKeyStoreID)
	if err != nil {
		return
	}
	if st.ClusterID != "" {
		m["CloudHsmClusterId"] = st.ClusterID
	}
	if st.ConnectionState != state.KMSStoreConnected && k.State != state.KMSPendingDeletion {
		m["KeyState"] = "Unavailable"
	}
}
