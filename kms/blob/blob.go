// Package blob is the KMS ciphertext format for symmetric keys and the
// encoding of the encryption context (docs/kms.md is its description and
// must stay true to this file).
//
// A blob is a 33-byte header (format version, key ID, key version, nonce)
// and the AES-256-GCM ciphertext with its tag. The header names the backing
// key, so Decrypt needs no KeyId; the additional data binds the header, the
// key's partition, region and account, and the encryption context, so none
// of them can change without the blob failing to authenticate. This package
// only lays out bytes: the encryption itself runs in the HSM, under the
// backing key, with the nonce and additional data given here.
package blob

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Sizes of the format.
const (
	Version1  = 0x01
	KeyIDLen  = 16 // a key ID is a UUID
	NonceLen  = 12 // AES-GCM's standard nonce
	TagLen    = 16 // AES-GCM's full tag
	HeaderLen = 1 + KeyIDLen + 4 + NonceLen
	// Overhead is what a blob adds to its plaintext.
	Overhead = HeaderLen + TagLen
)

// ErrInvalid is the error of every blob that is not one: the KMS answers
// it with InvalidCiphertextException and says no more.
var ErrInvalid = errors.New("the ciphertext is not a blob this service made")

// Header is a blob's header.
type Header struct {
	KeyID      [KeyIDLen]byte
	KeyVersion uint32 // 1 is the key's first backing key
	Nonce      [NonceLen]byte
}

// Marshal is the header's HeaderLen bytes.
func (h *Header) Marshal() []byte {
	b := make([]byte, 0, HeaderLen)
	b = append(b, Version1)
	b = append(b, h.KeyID[:]...)
	b = binary.BigEndian.AppendUint32(b, h.KeyVersion)
	return append(b, h.Nonce[:]...)
}

// Parse splits a blob into its header and the ciphertext with its tag. A
// blob shorter than a header and a tag, of another format version, or
// naming key version 0 is ErrInvalid.
func Parse(b []byte) (*Header, []byte, error) {
	if len(b) < Overhead || b[0] != Version1 {
		return nil, nil, ErrInvalid
	}
	h := &Header{KeyVersion: binary.BigEndian.Uint32(b[1+KeyIDLen:])}
	copy(h.KeyID[:], b[1:])
	copy(h.Nonce[:], b[1+KeyIDLen+4:])
	if h.KeyVersion == 0 {
		return nil, nil, ErrInvalid
	}
	return h, b[HeaderLen:], nil
}

// Scope is where a key lives: the parts of its ARN that are not the key ID.
type Scope struct {
	Partition string // "aws"
	Region    string
	Account   string
}

const aadLabel = "openhsm kms ciphertext v1"

// AAD is the additional data of a blob: a label, the key's scope, the
// header's bytes and the encoded encryption context, each part
// length-prefixed.
func AAD(s Scope, header []byte, context map[string]string) []byte {
	b := make([]byte, 0, 64+len(header))
	for _, part := range []string{aadLabel, s.Partition, s.Region, s.Account} {
		b = appendPart(b, []byte(part))
	}
	b = appendPart(b, header)
	return appendPart(b, EncodeContext(context))
}

func appendPart(b, part []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(part)))
	return append(b, part...)
}

// EncodeContext is the encryption context's one encoding: the number of
// pairs, then each key and its value, in increasing byte order of the
// keys, each as a 4-byte big-endian length and its bytes. No two different
// contexts encode alike, whatever bytes their keys and values hold, and
// the order a client sent the pairs in does not matter. A nil and an empty
// context encode alike (four zero bytes).
func EncodeContext(context map[string]string) []byte {
	keys := make([]string, 0, len(context))
	n := 4
	for k, v := range context {
		keys = append(keys, k)
		n += 8 + len(k) + len(v)
	}
	slices.Sort(keys)
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendPart(b, []byte(k))
		b = appendPart(b, []byte(context[k]))
	}
	return b
}

// DecodeContext reads EncodeContext's encoding back. It refuses anything
// EncodeContext would not have written: short or trailing bytes, keys out
// of order or repeated.
func DecodeContext(b []byte) (map[string]string, error) {
	if len(b) < 4 {
		return nil, errors.New("encryption context: too short")
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n)*8 > uint64(len(b)) {
		return nil, errors.New("encryption context: more pairs than bytes")
	}
	out := make(map[string]string, n)
	prev := ""
	for i := uint32(0); i < n; i++ {
		var k, v []byte
		var err error
		if k, b, err = takePart(b); err != nil {
			return nil, err
		}
		if v, b, err = takePart(b); err != nil {
			return nil, err
		}
		if i > 0 && string(k) <= prev {
			return nil, fmt.Errorf("encryption context: keys out of order")
		}
		prev = string(k)
		out[string(k)] = string(v)
	}
	if len(b) != 0 {
		return nil, errors.New("encryption context: bytes after the last pair")
	}
	return out, nil
}

func takePart(b []byte) (part, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errors.New("encryption context: truncated length")
	}
	l := binary.BigEndian.Uint32(b)
	if uint64(l) > uint64(len(b)-4) {
		return nil, nil, errors.New("encryption context: length past the end")
	}
	return b[4 : 4+l], b[4+l:], nil
}
