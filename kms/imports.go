package kms

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strconv"
	"strings"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// Imported key material (BYOK). GetParametersForImport makes an RSA
// wrapping key pair in the HSM and an import token; ImportKeyMaterial
// unwraps the material with the private key, in the HSM, and stores it as
// the key's backing key. Wrapping algorithms: RSAES_OAEP_SHA_1 and
// RSAES_OAEP_SHA_256 (the material wrapped directly), and
// RSA_AES_KEY_WRAP_SHA_1 and RSA_AES_KEY_WRAP_SHA_256 (an AES key wrapped
// with OAEP, then the material with AES key wrap with padding, RFC 5649).

var wrapAlgs = map[string]struct {
	oaep *mech.OAEPParams
	kwp  bool
}{
	"RSAES_OAEP_SHA_1":         {oaepAlgs["RSAES_OAEP_SHA_1"], false},
	"RSAES_OAEP_SHA_256":       {oaepAlgs["RSAES_OAEP_SHA_256"], false},
	"RSA_AES_KEY_WRAP_SHA_1":   {oaepAlgs["RSAES_OAEP_SHA_1"], true},
	"RSA_AES_KEY_WRAP_SHA_256": {oaepAlgs["RSAES_OAEP_SHA_256"], true},
}

func (s *Service) getParametersForImport(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if k.Origin != state.KMSOriginExternal {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s origin is %s which is invalid for this operation.", k.Arn(), k.Origin)
	}
	if k.State == state.KMSPendingDeletion {
		return nil, usable(k)
	}
	alg, _ := r.Input.String("WrappingAlgorithm")
	spec, _ := r.Input.String("WrappingKeySpec")
	if _, ok := wrapAlgs[alg]; !ok {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "WrappingAlgorithm %s is not supported by this service", alg)
	}
	if !strings.HasPrefix(spec, "RSA_") {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "WrappingKeySpec %s is not supported by this service", spec)
	}
	bits, _ := strconv.Atoi(strings.TrimPrefix(spec, "RSA_"))
	objs, err := s.e.NewKMSWrappingPair(k.ID, bits)
	if err != nil {
		return nil, err
	}
	token := make([]byte, 64)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(token)
	err = s.submit(ctx, &state.Command{Op: state.OpKMSImportParams, Objects: objs, KMS: &state.KMSCommand{
		Principal: r.Principal, Region: k.Region, KeyID: k.ID,
		Import: &state.KMSImport{TokenHash: sum[:], Algorithm: alg, Spec: spec}}})
	if err != nil {
		return nil, err
	}
	nk, err := s.readKey(k.Region, k.ID)
	if err != nil {
		return nil, err
	}
	if nk.Import == nil {
		return nil, kmserr.New(kmserr.Internal, kmserr.InternalMessage)
	}
	pub, err := s.e.PublicKey(engine.KMSCaller, nk.Import.Objects[0])
	if err != nil {
		return nil, err
	}
	der, err := mech.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return model.Object{"KeyId": k.Arn(), "ImportToken": token, "PublicKey": der, "ParametersValidTo": unix(nk.Import.Expires)}, nil
}

func (s *Service) importKeyMaterial(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if k.Origin != state.KMSOriginExternal {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s origin is %s which is invalid for this operation.", k.Arn(), k.Origin)
	}
	if k.State == state.KMSPendingDeletion {
		return nil, usable(k)
	}
	token, _ := r.Input.Bytes("ImportToken")
	sum := sha256.Sum256(token)
	if k.Import == nil || string(k.Import.TokenHash) != string(sum[:]) {
		return nil, kmserr.New(kmserr.InvalidImportToken, "Import token is invalid for this key")
	}
	if s.now() > k.Import.Expires {
		return nil, kmserr.New(kmserr.ExpiredImportToken, "Import token expired")
	}
	model_, _ := r.Input.String("ExpirationModel")
	validTo, hasValidTo := r.Input.Time("ValidTo")
	if model_ == "" {
		model_ = "KEY_MATERIAL_EXPIRES"
		if !hasValidTo {
			model_ = "KEY_MATERIAL_DOES_NOT_EXPIRE"
		}
	}
	var expires int64
	switch {
	case model_ == "KEY_MATERIAL_EXPIRES" && !hasValidTo:
		return nil, kmserr.New(kmserr.Validation, "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	case model_ == "KEY_MATERIAL_DOES_NOT_EXPIRE" && hasValidTo:
		return nil, kmserr.New(kmserr.Validation, "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
	case hasValidTo:
		expires = validTo.Unix()
		if expires <= s.now() {
			return nil, kmserr.New(kmserr.Validation, "ValidTo must be in the future")
		}
		if expires > s.clock().Add(365*24*time.Hour).Unix() {
			return nil, kmserr.New(kmserr.Validation, "ValidTo must be at most 365 days from now")
		}
	}
	wrapped, _ := r.Input.Bytes("EncryptedKeyMaterial")
	material, err := s.unwrap(k, wrapped)
	if err != nil {
		return nil, err
	}
	obj, err := s.e.NewKMSImported(k.ID, material)
	clear(material)
	if err != nil {
		return nil, err
	}
	err = s.submit(ctx, &state.Command{Op: state.OpKMSImportMaterial, Objects: []*object.Object{obj},
		KMS: &state.KMSCommand{Principal: r.Principal, Region: k.Region, KeyID: k.ID, TokenHash: sum[:], Expires: expires}})
	if err != nil {
		return nil, err
	}
	return model.Object{"KeyId": k.Arn()}, nil
}

// unwrap opens imported material with the key's wrapping private key.
func (s *Service) unwrap(k *state.KMSKey, wrapped []byte) ([]byte, error) {
	alg := wrapAlgs[k.Import.Algorithm]
	priv := k.Import.Objects[1]
	m := mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: alg.oaep}
	if !alg.kwp {
		pt, err := s.e.Decrypt(engine.KMSCaller, priv, m, wrapped)
		if err != nil {
			return nil, badMaterial(err)
		}
		return pt, nil
	}
	pub, err := s.e.PublicKey(engine.KMSCaller, k.Import.Objects[0])
	if err != nil {
		return nil, err
	}
	rp, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	size := rp.Size()
	if len(wrapped) <= size {
		return nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	aesKey, err := s.e.Decrypt(engine.KMSCaller, priv, m, wrapped[:size])
	if err != nil {
		return nil, badMaterial(err)
	}
	defer clear(aesKey)
	b, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	pt, err := mech.UnwrapKWP(b, [4]byte{0xa6, 0x59, 0x59, 0xa6}, wrapped[size:])
	if err != nil {
		return nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	return pt, nil
}

func badMaterial(err error) error {
	if hsmerr.KMSException(err) == kmserr.DependencyTimeout || hsmerr.KMSException(err) == "" && !hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_INVALID) && !hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE) {
		return err
	}
	return &kmserr.Error{Type: kmserr.InvalidCiphertext}
}

func (s *Service) deleteImportedKeyMaterial(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if k.Origin != state.KMSOriginExternal {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s origin is %s which is invalid for this operation.", k.Arn(), k.Origin)
	}
	err = s.submit(ctx, &state.Command{Op: state.OpKMSDeleteMaterial, KMS: &state.KMSCommand{Principal: r.Principal, Region: k.Region, KeyID: k.ID}})
	return model.Object{}, err
}
