package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/blob"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/state"
)

// ---- the ciphertext blob ----

func keyIDBytes(id string) ([blob.KeyIDLen]byte, bool) {
	var out [blob.KeyIDLen]byte
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	if err != nil || len(b) != blob.KeyIDLen {
		return out, false
	}
	copy(out[:], b)
	return out, true
}

func keyIDString(b [blob.KeyIDLen]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func scopeOf(k *state.KMSKey) blob.Scope {
	return blob.Scope{Partition: "aws", Region: k.Region, Account: k.Account}
}

// gcm is the mechanism of one blob: AES-GCM with the blob's nonce and
// additional data, and a full tag.
func gcm(nonce, aad []byte) mech.Mech {
	return mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: nonce, AAD: aad, TagBits: 128}}
}

// seal encrypts under the key's newest backing key, in the key's store.
func (s *Service) seal(r *call.Request, k *state.KMSKey, plaintext []byte, ec map[string]string) ([]byte, error) {
	v := k.Current()
	if v == nil || len(v.Objects) != 1 && k.CustomKeyStoreID == "" {
		return nil, kmserr.New(kmserr.InvalidState, "%s is pending import.", k.Arn())
	}
	id, ok := keyIDBytes(k.ID)
	if !ok {
		return nil, kmserr.New(kmserr.Internal, kmserr.InternalMessage)
	}
	h := blob.Header{KeyID: id, KeyVersion: uint32(v.N)}
	if _, err := rand.Read(h.Nonce[:]); err != nil {
		return nil, err
	}
	hdr := h.Marshal()
	ks, err := s.storeFor(r, k)
	if err != nil {
		return nil, err
	}
	ct, err := ks.Encrypt(v, gcm(h.Nonce[:], blob.AAD(scopeOf(k), hdr, ec)), plaintext)
	if err != nil {
		return nil, err
	}
	return append(hdr, ct...), nil
}

// errForeignCiphertext is AWS's answer for a ciphertext whose key is not
// here.
var errForeignCiphertext = kmserr.New(kmserr.AccessDenied, "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")

// open decrypts a blob made by seal. keyID, when the client named one,
// must be the blob's key.
func (s *Service) open(r *call.Request, ciphertext []byte, ec map[string]string, want *state.KMSKey) (*state.KMSKey, []byte, error) {
	h, body, err := blob.Parse(ciphertext)
	if err != nil {
		return nil, nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	id := keyIDString(h.KeyID)
	if want != nil && want.ID != id {
		return nil, nil, kmserr.New(kmserr.IncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	k := want
	if k == nil {
		if k, err = s.readKey(r.Region, id); kmserr.Is(err, kmserr.NotFound) {
			return nil, nil, errForeignCiphertext
		} else if err != nil {
			return nil, nil, err
		}
	}
	r.KeyARN = k.Arn()
	if k.KeySpec != "SYMMETRIC_DEFAULT" {
		return nil, nil, kmserr.New(kmserr.IncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	if err := usable(k); err != nil {
		return nil, nil, err
	}
	v := k.Version(int(h.KeyVersion))
	if v == nil || len(v.Objects) != 1 && k.CustomKeyStoreID == "" {
		return nil, nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	ks, err := s.storeFor(r, k)
	if err != nil {
		return nil, nil, err
	}
	pt, err := ks.Decrypt(v, gcm(h.Nonce[:], blob.AAD(scopeOf(k), ciphertext[:blob.HeaderLen], ec)), body)
	if err != nil {
		if hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_INVALID) || hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE) {
			return nil, nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
		}
		return nil, nil, err
	}
	return k, pt, nil
}

func ecOf(in model.Object, member string) map[string]string {
	m, _ := in.StringMap(member)
	return m
}

// symmetric is the key of an operation that only symmetric encryption
// keys do (GenerateDataKey*), usable now.
func (s *Service) symmetric(r *call.Request, op string) (*state.KMSKey, error) {
	k, err := s.key(r, "KeyId", true)
	if err != nil {
		return nil, err
	}
	if k.KeySpec != "SYMMETRIC_DEFAULT" {
		return nil, kmserr.New(kmserr.InvalidKeyUsage, "%s key spec is %s which is not valid for %s.", k.Arn(), k.KeySpec, op)
	}
	if err := usable(k); err != nil {
		return nil, err
	}
	return k, nil
}

func noRecipient(in model.Object) error {
	if _, ok := in.Object("Recipient"); ok {
		return kmserr.New(kmserr.UnsupportedOperation, "Recipient (Nitro Enclaves attestation) is not supported by this service")
	}
	return nil
}

// ---- Encrypt, Decrypt, ReEncrypt ----

func (s *Service) encrypt(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", true)
	if err != nil {
		return nil, err
	}
	pt, _ := r.Input.Bytes("Plaintext")
	alg, ok := r.Input.String("EncryptionAlgorithm")
	if !ok {
		alg = "SYMMETRIC_DEFAULT"
	}
	ct, err := s.encryptWith(r, k, alg, pt, ecOf(r.Input, "EncryptionContext"))
	if err != nil {
		return nil, err
	}
	return model.Object{"CiphertextBlob": ct, "KeyId": k.Arn(), "EncryptionAlgorithm": alg}, nil
}

// encryptWith encrypts with a key and an algorithm it supports.
func (s *Service) encryptWith(r *call.Request, k *state.KMSKey, alg string, pt []byte, ec map[string]string) ([]byte, error) {
	if err := usage(k, "ENCRYPT_DECRYPT", "Encrypt"); err != nil {
		return nil, err
	}
	if err := usable(k); err != nil {
		return nil, err
	}
	if k.KeySpec == "SYMMETRIC_DEFAULT" {
		if alg != "SYMMETRIC_DEFAULT" {
			return nil, kmserr.New(kmserr.InvalidKeyUsage, "%s does not support encryption algorithm %s", k.Arn(), alg)
		}
		return s.seal(r, k, pt, ec)
	}
	p, ok := oaepAlgs[alg]
	if !ok {
		return nil, kmserr.New(kmserr.InvalidKeyUsage, "%s does not support encryption algorithm %s", k.Arn(), alg)
	}
	if len(ec) > 0 {
		return nil, kmserr.New(kmserr.Validation, "EncryptionContext is not supported with asymmetric KMS keys")
	}
	v := k.Current()
	ct, err := s.keys.Encrypt(v, mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: p}, pt)
	if hsmerr.IsRV(err, ck.CKR_DATA_LEN_RANGE) {
		return nil, kmserr.New(kmserr.Validation, "The plaintext is too long for %s with %s", k.KeySpec, alg)
	}
	return ct, err
}

func (s *Service) decrypt(_ context.Context, r *call.Request) (model.Object, error) {
	k, alg, pt, err := s.decryptRequest(r, "KeyId", "CiphertextBlob", "EncryptionContext", "EncryptionAlgorithm")
	if err != nil {
		return nil, err
	}
	return model.Object{"KeyId": k.Arn(), "Plaintext": pt, "EncryptionAlgorithm": alg}, nil
}

// decryptRequest decrypts a request's ciphertext, with the key the client
// named (if any) and the algorithm it gave.
func (s *Service) decryptRequest(r *call.Request, keyMember, ctMember, ecMember, algMember string) (*state.KMSKey, string, []byte, error) {
	if err := noRecipient(r.Input); err != nil {
		return nil, "", nil, err
	}
	ct, ok := r.Input.Bytes(ctMember)
	if !ok {
		return nil, "", nil, kmserr.New(kmserr.Validation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(ctMember))
	}
	alg, ok := r.Input.String(algMember)
	if !ok {
		alg = "SYMMETRIC_DEFAULT"
	}
	var want *state.KMSKey
	if _, ok := r.Input.String(keyMember); ok {
		k, err := s.key(r, keyMember, true)
		if err != nil {
			return nil, "", nil, err
		}
		want = k
	}
	if want != nil && want.KeySpec != "SYMMETRIC_DEFAULT" {
		return s.decryptRSA(want, alg, ct)
	}
	if alg != "SYMMETRIC_DEFAULT" {
		return nil, "", nil, kmserr.New(kmserr.IncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	if want == nil {
		// The key is the ciphertext's: the caller must be allowed on it
		// before anything is decrypted (access.go).
		if _, err := s.ciphertextKey(r, keyMember, ct); err != nil {
			return nil, "", nil, err
		}
	}
	k, pt, err := s.open(r, ct, ecOf(r.Input, ecMember), want)
	if err != nil {
		return nil, "", nil, err
	}
	return k, alg, pt, nil
}

// decryptRSA decrypts raw RSAES-OAEP ciphertext, so ciphertext made
// outside with the downloaded public key decrypts.
func (s *Service) decryptRSA(k *state.KMSKey, alg string, ct []byte) (*state.KMSKey, string, []byte, error) {
	if err := usage(k, "ENCRYPT_DECRYPT", "Decrypt"); err != nil {
		return nil, "", nil, err
	}
	p, ok := oaepAlgs[alg]
	if !ok {
		return nil, "", nil, kmserr.New(kmserr.InvalidKeyUsage, "%s does not support encryption algorithm %s", k.Arn(), alg)
	}
	if err := usable(k); err != nil {
		return nil, "", nil, err
	}
	pt, err := s.keys.Decrypt(k.Current(), mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: p}, ct)
	if err != nil {
		if e := hsmerr.KMSException(err); e == "" || e == kmserr.DependencyTimeout {
			return nil, "", nil, err
		}
		return nil, "", nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	return k, alg, pt, nil
}

func (s *Service) reEncrypt(_ context.Context, r *call.Request) (model.Object, error) {
	src, srcAlg, pt, err := s.decryptRequest(r, "SourceKeyId", "CiphertextBlob", "SourceEncryptionContext", "SourceEncryptionAlgorithm")
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	dst, err := s.key(r, "DestinationKeyId", true)
	if err != nil {
		return nil, err
	}
	alg, ok := r.Input.String("DestinationEncryptionAlgorithm")
	if !ok {
		alg = "SYMMETRIC_DEFAULT"
	}
	ct, err := s.encryptWith(r, dst, alg, pt, ecOf(r.Input, "DestinationEncryptionContext"))
	if err != nil {
		return nil, err
	}
	return model.Object{"CiphertextBlob": ct, "SourceKeyId": src.Arn(), "KeyId": dst.Arn(),
		"SourceEncryptionAlgorithm": srcAlg, "DestinationEncryptionAlgorithm": alg}, nil
}

// ---- data keys and random ----

func (s *Service) dataKey(r *call.Request, op string) (*state.KMSKey, []byte, []byte, error) {
	if err := noRecipient(r.Input); err != nil {
		return nil, nil, nil, err
	}
	k, err := s.symmetric(r, op)
	if err != nil {
		return nil, nil, nil, err
	}
	spec, hasSpec := r.Input.String("KeySpec")
	n, hasN := r.Input.Int("NumberOfBytes")
	if hasSpec == hasN {
		return nil, nil, nil, kmserr.New(kmserr.Validation, "Please specify either number of bytes or key spec.")
	}
	if hasSpec {
		n = int64(dataKeyBytes[spec])
	}
	pt, err := mech.GenerateRandom(int(n))
	if err != nil {
		return nil, nil, nil, err
	}
	ct, err := s.seal(r, k, pt, ecOf(r.Input, "EncryptionContext"))
	if err != nil {
		clear(pt)
		return nil, nil, nil, err
	}
	return k, pt, ct, nil
}

func (s *Service) generateDataKey(_ context.Context, r *call.Request) (model.Object, error) {
	k, pt, ct, err := s.dataKey(r, "GenerateDataKey")
	if err != nil {
		return nil, err
	}
	return model.Object{"CiphertextBlob": ct, "Plaintext": pt, "KeyId": k.Arn()}, nil
}

func (s *Service) generateDataKeyWithoutPlaintext(_ context.Context, r *call.Request) (model.Object, error) {
	k, pt, ct, err := s.dataKey(r, "GenerateDataKeyWithoutPlaintext")
	if err != nil {
		return nil, err
	}
	clear(pt)
	return model.Object{"CiphertextBlob": ct, "KeyId": k.Arn()}, nil
}

// dataKeyPairGen is each KeyPairSpec's generation mechanism and size.
var dataKeyPairGen = map[string]mech.KeyPairParams{
	"RSA_2048":        {ModulusBits: 2048, PublicExponent: 65537},
	"RSA_3072":        {ModulusBits: 3072, PublicExponent: 65537},
	"RSA_4096":        {ModulusBits: 4096, PublicExponent: 65537},
	"ECC_NIST_P256":   {},
	"ECC_NIST_P384":   {},
	"ECC_NIST_P521":   {},
	"ECC_SECG_P256K1": {},
}

func (s *Service) dataKeyPair(r *call.Request) (*state.KMSKey, string, []byte, []byte, []byte, error) {
	if err := noRecipient(r.Input); err != nil {
		return nil, "", nil, nil, nil, err
	}
	k, err := s.symmetric(r, "GenerateDataKeyPair")
	if err != nil {
		return nil, "", nil, nil, nil, err
	}
	spec, _ := r.Input.String("KeyPairSpec")
	p, ok := dataKeyPairGen[spec]
	if !ok {
		return nil, "", nil, nil, nil, kmserr.New(kmserr.UnsupportedOperation, "KeyPairSpec %s is not supported by this service", spec)
	}
	gen := uint64(ck.CKM_RSA_PKCS_KEY_PAIR_GEN)
	if curve, ok := kmsCurve(spec); ok {
		gen, p.ECParams = ck.CKM_EC_KEY_PAIR_GEN, curve.Params
	}
	row, _ := mech.LookupMechanism(gen)
	signer, err := row.GenerateKeyPair(rand.Reader, p)
	if err != nil {
		return nil, "", nil, nil, nil, err
	}
	priv, err := mech.MarshalPrivateKey(signer)
	if err != nil {
		return nil, "", nil, nil, nil, err
	}
	pub, err := mech.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		clear(priv)
		return nil, "", nil, nil, nil, err
	}
	ct, err := s.seal(r, k, priv, ecOf(r.Input, "EncryptionContext"))
	if err != nil {
		clear(priv)
		return nil, "", nil, nil, nil, err
	}
	return k, spec, priv, pub, ct, nil
}

func kmsCurve(spec string) (*mech.CurveInfo, bool) {
	if n, ok := engine.KMSCurves[spec]; ok {
		return mech.CurveByName(n)
	}
	return nil, false
}

func (s *Service) generateDataKeyPair(_ context.Context, r *call.Request) (model.Object, error) {
	k, spec, priv, pub, ct, err := s.dataKeyPair(r)
	if err != nil {
		return nil, err
	}
	return model.Object{"PrivateKeyCiphertextBlob": ct, "PrivateKeyPlaintext": priv, "PublicKey": pub,
		"KeyId": k.Arn(), "KeyPairSpec": spec}, nil
}

func (s *Service) generateDataKeyPairWithoutPlaintext(_ context.Context, r *call.Request) (model.Object, error) {
	k, spec, priv, pub, ct, err := s.dataKeyPair(r)
	if err != nil {
		return nil, err
	}
	clear(priv)
	return model.Object{"PrivateKeyCiphertextBlob": ct, "PublicKey": pub, "KeyId": k.Arn(), "KeyPairSpec": spec}, nil
}

func (s *Service) generateRandom(_ context.Context, r *call.Request) (model.Object, error) {
	if err := noRecipient(r.Input); err != nil {
		return nil, err
	}
	n, ok := r.Input.Int("NumberOfBytes")
	if !ok {
		return nil, kmserr.New(kmserr.Validation, "1 validation error detected: Value null at 'numberOfBytes' failed to satisfy constraint: Member must not be null")
	}
	if id, ok := r.Input.String("CustomKeyStoreId"); ok {
		return s.storeRandom(r, id, int(n))
	}
	b, err := mech.GenerateRandom(int(n))
	if err != nil {
		return nil, err
	}
	return model.Object{"Plaintext": b}, nil
}

// ---- Sign, Verify, GetPublicKey ----

func (s *Service) signingKey(r *call.Request, op string) (*state.KMSKey, signAlg, string, []byte, error) {
	k, err := s.key(r, "KeyId", true)
	if err != nil {
		return nil, signAlg{}, "", nil, err
	}
	if err := usage(k, "SIGN_VERIFY", op); err != nil {
		return nil, signAlg{}, "", nil, err
	}
	if err := usable(k); err != nil {
		return nil, signAlg{}, "", nil, err
	}
	algName, _ := r.Input.String("SigningAlgorithm")
	_, sigs, _ := algorithms(k)
	supported := false
	for _, a := range sigs {
		supported = supported || a == algName
	}
	alg, ok := signAlgs[algName]
	if !ok || !supported {
		return nil, signAlg{}, "", nil, kmserr.New(kmserr.InvalidKeyUsage, "%s does not support signing algorithm %s", k.Arn(), algName)
	}
	mt, ok := r.Input.String("MessageType")
	if !ok {
		mt = "RAW"
	}
	msg, _ := r.Input.Bytes("Message")
	if err := messageTypeRule(alg, algName, k.KeySpec, mt, len(msg)); err != nil {
		return nil, signAlg{}, "", nil, err
	}
	return k, alg, mt, msg, nil
}

func (s *Service) sign(_ context.Context, r *call.Request) (model.Object, error) {
	k, alg, mt, msg, err := s.signingKey(r, "Sign")
	if err != nil {
		return nil, err
	}
	m, data := alg.mechanism(mt, msg)
	sig, err := s.keys.Sign(k.Current(), m, data)
	if err != nil {
		return nil, err
	}
	if alg.ecdsa {
		sig = ecdsaDER(sig)
	}
	algName, _ := r.Input.String("SigningAlgorithm")
	return model.Object{"KeyId": k.Arn(), "Signature": sig, "SigningAlgorithm": algName}, nil
}

var errBadSignature = kmserr.New(kmserr.InvalidSignature, "")

func (s *Service) verify(_ context.Context, r *call.Request) (model.Object, error) {
	k, alg, mt, msg, err := s.signingKey(r, "Verify")
	if err != nil {
		return nil, err
	}
	sig, _ := r.Input.Bytes("Signature")
	if alg.ecdsa {
		pub, err := s.keys.PublicKey(k.Current())
		if err != nil {
			return nil, err
		}
		ep, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return nil, errBadSignature
		}
		if sig, ok = ecdsaRaw(sig, (ep.Curve.Params().BitSize+7)/8); !ok {
			return nil, &kmserr.Error{Type: kmserr.InvalidSignature}
		}
	}
	m, data := alg.mechanism(mt, msg)
	if err := s.keys.Verify(k.Current(), m, data, sig); err != nil {
		if hsmerr.IsRV(err, ck.CKR_SIGNATURE_INVALID) || hsmerr.IsRV(err, ck.CKR_SIGNATURE_LEN_RANGE) {
			return nil, &kmserr.Error{Type: kmserr.InvalidSignature}
		}
		return nil, err
	}
	algName, _ := r.Input.String("SigningAlgorithm")
	return model.Object{"KeyId": k.Arn(), "SignatureValid": true, "SigningAlgorithm": algName}, nil
}

// ecdsaDER turns PKCS #11's r||s into the DER SEQUENCE AWS returns.
func ecdsaDER(raw []byte) []byte {
	n := len(raw) / 2
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:n]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[n:]))
	})
	out, _ := b.Bytes()
	return out
}

// ecdsaRaw turns a DER signature into r||s of size bytes each.
func ecdsaRaw(der []byte, size int) ([]byte, bool) {
	var inner cryptobyte.String
	r, s := new(big.Int), new(big.Int)
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() || !inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, false
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > size*8 || s.BitLen() > size*8 {
		return nil, false
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, true
}

func (s *Service) getPublicKey(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", true)
	if err != nil {
		return nil, err
	}
	if !asymmetric(k.KeySpec) {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s is not an asymmetric KMS key", k.Arn())
	}
	if k.State == state.KMSPendingDeletion || k.State == state.KMSDisabled {
		if err := usable(k); err != nil {
			return nil, err
		}
	}
	pub, err := s.keys.PublicKey(k.Current())
	if err != nil {
		return nil, err
	}
	der, err := mech.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	out := model.Object{"KeyId": k.Arn(), "PublicKey": der, "KeySpec": k.KeySpec, "KeyUsage": k.KeyUsage}
	if cmkSpec(k.KeySpec) {
		out["CustomerMasterKeySpec"] = k.KeySpec
	}
	enc, sig, _ := algorithms(k)
	if enc != nil {
		out["EncryptionAlgorithms"] = enc
	}
	if sig != nil {
		out["SigningAlgorithms"] = sig
	}
	return out, nil
}

// ---- MACs ----

func (s *Service) macKey(r *call.Request, op string) (*state.KMSKey, mech.Mech, error) {
	k, err := s.key(r, "KeyId", true)
	if err != nil {
		return nil, mech.Mech{}, err
	}
	if err := usage(k, "GENERATE_VERIFY_MAC", op); err != nil {
		return nil, mech.Mech{}, err
	}
	if err := usable(k); err != nil {
		return nil, mech.Mech{}, err
	}
	name, _ := r.Input.String("MacAlgorithm")
	a, ok := macAlgs[name]
	if !ok || a.spec != k.KeySpec {
		return nil, mech.Mech{}, kmserr.New(kmserr.InvalidKeyUsage, "%s does not support MAC algorithm %s", k.Arn(), name)
	}
	return k, mech.Mech{Type: a.mech}, nil
}

func (s *Service) generateMac(_ context.Context, r *call.Request) (model.Object, error) {
	k, m, err := s.macKey(r, "GenerateMac")
	if err != nil {
		return nil, err
	}
	msg, _ := r.Input.Bytes("Message")
	mac, err := s.keys.Sign(k.Current(), m, msg)
	if err != nil {
		return nil, err
	}
	name, _ := r.Input.String("MacAlgorithm")
	return model.Object{"Mac": mac, "MacAlgorithm": name, "KeyId": k.Arn()}, nil
}

func (s *Service) verifyMac(_ context.Context, r *call.Request) (model.Object, error) {
	k, m, err := s.macKey(r, "VerifyMac")
	if err != nil {
		return nil, err
	}
	msg, _ := r.Input.Bytes("Message")
	mac, _ := r.Input.Bytes("Mac")
	if err := s.keys.Verify(k.Current(), m, msg, mac); err != nil {
		if hsmerr.IsRV(err, ck.CKR_SIGNATURE_INVALID) || hsmerr.IsRV(err, ck.CKR_SIGNATURE_LEN_RANGE) {
			return nil, &kmserr.Error{Type: kmserr.InvalidMac}
		}
		return nil, err
	}
	name, _ := r.Input.String("MacAlgorithm")
	return model.Object{"KeyId": k.Arn(), "MacValid": true, "MacAlgorithm": name}, nil
}
