package xks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// The ciphertextMetadata this proxy returns (docs/xks.md, "ciphertextMetadata"):
//
//	byte 0       format, metadataFormat (1)
//	bytes 1-4    the key version the HSM encrypted with, big-endian
//	bytes 5-19   the first 15 bytes of HMAC-SHA256(MetadataKey, macInput)
//
// 20 bytes, the spec's maximum. macInput binds the metadata to the
// external key ID, the key version, the IV and the authentication tag (the
// tag in turn authenticates the ciphertext and the AAD under that key
// version and IV), so a changed or moved metadata is refused before the
// HSM is asked.
const (
	metadataFormat = 1
	metadataLen    = 20
	metadataMACLen = metadataLen - 5
	// MetadataKeySize is the size of Config.MetadataKey.
	MetadataKeySize = 32
)

// metadataLabel separates this MAC's inputs from any other use of the key.
const metadataLabel = "openhsm xks ciphertextMetadata v1\x00"

func metadataMAC(key []byte, keyID string, version uint32, iv, tag []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(metadataLabel))
	m.Write([]byte{byte(len(keyID))})
	m.Write([]byte(keyID))
	m.Write(binary.BigEndian.AppendUint32(nil, version))
	m.Write([]byte{byte(len(iv))})
	m.Write(iv)
	m.Write(tag)
	return m.Sum(nil)[:metadataMACLen]
}

// sealMetadata makes the ciphertextMetadata of one encryption.
func sealMetadata(key []byte, keyID string, version uint32, iv, tag []byte) []byte {
	md := make([]byte, 0, metadataLen)
	md = append(md, metadataFormat)
	md = binary.BigEndian.AppendUint32(md, version)
	return append(md, metadataMAC(key, keyID, version, iv, tag)...)
}

// openMetadata checks md against the other parts of a Decrypt request and
// answers the key version it carries.
func openMetadata(key []byte, keyID string, md, iv, tag []byte) (uint32, bool) {
	if len(md) != metadataLen || md[0] != metadataFormat {
		return 0, false
	}
	version := binary.BigEndian.Uint32(md[1:5])
	want := metadataMAC(key, keyID, version, iv, tag)
	return version, hmac.Equal(md[5:], want)
}

// gcmAAD is the AAD handed to the HSM's AES-GCM, framed as the spec's
// Encrypt section asks: the 2-byte big-endian length of the caller's AAD,
// the AAD, then the 1-byte length of the ciphertextMetadata placed in the
// GCM AAD and that metadata. This proxy places none there (length 0): its
// metadata holds the key version, which the HSM chooses during the
// encryption, so the metadata is authenticated by its own MAC instead.
func gcmAAD(aad []byte) []byte {
	out := make([]byte, 0, 3+len(aad))
	out = binary.BigEndian.AppendUint16(out, uint16(len(aad)))
	out = append(out, aad...)
	return append(out, 0)
}

// cdiv is the Ciphertext Data Integrity Value of the spec's Appendix C:
// SHA-256 over aad || metadata || iv || ciphertext || tag (absent parts
// are empty).
func cdiv(aad, md, iv, ct, tag []byte) []byte {
	h := sha256.New()
	for _, p := range [][]byte{aad, md, iv, ct, tag} {
		h.Write(p)
	}
	return h.Sum(nil)
}
