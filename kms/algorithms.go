package kms

import (
	"crypto"
	_ "crypto/sha1" // OAEP with SHA-1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/hex"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/mech"
)

// The algorithm tables: each AWS algorithm name and the PKCS#11
// mechanism the HSM runs it with. Signing takes the mechanism that hashes
// for a RAW message and the bare one for a DIGEST; an RSA PKCS #1 v1.5
// signature over a digest is CKM_RSA_PKCS over the DigestInfo; PSS salts
// are the hash's length, as AWS's are; ECDSA signatures travel as DER.
// ML_DSA_SHAKE_256 is CKM_ML_DSA without a parameter: pure ML-DSA (FIPS 204
// ML-DSA.Sign, hedged, with an empty context) over the RAW message; it has
// no DIGEST form, and its EXTERNAL_MU form is refused (messageTypeRule).

// signAlg is one signing algorithm.
type signAlg struct {
	hash       crypto.Hash
	raw        uint64 // the mechanism for MessageType RAW
	digest     uint64 // the mechanism for MessageType DIGEST
	pss        bool
	ecdsa      bool
	digestInfo string // hex DigestInfo prefix, PKCS #1 v1.5 over a digest
	hashMech   uint64 // PSS: CKM_SHAxxx
	mgf        uint64 // PSS: CKG_MGF1_SHAxxx
	mldsa      bool   // ML-DSA: RAW or EXTERNAL_MU, never DIGEST
}

var signAlgs = map[string]signAlg{
	"RSASSA_PKCS1_V1_5_SHA_256": {hash: crypto.SHA256, raw: ck.CKM_SHA256_RSA_PKCS, digest: ck.CKM_RSA_PKCS, digestInfo: "3031300d060960864801650304020105000420"},
	"RSASSA_PKCS1_V1_5_SHA_384": {hash: crypto.SHA384, raw: ck.CKM_SHA384_RSA_PKCS, digest: ck.CKM_RSA_PKCS, digestInfo: "3041300d060960864801650304020205000430"},
	"RSASSA_PKCS1_V1_5_SHA_512": {hash: crypto.SHA512, raw: ck.CKM_SHA512_RSA_PKCS, digest: ck.CKM_RSA_PKCS, digestInfo: "3051300d060960864801650304020305000440"},
	"RSASSA_PSS_SHA_256":        {hash: crypto.SHA256, raw: ck.CKM_SHA256_RSA_PKCS_PSS, digest: ck.CKM_RSA_PKCS_PSS, pss: true, hashMech: ck.CKM_SHA256, mgf: ck.CKG_MGF1_SHA256},
	"RSASSA_PSS_SHA_384":        {hash: crypto.SHA384, raw: ck.CKM_SHA384_RSA_PKCS_PSS, digest: ck.CKM_RSA_PKCS_PSS, pss: true, hashMech: ck.CKM_SHA384, mgf: ck.CKG_MGF1_SHA384},
	"RSASSA_PSS_SHA_512":        {hash: crypto.SHA512, raw: ck.CKM_SHA512_RSA_PKCS_PSS, digest: ck.CKM_RSA_PKCS_PSS, pss: true, hashMech: ck.CKM_SHA512, mgf: ck.CKG_MGF1_SHA512},
	"ECDSA_SHA_256":             {hash: crypto.SHA256, raw: ck.CKM_ECDSA_SHA256, digest: ck.CKM_ECDSA, ecdsa: true},
	"ECDSA_SHA_384":             {hash: crypto.SHA384, raw: ck.CKM_ECDSA_SHA384, digest: ck.CKM_ECDSA, ecdsa: true},
	"ECDSA_SHA_512":             {hash: crypto.SHA512, raw: ck.CKM_ECDSA_SHA512, digest: ck.CKM_ECDSA, ecdsa: true},
	"ML_DSA_SHAKE_256":          {raw: ck.CKM_ML_DSA, mldsa: true},
}

// errExternalMu answers MessageType EXTERNAL_MU on an ML-DSA key. Signing
// or verifying from a caller's mu needs FIPS 204's ML-DSA.Sign_internal and
// Verify_internal, which circl v1.6.5 (our ML-DSA) does not export; we
// refuse rather than sign anything else (docs/kms.md).
var errExternalMu = kmserr.New(kmserr.UnsupportedOperation, "MessageType EXTERNAL_MU is not supported by this service: "+
	"sign the message itself with MessageType RAW (up to 4096 bytes)")

// messageTypeRule is the refusal, if any, of a message type with a
// signing algorithm on a key of spec, for a message of msgLen bytes.
// Checked in this order; the model has already refused other values.
func messageTypeRule(a signAlg, algName, spec, mt string, msgLen int) error {
	switch {
	case mt == "DIGEST" && a.mldsa, mt == "EXTERNAL_MU" && !a.mldsa:
		return kmserr.New(kmserr.Validation, "Message type %s is incompatible with key spec %s.", mt, spec)
	case mt == "EXTERNAL_MU":
		return errExternalMu
	case mt == "DIGEST" && msgLen != a.hash.Size():
		return kmserr.New(kmserr.Validation, "Digest is invalid length for algorithm %s.", algName)
	}
	return nil
}

// mechanism is the PKCS#11 mechanism of a signing algorithm for a message
// type, and the data to give it.
func (a signAlg) mechanism(messageType string, msg []byte) (mech.Mech, []byte) {
	m := mech.Mech{Type: a.raw}
	data := msg
	if messageType == "DIGEST" {
		m.Type = a.digest
		if a.digestInfo != "" {
			prefix, _ := hex.DecodeString(a.digestInfo)
			data = append(prefix, msg...)
		}
	}
	if a.pss {
		m.Param = &mech.PSSParams{Hash: a.hashMech, MGF: a.mgf, SaltLen: uint64(a.hash.Size())}
	}
	return m, data
}

// macAlgs maps a MAC algorithm to its mechanism and the key spec it needs.
var macAlgs = map[string]struct {
	mech uint64
	spec string
}{
	"HMAC_SHA_224": {ck.CKM_SHA224_HMAC, "HMAC_224"},
	"HMAC_SHA_256": {ck.CKM_SHA256_HMAC, "HMAC_256"},
	"HMAC_SHA_384": {ck.CKM_SHA384_HMAC, "HMAC_384"},
	"HMAC_SHA_512": {ck.CKM_SHA512_HMAC, "HMAC_512"},
}

// oaepAlgs maps an RSA encryption algorithm to its OAEP parameters.
var oaepAlgs = map[string]*mech.OAEPParams{
	"RSAES_OAEP_SHA_1":   {Hash: ck.CKM_SHA_1, MGF: ck.CKG_MGF1_SHA1},
	"RSAES_OAEP_SHA_256": {Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256},
}

// dataKeyBytes is GenerateDataKey's KeySpec.
var dataKeyBytes = map[string]int{"AES_128": 16, "AES_256": 32}
