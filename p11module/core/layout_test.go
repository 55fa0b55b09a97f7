package core

import (
	"encoding/binary"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// layoutFrame builds a kind 6 m item as C's layout table writes it.
func layoutFrame(mt uint64, fields ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, mt)
	b = append(b, 6, uint8(len(fields)))
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func lfU(v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{1}, v) }
func lfB(v uint8) []byte  { return []byte{2, v} }
func lfBytes(p []byte) []byte {
	if p == nil {
		return binary.LittleEndian.AppendUint32([]byte{3}, wireNull)
	}
	return append(binary.LittleEndian.AppendUint32([]byte{3}, uint32(len(p))), p...)
}

func TestLayoutParams(t *testing.T) {
	counter := make([]byte, 16)
	binary.NativeEndian.PutUint64(counter[8:], 32)
	dkm := make([]byte, 24)
	binary.NativeEndian.PutUint64(dkm, ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS)
	dkm[8] = 1
	binary.NativeEndian.PutUint64(dkm[16:], 16)
	prf := []byte{4}
	prf = binary.LittleEndian.AppendUint32(prf, 3)
	for _, d := range []struct {
		t uint64
		v []byte
	}{{ck.CK_SP800_108_ITERATION_VARIABLE, counter}, {ck.CK_SP800_108_BYTE_ARRAY, []byte("label")}, {ck.CK_SP800_108_DKM_LENGTH, dkm}} {
		prf = binary.LittleEndian.AppendUint64(prf, d.t)
		prf = binary.LittleEndian.AppendUint32(prf, uint32(len(d.v)))
		prf = append(prf, d.v...)
	}
	cases := []struct {
		name  string
		frame []byte
		want  any
		rv    uint64
	}{
		{"HKDF", layoutFrame(ck.CKM_HKDF_DERIVE, lfB(1), lfB(1), lfU(ck.CKM_SHA256), lfU(ck.CKF_HKDF_SALT_DATA), lfBytes([]byte("salt")), lfU(0), lfBytes([]byte("info"))),
			&mech.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: []byte("salt"), Info: []byte("info")}, 0},
		{"HKDF salt type", layoutFrame(ck.CKM_HKDF_DERIVE, lfB(1), lfB(1), lfU(ck.CKM_SHA256), lfU(9), lfBytes(nil), lfU(0), lfBytes(nil)), nil, ck.CKR_MECHANISM_PARAM_INVALID},
		{"HKDF fields short", layoutFrame(ck.CKM_HKDF_DERIVE, lfB(1), lfB(1)), nil, ck.CKR_MECHANISM_PARAM_INVALID},
		{"HKDF wrong tag", layoutFrame(ck.CKM_HKDF_DERIVE, lfU(1), lfB(1), lfU(ck.CKM_SHA256), lfU(1), lfBytes(nil), lfU(0), lfBytes(nil)), nil, ck.CKR_MECHANISM_PARAM_INVALID},
		{"SP 800-108", layoutFrame(ck.CKM_SP800_108_COUNTER_KDF, lfU(ck.CKM_SHA256_HMAC), prf, lfU(0)),
			&mech.KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []mech.KDF108Data{
				{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 32},
				{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte("label")},
				{Type: ck.CK_SP800_108_DKM_LENGTH, DKMMethod: ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, LittleEndian: true, WidthBits: 16},
			}}, 0},
		{"SP 800-108 additional keys", layoutFrame(ck.CKM_SP800_108_COUNTER_KDF, lfU(ck.CKM_SHA256_HMAC), prf, lfU(1)), nil, ck.CKR_MECHANISM_PARAM_INVALID},
		{"ChaCha20-Poly1305", layoutFrame(ck.CKM_CHACHA20_POLY1305, lfBytes(make([]byte, 12)), lfBytes(nil)),
			&mech.ChaChaParams{Nonce: make([]byte, 12)}, 0},
		{"ChaCha20-Poly1305 short nonce", layoutFrame(ck.CKM_CHACHA20_POLY1305, lfBytes(make([]byte, 8)), lfBytes(nil)), nil, ck.CKR_MECHANISM_PARAM_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &wireReader{buf: c.frame}
			m := r.mechanism()
			require.NoError(t, r.err)
			require.Empty(t, r.buf)
			got, _, err := toMech(m)
			if c.rv != 0 {
				require.Error(t, err)
				assert.Equal(t, ck.RVName(c.rv), ck.RVName(rvOf(err)))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got.Param)
		})
	}
	// Bounds the reader keeps: too many fields, an unknown tag, too many
	// data parameters.
	for _, b := range [][]byte{
		append(binary.LittleEndian.AppendUint64(nil, ck.CKM_HKDF_DERIVE), 6, 9),
		layoutFrame(ck.CKM_HKDF_DERIVE, []byte{7, 0}),
		layoutFrame(ck.CKM_SP800_108_COUNTER_KDF, binary.LittleEndian.AppendUint32([]byte{4}, 65)),
	} {
		r := &wireReader{buf: b}
		r.mechanism()
		assert.Error(t, r.err)
	}
}

func TestTemplateToCanonical(t *testing.T) {
	inner := []byte{}
	inner = binary.LittleEndian.AppendUint32(inner, 2)
	inner = binary.LittleEndian.AppendUint64(inner, ck.CKA_EXTRACTABLE)
	inner = append(binary.LittleEndian.AppendUint32(inner, 1), 1)
	inner = binary.LittleEndian.AppendUint64(inner, ck.CKA_KEY_TYPE)
	inner = binary.NativeEndian.AppendUint64(binary.LittleEndian.AppendUint32(inner, 8), ck.CKK_AES)
	got, err := toCanonical([]Attr{{Type: ck.CKA_WRAP_TEMPLATE, Value: inner}})
	require.NoError(t, err)
	want := object.EncodeTemplateValue(object.Template{
		{Type: ck.CKA_EXTRACTABLE, Value: []byte{1}},
		{Type: ck.CKA_KEY_TYPE, Value: object.EncodeUlong(ck.CKK_AES)},
	})
	assert.Equal(t, want, got[0].Value)
	_, err = toCanonical([]Attr{{Type: ck.CKA_WRAP_TEMPLATE, Value: inner[:len(inner)-1]}})
	assert.Equal(t, uint64(ck.CKR_ATTRIBUTE_VALUE_INVALID), rvOf(err))
}
