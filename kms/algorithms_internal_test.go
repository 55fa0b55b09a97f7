package kms

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/kms/kmserr"
)

// TestMessageTypeRule: each signing algorithm family with each message
// type and message length, and the exception and message it gets ("" is
// allowed). No row lets EXTERNAL_MU or an ML-DSA DIGEST through to a
// mechanism.
func TestMessageTypeRule(t *testing.T) {
	rows := []struct {
		alg, spec, mt string
		n             int
		typ, msg      string
	}{
		{"ML_DSA_SHAKE_256", "ML_DSA_65", "RAW", 1, "", ""},
		{"ML_DSA_SHAKE_256", "ML_DSA_65", "RAW", 4096, "", ""},
		{"ML_DSA_SHAKE_256", "ML_DSA_44", "DIGEST", 64, kmserr.Validation, "Message type DIGEST is incompatible with key spec ML_DSA_44."},
		{"ML_DSA_SHAKE_256", "ML_DSA_87", "DIGEST", 32, kmserr.Validation, "Message type DIGEST is incompatible with key spec ML_DSA_87."},
		{"ML_DSA_SHAKE_256", "ML_DSA_65", "EXTERNAL_MU", 64, kmserr.UnsupportedOperation, errExternalMu.Message},
		{"ML_DSA_SHAKE_256", "ML_DSA_65", "EXTERNAL_MU", 63, kmserr.UnsupportedOperation, errExternalMu.Message},
		{"ECDSA_SHA_256", "ECC_NIST_P256", "EXTERNAL_MU", 64, kmserr.Validation, "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_P256."},
		{"RSASSA_PSS_SHA_256", "RSA_2048", "EXTERNAL_MU", 64, kmserr.Validation, "Message type EXTERNAL_MU is incompatible with key spec RSA_2048."},
		{"ECDSA_SHA_384", "ECC_NIST_P384", "DIGEST", 48, "", ""},
		{"ECDSA_SHA_384", "ECC_NIST_P384", "DIGEST", 32, kmserr.Validation, "Digest is invalid length for algorithm ECDSA_SHA_384."},
		{"RSASSA_PKCS1_V1_5_SHA_512", "RSA_4096", "RAW", 4096, "", ""},
	}
	for _, r := range rows {
		t.Run(r.alg+"/"+r.spec+"/"+r.mt, func(t *testing.T) {
			a, ok := signAlgs[r.alg]
			require.True(t, ok)
			err := messageTypeRule(a, r.alg, r.spec, r.mt, r.n)
			if r.typ == "" {
				assert.NoError(t, err)
				return
			}
			var e *kmserr.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, r.typ, e.Type)
			assert.Equal(t, r.msg, e.Message)
		})
	}
}

// TestMLDSAMechanism: ML_DSA_SHAKE_256 is CKM_ML_DSA with no parameter
// (hedged, empty context) over the message as given.
func TestMLDSAMechanism(t *testing.T) {
	a := signAlgs["ML_DSA_SHAKE_256"]
	msg := []byte("the message")
	m, data := a.mechanism("RAW", msg)
	assert.Equal(t, uint64(ck.CKM_ML_DSA), m.Type)
	assert.Nil(t, m.Param)
	assert.Equal(t, msg, data)
}
