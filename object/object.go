package object

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// Attrs holds attribute values in their canonical encoding (see attr.go):
// CK_BBOOL one byte, CK_ULONG eight bytes big-endian, byte strings as is.
// Attrs never holds secret key material: that lives sealed in Object.Sealed.
type Attrs map[uint64][]byte

// Object is a PKCS#11 object as the engine and the store see it.
type Object struct {
	ID    uint64 // random, chosen before apply; never 0
	Owner string // the crypto user who made it
	Attrs Attrs  // every non-secret attribute, CKA_CLASS and CKA_LABEL included
	// Sealed is the AES-256-GCM ciphertext of the secret material (a secret
	// key's value, or a private key's PKCS#8), bound to ID and Owner. Nil for
	// public keys, certificates and data objects.
	Sealed []byte
	// SharedWith lists, sorted, the crypto users the owner shared the key with.
	SharedWith []string
	// MAC binds Attrs to ID, Owner and Sealed (Sealer.AttrMAC); apply sets it.
	MAC []byte
}

// Class returns CKA_CLASS.
func (o *Object) Class() uint64 { v, _ := o.Attrs.Ulong(0x0); return v }

// KeyType returns CKA_KEY_TYPE, or ^0 for objects that are not keys.
func (o *Object) KeyType() uint64 {
	v, ok := o.Attrs.Ulong(0x100)
	if !ok {
		return ^uint64(0)
	}
	return v
}

// Bool returns a CK_BBOOL attribute, false when absent.
func (a Attrs) Bool(t uint64) bool {
	v, ok := a[t]
	return ok && len(v) == 1 && v[0] == 1
}

// Ulong returns a CK_ULONG attribute.
func (a Attrs) Ulong(t uint64) (uint64, bool) {
	v, ok := a[t]
	if !ok || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// SetBool sets a CK_BBOOL attribute.
func (a Attrs) SetBool(t uint64, b bool) { a[t] = EncodeBool(b) }

// SetUlong sets a CK_ULONG attribute.
func (a Attrs) SetUlong(t uint64, v uint64) { a[t] = EncodeUlong(v) }

// Clone returns a deep copy.
func (a Attrs) Clone() Attrs {
	c := make(Attrs, len(a))
	for k, v := range a {
		c[k] = append([]byte(nil), v...)
	}
	return c
}

// EncodeBool is the canonical CK_BBOOL encoding.
func EncodeBool(b bool) []byte {
	if b {
		return []byte{1}
	}
	return []byte{0}
}

// EncodeUlong is the canonical CK_ULONG encoding.
func EncodeUlong(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// Clone returns a deep copy of the object.
func (o *Object) Clone() *Object {
	c := *o
	c.Attrs = o.Attrs.Clone()
	c.Sealed = append([]byte(nil), o.Sealed...)
	if o.Sealed == nil {
		c.Sealed = nil
	}
	c.SharedWith = append([]string(nil), o.SharedWith...)
	c.MAC = append([]byte(nil), o.MAC...)
	return &c
}

// MarshalAttrs encodes attributes deterministically: sorted by type, each as
// type (8 bytes), length (4 bytes), value. This is the form the store keeps
// and the form the attribute MAC covers.
func MarshalAttrs(a Attrs) []byte {
	keys := make([]uint64, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var b bytes.Buffer
	for _, k := range keys {
		var h [12]byte
		binary.BigEndian.PutUint64(h[:8], k)
		binary.BigEndian.PutUint32(h[8:], uint32(len(a[k])))
		b.Write(h[:])
		b.Write(a[k])
	}
	return b.Bytes()
}

// UnmarshalAttrs decodes what MarshalAttrs wrote. It refuses truncated
// input, duplicate or unsorted types.
func UnmarshalAttrs(b []byte) (Attrs, error) {
	a := Attrs{}
	var last uint64
	for first := true; len(b) > 0; first = false {
		if len(b) < 12 {
			return nil, fmt.Errorf("attributes: truncated header")
		}
		t := binary.BigEndian.Uint64(b[:8])
		n := binary.BigEndian.Uint32(b[8:12])
		b = b[12:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("attributes: truncated value of 0x%x", t)
		}
		if !first && t <= last {
			return nil, fmt.Errorf("attributes: type 0x%x out of order", t)
		}
		a[t] = append([]byte{}, b[:n]...)
		b = b[n:]
		last = t
	}
	return a, nil
}
