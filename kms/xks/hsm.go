package xks

import (
	"context"
	"errors"
	"strconv"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// HSMBackend is the Backend over this cluster's HSM: an external key is
// an AES-256 key of one crypto user (User), found by its CKA_LABEL, the
// external key ID. A key ID may name several such keys: CKA_ID holds each
// one's version as decimal digits (none is version 1), and encryption uses
// the highest. A key is ENABLED while it may both encrypt and decrypt.
type HSMBackend struct {
	Engine *engine.Engine
	User   string // the crypto user whose keys the proxy serves
	// Nodes reports the cluster's nodes; nil reports this node alone, as
	// active while the engine can reach its domain key.
	Nodes func(ctx context.Context) []NodeHealth
}

var _ Backend = (*HSMBackend)(nil)

func (b *HSMBackend) caller() engine.Caller {
	return engine.Caller{User: b.User, Role: object.RoleCU}
}

// hsmKey is one version of an external key.
type hsmKey struct {
	id      uint64
	version uint32
	enabled bool
}

// versions finds the AES-256 keys labelled keyID.
func (b *HSMBackend) versions(keyID string) ([]hsmKey, error) {
	c := b.caller()
	ids, err := b.Engine.FindObjects(c, object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_KEY_TYPE, Value: object.EncodeUlong(ck.CKK_AES)},
		{Type: ck.CKA_LABEL, Value: []byte(keyID)},
	}, 64)
	if err != nil {
		return nil, hsmError(err)
	}
	var out []hsmKey
	for _, id := range ids {
		// Only the user's own keys: another user could share a key
		// labelled with this key ID and a higher version, and so read
		// everything encrypted under it afterwards.
		if own, err := b.Engine.Owned(c, id); err != nil {
			return nil, hsmError(err)
		} else if !own {
			continue
		}
		vals, err := b.Engine.GetAttributes(c, id, []uint64{ck.CKA_ID, ck.CKA_VALUE_LEN, ck.CKA_ENCRYPT, ck.CKA_DECRYPT})
		if err != nil {
			return nil, hsmError(err)
		}
		attrs := object.Attrs{}
		for _, v := range vals {
			if v.RV == ck.CKR_OK {
				attrs[v.Type] = v.Value
			}
		}
		if n, ok := attrs.Ulong(ck.CKA_VALUE_LEN); !ok || n != 32 {
			continue
		}
		v := uint32(1)
		if raw := attrs[ck.CKA_ID]; len(raw) > 0 {
			n, err := strconv.ParseUint(string(raw), 10, 32)
			if err != nil || n == 0 {
				continue
			}
			v = uint32(n)
		}
		out = append(out, hsmKey{id: id, version: v, enabled: attrs.Bool(ck.CKA_ENCRYPT) && attrs.Bool(ck.CKA_DECRYPT)})
	}
	if len(out) == 0 {
		return nil, ErrKeyNotFound
	}
	return out, nil
}

func current(ks []hsmKey) hsmKey {
	best := ks[0]
	for _, k := range ks[1:] {
		if k.version > best.version {
			best = k
		}
	}
	return best
}

// KeyMetadata implements Backend.
func (b *HSMBackend) KeyMetadata(_ context.Context, keyID string) (Metadata, error) {
	ks, err := b.versions(keyID)
	if err != nil {
		return Metadata{}, err
	}
	status := KeyDisabled
	if current(ks).enabled {
		status = KeyEnabled
	}
	return Metadata{KeySpec: "AES_256", KeyUsage: []string{"ENCRYPT", "DECRYPT"}, KeyStatus: status}, nil
}

func gcmMech(iv, aad []byte) mech.Mech {
	return mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: iv, AAD: aad, TagBits: 128}}
}

// Encrypt implements Backend.
func (b *HSMBackend) Encrypt(_ context.Context, keyID string, plaintext, aad, iv []byte) ([]byte, []byte, uint32, error) {
	ks, err := b.versions(keyID)
	if err != nil {
		return nil, nil, 0, err
	}
	k := current(ks)
	if !k.enabled {
		return nil, nil, 0, ErrKeyDisabled
	}
	out, err := b.Engine.Encrypt(b.caller(), k.id, gcmMech(iv, aad), plaintext)
	if err != nil {
		return nil, nil, 0, hsmError(err)
	}
	n := len(out) - 16
	return out[:n], out[n:], k.version, nil
}

// Decrypt implements Backend.
func (b *HSMBackend) Decrypt(_ context.Context, keyID string, keyVersion uint32, ciphertext, aad, iv, tag []byte) ([]byte, error) {
	ks, err := b.versions(keyID)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		if k.version != keyVersion {
			continue
		}
		if !k.enabled {
			return nil, ErrKeyDisabled
		}
		pt, err := b.Engine.Decrypt(b.caller(), k.id, gcmMech(iv, aad), append(append([]byte(nil), ciphertext...), tag...))
		if err != nil {
			return nil, hsmError(err)
		}
		return pt, nil
	}
	return nil, ErrInvalidCiphertext
}

// Health implements Backend.
func (b *HSMBackend) Health(ctx context.Context) []NodeHealth {
	if b.Nodes != nil {
		return b.Nodes(ctx)
	}
	st := HealthActive
	if _, err := b.Engine.Sealer(); err != nil {
		st = HealthUnavailable
	}
	return []NodeHealth{{ID: "node", Model: "openhsm", Status: st}}
}

// hsmError maps the HSM's refusals to the proxy's errors.
func hsmError(err error) error {
	switch {
	case hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_INVALID), hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE):
		return ErrInvalidCiphertext
	case hsmerr.IsRV(err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED):
		return ErrKeyDisabled
	case hsmerr.IsRV(err, ck.CKR_DEVICE_ERROR):
		return errors.Join(ErrDependencyTimeout, err)
	}
	return err
}
