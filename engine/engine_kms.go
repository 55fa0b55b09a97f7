package engine

import (
	"context"
	"crypto"
	"errors"
	"strconv"
	"strings"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// The KMS service's side of the engine (docs/kms.md). KMS key material is
// made here, as objects of state.KMSUser that no one else can see, never
// extractable, and sealed for the command that records the key; the KMS
// service then uses it through the ordinary calls (Encrypt, Sign, ...) as
// KMSCaller. The service runs in the daemon's process: it is the HSM's own
// code, and no request reaches these functions except through it.

// KMSCaller is the caller the KMS service acts as.
var KMSCaller = Caller{User: state.KMSUser, Role: object.RoleCU}

func attrU(t, v uint64) object.Attribute {
	return object.Attribute{Type: t, Value: object.EncodeUlong(v)}
}
func attrB(t uint64, v bool) object.Attribute {
	return object.Attribute{Type: t, Value: object.EncodeBool(v)}
}

// kmsPrivate are the attributes of every KMS secret or private key.
func kmsPrivate(keyID string) object.Template {
	return object.Template{attrB(ck.CKA_TOKEN, true), attrB(ck.CKA_PRIVATE, true), attrB(ck.CKA_SENSITIVE, true),
		attrB(ck.CKA_EXTRACTABLE, false), {Type: ck.CKA_LABEL, Value: []byte(state.KMSMaterialLabel(keyID))}}
}

func kmsPublic(keyID string) object.Template {
	return object.Template{attrB(ck.CKA_TOKEN, true), attrB(ck.CKA_PRIVATE, false),
		{Type: ck.CKA_LABEL, Value: []byte(state.KMSMaterialLabel(keyID))}}
}

// NewKMSMaterial makes the material of one version of a KMS key of the
// spec and usage (state.KMSKeySpecs), as sealed objects of KMSUser for the
// command that records it: nothing is stored.
func (e *Engine) NewKMSMaterial(keyID, spec, usage string) ([]*object.Object, error) {
	priv, pub := kmsPrivate(keyID), kmsPublic(keyID)
	var objs []newObj
	switch {
	case spec == "SYMMETRIC_DEFAULT":
		n, err := generateSecret(mech.Mech{Type: ck.CKM_AES_KEY_GEN}, append(priv, attrU(ck.CKA_VALUE_LEN, 32),
			attrB(ck.CKA_ENCRYPT, true), attrB(ck.CKA_DECRYPT, true)))
		if err != nil {
			return nil, err
		}
		objs = []newObj{n}
	case strings.HasPrefix(spec, "HMAC_"):
		bits, _ := strconv.Atoi(strings.TrimPrefix(spec, "HMAC_"))
		n, err := generateSecret(mech.Mech{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, append(priv, attrU(ck.CKA_VALUE_LEN, uint64(bits/8)),
			attrB(ck.CKA_SIGN, true), attrB(ck.CKA_VERIFY, true)))
		if err != nil {
			return nil, err
		}
		objs = []newObj{n}
	case strings.HasPrefix(spec, "RSA_"):
		bits, _ := strconv.Atoi(strings.TrimPrefix(spec, "RSA_"))
		pub = append(pub, attrU(ck.CKA_MODULUS_BITS, uint64(bits)))
		if usage == "SIGN_VERIFY" {
			pub, priv = append(pub, attrB(ck.CKA_VERIFY, true)), append(priv, attrB(ck.CKA_SIGN, true))
		} else {
			pub, priv = append(pub, attrB(ck.CKA_ENCRYPT, true)), append(priv, attrB(ck.CKA_DECRYPT, true))
		}
		pair, err := generatePair(mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}, pub, priv)
		if err != nil {
			return nil, err
		}
		objs = pair
	case strings.HasPrefix(spec, "ECC_"):
		curve, ok := mech.CurveByName(KMSCurves[spec])
		if !ok {
			return nil, hsmerr.KMSf("UnsupportedOperationException", "KeySpec %s is not supported by this service", spec)
		}
		pub = append(pub, object.Attribute{Type: ck.CKA_EC_PARAMS, Value: curve.Params}, attrB(ck.CKA_VERIFY, true))
		pair, err := generatePair(mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, append(priv, attrB(ck.CKA_SIGN, true)))
		if err != nil {
			return nil, err
		}
		objs = pair
	case strings.HasPrefix(spec, "ML_DSA_"):
		set, ok := KMSMLDSASets[spec]
		if !ok {
			return nil, hsmerr.KMSf("UnsupportedOperationException", "KeySpec %s is not supported by this service", spec)
		}
		pub = append(pub, attrU(ck.CKA_PARAMETER_SET, set), attrB(ck.CKA_VERIFY, true))
		pair, err := generatePair(mech.Mech{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN}, pub, append(priv, attrB(ck.CKA_SIGN, true)))
		if err != nil {
			return nil, err
		}
		objs = pair
	default:
		return nil, hsmerr.KMSf("ValidationException", "KeySpec %s is not supported", spec)
	}
	return e.sealKMS(objs)
}

// KMSMLDSASets is the CKA_PARAMETER_SET of each ML-DSA key spec.
var KMSMLDSASets = map[string]uint64{"ML_DSA_44": ck.CKP_ML_DSA_44, "ML_DSA_65": ck.CKP_ML_DSA_65, "ML_DSA_87": ck.CKP_ML_DSA_87}

// KMSCurves names the curve of each ECC key spec (mech.CurveInfo.Name).
var KMSCurves = map[string]string{"ECC_NIST_P256": "P-256", "ECC_NIST_P384": "P-384", "ECC_NIST_P521": "P-521", "ECC_SECG_P256K1": "secp256k1"}

// NewKMSImported makes the object of imported symmetric material (256
// bits) for a KMS key.
func (e *Engine) NewKMSImported(keyID string, material []byte) (*object.Object, error) {
	if len(material) != 32 {
		return nil, hsmerr.KMSf("IncorrectKeyMaterialException", "Key material must be 256 bits")
	}
	attrs, secrets, err := object.BuildAttrs(object.OpCreate, append(kmsPrivate(keyID), attrU(ck.CKA_CLASS, ck.CKO_SECRET_KEY),
		attrU(ck.CKA_KEY_TYPE, ck.CKK_AES), attrB(ck.CKA_ENCRYPT, true), attrB(ck.CKA_DECRYPT, true),
		object.Attribute{Type: ck.CKA_VALUE, Value: material}), ck.CKO_SECRET_KEY, ck.CKK_AES)
	if err != nil {
		return nil, err
	}
	value := secrets[ck.CKA_VALUE]
	if err := mech.SecretKeyAttrs(attrs, value); err != nil {
		return nil, err
	}
	objs, err := e.sealKMS([]newObj{{obj: &object.Object{Attrs: attrs}, material: value}})
	if err != nil {
		return nil, err
	}
	return objs[0], nil
}

// NewKMSWrappingPair makes an RSA key pair of bits for import parameters:
// the public key wraps material outside, the private key unwraps it here.
func (e *Engine) NewKMSWrappingPair(keyID string, bits int) ([]*object.Object, error) {
	pub := append(kmsPublic(keyID), attrU(ck.CKA_MODULUS_BITS, uint64(bits)), attrB(ck.CKA_ENCRYPT, true))
	priv := append(kmsPrivate(keyID), attrB(ck.CKA_DECRYPT, true))
	pair, err := generatePair(mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}, pub, priv)
	if err != nil {
		return nil, err
	}
	return e.sealKMS(pair)
}

func (e *Engine) sealKMS(objs []newObj) ([]*object.Object, error) {
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	_, token, err := sealObjects(s, state.KMSUser, objs)
	for _, n := range objs {
		clear(n.material)
	}
	return token, err
}

// SubmitKMS submits a KMS command as it is (the KMS service sets its time
// from its own clock) and waits until it applied.
func (e *Engine) SubmitKMS(ctx context.Context, c *state.Command) error {
	return e.applier.Submit(ctx, c)
}

// PublicKey returns the public key of a KMS key's public key object.
func (e *Engine) PublicKey(c Caller, id uint64) (crypto.PublicKey, error) {
	o, so, err := e.lookup(c, id, object.ActUse)
	if err != nil {
		return nil, err
	}
	if o.Class() != ck.CKO_PUBLIC_KEY {
		return nil, hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "not a public key")
	}
	k, err := e.keyOf(o, so)
	if err != nil {
		return nil, err
	}
	if k.Public == nil {
		return nil, errors.New("engine: no public key")
	}
	return k.Public, nil
}
