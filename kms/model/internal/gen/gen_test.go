package gen

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A small model in botocore's form; each refusal below changes one thing.
const small = `{
  "version": "2.0",
  "metadata": {"apiVersion": "2014-11-01", "protocol": "json", "jsonVersion": "1.1", "targetPrefix": "TrentService",
               "uid": "kms-2014-11-01", "serviceId": "KMS"},
  "operations": {
    "Op": {"name": "Op", "http": {"method": "POST", "requestUri": "/"}, "input": {"shape": "OpRequest"},
           "errors": [{"shape": "BadException"}], "documentation": "d"}
  },
  "shapes": {
    "OpRequest": {"type": "structure", "required": ["Name"], "members": {
      "Name": {"shape": "NameType", "documentation": "d"},
      "Count": {"shape": "CountType"}
    }},
    "NameType": {"type": "string", "min": 1, "max": 8, "pattern": "^[a-z]+$"},
    "CountType": {"type": "integer", "min": 1, "max": 9},
    "BadException": {"type": "structure", "members": {"message": {"shape": "NameType"}}, "exception": true}
  }
}`

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestGenerateSmall(t *testing.T) {
	src, err := Generate(gz(t, small))
	require.NoError(t, err)
	out := string(src)
	assert.Contains(t, out, `"Op": {Name: "Op", Input: "OpRequest", Output: "", Errors: []string{"BadException"}}`)
	assert.Contains(t, out, "Pattern: `^[a-z]+$`")
	assert.Contains(t, out, `{Name: "Name", Shape: "NameType", Required: true},`)
	assert.Contains(t, out, `Min: bound(1), Max: bound(9)`)
	// Members keep the model's order, not the alphabet's.
	assert.Less(t, strings.Index(out, `{Name: "Name"`), strings.Index(out, `{Name: "Count"`))
	again, err := Generate(gz(t, small))
	require.NoError(t, err)
	assert.Equal(t, src, again, "the output is deterministic")
}

func TestGenerateRefuses(t *testing.T) {
	for name, change := range map[string][3]string{
		"unknown shape key":        {`"type": "integer", "min": 1`, `"type": "integer", "box": true, "min": 1`, `does not know`},
		"unknown type":             {`"type": "integer"`, `"type": "double"`, `does not know`},
		"pattern on an integer":    {`"type": "integer", "min": 1`, `"type": "integer", "pattern": "[0-9]+", "min": 1`, `cannot carry`},
		"untranslatable pattern":   {`"pattern": "^[a-z]+$"`, `"pattern": "(?!aws:)[a-z]+"`, `not translated`},
		"dangling shape reference": {`"Count": {"shape": "CountType"}`, `"Count": {"shape": "Nowhere"}`, `does not define`},
		"unknown member key":       {`"Count": {"shape": "CountType"}`, `"Count": {"shape": "CountType", "idempotencyToken": true}`, `does not know`},
		"unknown operation key":    {`"documentation": "d"}`, `"documentation": "d", "httpChecksum": {}}`, `does not know`},
		"another protocol":         {`"protocol": "json"`, `"protocol": "rest-json"`, `AWS JSON 1.1`},
		"required non-member":      {`"required": ["Name"]`, `"required": ["Name", "Other"]`, `not a member`},
		"fractional bound":         {`"max": 9}`, `"max": 9.5}`, `not an integer`},
		"min above max":            {`"min": 1, "max": 9}`, `"min": 10, "max": 9}`, `min 10 > max 9`},
		"undefined error shape":    {`[{"shape": "BadException"}]`, `[{"shape": "GoodException"}]`, `does not define`},
	} {
		m := strings.Replace(small, change[0], change[1], 1)
		require.NotEqual(t, small, m, name)
		_, err := Generate(gz(t, m))
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), change[2], name)
		}
	}
	_, err := Generate([]byte("not gzip"))
	assert.Error(t, err)
}
