package api

// The conversions of the key derivation and ChaCha20-Poly1305 mechanism
// parameters: CK_HKDF_PARAMS, CK_SP800_108_KDF_PARAMS and
// CK_SALSA20_CHACHA20_POLY1305_PARAMS.

import (
	"fmt"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/mech"
)

// Bounds of the KDF parameters.
const (
	MaxKDFDataParams = 64 // SP 800-108 data parameters, as the C layer has it
	MaxNonceBytes    = 64
)

func kdfFromPB(field string, out mech.Mech, p any) (mech.Mech, error) {
	var err error
	switch p := p.(type) {
	case *hsmpb.Mechanism_Hkdf:
		h := p.Hkdf
		if h == nil {
			return out, badParam(field+".hkdf", "empty")
		}
		hp := mech.HKDFParams{Extract: h.Extract, Expand: h.Expand, PRF: h.Prf, SaltType: h.SaltType, SaltKey: h.SaltKey}
		if hp.Salt, err = bytesField(field+".hkdf.salt", h.Salt, 0, MaxParamBytes); err != nil {
			return out, err
		}
		if hp.Info, err = bytesField(field+".hkdf.info", h.Info, 0, MaxParamBytes); err != nil {
			return out, err
		}
		out.Param = &hp
	case *hsmpb.Mechanism_Kdf108:
		k := p.Kdf108
		if k == nil {
			return out, badParam(field+".kdf108", "empty")
		}
		if len(k.Data) > MaxKDFDataParams {
			return out, badParam(field+".kdf108.data", "more than %d data parameters", MaxKDFDataParams)
		}
		kp := mech.KDF108Params{PRF: k.Prf, AdditionalKeys: k.AdditionalKeys}
		for i, d := range k.Data {
			f := fmt.Sprintf("%s.kdf108.data[%d]", field, i)
			if d == nil {
				return out, badParam(f, "missing")
			}
			kd := mech.KDF108Data{Type: d.Type, LittleEndian: d.LittleEndian, WidthBits: d.WidthBits, DKMMethod: d.DkmMethod}
			if kd.Bytes, err = bytesField(f+".bytes", d.Bytes, 0, MaxParamBytes); err != nil {
				return out, err
			}
			kp.Data = append(kp.Data, kd)
		}
		out.Param = &kp
	case *hsmpb.Mechanism_Chacha:
		c := p.Chacha
		if c == nil {
			return out, badParam(field+".chacha", "empty")
		}
		var cp mech.ChaChaParams
		if cp.Nonce, err = bytesField(field+".chacha.nonce", c.Nonce, 1, MaxNonceBytes); err != nil {
			return out, err
		}
		if cp.AAD, err = bytesField(field+".chacha.aad", c.Aad, 0, MaxParamBytes); err != nil {
			return out, err
		}
		out.Param = &cp
	}
	return out, nil
}

// kdfToPB sets pb.Param from a non-nil KDF or ChaCha parameter; a nil
// pointer is no parameter.
func kdfToPB(pb *hsmpb.Mechanism, p any) {
	switch p := p.(type) {
	case *mech.HKDFParams:
		if p != nil {
			pb.Param = &hsmpb.Mechanism_Hkdf{Hkdf: &hsmpb.HkdfParams{Extract: p.Extract, Expand: p.Expand, Prf: p.PRF,
				SaltType: p.SaltType, Salt: p.Salt, SaltKey: p.SaltKey, Info: p.Info}}
		}
	case *mech.KDF108Params:
		if p != nil {
			k := &hsmpb.Kdf108Params{Prf: p.PRF, AdditionalKeys: p.AdditionalKeys}
			for _, d := range p.Data {
				k.Data = append(k.Data, &hsmpb.Kdf108Data{Type: d.Type, LittleEndian: d.LittleEndian, WidthBits: d.WidthBits,
					DkmMethod: d.DKMMethod, Bytes: d.Bytes})
			}
			pb.Param = &hsmpb.Mechanism_Kdf108{Kdf108: k}
		}
	case *mech.ChaChaParams:
		if p != nil {
			pb.Param = &hsmpb.Mechanism_Chacha{Chacha: &hsmpb.ChachaParams{Nonce: p.Nonce, Aad: p.AAD}}
		}
	}
}
