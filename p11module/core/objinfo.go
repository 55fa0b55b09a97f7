package core

import (
	"crypto"
	"encoding/binary"
	"sync"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
)

// objInfo is what the library keeps of an object to answer PKCS#11's checks
// where PKCS#11 wants them answered: a key's type and usage at C_SignInit,
// an object's CKA_TOKEN before a change in a read-only session. The daemon
// checks everything again when the operation runs.
type objInfo struct {
	class, keyType uint64
	token          bool
	usage          map[uint64]bool // CKA_SIGN, CKA_ENCRYPT, ...
	allowed        []uint64        // CKA_ALLOWED_MECHANISMS; empty: any
	// public is a public key object's key (from CKA_PUBLIC_KEY_INFO):
	// verifying and encrypting with it need no secret, so they run here.
	public crypto.PublicKey
}

var infoAttrs = []uint64{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_TOKEN, ck.CKA_SIGN, ck.CKA_VERIFY,
	ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_DERIVE, ck.CKA_ALLOWED_MECHANISMS,
	ck.CKA_PUBLIC_KEY_INFO,
	// sign and verify with recovery (lifecycle.go)
	ck.CKA_SIGN_RECOVER, ck.CKA_VERIFY_RECOVER}

// infoCache is per slot, since what a login may see depends on who it is.
type infoCache struct {
	mu sync.Mutex
	m  map[uint64]*objInfo
}

func (ic *infoCache) get(id uint64) *objInfo {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.m[id]
}

func (ic *infoCache) put(id uint64, oi *objInfo) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.m == nil || len(ic.m) > 65536 {
		ic.m = map[uint64]*objInfo{}
	}
	ic.m[id] = oi
}

func (ic *infoCache) forget(id uint64) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	delete(ic.m, id)
}

func (ic *infoCache) clear() {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.m = nil
}

// objectInfo returns an object's info, asking the daemon the first time.
func (m *Module) objectInfo(sl *slot, c *client.Client, id uint64) (*objInfo, error) {
	if id == 0 {
		return nil, errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no object 0")
	}
	if oi := sl.info.get(id); oi != nil {
		return oi, nil
	}
	ctx, cancel := m.ctx()
	defer cancel()
	vals, err := c.GetAttributes(ctx, id, infoAttrs)
	if err != nil {
		return nil, err
	}
	oi := &objInfo{usage: map[uint64]bool{}, keyType: ^uint64(0)}
	var spki []byte
	for _, v := range vals {
		if v.RV != ck.CKR_OK {
			continue
		}
		switch v.Type {
		case ck.CKA_CLASS:
			if len(v.Value) == 8 {
				oi.class = binary.BigEndian.Uint64(v.Value)
			}
		case ck.CKA_KEY_TYPE:
			if len(v.Value) == 8 {
				oi.keyType = binary.BigEndian.Uint64(v.Value)
			}
		case ck.CKA_TOKEN:
			oi.token = len(v.Value) == 1 && v.Value[0] == 1
		case ck.CKA_ALLOWED_MECHANISMS:
			for i := 0; i+8 <= len(v.Value); i += 8 {
				oi.allowed = append(oi.allowed, binary.BigEndian.Uint64(v.Value[i:]))
			}
		case ck.CKA_PUBLIC_KEY_INFO:
			spki = v.Value
		default:
			oi.usage[v.Type] = len(v.Value) == 1 && v.Value[0] == 1
		}
	}
	if oi.class == ck.CKO_PUBLIC_KEY && spki != nil {
		if pub, err := mech.ParsePKIXPublicKey(spki); err == nil {
			oi.public = pub
		}
	}
	sl.info.put(id, oi)
	return oi, nil
}

// checkKey answers at C_*Init what the operation would answer later: the
// key exists and is visible, has a type the mechanism takes, has the usage
// attribute set, and allows the mechanism.
func (m *Module) checkKey(sl *slot, c *client.Client, key uint64, row *mech.Mechanism, mech uint64, usage uint64) error {
	oi, err := m.objectInfo(sl, c, key)
	if err != nil {
		if hsmerr.RV(err) == ck.CKR_OBJECT_HANDLE_INVALID {
			return errorf(ck.CKR_KEY_HANDLE_INVALID, "no such key")
		}
		return err
	}
	if oi.class != ck.CKO_SECRET_KEY && oi.class != ck.CKO_PRIVATE_KEY && oi.class != ck.CKO_PUBLIC_KEY {
		return errorf(ck.CKR_KEY_HANDLE_INVALID, "the object is not a key")
	}
	if len(row.KeyTypes) > 0 {
		found := false
		for _, kt := range row.KeyTypes {
			found = found || kt == oi.keyType
		}
		if !found {
			return errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "%s does not take a %s key", ck.MechName(mech), ck.KeyTypeName(oi.keyType))
		}
	}
	if !oi.usage[usage] {
		return errorf(ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "the key's %s is not set", ck.AttrName(usage))
	}
	if len(oi.allowed) > 0 {
		ok := false
		for _, a := range oi.allowed {
			ok = ok || a == mech
		}
		if !ok {
			return errorf(ck.CKR_MECHANISM_INVALID, "%s is not in the key's CKA_ALLOWED_MECHANISMS", ck.MechName(mech))
		}
	}
	return nil
}

// localKey returns the public key to verify or encrypt with here, or nil
// when the operation must run in the HSM.
func (m *Module) localKey(sl *slot, key uint64) *mech.Key {
	oi := sl.info.get(key)
	if oi == nil || oi.class != ck.CKO_PUBLIC_KEY || oi.public == nil {
		return nil
	}
	return &mech.Key{Class: ck.CKO_PUBLIC_KEY, KeyType: oi.keyType, Public: oi.public}
}

// checkWritable refuses a change to a token object in a read-only session.
func (m *Module) checkWritable(s *session, c *client.Client, id uint64) error {
	if s.rw {
		return nil
	}
	oi, err := m.objectInfo(s.slot, c, id)
	if err != nil {
		return err
	}
	if oi.token {
		return errorf(ck.CKR_SESSION_READ_ONLY, "token objects change only in a read-write session")
	}
	return nil
}
