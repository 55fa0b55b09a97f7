package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bodies AWS's decoder refuses, and what it says. The messages for JSON
// types are those of AWS's Coral JSON decoder as recorded against real
// services: "Start of list found where not expected", "Start of structure
// or map found where not expected.", "Expected list or null", "Expected
// map or null", "Expected null" (kinesalite's test/helpers.js, run against
// Kinesis, AWS JSON 1.1) and "NUMBER_VALUE can not be converted to a
// String", "TRUE_VALUE ..." (floci's SES v2 tests, checked against AWS in
// 2026). A body that is not JSON, or no body, is a SerializationException
// with no message (kinesalite's test/connection.js); AWS answers an
// invalid base64 blob with SerializationException too (nsmithuk/local-kms
// issue 5), in the words kinesalite recorded.
func TestSerialization(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	for _, r := range []struct {
		name, op, body, msg string
	}{
		{"no body", "ListKeys", "", ""},
		{"blank body", "ListKeys", " \n\t", ""},
		{"not JSON", "ListKeys", "hello", ""},
		{"unterminated", "ListKeys", `{"Limit":1`, ""},
		{"trailing data", "ListKeys", `{}x`, ""},
		{"two values", "ListKeys", `{} {}`, ""},
		{"single quotes", "ListKeys", `{'Limit':1}`, ""},
		{"trailing comma", "ListKeys", `{"Limit":1,}`, ""},
		{"invalid UTF-8", "DescribeKey", "{\"KeyId\":\"\xff\"}", ""},
		{"lone high surrogate", "DescribeKey", `{"KeyId":"\ud800"}`, ""},
		{"lone low surrogate", "DescribeKey", `{"KeyId":"a\udc00"}`, ""},
		{"high surrogate then a letter", "DescribeKey", `{"KeyId":"\ud800\u0041"}`, ""},
		{"surrogate in an ignored member", "DescribeKey", `{"KeyId":"k","X":"\udbff"}`, ""},
		{"nesting too deep", "DescribeKey", `{"KeyId":"k","X":` + deep + `}`, ""},

		{"body is a list", "ListKeys", `[]`, "Start of list found where not expected"},
		{"body is a number", "ListKeys", `5`, "Expected null"},
		{"body is a string", "ListKeys", `"x"`, "Expected null"},

		{"string as number", "DescribeKey", `{"KeyId":5}`, "NUMBER_VALUE can not be converted to a String"},
		{"string as true", "DescribeKey", `{"KeyId":true}`, "TRUE_VALUE can not be converted to a String"},
		{"string as false", "DescribeKey", `{"KeyId":false}`, "FALSE_VALUE can not be converted to a String"},
		{"string as list", "DescribeKey", `{"KeyId":["k"]}`, "Start of list found where not expected"},
		{"string as object", "DescribeKey", `{"KeyId":{"k":1}}`, "Start of structure or map found where not expected."},

		{"integer as string", "GenerateRandom", `{"NumberOfBytes":"32"}`, "STRING_VALUE can not be converted to an Integer"},
		{"integer as true", "GenerateRandom", `{"NumberOfBytes":true}`, "TRUE_VALUE can not be converted to an Integer"},
		{"integer as list", "GenerateRandom", `{"NumberOfBytes":[1]}`, "Start of list found where not expected"},
		{"integer fractional", "GenerateRandom", `{"NumberOfBytes":1.5}`, "NUMBER_VALUE can not be converted to an Integer"},
		{"integer past 32 bits", "GenerateRandom", `{"NumberOfBytes":2147483648}`, "NUMBER_VALUE can not be converted to an Integer"},
		{"integer below 32 bits", "GenerateRandom", `{"NumberOfBytes":-2147483649}`, "NUMBER_VALUE can not be converted to an Integer"},
		{"integer huge exponent", "GenerateRandom", `{"NumberOfBytes":1e999999999999}`, "NUMBER_VALUE can not be converted to an Integer"},
		{"integer tiny", "GenerateRandom", `{"NumberOfBytes":1e-999999999999}`, "NUMBER_VALUE can not be converted to an Integer"},

		{"boolean as string", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","DryRun":"true"}`, "STRING_VALUE can not be converted to a Boolean"},
		{"boolean as number", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","DryRun":1}`, "NUMBER_VALUE can not be converted to a Boolean"},
		{"boolean as object", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","DryRun":{}}`, "Start of structure or map found where not expected."},

		{"list as string", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","GrantTokens":"g"}`, "Expected list or null"},
		{"list as object", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","GrantTokens":{}}`, "Start of structure or map found where not expected."},
		{"list element as number", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","GrantTokens":["g",5]}`, "NUMBER_VALUE can not be converted to a String"},
		{"map as string", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","EncryptionContext":"a=b"}`, "Expected map or null"},
		{"map as list", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","EncryptionContext":[]}`, "Start of list found where not expected"},
		{"map value as number", "Encrypt", `{"KeyId":"k","Plaintext":"AA==","EncryptionContext":{"a":1}}`, "NUMBER_VALUE can not be converted to a String"},
		{"structure as string", "Decrypt", `{"CiphertextBlob":"AA==","Recipient":"x"}`, "Expected null"},
		{"structure as list", "Decrypt", `{"CiphertextBlob":"AA==","Recipient":[]}`, "Start of list found where not expected"},
		{"list element structure as number", "TagResource", `{"KeyId":"k","Tags":[5]}`, "Expected null"},

		{"timestamp as string", "ImportKeyMaterial", `{"KeyId":"k","ImportToken":"AA==","EncryptedKeyMaterial":"AA==","ValidTo":"2030-01-01T00:00:00Z"}`,
			"STRING_VALUE can not be converted to a Timestamp"},
		{"timestamp past year 9999", "ImportKeyMaterial", `{"KeyId":"k","ImportToken":"AA==","EncryptedKeyMaterial":"AA==","ValidTo":1e12}`,
			"NUMBER_VALUE can not be converted to a Timestamp"},

		{"blob as number", "Decrypt", `{"CiphertextBlob":5}`, "NUMBER_VALUE can not be converted to a Blob"},
		{"blob length", "Decrypt", `{"CiphertextBlob":"23456"}`, "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
		{"blob padding first", "Decrypt", `{"CiphertextBlob":"=+/="}`, "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"},
		{"blob last character", "Decrypt", `{"CiphertextBlob":"+/+="}`, "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"},
		{"blob three pads", "Decrypt", `{"CiphertextBlob":"a==="}`, "'a===' can not be converted to a Blob: Invalid Base64 character: '='"},
		{"blob URL alphabet", "Decrypt", `{"CiphertextBlob":"-_8="}`, "'-_8=' can not be converted to a Blob: Invalid Base64 character: '-'"},
		{"blob with a newline", "Decrypt", `{"CiphertextBlob":"YWJj\nYWJj"}`, "'YWJj\nYWJj' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 9"},
		{"blob with spaces", "Decrypt", `{"CiphertextBlob":"YW Jj"}`, "'YW Jj' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
		{"blob with a space", "Decrypt", `{"CiphertextBlob":"YW J"}`, "'YW J' can not be converted to a Blob: Invalid Base64 character: ' '"},
		{"blob unpadded", "Decrypt", `{"CiphertextBlob":"YQ"}`, "'YQ' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 2"},
		{"sensitive blob", "Encrypt", `{"KeyId":"k","Plaintext":"c2Vj!"}`, "Value can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"},

		// The first bad member in document order, as a streaming decoder
		// meets it.
		{"first in document order", "GenerateDataKey", `{"NumberOfBytes":"x","KeyId":5}`, "STRING_VALUE can not be converted to an Integer"},
		{"first in document order, other way", "GenerateDataKey", `{"KeyId":5,"NumberOfBytes":"x"}`, "NUMBER_VALUE can not be converted to a String"},
		{"a bad duplicate", "DescribeKey", `{"KeyId":5,"KeyId":"k"}`, "NUMBER_VALUE can not be converted to a String"},
	} {
		t.Run(r.name, func(t *testing.T) {
			got, err := Validate(r.op, []byte(r.body))
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			assert.Nil(t, got)
			assert.Equal(t, SerializationException, e.Exception)
			assert.Equal(t, r.msg, e.Message)
			assert.Empty(t, e.Violations)
		})
	}
}

// What the decoder accepts, and how it reads it.
func TestDecodeAccepts(t *testing.T) {
	for _, r := range []struct {
		name, op, body string
		want           Object
	}{
		{"empty object", "ListKeys", `{}`, Object{}},
		{"null body", "ListKeys", `null`, Object{}},
		{"whitespace around", "ListKeys", " {\"Limit\": 5}\n", Object{"Limit": int64(5)}},
		{"unknown members ignored", "DescribeKey", `{"KeyId":"k","keyid":5,"Extra":{"a":[1,{"b":null}]}}`, Object{"KeyId": "k"}},
		{"null member is absent", "DescribeKey", `{"KeyId":"k","GrantTokens":null}`, Object{"KeyId": "k"}},
		{"last duplicate wins", "DescribeKey", `{"KeyId":"a","KeyId":"b"}`, Object{"KeyId": "b"}},
		{"null duplicate removes", "DescribeKey", `{"KeyId":"k","GrantTokens":["a"],"GrantTokens":null}`, Object{"KeyId": "k"}},
		{"integer written as 1.0", "GenerateRandom", `{"NumberOfBytes":32.0}`, Object{"NumberOfBytes": int64(32)}},
		{"integer with exponent", "GenerateRandom", `{"NumberOfBytes":3.2e1}`, Object{"NumberOfBytes": int64(32)}},
		{"surrogate pair", "DescribeKey", `{"KeyId":"\ud83d\ude00"}`, Object{"KeyId": "😀"}},
		{"escapes", "DescribeKey", `{"KeyId":"a\/b\u0041"}`, Object{"KeyId": "a/bA"}},
		{"empty blob decodes to no bytes", "Verify", `{"KeyId":"k","Message":"AA==","Signature":"AA==","SigningAlgorithm":"ECDSA_SHA_256"}`,
			Object{"KeyId": "k", "Message": []byte{0}, "Signature": []byte{0}, "SigningAlgorithm": "ECDSA_SHA_256"}},
		{"nesting at the limit in an ignored member", "DescribeKey", `{"KeyId":"k","X":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`,
			Object{"KeyId": "k"}},
	} {
		t.Run(r.name, func(t *testing.T) {
			got, err := Validate(r.op, []byte(r.body))
			require.NoError(t, err)
			assert.Equal(t, r.want, got)
		})
	}
}

// Nulls where the model wants values: a required member, a list element,
// a map value.
func TestNulls(t *testing.T) {
	for _, r := range []struct {
		op, body, msg string
	}{
		{"DescribeKey", `{"KeyId":null}`,
			"1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"DescribeKey", `{"KeyId":"k","GrantTokens":["a",null]}`,
			"1 validation error detected: Value '[a, null]' at 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: " +
				"[Member must have length less than or equal to 8192, Member must have length greater than or equal to 1, Member must not be null]"},
		{"Encrypt", `{"KeyId":"k","Plaintext":"AA==","EncryptionContext":{"a":"1","b":null}}`,
			"1 validation error detected: Value '{a=1, b=null}' at 'encryptionContext' failed to satisfy constraint: Map value must satisfy constraint: [Member must not be null]"},
		{"TagResource", `{"KeyId":"k","Tags":[null]}`,
			"1 validation error detected: Value null at 'tags.1.member' failed to satisfy constraint: Member must not be null"},
	} {
		_, err := Validate(r.op, []byte(r.body))
		var e *Error
		require.True(t, errors.As(err, &e), r.body)
		assert.Equal(t, ValidationException, e.Exception, r.body)
		assert.Equal(t, r.msg, e.Message, r.body)
	}
}

func TestUnknownOperation(t *testing.T) {
	for _, op := range []string{"", "Nope", "encrypt", "TrentService.Encrypt"} {
		_, err := Validate(op, []byte(`{}`))
		var e *Error
		require.True(t, errors.As(err, &e))
		assert.Equal(t, &Error{Exception: UnknownOperationException}, e)
		assert.Equal(t, "UnknownOperationException", e.Error())
	}
}

func TestDecimalInt(t *testing.T) {
	for _, r := range []struct {
		num       string
		scale     int
		v         int64
		exact, ok bool
	}{
		{"0", 0, 0, true, true}, {"-0", 0, 0, true, true}, {"12", 0, 12, true, true}, {"-12", 0, -12, true, true},
		{"1.0", 0, 1, true, true}, {"1.50", 0, 1, false, true}, {"-1.5", 0, -1, false, true}, {"0.5", 0, 0, false, true},
		{"1e3", 0, 1000, true, true}, {"1E+3", 0, 1000, true, true}, {"100e-2", 0, 1, true, true}, {"12e-1", 0, 1, false, true},
		{"9223372036854775807", 0, 9223372036854775807, true, true}, {"-9223372036854775808", 0, -9223372036854775808, true, true},
		{"9223372036854775808", 0, 0, true, false}, {"1e19", 0, 0, true, false}, {"1e99999999999", 0, 0, true, false},
		{"1e-99999999999", 0, 0, false, true}, {"0e99999999999", 0, 0, true, true},
		{"1700000000.1234", 3, 1700000000123, false, true}, {"1700000000", 3, 1700000000000, true, true},
		{"-1.0009", 3, -1000, false, true},
	} {
		v, exact, ok := decimalInt(r.num, r.scale)
		assert.Equal(t, r.ok, ok, r.num)
		if r.ok {
			assert.Equal(t, r.v, v, r.num)
			assert.Equal(t, r.exact, exact, r.num)
		}
	}
}
