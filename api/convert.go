package api

import (
	"fmt"
	"sort"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// The one conversion between the Go types and the messages. Each request
// field has one set of checks, here: the daemon decodes with them, and the
// client's encoder runs the same ones, so a request it builds is one the
// daemon accepts as far as its form goes. Errors name the field as
// hsm.proto spells it ("mechanism.gcm.iv", "template[3].value"). That a
// parameter fits its mechanism is the mechanism table's check, not this.

// Bounds of mechanism parameters.
const (
	MaxParamBytes   = 64 << 10 // AAD, OAEP label
	MaxIVBytes      = 256
	MaxPointBytes   = 1024 // ECDH public and shared data
	MaxContextBytes = 255  // EdDSA and ML-DSA context
)

// FieldError is a request field that failed its check. It rides as the
// cause of an *hsmerr.Error, so errors.As finds the field and hsmerr.RV the
// return value.
type FieldError struct {
	Field string // as hsm.proto spells it, with indexes: "template[3].value"
	Why   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Why }

// BadField is the error of a request field that fails its check:
// CKR_ARGUMENTS_BAD, naming the field.
func BadField(field, format string, args ...any) *hsmerr.Error {
	return fieldErr(ck.CKR_ARGUMENTS_BAD, field, fmt.Sprintf(format, args...))
}

func fieldErr(rv uint64, field, why string) *hsmerr.Error {
	return &hsmerr.Error{RV: rv, Err: &FieldError{Field: field, Why: why}}
}

// badParam is a mechanism parameter that fails its check: what PKCS#11
// calls CKR_MECHANISM_PARAM_INVALID.
func badParam(field, format string, args ...any) *hsmerr.Error {
	return fieldErr(ck.CKR_MECHANISM_PARAM_INVALID, field, fmt.Sprintf(format, args...))
}

func bytesField(field string, b []byte, min, max int) ([]byte, error) {
	if len(b) < min || len(b) > max {
		return nil, badParam(field, "length %d is outside %d..%d", len(b), min, max)
	}
	return append([]byte{}, b...), nil
}

// ---- mechanisms ----

// MechFromPB checks and converts a request's mechanism (field names it). A
// missing mechanism or an unknown parameter kind is CKR_ARGUMENTS_BAD; a
// parameter value out of bounds is CKR_MECHANISM_PARAM_INVALID. Byte
// fields are copied.
func MechFromPB(field string, m *hsmpb.Mechanism) (mech.Mech, error) {
	if m == nil {
		return mech.Mech{}, BadField(field, "required")
	}
	out := mech.Mech{Type: m.Type}
	var err error
	switch p := m.Param.(type) {
	case nil:
	case *hsmpb.Mechanism_Iv:
		var iv []byte
		if iv, err = bytesField(field+".iv", p.Iv, 0, MaxIVBytes); err != nil {
			return out, err
		}
		out.Param = &mech.IVParams{IV: iv}
	case *hsmpb.Mechanism_Gcm:
		g := p.Gcm
		if g == nil {
			return out, badParam(field+".gcm", "empty")
		}
		var gp mech.GCMParams
		if gp.IV, err = bytesField(field+".gcm.iv", g.Iv, 1, MaxIVBytes); err != nil {
			return out, err
		}
		if gp.AAD, err = bytesField(field+".gcm.aad", g.Aad, 0, MaxParamBytes); err != nil {
			return out, err
		}
		if g.TagBits == 0 || g.TagBits > 128 {
			return out, badParam(field+".gcm.tag_bits", "must be 1 to 128")
		}
		gp.TagBits = g.TagBits
		out.Param = &gp
	case *hsmpb.Mechanism_Ctr:
		c := p.Ctr
		if c == nil || len(c.Cb) != 16 {
			return out, badParam(field+".ctr.cb", "must be 16 bytes")
		}
		if c.CounterBits == 0 || c.CounterBits > 128 {
			return out, badParam(field+".ctr.counter_bits", "must be 1 to 128")
		}
		cp := mech.CTRParams{CounterBits: c.CounterBits}
		copy(cp.CB[:], c.Cb)
		out.Param = &cp
	case *hsmpb.Mechanism_Pss:
		if p.Pss == nil {
			return out, badParam(field+".pss", "empty")
		}
		if p.Pss.SaltLen > 1024 {
			return out, badParam(field+".pss.salt_len", "larger than 1024")
		}
		out.Param = &mech.PSSParams{Hash: p.Pss.Hash, MGF: p.Pss.Mgf, SaltLen: p.Pss.SaltLen}
	case *hsmpb.Mechanism_Oaep:
		o := p.Oaep
		if o == nil {
			return out, badParam(field+".oaep", "empty")
		}
		op := mech.OAEPParams{Hash: o.Hash, MGF: o.Mgf, Source: o.Source}
		if op.Label, err = bytesField(field+".oaep.label", o.Label, 0, MaxParamBytes); err != nil {
			return out, err
		}
		out.Param = &op
	case *hsmpb.Mechanism_Ecdh:
		e := p.Ecdh
		if e == nil {
			return out, badParam(field+".ecdh", "empty")
		}
		ep := mech.ECDHParams{KDF: e.Kdf}
		if ep.PublicData, err = bytesField(field+".ecdh.public_data", e.PublicData, 1, MaxPointBytes); err != nil {
			return out, err
		}
		if ep.SharedData, err = bytesField(field+".ecdh.shared_data", e.SharedData, 0, MaxPointBytes); err != nil {
			return out, err
		}
		out.Param = &ep
	case *hsmpb.Mechanism_Eddsa:
		e := p.Eddsa
		if e == nil {
			return out, badParam(field+".eddsa", "empty")
		}
		ep := mech.EdDSAParams{PHFlag: e.PhFlag}
		if ep.Context, err = bytesField(field+".eddsa.context", e.Context, 0, MaxContextBytes); err != nil {
			return out, err
		}
		out.Param = &ep
	case *hsmpb.Mechanism_SignContext:
		c := p.SignContext
		if c == nil {
			return out, badParam(field+".sign_context", "empty")
		}
		if c.Hedge > ck.CKH_DETERMINISTIC_REQUIRED {
			return out, badParam(field+".sign_context.hedge", "unknown hedge variant")
		}
		sp := mech.SignContextParams{Hedge: c.Hedge}
		if sp.Context, err = bytesField(field+".sign_context.context", c.Context, 0, MaxContextBytes); err != nil {
			return out, err
		}
		out.Param = &sp
	case *hsmpb.Mechanism_MacLen:
		if p.MacLen == 0 || p.MacLen > 64 {
			return out, badParam(field+".mac_len", "must be 1 to 64")
		}
		out.Param = &mech.MacLenParams{Len: p.MacLen}
	case *hsmpb.Mechanism_Hkdf, *hsmpb.Mechanism_Kdf108, *hsmpb.Mechanism_Chacha:
		return kdfFromPB(field, out, p)
	default:
		return out, BadField(field, "unknown parameter")
	}
	return out, nil
}

// MechToPB converts a mechanism for a request (field names it in errors).
// Param must be nil or one of mech's parameter types (*IVParams,
// *GCMParams, *CTRParams, *PSSParams, *OAEPParams, *ECDHParams,
// *EdDSAParams, *MacLenParams, or the same by value); a nil pointer counts
// as no parameter. Another type, or a value MechFromPB would refuse, gives
// the error MechFromPB would give. Byte slices are shared with m.
func MechToPB(field string, m mech.Mech) (*hsmpb.Mechanism, error) {
	pb := &hsmpb.Mechanism{Type: m.Type}
	switch p := m.Param.(type) {
	case nil:
	case *mech.IVParams:
		if p != nil {
			pb.Param = ivToPB(p)
		}
	case mech.IVParams:
		pb.Param = ivToPB(&p)
	case *mech.GCMParams:
		if p != nil {
			pb.Param = gcmToPB(p)
		}
	case mech.GCMParams:
		pb.Param = gcmToPB(&p)
	case *mech.CTRParams:
		if p != nil {
			pb.Param = ctrToPB(p)
		}
	case mech.CTRParams:
		pb.Param = ctrToPB(&p)
	case *mech.PSSParams:
		if p != nil {
			pb.Param = pssToPB(p)
		}
	case mech.PSSParams:
		pb.Param = pssToPB(&p)
	case *mech.OAEPParams:
		if p != nil {
			pb.Param = oaepToPB(p)
		}
	case mech.OAEPParams:
		pb.Param = oaepToPB(&p)
	case *mech.ECDHParams:
		if p != nil {
			pb.Param = ecdhToPB(p)
		}
	case mech.ECDHParams:
		pb.Param = ecdhToPB(&p)
	case *mech.EdDSAParams:
		if p != nil {
			pb.Param = eddsaToPB(p)
		}
	case mech.EdDSAParams:
		pb.Param = eddsaToPB(&p)
	case *mech.MacLenParams:
		if p != nil {
			pb.Param = &hsmpb.Mechanism_MacLen{MacLen: p.Len}
		}
	case mech.MacLenParams:
		pb.Param = &hsmpb.Mechanism_MacLen{MacLen: p.Len}
	case *mech.HKDFParams, *mech.KDF108Params, *mech.ChaChaParams:
		kdfToPB(pb, p)
	case *mech.SignContextParams:
		if p != nil {
			pb.Param = signContextToPB(p)
		}
	case mech.SignContextParams:
		pb.Param = signContextToPB(&p)
	default:
		return nil, badParam(field, "%s: unsupported parameter type %T", ck.MechName(m.Type), m.Param)
	}
	if err := checkMech(field, pb); err != nil {
		return nil, err
	}
	return pb, nil
}

// checkMech runs MechFromPB's checks on what MechToPB built.
func checkMech(field string, pb *hsmpb.Mechanism) error {
	_, err := MechFromPB(field, pb)
	return err
}

// ivToPB keeps an empty IV apart from "no parameter" on the wire.
func ivToPB(p *mech.IVParams) *hsmpb.Mechanism_Iv {
	iv := p.IV
	if iv == nil {
		iv = []byte{}
	}
	return &hsmpb.Mechanism_Iv{Iv: iv}
}

func gcmToPB(p *mech.GCMParams) *hsmpb.Mechanism_Gcm {
	return &hsmpb.Mechanism_Gcm{Gcm: &hsmpb.GcmParams{Iv: p.IV, Aad: p.AAD, TagBits: p.TagBits}}
}

func ctrToPB(p *mech.CTRParams) *hsmpb.Mechanism_Ctr {
	return &hsmpb.Mechanism_Ctr{Ctr: &hsmpb.CtrParams{CounterBits: p.CounterBits, Cb: append([]byte(nil), p.CB[:]...)}}
}

func pssToPB(p *mech.PSSParams) *hsmpb.Mechanism_Pss {
	return &hsmpb.Mechanism_Pss{Pss: &hsmpb.PssParams{Hash: p.Hash, Mgf: p.MGF, SaltLen: p.SaltLen}}
}

func oaepToPB(p *mech.OAEPParams) *hsmpb.Mechanism_Oaep {
	return &hsmpb.Mechanism_Oaep{Oaep: &hsmpb.OaepParams{Hash: p.Hash, Mgf: p.MGF, Source: p.Source, Label: p.Label}}
}

func ecdhToPB(p *mech.ECDHParams) *hsmpb.Mechanism_Ecdh {
	return &hsmpb.Mechanism_Ecdh{Ecdh: &hsmpb.EcdhParams{Kdf: p.KDF, SharedData: p.SharedData, PublicData: p.PublicData}}
}

func eddsaToPB(p *mech.EdDSAParams) *hsmpb.Mechanism_Eddsa {
	return &hsmpb.Mechanism_Eddsa{Eddsa: &hsmpb.EddsaParams{PhFlag: p.PHFlag, Context: p.Context}}
}

func signContextToPB(p *mech.SignContextParams) *hsmpb.Mechanism_SignContext {
	return &hsmpb.Mechanism_SignContext{SignContext: &hsmpb.SignContextParams{Hedge: p.Hedge, Context: p.Context}}
}

// ---- templates and attributes ----

// TemplateFromPB checks and converts a request's template (field names
// it): at most object.MaxTemplateAttrs attributes, each present and at most
// object.MaxAttrValue bytes. Values are copied; the order is kept.
func TemplateFromPB(field string, in []*hsmpb.Attribute) (object.Template, error) {
	if len(in) > object.MaxTemplateAttrs {
		return nil, BadField(field, "more than %d attributes", object.MaxTemplateAttrs)
	}
	return AttributesFromPB(field, in)
}

// TemplateToPB converts a template for a request, keeping the order, with
// TemplateFromPB's checks. Values are shared, not copied; nil stays nil.
func TemplateToPB(field string, t object.Template) ([]*hsmpb.Attribute, error) {
	if len(t) > object.MaxTemplateAttrs {
		return nil, BadField(field, "more than %d attributes", object.MaxTemplateAttrs)
	}
	if t == nil {
		return nil, nil
	}
	out := make([]*hsmpb.Attribute, len(t))
	for i, a := range t {
		if len(a.Value) > object.MaxAttrValue {
			return nil, BadField(fmt.Sprintf("%s[%d].value", field, i), "longer than %d bytes", object.MaxAttrValue)
		}
		out[i] = &hsmpb.Attribute{Type: a.Type, Value: a.Value}
	}
	return out, nil
}

// AttributesFromPB is TemplateFromPB without the bound on the count, for an
// answer's attribute list (an object's public attributes). A missing value
// becomes an empty one.
func AttributesFromPB(field string, in []*hsmpb.Attribute) (object.Template, error) {
	out := make(object.Template, 0, len(in))
	for i, a := range in {
		if a == nil {
			return nil, BadField(fmt.Sprintf("%s[%d]", field, i), "missing")
		}
		if len(a.Value) > object.MaxAttrValue {
			return nil, BadField(fmt.Sprintf("%s[%d].value", field, i), "longer than %d bytes", object.MaxAttrValue)
		}
		out = append(out, object.Attribute{Type: a.Type, Value: append([]byte{}, a.Value...)})
	}
	return out, nil
}

// AttrsToPB converts an object's attributes for an answer, ordered by type.
func AttrsToPB(a object.Attrs) []*hsmpb.Attribute {
	types := make([]uint64, 0, len(a))
	for t := range a {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	out := make([]*hsmpb.Attribute, len(types))
	for i, t := range types {
		out[i] = &hsmpb.Attribute{Type: t, Value: a[t]}
	}
	return out
}

// AttrValuesToPB converts a GetAttributes answer.
func AttrValuesToPB(vs []object.AttrValue) []*hsmpb.AttributeValue {
	out := make([]*hsmpb.AttributeValue, len(vs))
	for i, v := range vs {
		out[i] = &hsmpb.AttributeValue{Type: v.Type, Value: v.Value, Ckr: v.RV}
	}
	return out
}

// AttrValuesFromPB checks and converts a GetAttributes answer: each entry
// present, at most object.MaxAttrValue bytes, and answered with CKR_OK,
// CKR_ATTRIBUTE_SENSITIVE or CKR_ATTRIBUTE_TYPE_INVALID.
func AttrValuesFromPB(field string, vs []*hsmpb.AttributeValue) ([]object.AttrValue, error) {
	out := make([]object.AttrValue, 0, len(vs))
	for i, v := range vs {
		if v == nil {
			return nil, BadField(fmt.Sprintf("%s[%d]", field, i), "missing")
		}
		if len(v.Value) > object.MaxAttrValue {
			return nil, BadField(fmt.Sprintf("%s[%d].value", field, i), "longer than %d bytes", object.MaxAttrValue)
		}
		switch v.Ckr {
		case ck.CKR_OK, ck.CKR_ATTRIBUTE_SENSITIVE, ck.CKR_ATTRIBUTE_TYPE_INVALID:
		default:
			return nil, BadField(fmt.Sprintf("%s[%d].ckr", field, i), "%s is not an answer for one attribute", ck.RVName(v.Ckr))
		}
		out = append(out, object.AttrValue{Type: v.Type, Value: v.Value, RV: v.Ckr})
	}
	return out, nil
}
