package mech

import (
	"crypto/cipher"
	"crypto/subtle"
)

// AES-CMAC (NIST SP 800-38B, RFC 4493). Go's standard library has no CMAC
// and neither does golang.org/x/crypto, so it is written here from RFC 4493
// §2.3-2.4.

// cmacDouble multiplies a 128-bit block by x in GF(2^128) (the
// "left shift, then XOR R_b if the top bit was set" of RFC 4493 §2.3), in
// constant time.
func cmacDouble(in [16]byte) [16]byte {
	var out [16]byte
	msb := in[0] >> 7
	for i := 0; i < 15; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[15] = in[15]<<1 ^ byte(subtle.ConstantTimeSelect(int(msb), 0x87, 0))
	return out
}

// cmacSum returns the 16-byte AES-CMAC of msg under the block cipher b.
func cmacSum(b cipher.Block, msg []byte) [16]byte {
	var l [16]byte
	b.Encrypt(l[:], l[:])
	k1 := cmacDouble(l)
	k2 := cmacDouble(k1)

	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	rest := msg[16*(n-1):]
	if complete {
		for i := range last {
			last[i] = rest[i] ^ k1[i]
		}
	} else {
		copy(last[:], rest)
		last[len(rest)] = 0x80
		for i := range last {
			last[i] ^= k2[i]
		}
	}

	var x [16]byte
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[16*i:16*i+16])
		b.Encrypt(x[:], x[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	b.Encrypt(x[:], x[:])
	return x
}
