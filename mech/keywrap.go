package mech

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// AES key wrap (RFC 3394, NIST SP 800-38F KW) and AES key wrap with padding
// (RFC 5649, SP 800-38F KWP). Go's standard library has neither, and
// golang.org/x/crypto has none either, so they are written here from the
// RFCs, in the index-based form of RFC 3394 §2.2.1 and §2.2.2. The integrity
// checks on unwrap compare in constant time and do not say which check
// failed.

// kwDefaultIV is RFC 3394's default initial value (§2.2.3.1).
var kwDefaultIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// KWPDefaultAIV is RFC 5649's alternative initial value's constant half.
var KWPDefaultAIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// kwEncrypt is W, the wrapping process of RFC 3394 §2.2.1, with initial
// value a over the 64-bit blocks of p (at least two).
func kwEncrypt(b cipher.Block, a [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	var buf [16]byte
	copy(buf[:8], a[:])
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[8:], out[8*i:8*i+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:8*i+8], buf[8:])
		}
	}
	copy(out[:8], buf[:8])
	return out
}

// kwDecrypt is W⁻¹ of RFC 3394 §2.2.2: it returns the recovered initial
// value and the plaintext blocks, unchecked. c is at least three blocks.
func kwDecrypt(b cipher.Block, c []byte) (a [8]byte, p []byte) {
	n := len(c)/8 - 1
	p = make([]byte, 8*n)
	copy(p, c[8:])
	var buf [16]byte
	copy(buf[:8], c[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(buf[8:], p[8*(i-1):8*i])
			b.Decrypt(buf[:], buf[:])
			copy(p[8*(i-1):8*i], buf[8:])
		}
	}
	copy(a[:], buf[:8])
	return a, p
}

// wrapKW wraps p (a multiple of 8 bytes, at least 16) under RFC 3394.
func wrapKW(b cipher.Block, iv [8]byte, p []byte) ([]byte, error) {
	if len(p)%8 != 0 || len(p) < 16 {
		return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "AES key wrap takes a multiple of 8 bytes, at least 16")
	}
	return kwEncrypt(b, iv, p), nil
}

// unwrapKW unwraps an RFC 3394 ciphertext and checks its initial value.
func unwrapKW(b cipher.Block, iv [8]byte, c []byte) ([]byte, error) {
	if len(c)%8 != 0 || len(c) < 24 {
		return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "AES key unwrap takes a multiple of 8 bytes, at least 24")
	}
	a, p := kwDecrypt(b, c)
	if subtle.ConstantTimeCompare(a[:], iv[:]) != 1 {
		clear(p)
		return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_INVALID, "the wrapped data fails its integrity check")
	}
	return p, nil
}

// WrapKWP wraps p (1 to 2^32-1 bytes) under RFC 5649.
func WrapKWP(b cipher.Block, aiv [4]byte, p []byte) ([]byte, error) {
	if len(p) == 0 || uint64(len(p)) > 0xFFFFFFFF {
		return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "AES key wrap with padding takes 1 to 2^32-1 bytes")
	}
	var a [8]byte
	copy(a[:4], aiv[:])
	binary.BigEndian.PutUint32(a[4:], uint32(len(p)))
	padded := make([]byte, (len(p)+7)/8*8)
	copy(padded, p)
	if len(padded) == 8 {
		// §4.1: one block is encrypted with AES in ECB mode.
		out := make([]byte, 16)
		copy(out, a[:])
		copy(out[8:], padded)
		b.Encrypt(out, out)
		return out, nil
	}
	return kwEncrypt(b, a, padded), nil
}

// UnwrapKWP unwraps an RFC 5649 ciphertext and checks the AIV, the message
// length indicator and the padding (§3).
func UnwrapKWP(b cipher.Block, aiv [4]byte, c []byte) ([]byte, error) {
	if len(c)%8 != 0 || len(c) < 16 {
		return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "AES key unwrap with padding takes a multiple of 8 bytes, at least 16")
	}
	var a [8]byte
	var p []byte
	if len(c) == 16 {
		var buf [16]byte
		b.Decrypt(buf[:], c)
		copy(a[:], buf[:8])
		p = append([]byte(nil), buf[8:]...)
		clear(buf[:])
	} else {
		a, p = kwDecrypt(b, c)
	}
	n := len(p) // 8 times the number of blocks
	// ConstantTimeLessOrEq wants operands below 2^31: take the top bit of
	// the MLI out and count it as a failure.
	mli := int(binary.BigEndian.Uint32(a[4:]) & 0x7FFFFFFF)
	ok := subtle.ConstantTimeCompare(a[:4], aiv[:]) & int(a[4]>>7^1)
	// 8(n-1) < MLI <= 8n, in bytes: n-8 < mli <= n.
	ok &= subtle.ConstantTimeLessOrEq(n-7, mli) & subtle.ConstantTimeLessOrEq(mli, n)
	// The pad bytes, p[mli:], must be zero. Looking at the last 7 bytes
	// whatever mli is keeps the access pattern fixed.
	var nonzero byte
	for i := n - 7; i < n; i++ {
		inPad := subtle.ConstantTimeLessOrEq(mli, i) // i >= mli
		nonzero |= byte(subtle.ConstantTimeSelect(inPad, int(p[i]), 0))
	}
	ok &= subtle.ConstantTimeByteEq(nonzero, 0)
	if ok != 1 {
		clear(p)
		return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_INVALID, "the wrapped data fails its integrity check")
	}
	return p[:mli], nil
}
