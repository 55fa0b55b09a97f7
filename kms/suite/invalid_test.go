package suite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	okms "github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/kms/httpapi"
	"github.com/openhsm/openhsm/kms/model"
)

// fixtures are the keys of a region that the table's requests name.
type fixtures struct {
	region                                     string
	sym, sym2, rsaEnc, ecc, hmac, ext, dis, pd string
	mldsa                                      string // ML_DSA_44
	alias, alias2                              string
	ec                                         map[string]string
	blob, sig, mac                             []byte
}

func makeFixtures(t *testing.T, tg *target, region string) *fixtures {
	t.Helper()
	c := tg.client(region)
	ctx := t.Context()
	f := &fixtures{region: region, ec: map[string]string{"table": "suite"}}
	f.sym, f.sym2, f.dis, f.pd = newSymmetric(t, c), newSymmetric(t, c), newSymmetric(t, c), newSymmetric(t, c)
	f.rsaEnc = newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	f.ecc = newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	f.hmac = newKey(t, c, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac)
	f.mldsa = newKey(t, c, types.KeySpecMlDsa44, types.KeyUsageTypeSignVerify)
	f.ext = aws.ToString(createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).Arn)
	f.alias, f.alias2 = newAlias(), newAlias()
	for a, k := range map[string]string{f.alias: f.sym, f.alias2: f.sym2} {
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(a), TargetKeyId: aws.String(k)})
		require.NoError(t, err)
	}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(f.sym), Plaintext: []byte("table"), EncryptionContext: f.ec})
	require.NoError(t, err)
	f.blob = enc.CiphertextBlob
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.ecc), Message: []byte("table"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	require.NoError(t, err)
	f.sig = sig.Signature
	mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(f.hmac), Message: []byte("table"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	require.NoError(t, err)
	f.mac = mac.Mac
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(f.dis)})
	require.NoError(t, err)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(f.pd), PendingWindowInDays: aws.Int32(30)})
	require.NoError(t, err)
	return f
}

// baseRequests are a valid request of every operation the service
// implements, on the fixtures; the generated cases change one member.
func baseRequests(f *fixtures) map[string]model.Object {
	ec := map[string]any{}
	for k, v := range f.ec {
		ec[k] = v
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account +
		`:root"},"Action":"kms:*","Resource":"*"}]}`
	return map[string]model.Object{
		"CancelKeyDeletion": {"KeyId": f.pd},
		"CreateAlias":       {"AliasName": "alias/table-new-" + randHex(4), "TargetKeyId": f.sym},
		"CreateKey":         {"Description": "table"},
		"CreateGrant":       {"KeyId": f.sym, "GranteePrincipal": "arn:aws:iam::" + account + ":user/table", "Operations": []any{"Encrypt"}},
		"ListGrants":        {"KeyId": f.sym},
		"CreateCustomKeyStore": {"CustomKeyStoreName": "table-" + randHex(4), "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
			"XksProxyUriEndpoint": "https://xks.example.com", "XksProxyUriPath": "/kms/xks/v1", "XksProxyConnectivity": "PUBLIC_ENDPOINT",
			"XksProxyAuthenticationCredential": model.Object{"AccessKeyId": "ABCDEFGHIJKLMNOPQRST", "RawSecretAccessKey": strings.Repeat("s", 43)}},
		"DescribeCustomKeyStores": {},
		"UpdateCustomKeyStore": {"CustomKeyStoreId": "cks-0123456789abcdef0",
			"XksProxyAuthenticationCredential": model.Object{"AccessKeyId": "ABCDEFGHIJKLMNOPQRST", "RawSecretAccessKey": strings.Repeat("s", 43)}},
		"ConnectCustomKeyStore":               {"CustomKeyStoreId": "cks-0123456789abcdef0"},
		"DisconnectCustomKeyStore":            {"CustomKeyStoreId": "cks-0123456789abcdef0"},
		"DeleteCustomKeyStore":                {"CustomKeyStoreId": "cks-0123456789abcdef0"},
		"ListRetirableGrants":                 {"RetiringPrincipal": "arn:aws:iam::" + account + ":user/table"},
		"RetireGrant":                         {"KeyId": f.sym, "GrantId": strings.Repeat("0", 64)},
		"RevokeGrant":                         {"KeyId": f.sym, "GrantId": strings.Repeat("0", 64)},
		"Decrypt":                             {"CiphertextBlob": f.blob, "EncryptionContext": ec, "KeyId": f.sym},
		"DeleteAlias":                         {"AliasName": f.alias2},
		"DeleteImportedKeyMaterial":           {"KeyId": f.ext},
		"DescribeKey":                         {"KeyId": f.sym},
		"DisableKey":                          {"KeyId": f.sym2},
		"DisableKeyRotation":                  {"KeyId": f.sym},
		"EnableKey":                           {"KeyId": f.sym2},
		"EnableKeyRotation":                   {"KeyId": f.sym, "RotationPeriodInDays": int64(365)},
		"Encrypt":                             {"KeyId": f.sym, "Plaintext": []byte("table"), "EncryptionContext": ec},
		"GenerateDataKey":                     {"KeyId": f.sym, "NumberOfBytes": int64(32), "EncryptionContext": ec},
		"GenerateDataKeyPair":                 {"KeyId": f.sym, "KeyPairSpec": "ECC_NIST_P256"},
		"GenerateDataKeyPairWithoutPlaintext": {"KeyId": f.sym, "KeyPairSpec": "ECC_NIST_P256"},
		"GenerateDataKeyWithoutPlaintext":     {"KeyId": f.sym, "NumberOfBytes": int64(32)},
		"GenerateMac":                         {"KeyId": f.hmac, "Message": []byte("table"), "MacAlgorithm": "HMAC_SHA_256"},
		"GenerateRandom":                      {"NumberOfBytes": int64(32)},
		"GetKeyPolicy":                        {"KeyId": f.sym, "PolicyName": "default"},
		"GetKeyRotationStatus":                {"KeyId": f.sym},
		"GetParametersForImport":              {"KeyId": f.ext, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"},
		"GetPublicKey":                        {"KeyId": f.ecc},
		"ImportKeyMaterial":                   {"KeyId": f.ext, "ImportToken": []byte("not an import token"), "EncryptedKeyMaterial": randBytes(256)},
		"ListAliases":                         {},
		"ListKeyPolicies":                     {"KeyId": f.sym},
		"ListKeyRotations":                    {"KeyId": f.sym},
		"ListKeys":                            {},
		"ListResourceTags":                    {"KeyId": f.sym},
		"PutKeyPolicy":                        {"KeyId": f.sym, "PolicyName": "default", "Policy": policy},
		"ReEncrypt":                           {"CiphertextBlob": f.blob, "SourceEncryptionContext": ec, "DestinationKeyId": f.sym2},
		"RotateKeyOnDemand":                   {"KeyId": f.sym},
		"ScheduleKeyDeletion":                 {"KeyId": f.sym2, "PendingWindowInDays": int64(7)},
		"Sign":                                {"KeyId": f.ecc, "Message": []byte("table"), "SigningAlgorithm": "ECDSA_SHA_256"},
		"TagResource":                         {"KeyId": f.sym, "Tags": []any{model.Object{"TagKey": "k", "TagValue": "v"}}},
		"UntagResource":                       {"KeyId": f.sym, "TagKeys": []any{"k"}},
		"UpdateAlias":                         {"AliasName": f.alias, "TargetKeyId": f.sym2},
		"UpdateKeyDescription":                {"KeyId": f.sym, "Description": "table"},
		"Verify":                              {"KeyId": f.ecc, "Message": []byte("table"), "Signature": f.sig, "SigningAlgorithm": "ECDSA_SHA_256"},
		"VerifyMac":                           {"KeyId": f.hmac, "Message": []byte("table"), "Mac": f.mac, "MacAlgorithm": "HMAC_SHA_256"},
	}
}

// mustSucceedAtBound are the shapes whose value at a bound makes a
// request that succeeds (with the base request's other members); the
// others (key IDs, markers, tokens, ciphertexts) name nothing at a
// bound, and their answer need only not be the model's refusal.
var mustSucceedAtBound = map[string]bool{
	"PlaintextType": true, "DescriptionType": true, "NumberOfBytesType": true, "LimitType": true,
	"RotationPeriodInDaysType": true, "TagKeyType": true, "TagValueType": true, "PolicyType": true,
}

// atBoundAnswers are the answers, other than success, that a value at a
// bound gets where the base request's other members make it so.
var atBoundAnswers = map[string]string{
	"Verify/message":          "KMSInvalidSignatureException", // the signature is of another message
	"VerifyMac/message":       "KMSInvalidMacException",
	"PutKeyPolicy/policy@min": "", // a 1-character policy: AWS answers MalformedPolicyDocumentException
	"CreateKey/policy@min":    "",
	// A policy past AWS's 32 KB quota: MalformedPolicyDocumentException
	// (the model's bound is larger than the quota).
	"PutKeyPolicy/policy@max": "",
	"CreateKey/policy@max":    "",
}

// testInvalidInputs is the table of invalid inputs: every model limit at
// and past its bound (generated from kms/model), missing members, wrong
// key usage, wrong key state, malformed JSON, unknown targets, wrong
// content types and an oversized body. Each refused request gets AWS's
// exception and changes nothing: the region's whole state (ListKeys,
// DescribeKey, ListResourceTags, GetKeyPolicy, rotations, ListAliases) is
// the same after it as before.
func testInvalidInputs(t *testing.T, tg *target) {
	ops := okms.Operations()
	slices.Sort(ops)

	// At the bound: the model accepts the value. These requests may
	// change state, so they run in the main region on its own fixtures.
	t.Run("AtBound", func(t *testing.T) {
		c := tg.kms()
		bases := baseRequests(makeFixtures(t, tg, mainRegion))
		for _, op := range ops {
			base, ok := bases[op]
			require.True(t, ok, "the table has a base request for %s", op)
			for _, lc := range limitCases(t, op, base) {
				if lc.past {
					continue
				}
				t.Run(lc.name(), func(t *testing.T) {
					err := sdkCall(t, t.Context(), c, op, lc.input)
					checkAtBound(t, lc, err)
				})
			}
		}
	})

	c := tg.client(tableRegion)
	f := makeFixtures(t, tg, tableRegion)
	bases := baseRequests(f)
	baseline := readRegion(t, c)
	unchanged := func(t *testing.T) {
		t.Helper()
		assert.Equal(t, baseline, readRegion(t, c), "a refused request changes nothing")
	}

	t.Run("PastBound", func(t *testing.T) {
		n := 0
		for _, op := range ops {
			for _, lc := range limitCases(t, op, bases[op]) {
				if !lc.past {
					continue
				}
				n++
				t.Run(lc.name(), func(t *testing.T) {
					err := sdkCall(t, t.Context(), c, op, lc.input)
					requireCode(t, err, "ValidationException", lc.want)
					requireStatus(t, err, http.StatusBadRequest)
					unchanged(t)
				})
			}
		}
		t.Logf("%d requests past a bound of the model", n)
	})

	// The SDK checks required members before it sends a request, so these
	// are framed by the suite, as another client could send them.
	t.Run("MissingMember", func(t *testing.T) {
		for _, op := range ops {
			for _, mc := range missingCases(t, op, bases[op]) {
				t.Run(op+"/"+mc.path, func(t *testing.T) {
					body, err := model.Marshal(mc.input)
					require.NoError(t, err)
					a := tg.call(t, tableRegion, op, body)
					assert.Equal(t, http.StatusBadRequest, a.Status)
					assert.Equal(t, "ValidationException", a.Type)
					assert.Equal(t, "1 validation error detected: Value null at '"+mc.path+"' failed to satisfy constraint: Member must not be null", a.Message)
					unchanged(t)
				})
			}
		}
		// And the SDK refuses them itself.
		_, err := c.Encrypt(t.Context(), &kms.EncryptInput{KeyId: aws.String(f.sym)})
		var inv smithy.InvalidParamsError
		require.ErrorAs(t, err, &inv)
	})

	t.Run("Refusals", func(t *testing.T) {
		for _, r := range refusals(f) {
			t.Run(r.name, func(t *testing.T) {
				err := r.call(t.Context(), c)
				r.check(t, err)
				if !strings.HasSuffix(r.name, "/DryRun") { // AWS's status for it is not in the model
					requireStatus(t, err, http.StatusBadRequest)
				}
				unchanged(t)
			})
		}
	})

	t.Run("Framing", func(t *testing.T) {
		for _, fc := range framingCases(f) {
			t.Run(fc.name, func(t *testing.T) {
				r := fc.req
				r.Region = tableRegion
				if r.Target == "" && !fc.noTarget {
					r.Target = "TrentService.Encrypt"
				}
				if r.ContentType == "" && !fc.noType {
					r.ContentType = "application/x-amz-json-1.1"
				}
				a := tg.raw(t, r)
				assert.Equal(t, fc.status, a.Status, "HTTP status (%s: %s)", a.Type, a.Message)
				assert.Equal(t, fc.typ, a.Type, "the exception (message %q)", a.Message)
				if fc.msg != anyMessage {
					assert.Equal(t, fc.msg, a.Message)
				}
				unchanged(t)
			})
		}
	})
}

// checkAtBound: a value at a bound is not refused by the model, nor
// answered with a 5xx; for the payload shapes it succeeds.
func checkAtBound(t *testing.T, lc limitCase, err error) {
	t.Helper()
	key := lc.op + "/" + lc.path
	if want, ok := atBoundAnswers[key]; ok {
		var e smithy.APIError
		require.ErrorAs(t, err, &e, "want %s", want)
		assert.Equal(t, want, e.ErrorCode())
		return
	}
	if err == nil {
		return
	}
	var e smithy.APIError
	require.ErrorAs(t, err, &e, "an answer of the service: %v", err)
	assert.NotEqual(t, "SerializationException", e.ErrorCode(), "%v", err)
	assert.NotContains(t, e.ErrorMessage(), "at '"+lc.path+"' failed to satisfy constraint: "+lc.constraint,
		"a value at the model's bound is not refused for it")
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		assert.Less(t, re.HTTPStatusCode(), 500, "%v", err)
	}
	if _, fine := atBoundAnswers[key+"@"+lc.bound]; fine {
		return
	}
	if mustSucceedAtBound[lc.shape] {
		t.Errorf("%s with %s at its %s (%d) fails: %v", lc.op, lc.path, lc.bound, lc.n, err)
	}
}

func requireStatus(t *testing.T, err error, status int) {
	t.Helper()
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		assert.Equal(t, status, re.HTTPStatusCode())
		return
	}
	var raw *rawError
	if errors.As(err, &raw) {
		assert.Equal(t, status, raw.status)
	}
}

// missingCase is a request without one required member.
type missingCase struct {
	path  string
	input model.Object
}

// missingCases: for every required member of the operation's input (and
// of the elements of its lists of structures), the base request without
// it.
func missingCases(t *testing.T, op string, base model.Object) []missingCase {
	t.Helper()
	o, _ := model.LookupOperation(op)
	in := shapeOf(t, o.Input)
	var out []missingCase
	for _, m := range in.Members {
		if m.Required {
			req := cloneObject(base)
			require.Contains(t, base, m.Name, "the base request of %s has its required %s", op, m.Name)
			delete(req, m.Name)
			out = append(out, missingCase{path: lowerFirst(m.Name), input: req})
		}
		s := shapeOf(t, m.Shape)
		l, ok := base[m.Name].([]any)
		if s.Type != model.TypeList || !ok || len(l) == 0 {
			continue
		}
		elem := shapeOf(t, s.Member)
		for _, em := range elem.Members {
			if !em.Required {
				continue
			}
			e := cloneObject(l[0].(model.Object))
			delete(e, em.Name)
			req := cloneObject(base)
			req[m.Name] = append([]any{e}, l[1:]...)
			out = append(out, missingCase{path: lowerFirst(m.Name) + ".1.member." + lowerFirst(em.Name), input: req})
		}
	}
	return out
}

// refusal is a request the service refuses with an exception of AWS's.
type refusal struct {
	name  string
	call  func(ctx context.Context, c *kms.Client) error
	check func(t *testing.T, err error)
}

func wantErr[E smithy.APIError](msg string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) { t.Helper(); requireErr[E](t, err, msg) }
}

func wantCode(code, msg string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) { t.Helper(); requireCode(t, err, code, msg) }
}

// refusals are wrong key usage, wrong key state and the service's rules
// beyond the model, through the SDK.
func refusals(f *fixtures) []refusal {
	enc := func(key string) func(ctx context.Context, c *kms.Client) error {
		return func(ctx context.Context, c *kms.Client) error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
			return err
		}
	}
	missing := keyARN(f.region, "41111111-2222-4333-8444-555555555555")
	usage := func(key, use, op string) string {
		return key + " key usage is " + use + " which is not valid for " + op + "."
	}
	return []refusal{
		// Wrong key usage.
		{"Encrypt/signing key", enc(f.ecc), wantErr[*types.InvalidKeyUsageException](usage(f.ecc, "SIGN_VERIFY", "Encrypt"))},
		{"Encrypt/HMAC key", enc(f.hmac), wantErr[*types.InvalidKeyUsageException](usage(f.hmac, "GENERATE_VERIFY_MAC", "Encrypt"))},
		{"Encrypt/RSA algorithm on a symmetric key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(f.sym), Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
			return err
		}, wantErr[*types.InvalidKeyUsageException](anyMessage)},
		{"Decrypt/HMAC key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blob, EncryptionContext: f.ec, KeyId: aws.String(f.hmac)})
			return err
		}, wantErr[*types.InvalidKeyUsageException](anyMessage)},
		{"GenerateDataKey/RSA key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(f.rsaEnc), KeySpec: types.DataKeySpecAes256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](anyMessage)},
		{"GenerateDataKeyPair/signing key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(f.ecc), KeyPairSpec: types.DataKeyPairSpecRsa2048})
			return err
		}, wantErr[*types.InvalidKeyUsageException](anyMessage)},
		{"Sign/symmetric key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.sym), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](usage(f.sym, "ENCRYPT_DECRYPT", "Sign"))},
		{"Sign/RSA encryption key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.rsaEnc), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](usage(f.rsaEnc, "ENCRYPT_DECRYPT", "Sign"))},
		{"Sign/algorithm of another curve", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.ecc), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha512})
			return err
		}, wantErr[*types.InvalidKeyUsageException](f.ecc + " does not support signing algorithm ECDSA_SHA_512")},
		{"Verify/HMAC key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(f.hmac), Message: []byte("m"), Signature: f.sig, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](usage(f.hmac, "GENERATE_VERIFY_MAC", "Verify"))},
		{"GenerateMac/signing key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(f.ecc), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](usage(f.ecc, "SIGN_VERIFY", "GenerateMac"))},
		{"GenerateMac/algorithm of another spec", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(f.hmac), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha384})
			return err
		}, wantErr[*types.InvalidKeyUsageException](f.hmac + " does not support MAC algorithm HMAC_SHA_384")},
		{"VerifyMac/symmetric key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(f.sym), Message: []byte("m"), Mac: f.mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](usage(f.sym, "ENCRYPT_DECRYPT", "VerifyMac"))},
		{"ReEncrypt/to a signing key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: f.blob, SourceEncryptionContext: f.ec, DestinationKeyId: aws.String(f.ecc)})
			return err
		}, wantErr[*types.InvalidKeyUsageException](anyMessage)},
		{"GetPublicKey/HMAC key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(f.hmac)})
			return err
		}, wantErr[*types.UnsupportedOperationException](anyMessage)},
		{"EnableKeyRotation/RSA key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(f.rsaEnc)})
			return err
		}, wantErr[*types.UnsupportedOperationException](anyMessage)},
		{"GetParametersForImport/AWS_KMS key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(f.sym),
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			return err
		}, wantErr[*types.UnsupportedOperationException](f.sym + " origin is AWS_KMS which is invalid for this operation.")},
		{"CreateKey/HMAC for encryption", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
			return err
		}, wantCode("ValidationException", anyMessage)},
		{"CreateKey/symmetric for signing", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeSignVerify})
			return err
		}, wantCode("ValidationException", anyMessage)},
		{"CreateKey/ECC for encryption", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
			return err
		}, wantCode("ValidationException", anyMessage)},
		// ML-DSA keys (testMLDSA has the happy paths).
		{"CreateKey/ML-DSA for encryption", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecMlDsa87, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
			return err
		}, wantCode("ValidationException", "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ML_DSA_87")},
		{"CreateKey/ML-DSA without KeyUsage", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecMlDsa44})
			return err
		}, wantCode("ValidationException", "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ML_DSA_44")},
		{"CreateKey/ML-DSA imported", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecMlDsa44, KeyUsage: types.KeyUsageTypeSignVerify, Origin: types.OriginTypeExternal})
			return err
		}, wantErr[*types.UnsupportedOperationException]("This service imports key material into SYMMETRIC_DEFAULT keys only")},
		{"Sign/ML-DSA DIGEST", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.mldsa), Message: make([]byte, 64), MessageType: types.MessageTypeDigest,
				SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
			return err
		}, wantCode("ValidationException", "Message type DIGEST is incompatible with key spec ML_DSA_44.")},
		{"Verify/ML-DSA DIGEST", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(f.mldsa), Message: make([]byte, 32), MessageType: types.MessageTypeDigest,
				Signature: f.sig, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
			return err
		}, wantCode("ValidationException", "Message type DIGEST is incompatible with key spec ML_DSA_44.")},
		{"Sign/ML-DSA EXTERNAL_MU", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.mldsa), Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu,
				SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
			return err
		}, wantErr[*types.UnsupportedOperationException](errExternalMu)},
		{"Verify/ML-DSA EXTERNAL_MU", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(f.mldsa), Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu,
				Signature: f.sig, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
			return err
		}, wantErr[*types.UnsupportedOperationException](errExternalMu)},
		{"Sign/ECC EXTERNAL_MU", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.ecc), Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu,
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}, wantCode("ValidationException", "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_P256.")},
		{"Sign/ML-DSA with ECDSA", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.mldsa), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](f.mldsa + " does not support signing algorithm ECDSA_SHA_256")},
		{"Sign/ECC with ML-DSA", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(f.ecc), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](f.ecc + " does not support signing algorithm ML_DSA_SHAKE_256")},
		{"Verify/ML-DSA bad signature", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(f.mldsa), Message: []byte("table"), Signature: f.sig,
				SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
			return err
		}, wantErr[*types.KMSInvalidSignatureException](anyMessage)},
		{"EnableKeyRotation/ML-DSA key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(f.mldsa)})
			return err
		}, wantErr[*types.UnsupportedOperationException](anyMessage)},
		{"GenerateDataKey/ML-DSA key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(f.mldsa), KeySpec: types.DataKeySpecAes256})
			return err
		}, wantErr[*types.InvalidKeyUsageException](anyMessage)},
		{"UpdateAlias/symmetric to ML-DSA", func(ctx context.Context, c *kms.Client) error {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(f.alias), TargetKeyId: aws.String(f.mldsa)})
			return err
		}, wantCode("ValidationException", anyMessage)},

		// Wrong key state.
		{"Encrypt/disabled", enc(f.dis), wantErr[*types.DisabledException](f.dis + " is disabled.")},
		{"Encrypt/pending deletion", enc(f.pd), wantErr[*types.KMSInvalidStateException](f.pd + " is pending deletion.")},
		{"Encrypt/pending import", enc(f.ext), wantErr[*types.KMSInvalidStateException](f.ext + " is pending import.")},
		{"EnableKey/pending deletion", func(ctx context.Context, c *kms.Client) error {
			_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(f.pd)})
			return err
		}, wantErr[*types.KMSInvalidStateException](f.pd + " is pending deletion.")},
		{"EnableKey/pending import", func(ctx context.Context, c *kms.Client) error {
			_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(f.ext)})
			return err
		}, wantErr[*types.KMSInvalidStateException](anyMessage)},
		{"ScheduleKeyDeletion/pending deletion", func(ctx context.Context, c *kms.Client) error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(f.pd)})
			return err
		}, wantErr[*types.KMSInvalidStateException](f.pd + " is pending deletion.")},
		{"CancelKeyDeletion/disabled", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(f.dis)})
			return err
		}, wantErr[*types.KMSInvalidStateException](anyMessage)},
		{"EnableKeyRotation/disabled", func(ctx context.Context, c *kms.Client) error {
			_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(f.dis)})
			return err
		}, wantErr[*types.DisabledException](f.dis + " is disabled.")},
		{"CreateAlias/pending deletion", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(newAlias()), TargetKeyId: aws.String(f.pd)})
			return err
		}, wantErr[*types.KMSInvalidStateException](anyMessage)},
		{"TagResource/pending deletion", func(ctx context.Context, c *kms.Client) error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(f.pd), Tags: []types.Tag{tag("k", "v")}})
			return err
		}, wantErr[*types.KMSInvalidStateException](anyMessage)},

		// The service's rules beyond the model.
		{"DescribeKey/unknown key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(missing)})
			return err
		}, wantErr[*types.NotFoundException]("Key '" + missing + "' does not exist")},
		{"Encrypt/unknown alias", enc("alias/table-missing"), wantErr[*types.NotFoundException]("Alias " + aliasARN(f.region, "alias/table-missing") + " is not found.")},
		{"CreateAlias/exists", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(f.alias), TargetKeyId: aws.String(f.sym2)})
			return err
		}, wantErr[*types.AlreadyExistsException]("An alias with the name " + aliasARN(f.region, f.alias) + " already exists")},
		{"CreateAlias/no prefix", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("table-alias"), TargetKeyId: aws.String(f.sym)})
			return err
		}, wantCode("ValidationException", `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)},
		{"CreateAlias/reserved", func(ctx context.Context, c *kms.Client) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/table"), TargetKeyId: aws.String(f.sym)})
			return err
		}, wantCode("NotAuthorizedException", anyMessage)},
		{"UpdateAlias/across key types", func(ctx context.Context, c *kms.Client) error {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(f.alias), TargetKeyId: aws.String(f.hmac)})
			return err
		}, wantCode("ValidationException", anyMessage)},
		{"DeleteAlias/unknown", func(ctx context.Context, c *kms.Client) error {
			_, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/table-missing")})
			return err
		}, wantErr[*types.NotFoundException]("Alias " + aliasARN(f.region, "alias/table-missing") + " is not found.")},
		{"Decrypt/wrong context", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blob, EncryptionContext: map[string]string{"table": "other"}})
			return err
		}, wantErr[*types.InvalidCiphertextException]("")},
		{"Decrypt/other key", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blob, EncryptionContext: f.ec, KeyId: aws.String(f.sym2)})
			return err
		}, wantErr[*types.IncorrectKeyException](anyMessage)},
		{"GenerateDataKey/neither", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(f.sym)})
			return err
		}, wantCode("ValidationException", "Please specify either number of bytes or key spec.")},
		{"GenerateDataKey/both", func(ctx context.Context, c *kms.Client) error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(f.sym), KeySpec: types.DataKeySpecAes128, NumberOfBytes: aws.Int32(16)})
			return err
		}, wantCode("ValidationException", "Please specify either number of bytes or key spec.")},
		{"ScheduleKeyDeletion/6 days", func(ctx context.Context, c *kms.Client) error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(f.sym), PendingWindowInDays: aws.Int32(6)})
			return err
		}, wantCode("ValidationException", "1 validation error detected: Value '6' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30")},
		{"ScheduleKeyDeletion/31 days", func(ctx context.Context, c *kms.Client) error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(f.sym), PendingWindowInDays: aws.Int32(31)})
			return err
		}, wantCode("ValidationException", "1 validation error detected: Value '31' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30")},
		{"TagResource/aws: prefix", func(ctx context.Context, c *kms.Client) error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(f.sym), Tags: []types.Tag{tag("aws:table", "v")}})
			return err
		}, wantErr[*types.TagException](anyMessage)},
		{"TagResource/duplicate keys", func(ctx context.Context, c *kms.Client) error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(f.sym), Tags: []types.Tag{tag("twice", "1"), tag("twice", "2")}})
			return err
		}, wantErr[*types.TagException](anyMessage)},
		{"Verify/bad signature", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(f.ecc), Message: []byte("other"), Signature: f.sig, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}, wantErr[*types.KMSInvalidSignatureException](anyMessage)},
		{"VerifyMac/bad MAC", func(ctx context.Context, c *kms.Client) error {
			_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(f.hmac), Message: []byte("other"), Mac: f.mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		}, wantErr[*types.KMSInvalidMacException](anyMessage)},
		{"ImportKeyMaterial/bad token", func(ctx context.Context, c *kms.Client) error {
			_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(f.ext), ImportToken: []byte("bad"), EncryptedKeyMaterial: randBytes(256)})
			return err
		}, wantErr[*types.InvalidImportTokenException](anyMessage)},
		{"ListKeys/bad marker", func(ctx context.Context, c *kms.Client) error {
			_, err := c.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String("bad marker")})
			return err
		}, wantErr[*types.InvalidMarkerException](anyMessage)},
		{"Encrypt/DryRun", func(ctx context.Context, c *kms.Client) error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(f.sym), Plaintext: []byte("x"), DryRun: aws.Bool(true)})
			return err
		}, wantErr[*types.DryRunOperationException]("The request would have succeeded, but the DryRun option is set.")},
	}
}

// framingCase is a request of the suite's own framing.
type framingCase struct {
	name             string
	req              rawRequest
	noTarget, noType bool
	status           int
	typ, msg         string
}

func framingCases(f *fixtures) []framingCase {
	valid := []byte(`{"KeyId":"` + f.sym + `","Plaintext":"dGFibGU="}`)
	ser := func(name, body string) framingCase {
		return framingCase{name: "malformed JSON/" + name, req: rawRequest{Body: []byte(body)}, status: 400, typ: "SerializationException", msg: anyMessage}
	}
	oversized := make([]byte, 0, httpapi.DefaultMaxBody+1)
	oversized = append(oversized, `{"KeyId":"`+f.sym+`","Plaintext":"dGFibGU=","Description":"`...)
	oversized = append(oversized, strings.Repeat("x", httpapi.DefaultMaxBody+1-len(oversized)-2)...)
	oversized = append(oversized, `"}`...)
	return []framingCase{
		ser("empty body", ""),
		ser("truncated", `{"KeyId":"`+f.sym+`","Plaintext":"dGFi`),
		ser("not an object", `["KeyId"]`),
		ser("a string", `"Encrypt"`),
		ser("trailing data", string(valid)+` {}`),
		ser("number for a string", `{"KeyId":5,"Plaintext":"dGFibGU="}`),
		ser("object for a blob", `{"KeyId":"`+f.sym+`","Plaintext":{"a":1}}`),
		ser("bad base64", `{"KeyId":"`+f.sym+`","Plaintext":"not base64!"}`),
		ser("invalid UTF-8", "{\"KeyId\":\"\xff\xfe\",\"Plaintext\":\"dGFibGU=\"}"),
		ser("unpaired surrogate", `{"KeyId":"\ud800","Plaintext":"dGFibGU="}`),
		{name: "malformed JSON/fractional integer", req: rawRequest{Target: "TrentService.GenerateDataKey",
			Body: []byte(`{"KeyId":"` + f.sym + `","NumberOfBytes":1.5}`)}, status: 400, typ: "SerializationException", msg: anyMessage},
		{name: "unknown target/operation", req: rawRequest{Target: "TrentService.NoSuchOperation", Body: valid}, status: 400, typ: "UnknownOperationException", msg: ""},
		{name: "unknown target/case", req: rawRequest{Target: "TrentService.encrypt", Body: valid}, status: 400, typ: "UnknownOperationException", msg: ""},
		{name: "unknown target/service", req: rawRequest{Target: "DynamoDB_20120810.Encrypt", Body: valid}, status: 400, typ: "UnknownOperationException", msg: ""},
		{name: "unknown target/none", req: rawRequest{Body: valid}, noTarget: true, status: 400, typ: "UnknownOperationException", msg: ""},
		{name: "unknown target/no operation", req: rawRequest{Target: "TrentService.", Body: valid}, status: 400, typ: "UnknownOperationException", msg: ""},
		{name: "operation the service lacks", req: rawRequest{Target: "TrentService.UpdatePrimaryRegion",
			Body: []byte(`{"KeyId":"` + f.sym + `","PrimaryRegion":"eu-west-1"}`)},
			status: 400, typ: "UnsupportedOperationException", msg: "UpdatePrimaryRegion is not supported by this service"},
		{name: "content type/application json", req: rawRequest{ContentType: "application/json", Body: valid}, status: 400,
			typ: "UnknownOperationException", msg: "Content-Type must be application/x-amz-json-1.1."},
		{name: "content type/JSON 1.0", req: rawRequest{ContentType: "application/x-amz-json-1.0", Body: valid}, status: 400,
			typ: "UnknownOperationException", msg: "Content-Type must be application/x-amz-json-1.1."},
		{name: "content type/none", req: rawRequest{Body: valid}, noType: true, status: 400,
			typ: "UnknownOperationException", msg: "Content-Type must be application/x-amz-json-1.1."},
		{name: "oversized body", req: rawRequest{Body: oversized}, status: http.StatusRequestEntityTooLarge,
			typ: "RequestEntityTooLargeException", msg: fmt.Sprintf("Request body is larger than the %d bytes this service accepts.", httpapi.DefaultMaxBody)},
		{name: "unsigned", req: rawRequest{Body: valid, Unsigned: true}, status: 400, typ: "MissingAuthenticationTokenException", msg: anyMessage},
	}
}
