package engine

import (
	"crypto/rand"
	"encoding"
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
)

// C_DigestKey (docs/pkcs11-library.md, "C_DigestKey"; the rule on which
// keys: object.Digestible). The library runs digests itself; when the
// application feeds a key, the library sends the hash's state, which holds
// only data the application gave, and the daemon feeds the key's value
// into it. From then on the digest runs here: the state goes back sealed
// (AES-GCM under seal.DigestStateKey, bound to the caller and the
// mechanism), because a hash's state holds its last partial block as it
// is, and that would be key bytes. Later updates and the final call come
// back with the sealed state.

// maxHashState bounds a clear or sealed state: Go's SHA-1, SHA-2 and SHA-3
// states are a few hundred bytes.
const maxHashState = 1024

// DigestKeyRequest is one step of a digest that runs in the HSM.
type DigestKeyRequest struct {
	Mech   mech.Mech
	State  []byte // the hash's clear state (the first step)
	Sealed []byte // or what the previous step answered
	Key    uint64 // 0: no key this step
	Data   []byte // fed after the key
	Final  bool
}

// DigestKey runs one step: it answers a new sealed state, or with Final the
// digest.
func (e *Engine) DigestKey(c Caller, r DigestKeyRequest) ([]byte, error) {
	if c.Role != object.RoleCO && c.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	h, ok := mech.RunningHash(r.Mech.Type)
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "%s is not a digest that can take a key", ck.MechName(r.Mech.Type))
	}
	if err := mech.CheckData("data", r.Data); err != nil {
		return nil, err
	}
	if (r.State == nil) == (r.Sealed == nil) || len(r.State) > maxHashState || len(r.Sealed) > maxHashState+64 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "give either a clear or a sealed digest state")
	}
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	aead, err := seal.NewGCM(s.DigestStateKey())
	if err != nil {
		return nil, err
	}
	aad := digestStateAAD(c.User, r.Mech.Type)
	state := r.State
	if r.Sealed != nil {
		ns := aead.NonceSize()
		if len(r.Sealed) < ns {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the sealed digest state is not one this cluster made")
		}
		state, err = aead.Open(nil, r.Sealed[:ns], r.Sealed[ns:], aad)
		if err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the sealed digest state is not one this cluster made for this user")
		}
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the digest state is not one of %s", ck.MechName(r.Mech.Type))
	}
	if r.Key != 0 {
		value, err := e.digestibleValue(c, r.Key)
		if err != nil {
			return nil, err
		}
		h.Write(value)
	}
	h.Write(r.Data)
	if r.Final {
		return h.Sum(nil), nil
	}
	next, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, next, aad), nil
}

// digestibleValue is the value of a key the caller may use and
// object.Digestible allows.
func (e *Engine) digestibleValue(c Caller, id uint64) ([]byte, error) {
	// A role that may use no key (a crypto officer) is refused first.
	if err := object.Allowed(c.Role, object.ActUse, object.RelOwner); err != nil {
		return nil, err
	}
	o, so, err := e.lookup(c, id, object.ActUse)
	if err != nil {
		if hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID) {
			err = hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "no such key")
		}
		return nil, err
	}
	if !object.IsKeyClass(o.Class()) {
		return nil, hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "the object is not a key")
	}
	if err := object.Digestible(o.Attrs); err != nil {
		return nil, err
	}
	k, err := e.keyOf(o, so)
	if err != nil {
		return nil, err
	}
	if len(k.Secret) == 0 {
		return nil, hsmerr.Errorf(ck.CKR_KEY_INDIGESTIBLE, "the key has no value")
	}
	return k.Secret, nil
}

func digestStateAAD(user string, mt uint64) []byte {
	b := []byte("openhsm digest key state v1")
	b = binary.BigEndian.AppendUint64(b, mt)
	b = binary.BigEndian.AppendUint16(b, uint16(len(user)))
	return append(b, user...)
}
