package mech

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"math/big"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

var aesType1 = []uint64{ck.CKK_AES}

// aesBlockOf returns the AES block cipher of an AES key.
func aesBlockOf(k *Key) (cipher.Block, error) {
	key, err := secretOf(k, aesType1)
	if err != nil {
		return nil, err
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "an AES key is 16, 24 or 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "AES", Err: err}
	}
	return b, nil
}

// aesRow is the part common to the AES rows.
func aesRow(t, flags uint64, p ParamKind) Mechanism {
	return Mechanism{Type: t, KeyTypes: aesType1, Flags: flags, MinKeySize: 16, MaxKeySize: 32, Param: p}
}

func aesECBRow() Mechanism {
	r := aesRow(ck.CKM_AES_ECB, fEncDec, ParamNone)
	crypt := func(k *Key, in []byte, rv uint64, decrypt bool) ([]byte, error) {
		b, err := aesBlockOf(k)
		if err != nil {
			return nil, err
		}
		if len(in)%aes.BlockSize != 0 {
			return nil, hsmerr.Errorf(rv, "AES-ECB takes a multiple of 16 bytes")
		}
		out := make([]byte, len(in))
		for i := 0; i < len(in); i += aes.BlockSize {
			if decrypt {
				b.Decrypt(out[i:], in[i:i+aes.BlockSize])
			} else {
				b.Encrypt(out[i:], in[i:i+aes.BlockSize])
			}
		}
		return out, nil
	}
	r.Encrypt = func(k *Key, _ Mech, in []byte) ([]byte, error) {
		return crypt(k, in, ck.CKR_DATA_LEN_RANGE, false)
	}
	r.Decrypt = func(k *Key, _ Mech, in []byte) ([]byte, error) {
		return crypt(k, in, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, true)
	}
	return r
}

// cbcOf returns the AES block cipher of k and the 16-byte IV of a CBC
// mechanism.
func cbcOf(k *Key, m Mech) (cipher.Block, []byte, error) {
	b, err := aesBlockOf(k)
	if err != nil {
		return nil, nil, err
	}
	p, err := param[IVParams](m, false)
	if err != nil {
		return nil, nil, err
	}
	if len(p.IV) != aes.BlockSize {
		return nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "the IV must be 16 bytes")
	}
	return b, p.IV, nil
}

// aesCBCRow is CKM_AES_CBC or, with pad, CKM_AES_CBC_PAD (PKCS #7 padding),
// which also wraps keys.
func aesCBCRow(t uint64, pad bool) Mechanism {
	flags := uint64(fEncDec)
	if pad {
		flags |= fWrapUnwrap
	}
	r := aesRow(t, flags, ParamIV)
	r.Encrypt = func(k *Key, m Mech, in []byte) ([]byte, error) {
		b, iv, err := cbcOf(k, m)
		if err != nil {
			return nil, err
		}
		var out []byte
		if pad {
			n := aes.BlockSize - len(in)%aes.BlockSize
			out = make([]byte, len(in)+n)
			copy(out, in)
			for i := len(in); i < len(out); i++ {
				out[i] = byte(n)
			}
		} else {
			if len(in)%aes.BlockSize != 0 {
				return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "AES-CBC takes a multiple of 16 bytes")
			}
			out = append([]byte(nil), in...)
		}
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, out)
		return out, nil
	}
	r.Decrypt = func(k *Key, m Mech, in []byte) ([]byte, error) {
		b, iv, err := cbcOf(k, m)
		if err != nil {
			return nil, err
		}
		if len(in)%aes.BlockSize != 0 || pad && len(in) == 0 {
			return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the ciphertext must be a non-empty multiple of 16 bytes")
		}
		out := make([]byte, len(in))
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, in)
		if !pad {
			return out, nil
		}
		n, ok := pkcs7Unpad(out[len(out)-aes.BlockSize:])
		if !ok {
			clear(out)
			return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_INVALID, "the padding is wrong")
		}
		return out[:len(out)-n], nil
	}
	if pad {
		// The upper bound of both directions: encryption adds 1 to 16
		// bytes, decryption removes them.
	} else {
	}
	return r
}

// pkcs7Unpad checks the PKCS #7 padding of the last block in constant time
// and returns its length.
func pkcs7Unpad(last []byte) (int, bool) {
	n := int(last[len(last)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, len(last))
	for i := 0; i < len(last); i++ {
		inPad := subtle.ConstantTimeLessOrEq(len(last)-i, n) // i >= len-n
		match := subtle.ConstantTimeByteEq(last[i], byte(n))
		good &= subtle.ConstantTimeSelect(inPad, match, 1)
	}
	return n, good == 1
}

func aesCTRRow() Mechanism {
	r := aesRow(ck.CKM_AES_CTR, fEncDec, ParamCTR)
	crypt := func(k *Key, m Mech, in []byte, rv uint64) ([]byte, error) {
		b, err := aesBlockOf(k)
		if err != nil {
			return nil, err
		}
		p, err := param[CTRParams](m, false)
		if err != nil {
			return nil, err
		}
		if p.CounterBits < 1 || p.CounterBits > 128 {
			return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "the counter must be 1 to 128 bits")
		}
		// Go's CTR increments the whole block. That is the same as
		// incrementing the low CounterBits bits as long as they do not
		// wrap, so inputs that would wrap them are refused.
		limit := new(big.Int).Lsh(big.NewInt(1), uint(p.CounterBits))
		ctr := new(big.Int).SetBytes(p.CB[:])
		ctr.Mod(ctr, limit)
		blocks := big.NewInt(int64((len(in) + aes.BlockSize - 1) / aes.BlockSize))
		if ctr.Add(ctr, blocks).Cmp(limit) > 0 {
			return nil, hsmerr.Errorf(rv, "the input would wrap the %d-bit counter", p.CounterBits)
		}
		out := make([]byte, len(in))
		cipher.NewCTR(b, p.CB[:]).XORKeyStream(out, in)
		return out, nil
	}
	r.Encrypt = func(k *Key, m Mech, in []byte) ([]byte, error) {
		return crypt(k, m, in, ck.CKR_DATA_LEN_RANGE)
	}
	r.Decrypt = func(k *Key, m Mech, in []byte) ([]byte, error) {
		return crypt(k, m, in, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	return r
}

// gcmOf checks CK_GCM_PARAMS and returns the AEAD and the parameters. The
// caller supplies the IV (1 to 256 bytes) and the tag length (96 to 128
// bits, in steps of 8). Go's GCM takes either an IV other than 12 bytes or
// a tag shorter than 16 bytes, not both, so that combination is refused.
func gcmOf(k *Key, m Mech) (cipher.AEAD, *GCMParams, error) {
	p, err := param[GCMParams](m, false)
	if err != nil {
		return nil, nil, err
	}
	if len(p.IV) < 1 || len(p.IV) > 256 {
		return nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "GCM: the IV must be 1 to 256 bytes")
	}
	if p.TagBits < 96 || p.TagBits > 128 || p.TagBits%8 != 0 {
		return nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "GCM: the tag must be 96, 104, 112, 120 or 128 bits")
	}
	if len(p.IV) != 12 && p.TagBits != 128 {
		return nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "GCM: a tag shorter than 128 bits needs a 12-byte IV")
	}
	if k == nil {
		return nil, p, nil
	}
	b, err := aesBlockOf(k)
	if err != nil {
		return nil, nil, err
	}
	var aead cipher.AEAD
	if len(p.IV) != 12 {
		aead, err = cipher.NewGCMWithNonceSize(b, len(p.IV))
	} else {
		aead, err = cipher.NewGCMWithTagSize(b, int(p.TagBits/8))
	}
	if err != nil {
		return nil, nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "GCM", Err: err}
	}
	return aead, p, nil
}

func aesGCMRow() Mechanism {
	r := aesRow(ck.CKM_AES_GCM, fEncDec|fWrapUnwrap, ParamGCM)
	r.Encrypt = func(k *Key, m Mech, in []byte) ([]byte, error) {
		aead, p, err := gcmOf(k, m)
		if err != nil {
			return nil, err
		}
		return aead.Seal(nil, p.IV, in, p.AAD), nil
	}
	r.Decrypt = func(k *Key, m Mech, in []byte) ([]byte, error) {
		aead, p, err := gcmOf(k, m)
		if err != nil {
			return nil, err
		}
		if len(in) < aead.Overhead() {
			return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the ciphertext is shorter than the tag")
		}
		out, err := aead.Open(nil, p.IV, in, p.AAD)
		if err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_INVALID, "the ciphertext or tag fails authentication")
		}
		return out, nil
	}
	// The upper bound of both directions: ciphertext and tag.
	return r
}

// wrapIV returns the initial value of AES key wrap: the parameter if given
// (n bytes), else def.
func wrapIV(m Mech, def []byte) ([]byte, error) {
	p, err := param[IVParams](m, true)
	if err != nil {
		return nil, err
	}
	if p == nil || p.IV == nil {
		return def, nil
	}
	if len(p.IV) != len(def) {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "the IV must be %d bytes", len(def))
	}
	return p.IV, nil
}

// aesKeyWrapRow is CKM_AES_KEY_WRAP (RFC 3394).
func aesKeyWrapRow() Mechanism {
	r := aesWrapRow(ck.CKM_AES_KEY_WRAP, kwDefaultIV[:], wrapKW, unwrapKW)
	return r
}

// aesKeyWrapPadRow is CKM_AES_KEY_WRAP_KWP (RFC 5649).
func aesKeyWrapPadRow() Mechanism {
	r := aesWrapRow(ck.CKM_AES_KEY_WRAP_KWP, KWPDefaultAIV[:], WrapKWP, UnwrapKWP)
	return r
}

// aesWrapRow is the part common to the AES key wrap rows: wrap and unwrap
// take the initial value IV from the parameter, or def (as long as IV) if
// there is none.
func aesWrapRow[IV [4]byte | [8]byte](t uint64, def []byte, wrap, unwrap func(cipher.Block, IV, []byte) ([]byte, error)) Mechanism {
	r := aesRow(t, fEncDec|fWrapUnwrap, ParamIV)
	crypt := func(f func(cipher.Block, IV, []byte) ([]byte, error)) func(*Key, Mech, []byte) ([]byte, error) {
		return func(k *Key, m Mech, in []byte) ([]byte, error) {
			b, err := aesBlockOf(k)
			if err != nil {
				return nil, err
			}
			iv, err := wrapIV(m, def)
			if err != nil {
				return nil, err
			}
			return f(b, IV(iv), in)
		}
	}
	r.Encrypt = crypt(wrap)
	r.Decrypt = crypt(unwrap)
	return r
}

// aesCMACRow is CKM_AES_CMAC (16-byte MAC) or CKM_AES_CMAC_GENERAL (1 to
// 16 bytes, MacLenParams).
func aesCMACRow(t uint64, general bool) Mechanism {
	pk := ParamNone
	if general {
		pk = ParamMacLen
	}
	r := aesRow(t, fSignVerify, pk)
	mac := func(k *Key, m Mech, data []byte) ([]byte, int, error) {
		b, err := aesBlockOf(k)
		if err != nil {
			return nil, 0, err
		}
		n, err := macLen(m, general, aes.BlockSize)
		if err != nil {
			return nil, 0, err
		}
		t := cmacSum(b, data)
		return t[:n], n, nil
	}
	r.Sign = func(k *Key, m Mech, data []byte) ([]byte, error) {
		t, _, err := mac(k, m, data)
		return t, err
	}
	r.Verify = func(k *Key, m Mech, data, sig []byte) error {
		t, n, err := mac(k, m, data)
		if err != nil {
			return err
		}
		return checkMAC(t, n, sig)
	}
	return r
}
