package model

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzValidate: for any operation and any body, Validate never panics and
// answers an accepted input or an *Error of a known exception; an accepted
// input marshals to a body that validates to the same input.
func FuzzValidate(f *testing.F) {
	ops := Operations()
	index := map[string]uint8{}
	for i, op := range ops {
		index[op] = uint8(i)
	}
	for _, s := range []struct{ op, body string }{
		{"Encrypt", `{"KeyId":"alias/k","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"},"GrantTokens":["t"]}`},
		{"Decrypt", `{"CiphertextBlob":"AQID","Recipient":{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"AA=="}}`},
		{"GenerateDataKey", `{"KeyId":"k","NumberOfBytes":32,"KeySpec":"AES_256"}`},
		{"CreateKey", `{"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY","Tags":[{"TagKey":"a","TagValue":"b"}]}`},
		{"CreateGrant", `{"KeyId":"k","GranteePrincipal":"p","Operations":["Decrypt"],"Constraints":{"EncryptionContextSubset":{"a":"b"}}}`},
		{"ImportKeyMaterial", `{"KeyId":"k","ImportToken":"AA==","EncryptedKeyMaterial":"AA==","ValidTo":1.5e9}`},
		{"ScheduleKeyDeletion", `{"KeyId":"k","PendingWindowInDays":7}`},
		{"PutKeyPolicy", `{"KeyId":"k","Policy":"{\"a\":\"\u00ff\"}"}`},
		{"ListKeys", `null`},
		{"ListKeys", `{"Limit":1e2,"Marker":"\ud83d\ude00"}`},
		{"TagResource", `{"KeyId":"k","Tags":[null,{"TagKey":5}]}`},
		{"Encrypt", `{"KeyId":5,"KeyId":"k"`},
	} {
		f.Add(index[s.op], []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := ops[int(opIndex)%len(ops)]
		in, err := Validate(op, body)
		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e), "%T", err)
			require.Contains(t, []string{ValidationException, SerializationException}, e.Exception)
			require.Nil(t, in)
			require.Equal(t, e.Exception == ValidationException, len(e.Violations) > 0)
			return
		}
		again, err := Marshal(in)
		require.NoError(t, err)
		in2, err := Validate(op, again)
		require.NoError(t, err, "%s accepted %q but not its re-encoding %q", op, body, again)
		require.Equal(t, in, in2)
	})
}

func BenchmarkValidateEncrypt(b *testing.B) {
	body := []byte(`{"KeyId":"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",` +
		`"Plaintext":"` + b64(256) + `","EncryptionContext":{"purpose":"test","team":"kms"}}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Validate("Encrypt", body); err != nil {
			b.Fatal(err)
		}
	}
}
