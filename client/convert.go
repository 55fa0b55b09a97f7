package client

import (
	"fmt"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmd/hsmpb"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// MechToPB converts a mechanism to its wire form. Param must be nil or one
// of the tokens parameter types (*IVParams, *GCMParams, *CTRParams,
// *PSSParams, *OAEPParams, *ECDHParams, *EdDSAParams, *MacLenParams; the
// same types by value are accepted too). A nil pointer counts as no
// parameter. Other types give CKR_MECHANISM_PARAM_INVALID.
//
// Byte slices are shared with m, not copied.
func MechToPB(m mech.Mech) (*hsmpb.Mechanism, error) {
	pb := &hsmpb.Mechanism{Type: m.Type}
	switch p := m.Param.(type) {
	case nil:
	case *mech.IVParams:
		if p != nil {
			pb.Param = &hsmpb.Mechanism_Iv{Iv: nonNil(p.IV)}
		}
	case mech.IVParams:
		pb.Param = &hsmpb.Mechanism_Iv{Iv: nonNil(p.IV)}
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
	default:
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: unsupported parameter type %T", ck.MechName(m.Type), m.Param)
	}
	return pb, nil
}

// nonNil keeps an empty IV distinguishable from "no parameter" on the wire:
// a oneof bytes field set to nil still counts as set, but be explicit.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
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

// MechFromPB converts a wire mechanism back: the inverse of MechToPB, with
// pointer parameter types. A nil mechanism, a nil message inside the oneof
// or a CTR counter block that is not 16 bytes give
// CKR_MECHANISM_PARAM_INVALID (CKR_MECHANISM_INVALID for nil). It does not
// check that the parameter fits the mechanism; the daemon does.
func MechFromPB(pb *hsmpb.Mechanism) (mech.Mech, error) {
	if pb == nil {
		return mech.Mech{}, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "no mechanism")
	}
	m := mech.Mech{Type: pb.GetType()}
	bad := func(what string) (mech.Mech, error) {
		return mech.Mech{}, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: %s", ck.MechName(m.Type), what)
	}
	switch p := pb.GetParam().(type) {
	case nil:
	case *hsmpb.Mechanism_Iv:
		m.Param = &mech.IVParams{IV: p.Iv}
	case *hsmpb.Mechanism_Gcm:
		if p.Gcm == nil {
			return bad("empty GCM parameters")
		}
		m.Param = &mech.GCMParams{IV: p.Gcm.GetIv(), AAD: p.Gcm.GetAad(), TagBits: p.Gcm.GetTagBits()}
	case *hsmpb.Mechanism_Ctr:
		if p.Ctr == nil {
			return bad("empty CTR parameters")
		}
		cb := p.Ctr.GetCb()
		if len(cb) != 16 {
			return bad(fmt.Sprintf("CTR counter block is %d bytes, want 16", len(cb)))
		}
		cp := &mech.CTRParams{CounterBits: p.Ctr.GetCounterBits()}
		copy(cp.CB[:], cb)
		m.Param = cp
	case *hsmpb.Mechanism_Pss:
		if p.Pss == nil {
			return bad("empty PSS parameters")
		}
		m.Param = &mech.PSSParams{Hash: p.Pss.GetHash(), MGF: p.Pss.GetMgf(), SaltLen: p.Pss.GetSaltLen()}
	case *hsmpb.Mechanism_Oaep:
		if p.Oaep == nil {
			return bad("empty OAEP parameters")
		}
		m.Param = &mech.OAEPParams{Hash: p.Oaep.GetHash(), MGF: p.Oaep.GetMgf(), Source: p.Oaep.GetSource(), Label: p.Oaep.GetLabel()}
	case *hsmpb.Mechanism_Ecdh:
		if p.Ecdh == nil {
			return bad("empty ECDH parameters")
		}
		m.Param = &mech.ECDHParams{KDF: p.Ecdh.GetKdf(), SharedData: p.Ecdh.GetSharedData(), PublicData: p.Ecdh.GetPublicData()}
	case *hsmpb.Mechanism_Eddsa:
		if p.Eddsa == nil {
			return bad("empty EdDSA parameters")
		}
		m.Param = &mech.EdDSAParams{PHFlag: p.Eddsa.GetPhFlag(), Context: p.Eddsa.GetContext()}
	case *hsmpb.Mechanism_MacLen:
		m.Param = &mech.MacLenParams{Len: p.MacLen}
	default:
		return bad(fmt.Sprintf("unknown parameter %T", p))
	}
	return m, nil
}

// TemplateToPB converts a template to its wire form, keeping the order.
// Values are shared, not copied.
func TemplateToPB(t object.Template) []*hsmpb.Attribute {
	if t == nil {
		return nil
	}
	out := make([]*hsmpb.Attribute, len(t))
	for i, a := range t {
		out[i] = &hsmpb.Attribute{Type: a.Type, Value: a.Value}
	}
	return out
}

// TemplateFromPB converts wire attributes to a template, keeping the order
// and skipping nil entries. A missing value becomes an empty one.
func TemplateFromPB(attrs []*hsmpb.Attribute) object.Template {
	if attrs == nil {
		return nil
	}
	out := make(object.Template, 0, len(attrs))
	for _, a := range attrs {
		if a == nil {
			continue
		}
		v := a.GetValue()
		if v == nil {
			v = []byte{}
		}
		out = append(out, object.Attribute{Type: a.GetType(), Value: v})
	}
	return out
}

// attrValuesFromPB converts a GetAttributes answer.
func attrValuesFromPB(vs []*hsmpb.AttributeValue) []object.AttrValue {
	out := make([]object.AttrValue, 0, len(vs))
	for _, v := range vs {
		if v == nil {
			continue
		}
		out = append(out, object.AttrValue{Type: v.GetType(), Value: v.GetValue(), RV: v.GetCkr()})
	}
	return out
}

// UserInfo describes a user; it never holds a password hash.
type UserInfo struct {
	Name         string
	Role         string // "CO" or "CU"
	Locked       bool
	FailedLogins int
	Created      time.Time
	Number       uint64 // stable; the PKCS#11 library's slot IDs come from it
}

// Token is a crypto user's token as ListTokens gives it.
type Token struct {
	Name   string
	Number uint64
	Locked bool
}

// MechanismInfo is one mechanism the cluster supports, as CK_MECHANISM_INFO
// (key sizes in bits or bytes, as PKCS#11 says for the mechanism).
type MechanismInfo struct {
	Type       uint64
	MinKeySize uint64
	MaxKeySize uint64
	Flags      uint64 // CKF_ flags
}

// Info describes the node the client talks to and its cluster.
type Info struct {
	Version     string
	ClusterID   string
	Node        string
	Initialized bool // a crypto officer exists
	Mechanisms  []MechanismInfo
}

// ObjectInfo is one object of a ListObjects answer: its handle, owner,
// public attributes and the users it is shared with.
type ObjectInfo struct {
	ID         uint64
	Owner      string
	Attributes object.Template
	SharedWith []string
}

// Attr returns the value of attribute t, if present.
func (o *ObjectInfo) Attr(t uint64) ([]byte, bool) {
	for _, a := range o.Attributes {
		if a.Type == t {
			return a.Value, true
		}
	}
	return nil, false
}

// Ulong returns the CK_ULONG attribute t (canonical eight bytes big-endian).
func (o *ObjectInfo) Ulong(t uint64) (uint64, bool) {
	v, ok := o.Attr(t)
	if !ok || len(v) != 8 {
		return 0, false
	}
	var n uint64
	for _, b := range v {
		n = n<<8 | uint64(b)
	}
	return n, true
}

func infoFromPB(r *hsmpb.InfoResponse) *Info {
	in := &Info{Version: r.GetVersion(), ClusterID: r.GetClusterId(), Node: r.GetNode(), Initialized: r.GetInitialized()}
	for _, m := range r.GetMechanisms() {
		if m == nil {
			continue
		}
		in.Mechanisms = append(in.Mechanisms, MechanismInfo{Type: m.GetType(), MinKeySize: m.GetMinKeySize(), MaxKeySize: m.GetMaxKeySize(), Flags: m.GetFlags()})
	}
	return in
}

func usersFromPB(us []*hsmpb.UserInfo) []UserInfo {
	out := make([]UserInfo, 0, len(us))
	for _, u := range us {
		if u == nil {
			continue
		}
		ui := UserInfo{Name: u.GetName(), Role: u.GetRole(), Locked: u.GetLocked(), FailedLogins: int(u.GetFailedLogins()), Number: u.GetNumber()}
		if u.GetCreatedUnix() != 0 {
			ui.Created = time.Unix(u.GetCreatedUnix(), 0).UTC()
		}
		out = append(out, ui)
	}
	return out
}

func objectsFromPB(os []*hsmpb.ObjectInfo) []ObjectInfo {
	out := make([]ObjectInfo, 0, len(os))
	for _, o := range os {
		if o == nil {
			continue
		}
		out = append(out, ObjectInfo{ID: o.GetObject(), Owner: o.GetOwner(), Attributes: TemplateFromPB(o.GetAttributes()), SharedWith: o.GetSharedWith()})
	}
	return out
}
