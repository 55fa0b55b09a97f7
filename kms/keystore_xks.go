package kms

// External key stores (docs/kms.md, "External key stores"): a key of
// Origin EXTERNAL_KEY_STORE is encrypted twice, as AWS KMS does. The inner
// layer is an AES-256 key of this cluster's HSM (kmsuser's, like any
// key's backing key); the outer layer is the external key, behind the
// store's XKS proxy, reached with kms/xksclient. Decrypt undoes the outer
// layer at the proxy first. The blob keeps the proxy's answer in an XKS
// envelope (kms/blob), and the proxy is given a digest of the blob's
// additional data, so it learns neither the encryption context nor the
// plaintext.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/openhsm/openhsm/kms/blob"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/xks"
	"github.com/openhsm/openhsm/kms/xksclient"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// xksClients are this node's proxy clients, one per store, rebuilt when
// the store's proxy settings change.
type xksClients struct {
	mu sync.Mutex
	m  map[string]xksEntry
}

type xksEntry struct {
	fingerprint [32]byte
	c           *xksclient.Client
}

// xksFingerprint names a store's proxy settings (the sealed secret
// included, so a new credential makes a new client).
func xksFingerprint(st *state.KMSKeyStore) [32]byte {
	h := sha256.New()
	for _, p := range []string{st.ID, st.XksEndpoint, st.XksPath, st.XksAccessKeyID, string(st.XksSecret)} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var f [32]byte
	h.Sum(f[:0])
	return f
}

// xksClient is the client of st's proxy; it bounds each call by
// xksclient.DefaultTimeout, so callers add no deadline of their own.
func (s *Service) xksClient(st *state.KMSKeyStore) (*xksclient.Client, error) {
	f := xksFingerprint(st)
	s.xks.mu.Lock()
	defer s.xks.mu.Unlock()
	if e, ok := s.xks.m[st.ID]; ok && e.fingerprint == f {
		return e.c, nil
	}
	sl, err := s.sealer()
	if err != nil {
		return nil, err
	}
	secret, err := sl.Open(0, state.KMSStoreSecretOwner(st.ID), st.XksSecret)
	if err != nil {
		return nil, kmserr.New(kmserr.Internal, kmserr.InternalMessage)
	}
	defer clear(secret)
	c, err := xksclient.New(xksclient.Config{Endpoint: st.XksEndpoint, Path: st.XksPath, AccessKeyID: st.XksAccessKeyID,
		SecretAccessKey: string(secret), Region: st.Region, RootCAs: s.xksRoots})
	if err != nil {
		return nil, kmserr.New(kmserr.XksProxyInvalidConfig, "The external key store proxy configuration is not valid: %v", err)
	}
	if s.xks.m == nil {
		s.xks.m = map[string]xksEntry{}
	}
	if old, ok := s.xks.m[st.ID]; ok {
		old.c.Close()
	}
	s.xks.m[st.ID] = xksEntry{fingerprint: f, c: c}
	return c, nil
}

// xksError is the KMS exception of a failed proxy call made for op.
func xksError(err error, op string) error {
	var ke *kmserr.Error
	if errors.As(err, &ke) {
		return err
	}
	typ, msg := xksclient.Exception(err, op)
	return &kmserr.Error{Type: typ, Message: msg}
}

// tryConnectXKS is ConnectCustomKeyStore's check of an external key
// store: the proxy answers GetHealthStatus, signed with the store's
// credential, and some external key manager is available. It answers ""
// or a ConnectionErrorCode.
func (s *Service) tryConnectXKS(ctx context.Context, st *state.KMSKeyStore) string {
	c, err := s.xksClient(st)
	if err != nil {
		return "XKS_PROXY_INVALID_CONFIGURATION"
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	if _, err := c.Health(ctx, xks.RequestMetadata{KMSOperation: "ConnectCustomKeyStore", KMSRequestID: hex.EncodeToString(id[:])}); err != nil {
		return xksclient.ConnectionErrorCode(err)
	}
	return ""
}

// prepareXKSKey is CreateKey's part for a key in an external key store:
// the store is an EXTERNAL_KEY_STORE and CONNECTED, and its proxy says the
// external key is an enabled AES-256 key for encryption and decryption.
// The state machine checks the store again at the command's index.
func (s *Service) prepareXKSKey(ctx context.Context, r *call.Request, k *state.KMSKey) error {
	st, err := s.readStore(r.Region, k.CustomKeyStoreID)
	if err != nil {
		return err
	}
	if st.Type != state.KMSStoreExternal {
		return kmserr.New(kmserr.Validation, "Origin EXTERNAL_KEY_STORE needs a custom key store of type EXTERNAL_KEY_STORE")
	}
	if st.ConnectionState != state.KMSStoreConnected {
		return kmserr.New(kmserr.CustomKeyStoreInvalid, "%s", xksclient.MsgNotConnected)
	}
	c, err := s.xksClient(st)
	if err != nil {
		return err
	}
	md, err := c.KeyMetadata(ctx, k.XksKeyID, s.xksMetadata(r, k))
	if err == nil {
		err = xksclient.CheckKeyMetadata(md)
	}
	if err != nil {
		return xksError(err, "CreateKey")
	}
	return nil
}

// xksMetadata is the requestMetadata of a proxy call made for r on k.
func (s *Service) xksMetadata(r *call.Request, k *state.KMSKey) xks.RequestMetadata {
	return xks.RequestMetadata{AWSPrincipalARN: s.PrincipalArn(r.Principal), KMSKeyARN: k.Arn(), KMSOperation: r.Op, KMSRequestID: r.RequestID}
}

// xksStoreFor is the store of a key in an external key store, bound to
// the request.
func (s *Service) xksStoreFor(r *call.Request, k *state.KMSKey, st *state.KMSKeyStore) (KeyStore, error) {
	if st.ConnectionState != state.KMSStoreConnected {
		return nil, kmserr.New(kmserr.InvalidState, "%s", xksclient.MsgNotConnected)
	}
	c, err := s.xksClient(st)
	if err != nil {
		return nil, err
	}
	return &xksStore{inner: s.keys, c: c, keyID: k.XksKeyID, md: s.xksMetadata(r, k), op: r.Op}, nil
}

// xksStore is one request's view of an external key: the inner store (this
// cluster's HSM) and the proxy.
type xksStore struct {
	inner KeyStore
	c     *xksclient.Client
	keyID string
	md    xks.RequestMetadata
	op    string
}

var errXKSSymmetricOnly = kmserr.New(kmserr.UnsupportedOperation, "Keys in an external key store support only symmetric encryption and decryption")

func (x *xksStore) NewVersion(string, string, string) ([]*object.Object, error) {
	return nil, errXKSSymmetricOnly
}

// gcmAAD is the additional data of the blob's mechanism.
func gcmAAD(m mech.Mech) ([]byte, bool) {
	p, ok := m.Param.(*mech.GCMParams)
	if !ok {
		return nil, false
	}
	return p.AAD, true
}

func (x *xksStore) Encrypt(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	aad, ok := gcmAAD(m)
	if !ok {
		return nil, errXKSSymmetricOnly
	}
	inner, err := x.inner.Encrypt(v, m, data)
	if err != nil {
		return nil, err
	}
	ct, err := x.c.Encrypt(context.Background(), x.keyID, x.md, inner, blob.XKSAAD(aad))
	if err != nil {
		return nil, xksError(err, x.op)
	}
	env := (&blob.XKSEnvelope{IV: ct.IV, Tag: ct.Tag, Metadata: ct.CiphertextMetadata, Ciphertext: ct.Ciphertext}).Marshal()
	if env == nil {
		return nil, xksError(xksclient.ErrInvalidResponse, x.op)
	}
	return env, nil
}

func (x *xksStore) Decrypt(v *state.KMSKeyVersion, m mech.Mech, data []byte) ([]byte, error) {
	aad, ok := gcmAAD(m)
	if !ok {
		return nil, errXKSSymmetricOnly
	}
	env, err := blob.ParseXKSEnvelope(data)
	if err != nil {
		return nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	inner, err := x.c.Decrypt(context.Background(), x.keyID, x.md, &xksclient.Ciphertext{Ciphertext: env.Ciphertext, IV: env.IV, Tag: env.Tag,
		CiphertextMetadata: env.Metadata}, blob.XKSAAD(aad))
	if err != nil {
		return nil, xksError(err, x.op)
	}
	defer clear(inner)
	return x.inner.Decrypt(v, m, inner)
}

func (x *xksStore) Sign(*state.KMSKeyVersion, mech.Mech, []byte) ([]byte, error) {
	return nil, errXKSSymmetricOnly
}

func (x *xksStore) Verify(*state.KMSKeyVersion, mech.Mech, []byte, []byte) error {
	return errXKSSymmetricOnly
}

func (x *xksStore) PublicKey(*state.KMSKeyVersion) (crypto.PublicKey, error) {
	return nil, errXKSSymmetricOnly
}
