package client

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmd/hsmpb"
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
		pb, err := MechToPB(m)
		if err != nil {
			t.Errorf("%s: MechToPB: %v", ck.MechName(m.Type), err)
			continue
		}
		// Through the wire, too.
		raw, err := proto.Marshal(pb)
		if err != nil {
			t.Fatal(err)
		}
		var back hsmpb.Mechanism
		if err := proto.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		got, err := MechFromPB(&back)
		if err != nil {
			t.Errorf("%s: MechFromPB: %v", ck.MechName(m.Type), err)
			continue
		}
		if got.Type != m.Type || reflect.TypeOf(got.Param) != reflect.TypeOf(m.Param) || !paramEqual(got.Param, m.Param) {
			t.Errorf("%s: round trip gave %#v, want %#v", ck.MechName(m.Type), got.Param, m.Param)
		}
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
	pb, err := MechToPB(mech.Mech{Type: ck.CKM_AES_GCM, Param: mech.GCMParams{IV: []byte("iv"), TagBits: 96}})
	if err != nil || pb.GetGcm().GetTagBits() != 96 {
		t.Errorf("value GCMParams: %v, %v", pb, err)
	}
	// A nil pointer is no parameter (plain Ed25519).
	pb, err = MechToPB(mech.Mech{Type: ck.CKM_EDDSA, Param: (*mech.EdDSAParams)(nil)})
	if err != nil || pb.GetParam() != nil {
		t.Errorf("nil *EdDSAParams: %v, %v", pb, err)
	}
}

func TestMechToPBBadParam(t *testing.T) {
	_, err := MechToPB(mech.Mech{Type: ck.CKM_AES_CBC, Param: []byte("iv")})
	if RV(err) != ck.CKR_MECHANISM_PARAM_INVALID {
		t.Errorf("err = %v", err)
	}
}

func TestMechFromPBBad(t *testing.T) {
	if _, err := MechFromPB(nil); RV(err) != ck.CKR_MECHANISM_INVALID {
		t.Errorf("nil: %v", err)
	}
	short := &hsmpb.Mechanism{Type: ck.CKM_AES_CTR, Param: &hsmpb.Mechanism_Ctr{Ctr: &hsmpb.CtrParams{CounterBits: 8, Cb: []byte{1, 2}}}}
	if _, err := MechFromPB(short); RV(err) != ck.CKR_MECHANISM_PARAM_INVALID {
		t.Errorf("short CTR block: %v", err)
	}
	empty := &hsmpb.Mechanism{Type: ck.CKM_AES_GCM, Param: &hsmpb.Mechanism_Gcm{}}
	if _, err := MechFromPB(empty); RV(err) != ck.CKR_MECHANISM_PARAM_INVALID {
		t.Errorf("empty GCM: %v", err)
	}
}

func TestTemplateRoundTrip(t *testing.T) {
	tmpl := object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte("my key")},
		{Type: ck.CKA_ID, Value: []byte{}},
		{Type: ck.CKA_LABEL, Value: []byte("again, order kept")},
	}
	pb := TemplateToPB(tmpl)
	req := &hsmpb.CreateObjectRequest{Template: pb}
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back hsmpb.CreateObjectRequest
	if err := proto.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got := TemplateFromPB(back.GetTemplate())
	if !reflect.DeepEqual(got, tmpl) {
		t.Errorf("got %#v\nwant %#v", got, tmpl)
	}
	if TemplateToPB(nil) != nil || TemplateFromPB(nil) != nil {
		t.Error("nil template not kept nil")
	}
	if got := TemplateFromPB([]*hsmpb.Attribute{nil, {Type: 3}}); len(got) != 1 || got[0].Value == nil {
		t.Errorf("nil entries: %#v", got)
	}
}

func TestFromStatus(t *testing.T) {
	withDetail, err := status.New(codes.Unauthenticated, "wrong user name or password").WithDetails(&hsmpb.ErrorDetail{Ckr: ck.CKR_PIN_INCORRECT})
	if err != nil {
		t.Fatal(err)
	}
	detail := func(msg string) *status.Status {
		st, err := status.New(codes.NotFound, msg).WithDetails(&hsmpb.ErrorDetail{Ckr: ck.CKR_KEY_HANDLE_INVALID})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	prefixed := detail("CKR_KEY_HANDLE_INVALID: no such key")
	bare := detail("CKR_KEY_HANDLE_INVALID")
	otherName := detail("CKR_KEY_HANDLE_INVALIDATED: x")
	for _, tc := range []struct {
		err error
		rv  uint64
		msg string
	}{
		{withDetail.Err(), ck.CKR_PIN_INCORRECT, "wrong user name or password"},
		{prefixed.Err(), ck.CKR_KEY_HANDLE_INVALID, "no such key"},
		{bare.Err(), ck.CKR_KEY_HANDLE_INVALID, ""},
		{otherName.Err(), ck.CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALIDATED: x"},
		{status.Error(codes.Unauthenticated, "no session"), ck.CKR_USER_NOT_LOGGED_IN, "no session"},
		{status.Error(codes.PermissionDenied, "not a client certificate"), ck.CKR_FUNCTION_FAILED, "not a client certificate"},
		{status.Error(codes.Unavailable, "connection refused"), ck.CKR_DEVICE_ERROR, "connection refused"},
		{status.Error(codes.DeadlineExceeded, "slow"), ck.CKR_DEVICE_ERROR, "slow"},
		{status.Error(codes.InvalidArgument, "bad"), ck.CKR_ARGUMENTS_BAD, "bad"},
		{status.Error(codes.Internal, "oops"), ck.CKR_FUNCTION_FAILED, "oops"},
		{errors.New("plain"), ck.CKR_FUNCTION_FAILED, "plain"},
	} {
		got := FromStatus(tc.err)
		var te *hsmerr.Error
		if !errors.As(got, &te) {
			t.Errorf("%v: not a *hsmerr.Error: %T", tc.err, got)
			continue
		}
		if te.RV != tc.rv || te.Msg != tc.msg {
			t.Errorf("%v: got RV %s msg %q, want %s %q", tc.err, ck.RVName(te.RV), te.Msg, ck.RVName(tc.rv), tc.msg)
		}
		if RV(got) != tc.rv {
			t.Errorf("RV(%v) = %s", got, ck.RVName(RV(got)))
		}
	}
	if FromStatus(nil) != nil || RV(nil) != ck.CKR_OK {
		t.Error("nil error not kept nil")
	}
	te := hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "x")
	if FromStatus(te) != error(te) {
		t.Error("*hsmerr.Error not passed through")
	}
}
