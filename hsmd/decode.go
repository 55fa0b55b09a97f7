package hsmd

import (
	"errors"
	"fmt"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"

	"github.com/openhsm/openhsm/hsmd/hsmpb"
	"github.com/openhsm/openhsm/state"
)

// Request field bounds. Every field of every request is checked against
// these before anything else happens; a request that fails gets
// InvalidArgument naming the field, and changes nothing.
const (
	maxParamBytes   = 64 << 10
	maxIVBytes      = 256
	maxPointBytes   = 1024
	maxContextBytes = 255
	maxSigBytes     = 16 << 10
	maxFindResults  = 100000
	maxPasswordLen  = passwords.MaxPasswordLen
)

// badField is an InvalidArgument error naming the field.
type badField struct {
	field string
	why   string
	rv    uint64 // the CKR; 0 means CKR_ARGUMENTS_BAD
}

func (e *badField) Error() string { return e.field + ": " + e.why }

func bad(field, format string, args ...any) error {
	return &badField{field: field, why: fmt.Sprintf(format, args...)}
}

// decodeTemplate checks and converts a template.
func decodeTemplate(field string, in []*hsmpb.Attribute) (object.Template, error) {
	if len(in) > object.MaxTemplateAttrs {
		return nil, bad(field, "more than %d attributes", object.MaxTemplateAttrs)
	}
	out := make(object.Template, 0, len(in))
	for i, a := range in {
		if a == nil {
			return nil, bad(fmt.Sprintf("%s[%d]", field, i), "missing")
		}
		if len(a.Value) > object.MaxAttrValue {
			return nil, bad(fmt.Sprintf("%s[%d].value", field, i), "longer than %d bytes", object.MaxAttrValue)
		}
		out = append(out, object.Attribute{Type: a.Type, Value: append([]byte{}, a.Value...)})
	}
	return out, nil
}

func bytesField(field string, b []byte, min, max int) ([]byte, error) {
	if len(b) < min || len(b) > max {
		return nil, bad(field, "length %d is outside %d..%d", len(b), min, max)
	}
	return append([]byte{}, b...), nil
}

// decodeMechanism checks and converts a mechanism and its parameter. That
// the parameter fits the mechanism is the engine's check (its table).
func decodeMechanism(field string, m *hsmpb.Mechanism) (mech.Mech, error) {
	out, err := decodeMechanismFields(field, m)
	var bf *badField
	if errors.As(err, &bf) && bf.field != field {
		// A bad parameter value is what PKCS#11 calls
		// CKR_MECHANISM_PARAM_INVALID.
		bf.rv = ck.CKR_MECHANISM_PARAM_INVALID
	}
	return out, err
}

func decodeMechanismFields(field string, m *hsmpb.Mechanism) (mech.Mech, error) {
	if m == nil {
		return mech.Mech{}, bad(field, "required")
	}
	out := mech.Mech{Type: m.Type}
	var err error
	switch p := m.Param.(type) {
	case nil:
	case *hsmpb.Mechanism_Iv:
		var iv []byte
		if iv, err = bytesField(field+".iv", p.Iv, 0, maxIVBytes); err == nil {
			out.Param = &mech.IVParams{IV: iv}
		}
	case *hsmpb.Mechanism_Gcm:
		g := p.Gcm
		if g == nil {
			return out, bad(field+".gcm", "empty")
		}
		var gp mech.GCMParams
		if gp.IV, err = bytesField(field+".gcm.iv", g.Iv, 1, maxIVBytes); err != nil {
			return out, err
		}
		if gp.AAD, err = bytesField(field+".gcm.aad", g.Aad, 0, maxParamBytes); err != nil {
			return out, err
		}
		if g.TagBits == 0 || g.TagBits > 128 {
			return out, bad(field+".gcm.tag_bits", "must be 1 to 128")
		}
		gp.TagBits = g.TagBits
		out.Param = &gp
	case *hsmpb.Mechanism_Ctr:
		c := p.Ctr
		if c == nil || len(c.Cb) != 16 {
			return out, bad(field+".ctr.cb", "must be 16 bytes")
		}
		if c.CounterBits == 0 || c.CounterBits > 128 {
			return out, bad(field+".ctr.counter_bits", "must be 1 to 128")
		}
		cp := mech.CTRParams{CounterBits: c.CounterBits}
		copy(cp.CB[:], c.Cb)
		out.Param = &cp
	case *hsmpb.Mechanism_Pss:
		if p.Pss == nil {
			return out, bad(field+".pss", "empty")
		}
		if p.Pss.SaltLen > 1024 {
			return out, bad(field+".pss.salt_len", "larger than 1024")
		}
		out.Param = &mech.PSSParams{Hash: p.Pss.Hash, MGF: p.Pss.Mgf, SaltLen: p.Pss.SaltLen}
	case *hsmpb.Mechanism_Oaep:
		o := p.Oaep
		if o == nil {
			return out, bad(field+".oaep", "empty")
		}
		op := mech.OAEPParams{Hash: o.Hash, MGF: o.Mgf, Source: o.Source}
		if op.Label, err = bytesField(field+".oaep.label", o.Label, 0, maxParamBytes); err != nil {
			return out, err
		}
		out.Param = &op
	case *hsmpb.Mechanism_Ecdh:
		e := p.Ecdh
		if e == nil {
			return out, bad(field+".ecdh", "empty")
		}
		ep := mech.ECDHParams{KDF: e.Kdf}
		if ep.PublicData, err = bytesField(field+".ecdh.public_data", e.PublicData, 1, maxPointBytes); err != nil {
			return out, err
		}
		if ep.SharedData, err = bytesField(field+".ecdh.shared_data", e.SharedData, 0, maxPointBytes); err != nil {
			return out, err
		}
		out.Param = &ep
	case *hsmpb.Mechanism_Eddsa:
		e := p.Eddsa
		if e == nil {
			return out, bad(field+".eddsa", "empty")
		}
		ep := mech.EdDSAParams{PHFlag: e.PhFlag}
		if ep.Context, err = bytesField(field+".eddsa.context", e.Context, 0, maxContextBytes); err != nil {
			return out, err
		}
		out.Param = &ep
	case *hsmpb.Mechanism_MacLen:
		if p.MacLen == 0 || p.MacLen > 64 {
			return out, bad(field+".mac_len", "must be 1 to 64")
		}
		out.Param = &mech.MacLenParams{Len: p.MacLen}
	default:
		return out, bad(field, "unknown parameter")
	}
	return out, err
}

func objectID(field string, id uint64) error {
	if id == 0 || id >= 1<<63 {
		return bad(field, "not a valid object id")
	}
	return nil
}

func userName(field, name string) error {
	if err := state.ValidUserName(name); err != nil {
		return bad(field, "%s", errMsg(err))
	}
	return nil
}

func password(field, pw string) error {
	if len(pw) == 0 || len(pw) > maxPasswordLen {
		return bad(field, "must be 1 to %d bytes", maxPasswordLen)
	}
	return nil
}

func dataField(field string, b []byte) error {
	if len(b) > mech.MaxDataLen {
		return bad(field, "longer than %d bytes", mech.MaxDataLen)
	}
	return nil
}

func parseRole(field, s string) (object.Role, error) {
	r, err := object.ParseRole(s)
	if err != nil {
		return 0, bad(field, "must be CO or CU")
	}
	return r, nil
}
