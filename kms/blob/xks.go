package blob

import "crypto/sha256"

// An external key store's blob (docs/kms.md, "Ciphertext blob") has the
// same header as every blob; its body is an XKS envelope instead of the
// bare AES-GCM ciphertext and tag. The KMS first encrypts under the key's
// backing key in this cluster's HSM (the inner layer, the body of an
// ordinary blob) and then has the XKS proxy encrypt that inner body under
// the external key (the outer layer). The envelope keeps what the proxy
// answered, so the proxy's Decrypt can be given it back:
//
//	envelope := 0x01 || len(iv) (1) || iv || len(tag) (1) || tag ||
//	            len(metadata) (1) || metadata || outer ciphertext
//
// The proxy is given XKSAAD as its additional data: a digest of the inner
// layer's additional data, which binds the blob's header, the key's scope
// and the encryption context without showing the proxy the context.

// XKSEnvelope is the proxy's part of an external key store's blob.
type XKSEnvelope struct {
	IV         []byte // 12 or 16 bytes
	Tag        []byte // 16 bytes
	Metadata   []byte // ciphertextMetadata, at most 20 bytes
	Ciphertext []byte // the proxy's ciphertext of the inner body
}

const xksEnvelopeV1 = 0x01

// Marshal lays e out. It answers nil when a field is out of the format's
// bounds, which the caller treats as an invalid proxy answer.
func (e *XKSEnvelope) Marshal() []byte {
	if (len(e.IV) != 12 && len(e.IV) != 16) || len(e.Tag) != TagLen || len(e.Metadata) > 20 || len(e.Ciphertext) == 0 {
		return nil
	}
	b := make([]byte, 0, 4+len(e.IV)+len(e.Tag)+len(e.Metadata)+len(e.Ciphertext))
	b = append(b, xksEnvelopeV1, byte(len(e.IV)))
	b = append(b, e.IV...)
	b = append(b, byte(len(e.Tag)))
	b = append(b, e.Tag...)
	b = append(b, byte(len(e.Metadata)))
	b = append(b, e.Metadata...)
	return append(b, e.Ciphertext...)
}

// ParseXKSEnvelope reads Marshal's layout back; anything else is
// ErrInvalid.
func ParseXKSEnvelope(b []byte) (*XKSEnvelope, error) {
	take := func(ok func(n int) bool) ([]byte, bool) {
		if len(b) < 1 || !ok(int(b[0])) || len(b) < 1+int(b[0]) {
			return nil, false
		}
		n := int(b[0])
		out := b[1 : 1+n]
		b = b[1+n:]
		return out, true
	}
	if len(b) < 1 || b[0] != xksEnvelopeV1 {
		return nil, ErrInvalid
	}
	b = b[1:]
	e := &XKSEnvelope{}
	var ok bool
	if e.IV, ok = take(func(n int) bool { return n == 12 || n == 16 }); !ok {
		return nil, ErrInvalid
	}
	if e.Tag, ok = take(func(n int) bool { return n == TagLen }); !ok {
		return nil, ErrInvalid
	}
	if e.Metadata, ok = take(func(n int) bool { return n <= 20 }); !ok {
		return nil, ErrInvalid
	}
	if len(b) == 0 {
		return nil, ErrInvalid
	}
	e.Ciphertext = b
	return e, nil
}

// XKSAAD is the additional data the proxy is given for a blob whose inner
// layer's additional data is innerAAD.
func XKSAAD(innerAAD []byte) []byte {
	h := sha256.Sum256(append([]byte("openhsm kms xks v1\x00"), innerAAD...))
	return h[:]
}
