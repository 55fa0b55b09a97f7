package core

// Kind 6 mechanism parameters (docs/pkcs11-library.md, "Templates and
// derivation"): the structures C's layout table flattens field by field
// (CK_HKDF_PARAMS, CK_SP800_108_KDF_PARAMS,
// CK_SALSA20_CHACHA20_POLY1305_PARAMS), turned into mech's parameters. The
// fields must be exactly the row's, in its order; the values are checked by
// the mechanism table (mech.CheckParam).

import (
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// layoutTags are the field tags each parameter kind arrives with, as C's
// mech_layouts rows write them.
var layoutTags = map[mech.ParamKind]string{
	mech.ParamHKDF:   "\x02\x02\x01\x01\x03\x01\x03",
	mech.ParamKDF108: "\x01\x04\x01",
	mech.ParamChaCha: "\x03\x03",
}

// Sizes of the fixed-layout structures a CK_PRF_DATA_PARAM points to, on
// LP64 (CK_BBOOL padded to the next CK_ULONG).
const (
	counterFormatSize = 16 // CK_SP800_108_COUNTER_FORMAT
	dkmFormatSize     = 24 // CK_SP800_108_DKM_LENGTH_FORMAT
)

// layoutParam decodes a kind 6 parameter for a row of parameter kind k.
func layoutParam(k mech.ParamKind, m Mechanism) (any, bool) {
	tags := layoutTags[k]
	if m.Kind != 6 || len(m.Fields) != len(tags) {
		return nil, false
	}
	for i, f := range m.Fields {
		if f.Tag != tags[i] {
			return nil, false
		}
	}
	f := m.Fields
	switch k {
	case mech.ParamHKDF:
		return &mech.HKDFParams{Extract: f[0].U != 0, Expand: f[1].U != 0, PRF: f[2].U, SaltType: f[3].U,
			Salt: f[4].B, SaltKey: f[5].U, Info: f[6].B}, true
	case mech.ParamKDF108:
		p := &mech.KDF108Params{PRF: f[0].U, AdditionalKeys: f[2].U}
		for _, d := range f[1].List {
			kd := mech.KDF108Data{Type: d.Type}
			v := d.Value
			switch d.Type {
			case ck.CK_SP800_108_ITERATION_VARIABLE, ck.CK_SP800_108_OPTIONAL_COUNTER:
				if len(v) != counterFormatSize {
					return nil, false
				}
				kd.LittleEndian = v[0] != 0
				kd.WidthBits = binary.NativeEndian.Uint64(v[8:])
			case ck.CK_SP800_108_DKM_LENGTH:
				if len(v) != dkmFormatSize {
					return nil, false
				}
				kd.DKMMethod = binary.NativeEndian.Uint64(v)
				kd.LittleEndian = v[8] != 0
				kd.WidthBits = binary.NativeEndian.Uint64(v[16:])
			case ck.CK_SP800_108_BYTE_ARRAY:
				kd.Bytes = v
			default:
				// An unknown type: the mechanism refuses it by its type.
			}
			p.Data = append(p.Data, kd)
		}
		return p, true
	case mech.ParamChaCha:
		return &mech.ChaChaParams{Nonce: f[0].B, AAD: f[1].B}, true
	}
	return nil, false
}

// templateToCanonical converts an array attribute's value, which C sends
// as a nested t item (u32 count, then per attribute u64 type and b value,
// in host order), to its canonical form (object.EncodeTemplateValue).
func templateToCanonical(outer uint64, v []byte) ([]byte, error) {
	r := &wireReader{buf: v}
	inner := r.template()
	if r.err != nil || len(r.buf) != 0 {
		return nil, errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s is not an attribute array", ck.AttrName(outer))
	}
	for _, a := range inner {
		if object.IsTemplateAttr(a.Type) || a.Null {
			return nil, errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s: %s cannot be in it", ck.AttrName(outer), ck.AttrName(a.Type))
		}
	}
	c, err := toCanonical(inner)
	if err != nil {
		return nil, err
	}
	return object.EncodeTemplateValue(c), nil
}

// arrayAttr answers C_GetAttributeValue for an array attribute (v its
// canonical value), as PKCS#11 v3.0 5.7 has it: the length counts
// CK_ATTRIBUTEs (C multiplies by their size); with a buffer too small for
// the entries, CK_UNAVAILABLE_INFORMATION and CKR_BUFFER_TOO_SMALL; with
// room, each entry gets its type and length, and its value where its own
// buffer is given and big enough (an entry too small is
// CK_UNAVAILABLE_INFORMATION and the call CKR_BUFFER_TOO_SMALL).
func arrayAttr(q AttrReq, v []byte) (AttrResp, uint64) {
	t, err := object.DecodeTemplateValue(q.Type, v)
	if err != nil {
		return AttrResp{Len: unavailable}, ck.CKR_GENERAL_ERROR
	}
	n := uint64(len(t))
	switch {
	case !q.Present:
		return AttrResp{Len: n}, ck.CKR_OK
	case uint64(len(q.Inner)) < n:
		return AttrResp{Len: unavailable}, ck.CKR_BUFFER_TOO_SMALL
	}
	rv := uint64(ck.CKR_OK)
	out := AttrResp{Len: n, Inner: make([]AttrResp, n)}
	for j, a := range t {
		hv := toHost(a.Type, a.Value)
		e := AttrResp{Type: a.Type, Len: uint64(len(hv))}
		switch {
		case !q.Inner[j].Present:
		case q.Inner[j].Cap < uint64(len(hv)):
			e.Len = unavailable
			rv = ck.CKR_BUFFER_TOO_SMALL
		default:
			e.Data = append([]byte{}, hv...)
		}
		out.Inner[j] = e
	}
	return out, rv
}
