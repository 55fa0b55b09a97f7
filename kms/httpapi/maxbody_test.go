package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/model"
)

// escaped is s as a JSON string with every character written as a \u
// escape (two for a character outside the BMP): the longest form of s.
func escaped(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r > 0xffff {
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, hi, lo)
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	b.WriteByte('"')
	return b.String()
}

// b64 is a JSON string of n bytes in base64 ('/' as "\/", its longest
// form; no encoder escapes the other base64 characters).
func b64(n int) string {
	s := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff, 0xfe, 0xfd}, n/3+1)[:n])
	return `"` + strings.ReplaceAll(s, "/", `\/`) + `"`
}

// The characters of the longest strings: the longest escape each
// member's pattern allows.
const (
	latin1 = "\u00e9"     // a policy's characters are at most U+00FF
	astral = "\U0001F511" // members without a pattern take any character
)

func many(s string, n int) string { return strings.Repeat(s, n) }

// largestRequests are the largest valid requests of the operations with
// the largest members: every string member at its maximum length in its
// longest characters, fully escaped; blobs at their maximum, in base64;
// lists at their maximum (Tags, which the model leaves unbounded, at
// AWS's quota of 50 per key).
func largestRequests() map[string]string {
	policy := escaped(many(latin1, 131072))
	keyID := escaped(many(astral, 2048))
	grantTokens := "[" + strings.TrimSuffix(many(escaped(many(astral, 8192))+",", 10), ",") + "]"
	recipient := `{"KeyEncryptionAlgorithm":` + escaped("RSAES_OAEP_SHA_256") +
		`,"AttestationDocument":` + b64(262144) + `}`
	tag := `{"TagKey":` + escaped(many(astral, 128)) + `,"TagValue":` + escaped(many(astral, 256)) + `}`
	tags := "[" + strings.TrimSuffix(many(tag+",", 50), ",") + "]"
	return map[string]string{
		"PutKeyPolicy": `{"KeyId":` + keyID + `,"PolicyName":` + escaped(many("a", 128)) +
			`,"Policy":` + policy + `,"BypassPolicyLockoutSafetyCheck":true}`,
		"CreateKey": `{"Policy":` + policy + `,"Description":` + escaped(many(astral, 8192)) +
			`,"KeyUsage":` + escaped("ENCRYPT_DECRYPT") + `,"CustomerMasterKeySpec":` + escaped("SYMMETRIC_DEFAULT") +
			`,"KeySpec":` + escaped("SYMMETRIC_DEFAULT") + `,"Origin":` + escaped("EXTERNAL_KEY_STORE") +
			`,"CustomKeyStoreId":` + escaped(many(astral, 64)) + `,"BypassPolicyLockoutSafetyCheck":false` +
			`,"Tags":` + tags + `,"MultiRegion":false,"XksKeyId":` + escaped(many("x", 128)) + `}`,
		"DeriveSharedSecret": `{"KeyId":` + keyID + `,"KeyAgreementAlgorithm":` + escaped("ECDH") +
			`,"PublicKey":` + b64(8192) + `,"GrantTokens":` + grantTokens + `,"DryRun":false,"Recipient":` + recipient + `}`,
		"Decrypt": `{"CiphertextBlob":` + b64(6144) + `,"GrantTokens":` + grantTokens + `,"KeyId":` + keyID +
			`,"EncryptionAlgorithm":` + escaped("RSAES_OAEP_SHA_256") + `,"Recipient":` + recipient + `,"DryRun":false}`,
	}
}

// TestDefaultMaxBodyHoldsTheLargestRequests: each largest request is
// valid, fits DefaultMaxBody, and reaches the operation through the
// handler; one byte more than the bound is refused.
func TestDefaultMaxBodyHoldsTheLargestRequests(t *testing.T) {
	for op, body := range largestRequests() {
		t.Run(op, func(t *testing.T) {
			_, err := model.Validate(op, []byte(body))
			require.NoError(t, err, "the request is valid")
			t.Logf("%s: %d bytes (%.0f%% of DefaultMaxBody)", op, len(body), 100*float64(len(body))/DefaultMaxBody)
			assert.LessOrEqual(t, len(body), DefaultMaxBody)

			f := newFixture(t, Config{})
			r := kmsRequest(op, []byte(body))
			sign(t, r, []byte(body), testAKID, testSecret)
			w := f.serve(r)
			assert.Equal(t, http.StatusOK, w.Code, "answer: %.300s", w.Body.String())
			assert.EqualValues(t, 1, f.svc.calls.Load())
		})
	}
	t.Run("one byte over", func(t *testing.T) {
		body := []byte(largestRequests()["PutKeyPolicy"])
		body = append(body, bytes.Repeat([]byte(" "), DefaultMaxBody+1-len(body))...)
		f := newFixture(t, Config{})
		r := kmsRequest("PutKeyPolicy", body)
		sign(t, r, body, testAKID, testSecret)
		w := f.serve(r)
		assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		typ, _, _ := errorAnswer(t, w)
		assert.Equal(t, RequestEntityTooLarge, typ)
		assert.Zero(t, f.svc.calls.Load())
	})
}
