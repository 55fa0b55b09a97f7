package api

import (
	"errors"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

func TestMechRoundTrip(t *testing.T) {
	cb := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, m := range []mech.Mech{
		{Type: ck.CKM_SHA256},
		{Type: ck.CKM_AES_CBC_PAD, Param: &mech.IVParams{IV: []byte("0123456789abcdef")}},
		{Type: ck.CKM_AES_KEY_WRAP_PAD, Param: &mech.IVParams{IV: []byte{}}},
		{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: []byte("nonce-12byte"), AAD: []byte("aad"), TagBits: 128}},
		{Type: ck.CKM_AES_CTR, Param: &mech.CTRParams{CounterBits: 32, CB: cb}},
		{Type: ck.CKM_SHA256_RSA_PKCS_PSS, Param: &mech.PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}},
		{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: ck.CKM_SHA384, MGF: ck.CKG_MGF1_SHA384, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("label")}},
		{Type: ck.CKM_ECDH1_DERIVE, Param: &mech.ECDHParams{KDF: ck.CKD_NULL, SharedData: []byte("sd"), PublicData: []byte{4, 1, 2}}},
		{Type: ck.CKM_EDDSA, Param: &mech.EdDSAParams{PHFlag: true, Context: []byte("ctx")}},
		{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: &mech.MacLenParams{Len: 16}},
	} {
		name := ck.MechName(m.Type)
		pb, err := MechToPB("mechanism", m)
		require.NoError(t, err, name)
		// Through the wire, too.
		raw, err := proto.Marshal(pb)
		require.NoError(t, err)
		var back hsmpb.Mechanism
		require.NoError(t, proto.Unmarshal(raw, &back))
		got, err := MechFromPB("mechanism", &back)
		require.NoError(t, err, name)
		assert.Equal(t, m.Type, got.Type, name)
		assert.Equal(t, reflect.TypeOf(m.Param), reflect.TypeOf(got.Param), name)
		assert.True(t, paramEqual(got.Param, m.Param), "%s: round trip gave %#v, want %#v", name, got.Param, m.Param)
	}
}

// paramEqual compares parameters, treating nil and empty byte slices alike
// (the wire does not tell them apart).
func paramEqual(a, b any) bool {
	norm := func(p any) any {
		switch p := p.(type) {
		case *mech.IVParams:
			return string(p.IV)
		case *mech.GCMParams:
			return [3]any{string(p.IV), string(p.AAD), p.TagBits}
		case *mech.OAEPParams:
			return [4]any{p.Hash, p.MGF, p.Source, string(p.Label)}
		case *mech.ECDHParams:
			return [3]any{p.KDF, string(p.SharedData), string(p.PublicData)}
		case *mech.EdDSAParams:
			return [2]any{p.PHFlag, string(p.Context)}
		case *mech.CTRParams:
			return *p
		case *mech.PSSParams:
			return *p
		case *mech.MacLenParams:
			return *p
		}
		return p
	}
	return norm(a) == norm(b)
}

func TestMechToPBValueParams(t *testing.T) {
	pb, err := MechToPB("mechanism", mech.Mech{Type: ck.CKM_AES_GCM, Param: mech.GCMParams{IV: []byte("iv"), TagBits: 96}})
	require.NoError(t, err)
	assert.Equal(t, uint64(96), pb.GetGcm().GetTagBits())
	// A nil pointer is no parameter (plain Ed25519).
	pb, err = MechToPB("mechanism", mech.Mech{Type: ck.CKM_EDDSA, Param: (*mech.EdDSAParams)(nil)})
	require.NoError(t, err)
	assert.Nil(t, pb.GetParam())
}

// wantField asserts err is the CKR rv naming field.
func wantField(t *testing.T, err error, rv uint64, field string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, ck.RVName(rv), ck.RVName(hsmerr.RV(err)), "%v", err)
	var fe *FieldError
	if assert.True(t, errors.As(err, &fe), "%v names no field", err) {
		assert.Equal(t, field, fe.Field)
	}
}

// The encoder refuses what the decoder refuses, with the same CKR and
// field: a request the client builds is one the daemon takes.
func TestMechStrictBothWays(t *testing.T) {
	cases := []struct {
		name  string
		m     mech.Mech
		pb    *hsmpb.Mechanism
		rv    uint64
		field string
	}{
		{"GCM without IV", mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{TagBits: 128}},
			&hsmpb.Mechanism{Type: ck.CKM_AES_GCM, Param: &hsmpb.Mechanism_Gcm{Gcm: &hsmpb.GcmParams{TagBits: 128}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.gcm.iv"},
		{"GCM tag of 129 bits", mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: []byte("n"), TagBits: 129}},
			&hsmpb.Mechanism{Type: ck.CKM_AES_GCM, Param: &hsmpb.Mechanism_Gcm{Gcm: &hsmpb.GcmParams{Iv: []byte("n"), TagBits: 129}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.gcm.tag_bits"},
		{"IV too long", mech.Mech{Type: ck.CKM_AES_CBC, Param: &mech.IVParams{IV: make([]byte, MaxIVBytes+1)}},
			&hsmpb.Mechanism{Type: ck.CKM_AES_CBC, Param: &hsmpb.Mechanism_Iv{Iv: make([]byte, MaxIVBytes+1)}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.iv"},
		{"CTR counter of 0 bits", mech.Mech{Type: ck.CKM_AES_CTR, Param: &mech.CTRParams{}},
			&hsmpb.Mechanism{Type: ck.CKM_AES_CTR, Param: &hsmpb.Mechanism_Ctr{Ctr: &hsmpb.CtrParams{Cb: make([]byte, 16)}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.ctr.counter_bits"},
		{"PSS salt", mech.Mech{Type: ck.CKM_RSA_PKCS_PSS, Param: &mech.PSSParams{SaltLen: 1025}},
			&hsmpb.Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: &hsmpb.Mechanism_Pss{Pss: &hsmpb.PssParams{SaltLen: 1025}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.pss.salt_len"},
		{"OAEP label", mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Label: make([]byte, MaxParamBytes+1)}},
			&hsmpb.Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &hsmpb.Mechanism_Oaep{Oaep: &hsmpb.OaepParams{Label: make([]byte, MaxParamBytes+1)}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.oaep.label"},
		{"ECDH without a point", mech.Mech{Type: ck.CKM_ECDH1_DERIVE, Param: &mech.ECDHParams{}},
			&hsmpb.Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &hsmpb.Mechanism_Ecdh{Ecdh: &hsmpb.EcdhParams{}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.ecdh.public_data"},
		{"EdDSA context", mech.Mech{Type: ck.CKM_EDDSA, Param: &mech.EdDSAParams{Context: make([]byte, MaxContextBytes+1)}},
			&hsmpb.Mechanism{Type: ck.CKM_EDDSA, Param: &hsmpb.Mechanism_Eddsa{Eddsa: &hsmpb.EddsaParams{Context: make([]byte, MaxContextBytes+1)}}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.eddsa.context"},
		{"MAC length 0", mech.Mech{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: &mech.MacLenParams{}},
			&hsmpb.Mechanism{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: &hsmpb.Mechanism_MacLen{}},
			ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.mac_len"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := MechToPB("mechanism", c.m)
			wantField(t, err, c.rv, c.field)
			_, err = MechFromPB("mechanism", c.pb)
			wantField(t, err, c.rv, c.field)
		})
	}
}

func TestMechBad(t *testing.T) {
	_, err := MechToPB("mechanism", mech.Mech{Type: ck.CKM_AES_CBC, Param: []byte("iv")})
	wantField(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "mechanism")
	_, err = MechFromPB("mechanism", nil)
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "mechanism")
	short := &hsmpb.Mechanism{Type: ck.CKM_AES_CTR, Param: &hsmpb.Mechanism_Ctr{Ctr: &hsmpb.CtrParams{CounterBits: 8, Cb: []byte{1, 2}}}}
	_, err = MechFromPB("mechanism", short)
	wantField(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.ctr.cb")
	empty := &hsmpb.Mechanism{Type: ck.CKM_AES_GCM, Param: &hsmpb.Mechanism_Gcm{}}
	_, err = MechFromPB("mechanism", empty)
	wantField(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "mechanism.gcm")
	// The message names the field after the CKR.
	assert.Equal(t, "CKR_MECHANISM_PARAM_INVALID: mechanism.gcm: empty", err.Error())
}

func TestTemplateRoundTrip(t *testing.T) {
	tmpl := object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte("my key")},
		{Type: ck.CKA_ID, Value: []byte{}},
		{Type: ck.CKA_LABEL, Value: []byte("again, order kept")},
	}
	pb, err := TemplateToPB("template", tmpl)
	require.NoError(t, err)
	raw, err := proto.Marshal(&hsmpb.CreateObjectRequest{Template: pb})
	require.NoError(t, err)
	var back hsmpb.CreateObjectRequest
	require.NoError(t, proto.Unmarshal(raw, &back))
	got, err := TemplateFromPB("template", back.GetTemplate())
	require.NoError(t, err)
	assert.Equal(t, tmpl, got)

	nilPB, err := TemplateToPB("template", nil)
	require.NoError(t, err)
	assert.Nil(t, nilPB)
}

func TestTemplateStrictBothWays(t *testing.T) {
	long := object.Template{{Type: ck.CKA_LABEL, Value: []byte("x")}, {Type: ck.CKA_VALUE, Value: make([]byte, object.MaxAttrValue+1)}}
	_, err := TemplateToPB("public_template", long)
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "public_template[1].value")
	_, err = TemplateFromPB("public_template", []*hsmpb.Attribute{{Type: ck.CKA_LABEL}, {Type: ck.CKA_VALUE, Value: make([]byte, object.MaxAttrValue+1)}})
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "public_template[1].value")

	_, err = TemplateToPB("template", make(object.Template, object.MaxTemplateAttrs+1))
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "template")
	_, err = TemplateFromPB("template", make([]*hsmpb.Attribute, object.MaxTemplateAttrs+1))
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "template")

	_, err = TemplateFromPB("template", []*hsmpb.Attribute{{Type: 3}, nil})
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "template[1]")
}

func TestAnswers(t *testing.T) {
	attrs := object.Attrs{ck.CKA_LABEL: []byte("k"), ck.CKA_CLASS: object.EncodeUlong(ck.CKO_SECRET_KEY), ck.CKA_ID: nil}
	pb := AttrsToPB(attrs)
	require.Len(t, pb, 3)
	assert.Equal(t, []uint64{ck.CKA_CLASS, ck.CKA_LABEL, ck.CKA_ID}, []uint64{pb[0].Type, pb[1].Type, pb[2].Type}, "ordered by type")
	back, err := AttributesFromPB("objects[0].attributes", pb)
	require.NoError(t, err)
	assert.Equal(t, []byte{}, back[2].Value, "a missing value is an empty one")
	// An object may have more public attributes than a request template.
	many := make([]*hsmpb.Attribute, object.MaxTemplateAttrs+10)
	for i := range many {
		many[i] = &hsmpb.Attribute{Type: uint64(i)}
	}
	_, err = AttributesFromPB("objects[0].attributes", many)
	require.NoError(t, err)

	vals := []object.AttrValue{{Type: ck.CKA_LABEL, Value: []byte("k")}, {Type: ck.CKA_VALUE, RV: ck.CKR_ATTRIBUTE_SENSITIVE}}
	got, err := AttrValuesFromPB("values", AttrValuesToPB(vals))
	require.NoError(t, err)
	assert.Equal(t, vals, got)
	_, err = AttrValuesFromPB("values", []*hsmpb.AttributeValue{{Type: 1}, nil})
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "values[1]")
	_, err = AttrValuesFromPB("values", []*hsmpb.AttributeValue{{Type: 1, Ckr: ck.CKR_GENERAL_ERROR}})
	wantField(t, err, ck.CKR_ARGUMENTS_BAD, "values[0].ckr")
}
