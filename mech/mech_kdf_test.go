package mech

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/hmac"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHKDFRFC5869 runs the SHA-256 cases of RFC 5869 appendix A through
// CKM_HKDF_DERIVE's row: extract and expand, extract only (the PRK),
// expand only (from the PRK).
func TestHKDFRFC5869(t *testing.T) {
	row := row(t, ck.CKM_HKDF_DERIVE)
	cases := []struct {
		name                      string
		ikm, salt, info, prk, okm string
	}{
		{"A.1", strings.Repeat("0b", 22), "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
			"077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{"A.3", strings.Repeat("0b", 22), "", "",
			"19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ikm := secretKey(ck.CKK_GENERIC_SECRET, unhex(t, c.ikm))
			p := &HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_NULL, Info: unhex(t, c.info)}
			if c.salt != "" {
				p.SaltType, p.Salt = ck.CKF_HKDF_SALT_DATA, unhex(t, c.salt)
			}
			m := Mech{Type: ck.CKM_HKDF_DERIVE, Param: p}
			require.NoError(t, CheckParam(row, m))
			okm := unhex(t, c.okm)
			got, err := row.DeriveKDF(ikm, m, KDFInput{Len: len(okm)})
			require.NoError(t, err)
			assert.Equal(t, okm, got)

			// Extract only: the PRK.
			ex := *p
			ex.Expand = false
			got, err = row.DeriveKDF(ikm, Mech{Type: m.Type, Param: &ex}, KDFInput{Len: 32})
			require.NoError(t, err)
			assert.Equal(t, unhex(t, c.prk), got)

			// Expand only, from the PRK as the base key.
			exp := *p
			exp.Extract = false
			got, err = row.DeriveKDF(secretKey(ck.CKK_GENERIC_SECRET, unhex(t, c.prk)), Mech{Type: m.Type, Param: &exp}, KDFInput{Len: len(okm)})
			require.NoError(t, err)
			assert.Equal(t, okm, got)

			// The salt as a key gives what the salt as data gives.
			if c.salt != "" {
				sk := *p
				sk.SaltType, sk.Salt = ck.CKF_HKDF_SALT_KEY, nil
				got, err = row.DeriveKDF(ikm, Mech{Type: m.Type, Param: &sk}, KDFInput{Len: len(okm), SaltKey: secretKey(ck.CKK_GENERIC_SECRET, unhex(t, c.salt))})
				require.NoError(t, err)
				assert.Equal(t, okm, got)
			}
		})
	}
}

// TestHKDFRefusals: parameters the mechanism refuses, each with its CK_RV.
func TestHKDFRefusals(t *testing.T) {
	row := row(t, ck.CKM_HKDF_DERIVE)
	base := secretKey(ck.CKK_GENERIC_SECRET, bytes.Repeat([]byte{1}, 32))
	good := HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_NULL}
	cases := []struct {
		name string
		edit func(p *HKDFParams)
		in   KDFInput
		base *Key
		rv   uint64
		why  string // the refusal names this, so no case passes for another reason
	}{
		{"neither extract nor expand", func(p *HKDFParams) { p.Extract, p.Expand = false, false }, KDFInput{Len: 16}, base, ck.CKR_MECHANISM_PARAM_INVALID, "bExtract or bExpand"},
		{"unknown hash", func(p *HKDFParams) { p.PRF = ck.CKM_MD5 }, KDFInput{Len: 16}, base, ck.CKR_MECHANISM_PARAM_INVALID, "unknown prfHashMechanism"},
		{"unknown salt type", func(p *HKDFParams) { p.SaltType = 8 }, KDFInput{Len: 16}, base, ck.CKR_MECHANISM_PARAM_INVALID, "ulSaltType"},
		{"salt data without salt", func(p *HKDFParams) { p.SaltType = ck.CKF_HKDF_SALT_DATA }, KDFInput{Len: 16}, base, ck.CKR_MECHANISM_PARAM_INVALID, "needs a salt"},
		{"salt key without key", func(p *HKDFParams) { p.SaltType = ck.CKF_HKDF_SALT_KEY }, KDFInput{Len: 16}, base, ck.CKR_MECHANISM_PARAM_INVALID, "hSaltKey"},
		{"zero length", func(*HKDFParams) {}, KDFInput{Len: 0}, base, ck.CKR_TEMPLATE_INCONSISTENT, "1 to"},
		{"PRK shorter than asked", func(p *HKDFParams) { p.Expand = false }, KDFInput{Len: 33}, base, ck.CKR_TEMPLATE_INCONSISTENT, "PRK"},
		{"AES base key", func(*HKDFParams) {}, KDFInput{Len: 16}, secretKey(ck.CKK_AES, make([]byte, 16)), ck.CKR_KEY_TYPE_INCONSISTENT, "does not take a CKK_AES key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := good
			c.edit(&p)
			_, err := row.DeriveKDF(c.base, Mech{Type: ck.CKM_HKDF_DERIVE, Param: &p}, c.in)
			require.Error(t, err)
			assert.Equal(t, ck.RVName(c.rv), ck.RVName(hsmerr.RV(err)))
			assert.Contains(t, err.Error(), c.why)
		})
	}
}

// kbkdfVector is one vector of testdata/kbkdf_ctr.rsp.
type kbkdfVector struct {
	rlen        uint64
	ki, fixed   []byte
	ko          []byte
	description string
}

func readKBKDF(t *testing.T) []kbkdfVector {
	f, err := os.Open("testdata/kbkdf_ctr.rsp")
	require.NoError(t, err)
	defer f.Close()
	var out []kbkdfVector
	var rlen uint64
	var cur kbkdfVector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[RLEN=") {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "[RLEN="), "_BITS]"))
			require.NoError(t, err)
			rlen = uint64(n)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "COUNT":
			cur = kbkdfVector{rlen: rlen, description: "RLEN " + strconv.Itoa(int(rlen)) + " COUNT " + v}
		case "KI":
			cur.ki = unhex(t, v)
		case "FixedInputData":
			cur.fixed = unhex(t, v)
		case "KO":
			cur.ko = unhex(t, v)
			out = append(out, cur)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// TestKDF108CAVP runs the CAVP vectors kept in testdata through the row:
// the counter (big-endian, RLEN bits) before the fixed input, which the
// PKCS#11 parameters express as an iteration variable then a byte array.
func TestKDF108CAVP(t *testing.T) {
	row := row(t, ck.CKM_SP800_108_COUNTER_KDF)
	vs := readKBKDF(t)
	require.Len(t, vs, 3)
	for _, v := range vs {
		t.Run(v.description, func(t *testing.T) {
			p := &KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{
				{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: v.rlen},
				{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: v.fixed},
			}}
			m := Mech{Type: ck.CKM_SP800_108_COUNTER_KDF, Param: p}
			require.NoError(t, CheckParam(row, m))
			got, err := row.DeriveKDF(secretKey(ck.CKK_GENERIC_SECRET, v.ki), m, KDFInput{Len: len(v.ko)})
			require.NoError(t, err)
			assert.Equal(t, v.ko, got)
		})
	}
}

// TestKDF108Layout checks what the data parameters put in each block
// against the construction written out by hand: several blocks, a
// little-endian counter after a label, a DKM length in both methods.
func TestKDF108Layout(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	label, context := []byte("label"), []byte("context")
	for _, method := range []uint64{ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS} {
		p := &KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: label},
			{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 16, LittleEndian: true},
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: context},
			{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: 32, DKMMethod: method},
		}}
		const n = 40 // two blocks of SHA-256
		got, err := kdf108Counter(crypto.SHA256, key, p, n)
		require.NoError(t, err)
		l := uint32(n * 8)
		if method == ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS {
			l = 64 * 8
		}
		var want []byte
		for i := uint16(1); i <= 2; i++ {
			mac := hmac.New(crypto.SHA256.New, key)
			mac.Write(label)
			mac.Write(binary.LittleEndian.AppendUint16(nil, i))
			mac.Write(context)
			mac.Write(binary.BigEndian.AppendUint32(nil, l))
			want = mac.Sum(want)
		}
		assert.Equal(t, want[:n], got, "method %d", method)
	}
}

// TestKDF108Refusals: parameters counter mode refuses.
func TestKDF108Refusals(t *testing.T) {
	ctr := KDF108Data{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 32}
	arr := KDF108Data{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte("x")}
	cases := []struct {
		name string
		p    KDF108Params
		why  string // the refusal names this, so no case passes for another reason
	}{
		{"no iteration variable", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{arr}}, "needs an iteration variable"},
		{"two iteration variables", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{ctr, ctr}}, "more than one iteration variable"},
		{"counter of 12 bits", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 12}}}, "8, 16, 24 or 32 bits"},
		{"optional counter", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{ctr, {Type: ck.CK_SP800_108_OPTIONAL_COUNTER, WidthBits: 8}}}, "is not one counter mode takes"},
		{"unknown DKM method", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{ctr, {Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: 32, DKMMethod: 9}}}, "unknown DKM length method"},
		{"empty byte array", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{ctr, {Type: ck.CK_SP800_108_BYTE_ARRAY}}}, "must not be empty"},
		{"a digest as PRF", KDF108Params{PRF: ck.CKM_SHA256, Data: []KDF108Data{ctr}}, "prfType"},
		{"additional keys", KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{ctr}, AdditionalKeys: 1}, "additional derived keys"},
	}
	kdf := row(t, ck.CKM_SP800_108_COUNTER_KDF)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			err := CheckParam(kdf, Mech{Type: kdf.Type, Param: &p})
			require.Error(t, err)
			assert.Equal(t, uint64(ck.CKR_MECHANISM_PARAM_INVALID), hsmerr.RV(err))
			assert.Contains(t, err.Error(), c.why)
		})
	}
	// An 8-bit counter cannot count past 255 blocks.
	p := &KDF108Params{PRF: ck.CKM_SHA_1_HMAC, Data: []KDF108Data{{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 8}}}
	_, err := kdf108Counter(crypto.SHA1, []byte("k"), p, 256*20)
	assert.Equal(t, uint64(ck.CKR_TEMPLATE_INCONSISTENT), hsmerr.RV(err))
}

// TestChaCha20Poly1305 seals and opens through the row, and refuses a
// changed ciphertext, a wrong nonce length and a key of another type.
func TestChaCha20Poly1305(t *testing.T) {
	aead := row(t, ck.CKM_CHACHA20_POLY1305)
	gen := row(t, ck.CKM_CHACHA20_KEY_GEN)
	mat, err := gen.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 32)), 32)
	require.NoError(t, err)
	_, err = gen.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 32)), 16)
	assert.Equal(t, uint64(ck.CKR_KEY_SIZE_RANGE), hsmerr.RV(err))
	k := secretKey(ck.CKK_CHACHA20, mat)
	m := Mech{Type: aead.Type, Param: &ChaChaParams{Nonce: bytes.Repeat([]byte{1}, 12), AAD: []byte("aad")}}
	ct, err := aead.Encrypt(k, m, []byte("plain text"))
	require.NoError(t, err)
	assert.Len(t, ct, len("plain text")+16)
	pt, err := aead.Decrypt(k, m, ct)
	require.NoError(t, err)
	assert.Equal(t, []byte("plain text"), pt)
	ct[0] ^= 1
	_, err = aead.Decrypt(k, m, ct)
	assert.Equal(t, uint64(ck.CKR_ENCRYPTED_DATA_INVALID), hsmerr.RV(err))
	err = CheckParam(aead, Mech{Type: aead.Type, Param: &ChaChaParams{Nonce: make([]byte, 8)}})
	assert.Equal(t, uint64(ck.CKR_MECHANISM_PARAM_INVALID), hsmerr.RV(err))
	_, err = aead.Encrypt(secretKey(ck.CKK_AES, mat), m, []byte("x"))
	assert.Equal(t, uint64(ck.CKR_KEY_TYPE_INCONSISTENT), hsmerr.RV(err))
}
