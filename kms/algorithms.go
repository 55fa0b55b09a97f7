package kms

import (
	"crypto"
	_ "crypto/sha1" // OAEP with SHA-1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/hex"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
)

// The algorithm tables: each AWS algorithm name and the PKCS#11
// mechanism the HSM runs it with. Signing takes the mechanism that hashes
// for a RAW message and the bare one for a DIGEST; an RSA PKCS #1 v1.5
// signature over a digest is CKM_RSA_PKCS over the DigestInfo; PSS salts
// are the hash's length, as AWS's are; ECDSA signatures travel as DER.

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
