package mech

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"io"
	"math/big"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

var rsaType1 = []uint64{ck.CKK_RSA}

// rsaPrivOf returns the RSA private key of k.
func rsaPrivOf(k *Key) (*rsa.PrivateKey, error) {
	if k != nil {
		if p, ok := k.Private.(*rsa.PrivateKey); ok && p != nil {
			return p, nil
		}
	}
	return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs an RSA private key")
}

// rsaPubOf returns the RSA public key of k (a public key, or the public half
// of a private key).
func rsaPubOf(k *Key) (*rsa.PublicKey, error) {
	if k != nil {
		if p, ok := k.Public.(*rsa.PublicKey); ok && p != nil {
			return p, nil
		}
		if p, ok := k.Private.(*rsa.PrivateKey); ok && p != nil {
			return &p.PublicKey, nil
		}
	}
	return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs an RSA key")
}

// rsaFailed maps an error of crypto/rsa. Its decryption and verification
// errors are deliberately vague; anything else (a key Go refuses, say) is a
// function failure with the cause kept.
func rsaFailed(err error, rv uint64, msg string) error {
	if errors.Is(err, rsa.ErrDecryption) || errors.Is(err, rsa.ErrVerification) {
		return hsmerr.Errorf(rv, "%s", msg)
	}
	return &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "RSA operation", Err: err}
}

func rsaKeyGenRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
		KeyTypes:   rsaType1,
		Flags:      ck.CKF_GENERATE_KEY_PAIR,
		MinKeySize: rsaMinBits,
		MaxKeySize: rsaMaxBits,
		Param:      ParamNone,
		GenerateKeyPair: func(r io.Reader, p KeyPairParams) (crypto.Signer, error) {
			if p.ModulusBits < rsaMinBits || p.ModulusBits > rsaMaxBits || p.ModulusBits%2 != 0 {
				return nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "CKA_MODULUS_BITS must be even and %d to %d", rsaMinBits, rsaMaxBits)
			}
			// crypto/rsa always makes keys with e = 65537 (FIPS 186-5
			// wants e > 2^16), so that is the only exponent offered.
			if p.PublicExponent != 0 && p.PublicExponent != 65537 {
				return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "CKA_PUBLIC_EXPONENT: only 65537 is supported")
			}
			k, err := rsa.GenerateKey(r, p.ModulusBits)
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "RSA key generation", Err: err}
			}
			return k, nil
		},
	}
}

// fRecover marks the two mechanisms whose signature with recovery is the
// signature itself (the data is the whole signed block, not a hash of it):
// C_SignRecover runs Sign, and the PKCS#11 library opens C_VerifyRecover
// with the public key (p11module/core, docs/pkcs11-library.md).
const fRecover = ck.CKF_SIGN_RECOVER | ck.CKF_VERIFY_RECOVER

// rsaPKCSRow is CKM_RSA_PKCS: PKCS #1 v1.5 signatures of the caller's data
// (a DigestInfo, normally) and PKCS #1 v1.5 encryption, which also wraps.
func rsaPKCSRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_RSA_PKCS,
		KeyTypes:   rsaType1,
		Flags:      fSignVerify | fEncDec | fWrapUnwrap | fRecover,
		MinKeySize: rsaMinBits,
		MaxKeySize: rsaMaxBits,
		Param:      ParamNone,
		Sign: func(k *Key, _ Mech, data []byte) ([]byte, error) {
			return rsaSignPKCS1(k, 0, data)
		},
		Verify: func(k *Key, _ Mech, data, sig []byte) error {
			return rsaVerifyPKCS1(k, 0, data, sig)
		},
		Encrypt: func(k *Key, _ Mech, in []byte) ([]byte, error) {
			pub, err := rsaPubOf(k)
			if err != nil {
				return nil, err
			}
			return rsaEncrypt(pub, in, pub.Size()-11, nil)
		},
		Decrypt: func(k *Key, _ Mech, in []byte) ([]byte, error) {
			priv, err := rsaPrivOf(k)
			if err != nil {
				return nil, err
			}
			return rsaDecrypt(k, priv, in, nil)
		},
	}
}

// rsaHashPKCSRow is CKM_<hash>_RSA_PKCS: hash, then PKCS #1 v1.5 sign.
func rsaHashPKCSRow(t uint64, h crypto.Hash) Mechanism {
	return Mechanism{
		Type:       t,
		KeyTypes:   rsaType1,
		Flags:      fSignVerify,
		MinKeySize: rsaMinBits,
		MaxKeySize: rsaMaxBits,
		Param:      ParamNone,
		Sign: func(k *Key, _ Mech, data []byte) ([]byte, error) {
			return rsaSignPKCS1(k, h, data)
		},
		Verify: func(k *Key, _ Mech, data, sig []byte) error {
			return rsaVerifyPKCS1(k, h, data, sig)
		},
	}
}

// pkcs1Input is what PKCS #1 v1.5 signs for a row of hash h: the hash of
// data, or with h zero the caller's data itself (a DigestInfo, normally),
// which must leave room for the padding in the modulus length n.
func pkcs1Input(h crypto.Hash, n int, data []byte) ([]byte, error) {
	if h != 0 {
		return sum(h, data), nil
	}
	if len(data) > n-11 {
		return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "the data must be at most %d bytes", n-11)
	}
	return data, nil
}

// rsaSignPKCS1 and rsaVerifyPKCS1 are the PKCS #1 v1.5 signatures of
// CKM_RSA_PKCS (h zero) and CKM_<hash>_RSA_PKCS.
func rsaSignPKCS1(k *Key, h crypto.Hash, data []byte) ([]byte, error) {
	priv, err := rsaPrivOf(k)
	if err != nil {
		return nil, err
	}
	in, err := pkcs1Input(h, priv.Size(), data)
	if err != nil {
		return nil, err
	}
	if fast := rsaFastOf(k, priv); fast != nil {
		sig, err := fast.SignPKCS1v15(h, in)
		if err == nil {
			return sig, nil
		}
		if !backendFallback(err) {
			return nil, rsaFailed(err, ck.CKR_FUNCTION_FAILED, "signing")
		}
	}
	sig, err := rsa.SignPKCS1v15(nil, priv, h, in)
	if err != nil {
		return nil, rsaFailed(err, ck.CKR_FUNCTION_FAILED, "signing")
	}
	return sig, nil
}

func rsaVerifyPKCS1(k *Key, h crypto.Hash, data, sig []byte) error {
	pub, err := rsaPubOf(k)
	if err != nil {
		return err
	}
	in, err := pkcs1Input(h, pub.Size(), data)
	if err != nil {
		return err
	}
	if err := rsaSigLen(pub, sig); err != nil {
		return err
	}
	if err := rsa.VerifyPKCS1v15(pub, h, in, sig); err != nil {
		return rsaFailed(err, ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
	}
	return nil
}

// rsaSigLen checks that a signature is as long as the modulus.
func rsaSigLen(pub *rsa.PublicKey, sig []byte) error {
	if len(sig) != pub.Size() {
		return hsmerr.Errorf(ck.CKR_SIGNATURE_LEN_RANGE, "the signature must be %d bytes", pub.Size())
	}
	return nil
}

// rsaEncrypt encrypts in, of at most max bytes, with opts: OAEP, or nil
// for PKCS #1 v1.5.
func rsaEncrypt(pub *rsa.PublicKey, in []byte, max int, opts *rsa.OAEPOptions) ([]byte, error) {
	if len(in) > max {
		return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "the data must be at most %d bytes", max)
	}
	var out []byte
	var err error
	if opts == nil {
		//lint:ignore SA1019 CKM_RSA_PKCS encryption is a PKCS #11 mechanism applications ask for.
		out, err = rsa.EncryptPKCS1v15(rand.Reader, pub, in)
	} else {
		out, err = rsa.EncryptOAEPWithOptions(rand.Reader, pub, in, opts)
	}
	if err != nil {
		return nil, rsaFailed(err, ck.CKR_FUNCTION_FAILED, "encrypting")
	}
	return out, nil
}

// rsaDecrypt decrypts a ciphertext, which must be as long as the modulus,
// with opts: OAEP, or nil for PKCS #1 v1.5; through the RSA backend when
// k has one.
func rsaDecrypt(k *Key, priv *rsa.PrivateKey, in []byte, opts *rsa.OAEPOptions) ([]byte, error) {
	if len(in) != priv.Size() {
		return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the ciphertext must be %d bytes", priv.Size())
	}
	var out []byte
	var err error
	if fast := rsaFastOf(k, priv); fast != nil {
		if opts == nil {
			out, err = fast.DecryptPKCS1v15(in)
		} else {
			out, err = fast.DecryptOAEP(opts.Hash, opts.MGFHash, opts.Label, in)
		}
		if err == nil {
			return out, nil
		}
		if !backendFallback(err) {
			return nil, rsaFailed(err, ck.CKR_ENCRYPTED_DATA_INVALID, "the ciphertext does not decrypt")
		}
	}
	if opts == nil {
		//lint:ignore SA1019 see rsaEncrypt.
		out, err = rsa.DecryptPKCS1v15(nil, priv, in)
	} else {
		out, err = priv.Decrypt(nil, in, opts)
	}
	if err != nil {
		return nil, rsaFailed(err, ck.CKR_ENCRYPTED_DATA_INVALID, "the ciphertext does not decrypt")
	}
	return out, nil
}

// pssOptions checks CK_RSA_PKCS_PSS_PARAMS against the mechanism (rowHash,
// zero for CKM_RSA_PKCS_PSS) and the key.
//
// crypto/rsa uses MGF1 with the message hash, so the MGF must be MGF1 with
// that same hash. Its salt length 0 means "as long as possible", so a zero
// salt length, which PKCS #11 allows, cannot be expressed and is refused.
func pssOptions(pub *rsa.PublicKey, m Mech, rowHash crypto.Hash) (crypto.Hash, *rsa.PSSOptions, error) {
	p, err := param[PSSParams](m, false)
	if err != nil {
		return 0, nil, err
	}
	h, ok := digestHashes[p.Hash]
	if !ok {
		return 0, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "PSS: unsupported hash %s", ck.MechName(p.Hash))
	}
	if rowHash != 0 && h != rowHash {
		return 0, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "PSS: the hash must be %s's", ck.MechName(m.Type))
	}
	if mh, ok := mgfHashes[p.MGF]; !ok || mh != h {
		return 0, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "PSS: the MGF must be MGF1 with the same hash as the message")
	}
	emLen := (pub.N.BitLen() - 1 + 7) / 8
	if p.SaltLen == 0 || p.SaltLen > uint64(emLen-h.Size()-2) {
		return 0, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "PSS: the salt length must be 1 to %d bytes", emLen-h.Size()-2)
	}
	return h, &rsa.PSSOptions{SaltLength: int(p.SaltLen), Hash: h}, nil
}

// rsaPSSRow is CKM_RSA_PKCS_PSS (h zero: the data is the hash) or
// CKM_<hash>_RSA_PKCS_PSS (hash, then sign).
func rsaPSSRow(t uint64, h crypto.Hash) Mechanism {
	// prepare checks the parameter and returns the hash, the options and
	// the digest of data to sign or verify.
	prepare := func(pub *rsa.PublicKey, m Mech, data []byte) (crypto.Hash, *rsa.PSSOptions, []byte, error) {
		ph, opts, err := pssOptions(pub, m, h)
		if err != nil {
			return 0, nil, nil, err
		}
		if h != 0 {
			return ph, opts, sum(ph, data), nil
		}
		if len(data) != ph.Size() {
			return 0, nil, nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "the data must be a %d-byte hash", ph.Size())
		}
		return ph, opts, data, nil
	}
	return Mechanism{
		Type:       t,
		KeyTypes:   rsaType1,
		Flags:      fSignVerify,
		MinKeySize: rsaMinBits,
		MaxKeySize: rsaMaxBits,
		Param:      ParamPSS,
		Sign: func(k *Key, m Mech, data []byte) ([]byte, error) {
			priv, err := rsaPrivOf(k)
			if err != nil {
				return nil, err
			}
			ph, opts, d, err := prepare(&priv.PublicKey, m, data)
			if err != nil {
				return nil, err
			}
			if fast := rsaFastOf(k, priv); fast != nil {
				// pssOptions made sure that MGF1 uses the message hash.
				sig, err := fast.SignPSS(ph, ph, opts.SaltLength, d)
				if err == nil {
					return sig, nil
				}
				if !backendFallback(err) {
					return nil, rsaFailed(err, ck.CKR_FUNCTION_FAILED, "signing")
				}
			}
			sig, err := rsa.SignPSS(rand.Reader, priv, ph, d, opts)
			if err != nil {
				return nil, rsaFailed(err, ck.CKR_FUNCTION_FAILED, "signing")
			}
			return sig, nil
		},
		Verify: func(k *Key, m Mech, data, sig []byte) error {
			pub, err := rsaPubOf(k)
			if err != nil {
				return err
			}
			ph, opts, d, err := prepare(pub, m, data)
			if err != nil {
				return err
			}
			if err := rsaSigLen(pub, sig); err != nil {
				return err
			}
			if err := rsa.VerifyPSS(pub, ph, d, sig, opts); err != nil {
				return rsaFailed(err, ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
			}
			return nil
		},
	}
}

// oaepOptions checks CK_RSA_PKCS_OAEP_PARAMS. crypto/rsa takes the MGF1
// hash apart from the label hash both to encrypt (EncryptOAEPWithOptions)
// and to decrypt, so any pair of supported hashes works.
func oaepOptions(m Mech) (*rsa.OAEPOptions, error) {
	p, err := param[OAEPParams](m, false)
	if err != nil {
		return nil, err
	}
	h, ok := digestHashes[p.Hash]
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "OAEP: unsupported hash %s", ck.MechName(p.Hash))
	}
	mh, ok := mgfHashes[p.MGF]
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "OAEP: unsupported MGF 0x%x", p.MGF)
	}
	switch p.Source {
	case ck.CKZ_DATA_SPECIFIED:
	case 0:
		if len(p.Label) > 0 {
			return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "OAEP: a label needs source CKZ_DATA_SPECIFIED")
		}
	default:
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "OAEP: unsupported source 0x%x", p.Source)
	}
	return &rsa.OAEPOptions{Hash: h, MGFHash: mh, Label: p.Label}, nil
}

func rsaOAEPRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_RSA_PKCS_OAEP,
		KeyTypes:   rsaType1,
		Flags:      fEncDec | fWrapUnwrap,
		MinKeySize: rsaMinBits,
		MaxKeySize: rsaMaxBits,
		Param:      ParamOAEP,
		Encrypt: func(k *Key, m Mech, in []byte) ([]byte, error) {
			pub, err := rsaPubOf(k)
			if err != nil {
				return nil, err
			}
			opts, err := oaepOptions(m)
			if err != nil {
				return nil, err
			}
			max := pub.Size() - 2*opts.Hash.Size() - 2
			if max < 0 {
				return nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "the key is too short for OAEP with this hash")
			}
			return rsaEncrypt(pub, in, max, opts)
		},
		Decrypt: func(k *Key, m Mech, in []byte) ([]byte, error) {
			priv, err := rsaPrivOf(k)
			if err != nil {
				return nil, err
			}
			opts, err := oaepOptions(m)
			if err != nil {
				return nil, err
			}
			return rsaDecrypt(k, priv, in, opts)
		},
	}
}

// rsaX509Row is CKM_RSA_X_509, raw RSA: encrypt and verify compute m^e mod
// n, sign and decrypt m^d mod n, each output left-padded to the modulus
// length.
func rsaX509Row() Mechanism {
	private := func(k *Key, in []byte, rvLen, rvVal uint64, exact bool) ([]byte, error) {
		priv, err := rsaPrivOf(k)
		if err != nil {
			return nil, err
		}
		n := priv.Size()
		if exact && len(in) != n {
			return nil, hsmerr.Errorf(rvLen, "the input must be %d bytes", n)
		}
		if len(in) > n {
			return nil, hsmerr.Errorf(rvLen, "the input must be at most %d bytes", n)
		}
		c := new(big.Int).SetBytes(in)
		if c.Cmp(priv.N) >= 0 {
			return nil, hsmerr.Errorf(rvVal, "the input is not less than the modulus")
		}
		if fast := rsaFastOf(k, priv); fast != nil {
			out, err := fast.Raw(c.FillBytes(make([]byte, n)))
			if err == nil {
				return out, nil
			}
			if !backendFallback(err) {
				return nil, rsaFailed(err, ck.CKR_FUNCTION_FAILED, "raw RSA")
			}
		}
		m, err := rsaRawPrivate(priv, c)
		if err != nil {
			return nil, err
		}
		return m.FillBytes(make([]byte, n)), nil
	}
	public := func(pub *rsa.PublicKey, in []byte) []byte {
		c := new(big.Int).Exp(new(big.Int).SetBytes(in), big.NewInt(int64(pub.E)), pub.N)
		return c.FillBytes(make([]byte, pub.Size()))
	}
	return Mechanism{
		Type:       ck.CKM_RSA_X_509,
		KeyTypes:   rsaType1,
		Flags:      fSignVerify | fEncDec | fRecover,
		MinKeySize: rsaMinBits,
		MaxKeySize: rsaMaxBits,
		Param:      ParamNone,
		Sign: func(k *Key, _ Mech, data []byte) ([]byte, error) {
			return private(k, data, ck.CKR_DATA_LEN_RANGE, ck.CKR_DATA_INVALID, false)
		},
		Decrypt: func(k *Key, _ Mech, in []byte) ([]byte, error) {
			return private(k, in, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, ck.CKR_ENCRYPTED_DATA_INVALID, true)
		},
		Encrypt: func(k *Key, _ Mech, in []byte) ([]byte, error) {
			pub, err := rsaPubOf(k)
			if err != nil {
				return nil, err
			}
			if len(in) > pub.Size() {
				return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "the data must be at most %d bytes", pub.Size())
			}
			if new(big.Int).SetBytes(in).Cmp(pub.N) >= 0 {
				return nil, hsmerr.Errorf(ck.CKR_DATA_INVALID, "the data is not less than the modulus")
			}
			return public(pub, in), nil
		},
		Verify: func(k *Key, _ Mech, data, sig []byte) error {
			pub, err := rsaPubOf(k)
			if err != nil {
				return err
			}
			n := pub.Size()
			if len(data) > n {
				return hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "the data must be at most %d bytes", n)
			}
			if err := rsaSigLen(pub, sig); err != nil {
				return err
			}
			if new(big.Int).SetBytes(sig).Cmp(pub.N) >= 0 {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the signature is not less than the modulus")
			}
			want := make([]byte, n)
			copy(want[n-len(data):], data)
			if subtle.ConstantTimeCompare(public(pub, sig), want) != 1 {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
			}
			return nil
		},
	}
}

// rsaRawPrivate computes c^d mod n.
//
// crypto/rsa has no exported raw private-key operation (its constant-time
// one is internal), so this uses math/big, which is not constant time. To
// keep the timing independent of the secret it blinds both the base (c·r^e,
// fresh r each call) and the CRT exponents (dp + r'(p-1), fresh 64-bit r'),
// and it checks the result with the public exponent so that a faulty CRT
// half cannot leak a factor.
func rsaRawPrivate(priv *rsa.PrivateKey, c *big.Int) (*big.Int, error) {
	n := priv.N
	e := big.NewInt(int64(priv.E))
	one := big.NewInt(1)

	var r, rInv *big.Int
	for {
		var err error
		if r, err = rand.Int(rand.Reader, n); err != nil {
			return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "reading random bytes", Err: err}
		}
		if r.Cmp(one) <= 0 {
			continue
		}
		if rInv = new(big.Int).ModInverse(r, n); rInv != nil {
			break
		}
	}
	blinded := new(big.Int).Exp(r, e, n)
	blinded.Mul(blinded, c).Mod(blinded, n)

	expBlind := func(d, pm1 *big.Int) (*big.Int, error) {
		k, err := rand.Int(rand.Reader, new(big.Int).Lsh(one, 64))
		if err != nil {
			return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "reading random bytes", Err: err}
		}
		return k.Mul(k, pm1).Add(k, d), nil
	}

	var m *big.Int
	if len(priv.Primes) == 2 {
		p, q := priv.Primes[0], priv.Primes[1]
		pm1 := new(big.Int).Sub(p, one)
		qm1 := new(big.Int).Sub(q, one)
		dp, dq, qinv := priv.Precomputed.Dp, priv.Precomputed.Dq, priv.Precomputed.Qinv
		if dp == nil || dq == nil || qinv == nil {
			dp = new(big.Int).Mod(priv.D, pm1)
			dq = new(big.Int).Mod(priv.D, qm1)
			qinv = new(big.Int).ModInverse(q, p)
			if qinv == nil {
				return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "the RSA key is inconsistent")
			}
		}
		dpb, err := expBlind(dp, pm1)
		if err != nil {
			return nil, err
		}
		dqb, err := expBlind(dq, qm1)
		if err != nil {
			return nil, err
		}
		m1 := new(big.Int).Exp(blinded, dpb, p)
		m2 := new(big.Int).Exp(blinded, dqb, q)
		h := new(big.Int).Sub(m1, m2)
		h.Mul(h, qinv).Mod(h, p)
		m = h.Mul(h, q).Add(h, m2)
	} else if len(priv.Primes) > 2 {
		// Keys of more than two primes are rare; go without CRT.
		phiLike := new(big.Int).Set(one)
		for _, p := range priv.Primes {
			phiLike.Mul(phiLike, new(big.Int).Sub(p, one))
		}
		db, err := expBlind(priv.D, phiLike)
		if err != nil {
			return nil, err
		}
		m = new(big.Int).Exp(blinded, db, n)
	} else {
		// No primes known: no exponent blinding either.
		m = new(big.Int).Exp(blinded, priv.D, n)
	}
	m.Mul(m, rInv).Mod(m, n)

	if new(big.Int).Exp(m, e, n).Cmp(c) != 0 {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "the RSA private operation failed its check")
	}
	return m, nil
}
