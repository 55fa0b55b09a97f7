package mech

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"io"
	"math/big"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

var (
	ecType1      = []uint64{ck.CKK_EC}
	edwardsType1 = []uint64{ck.CKK_EC_EDWARDS}
)

// ecPrivOf returns the ECDSA private key of k and its curve.
func ecPrivOf(k *Key) (*ecdsa.PrivateKey, *CurveInfo, error) {
	if k != nil {
		if p, ok := k.Private.(*ecdsa.PrivateKey); ok && p != nil {
			if c := curveOf(p.Curve); c != nil {
				return p, c, nil
			}
			return nil, nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "the key's curve is not supported")
		}
	}
	return nil, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs an EC private key")
}

// ecPubOf returns the ECDSA public key of k (a public key or the public half
// of a private key) and its curve.
func ecPubOf(k *Key) (*ecdsa.PublicKey, *CurveInfo, error) {
	if k != nil {
		pub, _ := k.Public.(*ecdsa.PublicKey)
		if p, ok := k.Private.(*ecdsa.PrivateKey); pub == nil && ok && p != nil {
			pub = &p.PublicKey
		}
		if pub != nil {
			if c := curveOf(pub.Curve); c != nil {
				return pub, c, nil
			}
			return nil, nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "the key's curve is not supported")
		}
	}
	return nil, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs an EC key")
}

func ecKeyGenRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_EC_KEY_PAIR_GEN,
		KeyTypes:   ecType1,
		Flags:      ck.CKF_GENERATE_KEY_PAIR | fEC,
		MinKeySize: ecMinBits,
		MaxKeySize: ecMaxBits,
		Param:      ParamNone,
		GenerateKeyPair: func(r io.Reader, p KeyPairParams) (crypto.Signer, error) {
			c, err := keyPairCurve(p, ck.CKK_EC)
			if err != nil {
				return nil, err
			}
			if c == k1Curve {
				return k1Generate(r)
			}
			k, err := ecdsa.GenerateKey(c.Curve, r)
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "EC key generation", Err: err}
			}
			return k, nil
		},
	}
}

func edwardsKeyGenRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_EC_EDWARDS_KEY_PAIR_GEN,
		KeyTypes:   edwardsType1,
		Flags:      ck.CKF_GENERATE_KEY_PAIR | fEdwards,
		MinKeySize: 255,
		MaxKeySize: 255,
		Param:      ParamNone,
		GenerateKeyPair: func(r io.Reader, p KeyPairParams) (crypto.Signer, error) {
			if _, err := keyPairCurve(p, ck.CKK_EC_EDWARDS); err != nil {
				return nil, err
			}
			_, k, err := ed25519.GenerateKey(r)
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "Ed25519 key generation", Err: err}
			}
			return k, nil
		},
	}
}

// keyPairCurve returns the curve a key pair template asks for, which must be
// one of keyType's.
func keyPairCurve(p KeyPairParams, keyType uint64) (*CurveInfo, error) {
	if len(p.ECParams) == 0 {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS is missing")
	}
	c, err := CurveByParams(p.ECParams)
	if err != nil {
		return nil, err
	}
	if c.KeyType != keyType {
		return nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "%s is not a curve for %s", c.Name, ck.KeyTypeName(keyType))
	}
	return c, nil
}

// ecdsaRow is CKM_ECDSA (h zero: the data is the hash, truncated to the
// order's length as FIPS 186 says) or CKM_ECDSA_<hash>. Signatures are in
// the PKCS #11 form r||s, each left-padded to the curve's byte length.
// secp256k1 signatures are deterministic with a low s (secp256k1.go); the
// other curves sign through the EC backend when one is set (backend.go).
func ecdsaRow(t uint64, h crypto.Hash) Mechanism {
	digest := func(data []byte) []byte {
		if h == 0 {
			return data
		}
		return sum(h, data)
	}
	return Mechanism{
		Type:       t,
		KeyTypes:   ecType1,
		Flags:      fSignVerify | fEC,
		MinKeySize: ecMinBits,
		MaxKeySize: ecMaxBits,
		Param:      ParamNone,
		Sign: func(k *Key, _ Mech, data []byte) ([]byte, error) {
			priv, c, err := ecPrivOf(k)
			if err != nil {
				return nil, err
			}
			if c == k1Curve {
				return k1Sign(priv, digest(data))
			}
			if fast := ecFastOf(k, priv); fast != nil {
				sig, err := fast.Sign(digest(data))
				if err == nil {
					return sig, nil
				}
				if !backendFallback(err) {
					return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "ECDSA signing", Err: err}
				}
			}
			r, s, err := ecdsa.Sign(rand.Reader, priv, digest(data))
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "ECDSA signing", Err: err}
			}
			n := c.ByteLen()
			sig := make([]byte, 2*n)
			r.FillBytes(sig[:n])
			s.FillBytes(sig[n:])
			return sig, nil
		},
		Verify: func(k *Key, _ Mech, data, sig []byte) error {
			pub, c, err := ecPubOf(k)
			if err != nil {
				return err
			}
			n := c.ByteLen()
			if len(sig) != 2*n {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_LEN_RANGE, "the signature must be %d bytes", 2*n)
			}
			if c == k1Curve {
				ok, err := k1Verify(pub, digest(data), sig)
				if err != nil {
					return err
				}
				if !ok {
					return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
				}
				return nil
			}
			r := new(big.Int).SetBytes(sig[:n])
			s := new(big.Int).SetBytes(sig[n:])
			if !ecdsa.Verify(pub, digest(data), r, s) {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
			}
			return nil
		},
	}
}

// ecdhKDFs are the key derivation functions of CKM_ECDH1_DERIVE besides
// CKD_NULL: the ANSI X9.63 KDF with these hashes.
var ecdhKDFs = map[uint64]crypto.Hash{
	ck.CKD_SHA1_KDF:   crypto.SHA1,
	ck.CKD_SHA224_KDF: crypto.SHA224,
	ck.CKD_SHA256_KDF: crypto.SHA256,
	ck.CKD_SHA384_KDF: crypto.SHA384,
	ck.CKD_SHA512_KDF: crypto.SHA512,
}

// ecdhRow is CKM_ECDH1_DERIVE. With CKD_NULL the result is the shared
// secret, the X coordinate of the shared point, as long as the field. With
// a KDF it is that many bytes of the X9.63 KDF's output. Derive cannot know
// the length of the key to make, so it always returns the field length; as
// X9.63 output is a stream, the first CKA_VALUE_LEN bytes of it are exactly
// the KDF's output for that length.
func ecdhRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_ECDH1_DERIVE,
		KeyTypes:   ecType1,
		Flags:      ck.CKF_DERIVE | fEC,
		MinKeySize: ecdhMinBits,
		MaxKeySize: ecMaxBits,
		Param:      ParamECDH,
		Derive: func(base *Key, m Mech) ([]byte, error) {
			p, err := param[ECDHParams](m, false)
			if err != nil {
				return nil, err
			}
			kdf := crypto.Hash(0)
			switch p.KDF {
			case ck.CKD_NULL:
				if len(p.SharedData) > 0 {
					return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ECDH: CKD_NULL takes no shared data")
				}
			default:
				var ok bool
				if kdf, ok = ecdhKDFs[p.KDF]; !ok {
					return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ECDH: unsupported KDF 0x%x", p.KDF)
				}
			}
			priv, c, err := ecPrivOf(base)
			if err != nil {
				return nil, err
			}
			raw, err := decodeECPoint(p.PublicData, 1+2*c.ByteLen())
			if err != nil {
				return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ECDH: the public data is not an uncompressed %s point", c.Name)
			}
			if c == k1Curve {
				z, err := k1ECDH(priv, raw)
				if err != nil {
					return nil, err
				}
				if kdf == 0 {
					return z, nil
				}
				defer clear(z)
				return x963KDF(kdf, z, p.SharedData, len(z)), nil
			}
			ours, err := priv.ECDH()
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "ECDH", Err: err}
			}
			peer, err := ours.Curve().NewPublicKey(raw)
			if err != nil {
				return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ECDH: the public data is not a point on %s", c.Name)
			}
			z, err := ours.ECDH(peer)
			if err != nil {
				return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ECDH: the public data is not a usable point")
			}
			if kdf == 0 {
				return z, nil
			}
			return x963KDF(kdf, z, p.SharedData, len(z)), nil
		},
	}
}

// x963KDF is the ANSI X9.63 key derivation function (SEC 1 §3.6.1):
// Hash(Z || counter || SharedInfo) for counter = 1, 2, ... (32-bit big
// endian), concatenated and cut to n bytes.
func x963KDF(h crypto.Hash, z, shared []byte, n int) []byte {
	out := make([]byte, 0, n+h.Size())
	var ctr [4]byte
	for i := uint32(1); len(out) < n; i++ {
		binary.BigEndian.PutUint32(ctr[:], i)
		d := h.New()
		d.Write(z)
		d.Write(ctr[:])
		d.Write(shared)
		out = d.Sum(out)
	}
	return out[:n]
}

// edPrivOf and edPubOf return the Ed25519 keys of k.
func edPrivOf(k *Key) (ed25519.PrivateKey, error) {
	if k != nil {
		if p, ok := k.Private.(ed25519.PrivateKey); ok && len(p) == ed25519.PrivateKeySize {
			return p, nil
		}
	}
	return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs an Ed25519 private key")
}

func edPubOf(k *Key) (ed25519.PublicKey, error) {
	if k != nil {
		if p, ok := k.Public.(ed25519.PublicKey); ok && len(p) == ed25519.PublicKeySize {
			return p, nil
		}
		if p, ok := k.Private.(ed25519.PrivateKey); ok && len(p) == ed25519.PrivateKeySize {
			if pub, ok := p.Public().(ed25519.PublicKey); ok {
				return pub, nil
			}
		}
	}
	return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs an Ed25519 key")
}

// eddsaMessage turns CK_EDDSA_PARAMS into Go's options: no parameter is
// Ed25519; a context alone is Ed25519ctx; the prehash flag is Ed25519ph, for
// which the token hashes the data with SHA-512 itself.
func eddsaMessage(m Mech, data []byte) ([]byte, *ed25519.Options, error) {
	p, err := param[EdDSAParams](m, true)
	if err != nil {
		return nil, nil, err
	}
	opts := &ed25519.Options{}
	if p == nil {
		return data, opts, nil
	}
	if len(p.Context) > 255 {
		return nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "EdDSA: the context must be at most 255 bytes")
	}
	opts.Context = string(p.Context)
	if p.PHFlag {
		d := sha512.Sum512(data)
		opts.Hash = crypto.SHA512
		return d[:], opts, nil
	}
	return data, opts, nil
}

func eddsaRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_EDDSA,
		KeyTypes:   edwardsType1,
		Flags:      fSignVerify | fEdwards,
		MinKeySize: 255,
		MaxKeySize: 255,
		Param:      ParamEdDSA,
		Sign: func(k *Key, m Mech, data []byte) ([]byte, error) {
			priv, err := edPrivOf(k)
			if err != nil {
				return nil, err
			}
			msg, opts, err := eddsaMessage(m, data)
			if err != nil {
				return nil, err
			}
			sig, err := priv.Sign(nil, msg, opts)
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "EdDSA signing", Err: err}
			}
			return sig, nil
		},
		Verify: func(k *Key, m Mech, data, sig []byte) error {
			pub, err := edPubOf(k)
			if err != nil {
				return err
			}
			msg, opts, err := eddsaMessage(m, data)
			if err != nil {
				return err
			}
			if len(sig) != ed25519.SignatureSize {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_LEN_RANGE, "the signature must be %d bytes", ed25519.SignatureSize)
			}
			if err := ed25519.VerifyWithOptions(pub, msg, sig, opts); err != nil {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
			}
			return nil
		},
	}
}
