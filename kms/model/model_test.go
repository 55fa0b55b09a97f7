package model

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/model/internal/gen"
)

// model_gen.go must be exactly what the generator makes of the committed
// model: it is never edited by hand.
func TestGeneratedIsCurrent(t *testing.T) {
	gz, err := os.ReadFile("service-2.json.gz")
	require.NoError(t, err)
	want, err := gen.Generate(gz)
	require.NoError(t, err)
	got, err := os.ReadFile("model_gen.go")
	require.NoError(t, err)
	if string(got) != string(want) {
		t.Fatal("model_gen.go is not what the generator makes of service-2.json.gz: run go generate ./kms/model")
	}
}

// README.md names the file it was copied from by its hash.
func TestModelIsTheOneTheReadmeNames(t *testing.T) {
	gz, err := os.ReadFile("service-2.json.gz")
	require.NoError(t, err)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	sum := sha256.Sum256(gz)
	assert.Contains(t, string(readme), hex.EncodeToString(sum[:]))
	assert.Contains(t, string(readme), "botocore 1.43.11")
	md := Metadata()
	assert.Equal(t, "2014-11-01", md.APIVersion)
	assert.Equal(t, "TrentService", md.TargetPrefix)
	assert.Equal(t, "1.1", md.JSONVersion)
}

func i64(n int64) *int64 { return &n }

// The limits issue 10 names, as the generated table has them.
func TestTableHasTheLimits(t *testing.T) {
	for _, r := range []struct {
		shape     string
		typ       Type
		min, max  *int64
		pattern   string
		sensitive bool
	}{
		{"PlaintextType", TypeBlob, i64(1), i64(4096), "", true},
		{"CiphertextType", TypeBlob, i64(1), i64(6144), "", false},
		{"NumberOfBytesType", TypeInteger, i64(1), i64(1024), "", false},
		{"PolicyType", TypeString, i64(1), i64(131072), `[\u0009\u000A\u000D\u0020-\u00FF]+`, false},
		{"AliasNameType", TypeString, i64(1), i64(256), `^[a-zA-Z0-9:/_-]+$`, false},
		{"GrantTokenList", TypeList, i64(0), i64(10), "", false},
		{"GrantTokenType", TypeString, i64(1), i64(8192), "", false},
		{"TagKeyType", TypeString, i64(1), i64(128), "", false},
		{"TagValueType", TypeString, i64(0), i64(256), "", false},
		// The model says 1..365; KMS enforces 7..30 in the service
		// (awsdocs/aws-cloudformation-user-guide PR 326: "the object
		// type ... takes values from 1-365, but KMS code separately
		// enforces a limit of 7-30"). The table keeps the model's; the
		// ScheduleKeyDeletion operation must refuse outside 7..30.
		{"PendingWindowInDaysType", TypeInteger, i64(1), i64(365), "", false},
		{"RotationPeriodInDaysType", TypeInteger, i64(90), i64(2560), "", false},
		{"KeyIdType", TypeString, i64(1), i64(2048), "", false},
	} {
		s, ok := LookupShape(r.shape)
		require.True(t, ok, r.shape)
		assert.Equal(t, r.typ, s.Type, r.shape)
		assert.Equal(t, r.min, s.Min, r.shape)
		assert.Equal(t, r.max, s.Max, r.shape)
		assert.Equal(t, r.pattern, s.Pattern, r.shape)
		assert.Equal(t, r.sensitive, s.Sensitive, r.shape)
	}
	ks, _ := LookupShape("KeySpec")
	assert.Contains(t, ks.Enum, "SYMMETRIC_DEFAULT")
	assert.Contains(t, ks.Enum, "HMAC_512")
	ku, _ := LookupShape("KeyUsageType")
	assert.Equal(t, []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"}, ku.Enum)
}

func TestOperations(t *testing.T) {
	ops := Operations()
	assert.Len(t, ops, 54)
	assert.True(t, slices.IsSorted(ops))
	for _, name := range []string{"CreateKey", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "Sign", "Verify",
		"GenerateMac", "VerifyMac", "ScheduleKeyDeletion", "CreateAlias", "TagResource", "RotateKeyOnDemand",
		"GetParametersForImport", "ImportKeyMaterial", "PutKeyPolicy", "ListKeyPolicies"} {
		assert.Contains(t, ops, name)
	}
	for _, name := range ops {
		op, ok := LookupOperation(name)
		require.True(t, ok)
		in, ok := LookupShape(op.Input)
		require.True(t, ok, name)
		assert.Equal(t, TypeStructure, in.Type, name)
		for _, e := range op.Errors {
			es, ok := LookupShape(e)
			require.True(t, ok, e)
			assert.True(t, es.Exception, "%s declares %s, which is not an exception shape", name, e)
		}
	}
	enc, _ := LookupOperation("Encrypt")
	assert.Contains(t, enc.Errors, "InvalidKeyUsageException")
	assert.Contains(t, enc.Errors, "DryRunOperationException")
	_, ok := LookupOperation("Nope")
	assert.False(t, ok)
}
