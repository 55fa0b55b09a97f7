package suite

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/state"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// keySpecs are state.KMSKeySpecs' specs, sorted.
func keySpecs() []string {
	var specs []string
	for s := range state.KMSKeySpecs {
		specs = append(specs, s)
	}
	slices.Sort(specs)
	return specs
}

// unsupportedSpecs are the key specs of state.KMSKeySpecs that CreateKey
// refuses for now, with its message (none since ECC_SECG_P256K1 came).
var unsupportedSpecs = map[string]string{}

// wantAlgorithms are the algorithms AWS lists in a key's metadata for
// its spec and usage (the key spec reference of the KMS developer guide).
func wantAlgorithms(spec, usage string) (enc []types.EncryptionAlgorithmSpec, sig []types.SigningAlgorithmSpec, mac []types.MacAlgorithmSpec) {
	switch {
	case spec == "SYMMETRIC_DEFAULT":
		enc = []types.EncryptionAlgorithmSpec{"SYMMETRIC_DEFAULT"}
	case strings.HasPrefix(spec, "RSA_") && usage == "ENCRYPT_DECRYPT":
		enc = []types.EncryptionAlgorithmSpec{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	case strings.HasPrefix(spec, "RSA_"):
		sig = []types.SigningAlgorithmSpec{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
			"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}
	case spec == "ECC_NIST_P256" || spec == "ECC_SECG_P256K1":
		sig = []types.SigningAlgorithmSpec{"ECDSA_SHA_256"}
	case spec == "ECC_NIST_P384":
		sig = []types.SigningAlgorithmSpec{"ECDSA_SHA_384"}
	case spec == "ECC_NIST_P521":
		sig = []types.SigningAlgorithmSpec{"ECDSA_SHA_512"}
	case strings.HasPrefix(spec, "HMAC_"):
		mac = []types.MacAlgorithmSpec{types.MacAlgorithmSpec("HMAC_SHA_" + strings.TrimPrefix(spec, "HMAC_"))}
	case strings.HasPrefix(spec, "ML_DSA_"):
		sig = []types.SigningAlgorithmSpec{"ML_DSA_SHAKE_256"}
	}
	return
}

func listKeyARNs(t *testing.T, c *kms.Client) []string {
	t.Helper()
	var out []string
	p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		for _, k := range page.Keys {
			out = append(out, aws.ToString(k.KeyArn))
		}
	}
	return out
}

// checkMetadata checks the metadata of a new key of spec and usage.
func checkMetadata(t *testing.T, tg *target, m *types.KeyMetadata, spec, usage, desc string) {
	t.Helper()
	id := aws.ToString(m.KeyId)
	assert.Regexp(t, uuidRE, id)
	assert.Equal(t, keyARN(mainRegion, id), aws.ToString(m.Arn))
	assert.Equal(t, account, aws.ToString(m.AWSAccountId))
	assert.Equal(t, types.KeySpec(spec), m.KeySpec)
	if slices.Contains(types.CustomerMasterKeySpec("").Values(), types.CustomerMasterKeySpec(spec)) {
		assert.Equal(t, types.CustomerMasterKeySpec(spec), m.CustomerMasterKeySpec, "the deprecated CustomerMasterKeySpec")
	} else {
		assert.Empty(t, m.CustomerMasterKeySpec, "the deprecated CustomerMasterKeySpec has no value for %s", spec)
	}
	assert.Equal(t, types.KeyUsageType(usage), m.KeyUsage)
	assert.Equal(t, types.KeyStateEnabled, m.KeyState)
	assert.True(t, m.Enabled)
	assert.Equal(t, types.OriginTypeAwsKms, m.Origin)
	assert.Equal(t, types.KeyManagerTypeCustomer, m.KeyManager)
	assert.Equal(t, desc, aws.ToString(m.Description))
	assert.False(t, aws.ToBool(m.MultiRegion))
	assert.Nil(t, m.DeletionDate)
	assert.Nil(t, m.PendingDeletionWindowInDays)
	assert.Empty(t, m.ExpirationModel)
	require.NotNil(t, m.CreationDate)
	assert.WithinDuration(t, tg.now(), *m.CreationDate, 5*time.Minute)
	enc, sig, mac := wantAlgorithms(spec, usage)
	assert.Equal(t, enc, m.EncryptionAlgorithms)
	assert.Equal(t, sig, m.SigningAlgorithms)
	assert.Equal(t, mac, m.MacAlgorithms)
}

// testCreateKeySpecs: CreateKey for every key spec and key usage of
// state.KMSKeySpecs, and the defaults.
func testCreateKeySpecs(t *testing.T, tg *target) {
	c := tg.kms()
	for _, spec := range keySpecs() {
		for _, usage := range state.KMSKeySpecs[spec] {
			t.Run(spec+"/"+usage, func(t *testing.T) {
				desc := "suite " + spec + " " + usage
				in := &kms.CreateKeyInput{KeySpec: types.KeySpec(spec), KeyUsage: types.KeyUsageType(usage), Description: aws.String(desc)}
				if msg, ok := unsupportedSpecs[spec]; ok {
					before := listKeyARNs(t, c)
					_, err := c.CreateKey(t.Context(), in)
					requireErr[*types.UnsupportedOperationException](t, err, msg)
					assert.Equal(t, before, listKeyARNs(t, c), "a refused CreateKey makes no key")
					return
				}
				m := createKey(t, c, in)
				checkMetadata(t, tg, m, spec, usage, desc)
				assert.Equal(t, m, describe(t, c, aws.ToString(m.KeyId)), "DescribeKey answers what CreateKey did")
			})
		}
	}
	t.Run("defaults", func(t *testing.T) {
		m := createKey(t, c, nil)
		checkMetadata(t, tg, m, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "")
		// KeyUsage defaults to ENCRYPT_DECRYPT, which an RSA key takes.
		m = createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})
		checkMetadata(t, tg, m, "RSA_2048", "ENCRYPT_DECRYPT", "")
	})
	t.Run("CustomerMasterKeySpec", func(t *testing.T) {
		m := createKey(t, c, &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
		checkMetadata(t, tg, m, "ECC_NIST_P256", "SIGN_VERIFY", "")
		_, err := c.CreateKey(t.Context(), &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecEccNistP256,
			KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeSignVerify})
		requireCode(t, err, "ValidationException", "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec instead.")
	})
	// AWS: "The default value is ENCRYPT_DECRYPT. This parameter is
	// optional when you are creating a symmetric encryption KMS key;
	// otherwise, it is required." ENCRYPT_DECRYPT does not fit an ECC
	// or HMAC key, so AWS refuses those without a KeyUsage.
	t.Run("KeyUsageRequired", func(t *testing.T) {
		for _, spec := range []types.KeySpec{types.KeySpecEccNistP256, types.KeySpecHmac256} {
			before := listKeyARNs(t, c)
			out, err := c.CreateKey(t.Context(), &kms.CreateKeyInput{KeySpec: spec})
			if err == nil {
				t.Errorf("CreateKey %s without KeyUsage made a key of usage %s; AWS defaults KeyUsage to ENCRYPT_DECRYPT, "+
					"which %s does not support, and refuses with ValidationException", spec, out.KeyMetadata.KeyUsage, spec)
				continue
			}
			requireCode(t, err, "ValidationException", anyMessage)
			assert.Equal(t, before, listKeyARNs(t, c))
		}
	})
	t.Run("ExternalAsymmetric", func(t *testing.T) {
		// AWS imports RSA, ECC and HMAC material too; this service
		// imports symmetric material only, and says so.
		_, err := c.CreateKey(t.Context(), &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify,
			Origin: types.OriginTypeExternal})
		requireErr[*types.UnsupportedOperationException](t, err, "This service imports key material into SYMMETRIC_DEFAULT keys only")
	})
	t.Run("Unsupported", func(t *testing.T) {
		_, err := c.CreateKey(t.Context(), &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
		requireErr[*types.UnsupportedOperationException](t, err, anyMessage)
		_, err = c.CreateKey(t.Context(), &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm})
		requireErr[*types.UnsupportedOperationException](t, err, anyMessage)
	})
}

// testDescribeKey: DescribeKey by key ID, key ARN, alias name and alias
// ARN; unknown keys and aliases; keys are per region.
func testDescribeKey(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	m := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("described")})
	id, arn := aws.ToString(m.KeyId), aws.ToString(m.Arn)
	alias := newAlias()
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(id)})
	require.NoError(t, err)
	for _, form := range []string{id, arn, alias, aliasARN(mainRegion, alias)} {
		assert.Equal(t, m, describe(t, c, form), "DescribeKey %s", form)
	}

	missing := "0b5ad3e4-1f7c-4c52-9a4e-2d2f3e4a5b6c"
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(missing)})
	requireErr[*types.NotFoundException](t, err, "Key '"+keyARN(mainRegion, missing)+"' does not exist")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN(mainRegion, missing))})
	requireErr[*types.NotFoundException](t, err, "Key '"+keyARN(mainRegion, missing)+"' does not exist")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/suite-missing")})
	requireErr[*types.NotFoundException](t, err, "Alias "+aliasARN(mainRegion, "alias/suite-missing")+" is not found.")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("not-a-key")})
	requireErr[*types.NotFoundException](t, err, "Invalid keyId not-a-key")

	// Keys, aliases and ARNs are per region.
	other := createKey(t, tg.client(tableRegion), nil)
	assert.Equal(t, keyARN(tableRegion, aws.ToString(other.KeyId)), aws.ToString(other.Arn))
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: other.KeyId})
	requireErr[*types.NotFoundException](t, err, "Key '"+keyARN(mainRegion, aws.ToString(other.KeyId))+"' does not exist")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: other.Arn})
	requireErr[*types.NotFoundException](t, err, anyMessage)
	_, err = tg.client(tableRegion).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	requireErr[*types.NotFoundException](t, err, "Alias "+aliasARN(tableRegion, alias)+" is not found.")
	assert.NotContains(t, listKeyARNs(t, c), aws.ToString(other.Arn))
}

// testListKeys: ListKeys pages with Limit, Marker, NextMarker and
// Truncated.
func testListKeys(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	var made []string
	for range 5 {
		made = append(made, newSymmetric(t, c))
	}
	all := listKeyARNs(t, c)
	for _, arn := range made {
		assert.Contains(t, all, arn)
	}
	seen := map[string]bool{}
	var paged []string
	var marker *string
	for pages := 0; ; pages++ {
		require.Less(t, pages, len(all), "ListKeys pages end")
		out, err := c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(2), Marker: marker})
		require.NoError(t, err)
		assert.LessOrEqual(t, len(out.Keys), 2)
		for _, k := range out.Keys {
			arn := aws.ToString(k.KeyArn)
			assert.False(t, seen[arn], "%s listed twice", arn)
			seen[arn] = true
			paged = append(paged, arn)
			assert.Equal(t, keyARN(mainRegion, aws.ToString(k.KeyId)), arn)
		}
		if !out.Truncated {
			assert.Nil(t, out.NextMarker, "no NextMarker on the last page")
			break
		}
		require.NotNil(t, out.NextMarker, "a truncated page has a NextMarker")
		assert.Len(t, out.Keys, 2, "a truncated page is full")
		marker = out.NextMarker
	}
	assert.ElementsMatch(t, all, paged)

	out, err := c.ListKeys(ctx, &kms.ListKeysInput{})
	require.NoError(t, err)
	assert.Len(t, out.Keys, min(100, len(all)), "the default Limit is 100")

	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String("not-a-marker")})
	requireErr[*types.InvalidMarkerException](t, err, anyMessage)
}

// testEnableDisable: DisableKey and EnableKey, and what a disabled key
// refuses.
func testEnableDisable(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("before")})
	require.NoError(t, err)

	for range 2 { // disabling a disabled key succeeds
		_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyIDOf(arn))})
		require.NoError(t, err)
		m := describe(t, c, arn)
		assert.Equal(t, types.KeyStateDisabled, m.KeyState)
		assert.False(t, m.Enabled)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
	requireErr[*types.DisabledException](t, err, arn+" is disabled.")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	requireErr[*types.DisabledException](t, err, arn+" is disabled.")

	for range 2 {
		_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		m := describe(t, c, arn)
		assert.Equal(t, types.KeyStateEnabled, m.KeyState)
		assert.True(t, m.Enabled)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, []byte("before"), dec.Plaintext)

	// EnableKey and DisableKey take a key ID or key ARN, not an alias.
	alias := newAlias()
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(arn)})
	require.NoError(t, err)
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(alias)})
	requireErr[*types.NotFoundException](t, err, anyMessage)
	assert.Equal(t, types.KeyStateEnabled, describe(t, c, arn).KeyState)

	missing := "11111111-2222-4333-8444-555555555555"
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(missing)})
	requireErr[*types.NotFoundException](t, err, "Key '"+keyARN(mainRegion, missing)+"' does not exist")
}

// testUpdateKeyDescription: the description changes, to empty too.
func testUpdateKeyDescription(t *testing.T, tg *target) {
	c := tg.kms()
	m := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("first")})
	for _, d := range []string{"second, with ünïcode and\nnew lines", "", strings.Repeat("d", 8192)} {
		_, err := c.UpdateKeyDescription(t.Context(), &kms.UpdateKeyDescriptionInput{KeyId: m.Arn, Description: aws.String(d)})
		require.NoError(t, err)
		assert.Equal(t, d, aws.ToString(describe(t, c, aws.ToString(m.KeyId)).Description))
	}
}

// testKeyPolicies: the default policy is AWS's key-default-1;
// PutKeyPolicy's document comes back byte for byte.
func testKeyPolicies(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)

	get := func(keyID string, name *string) string {
		t.Helper()
		out, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: name})
		require.NoError(t, err)
		if name != nil {
			assert.Equal(t, aws.ToString(name), aws.ToString(out.PolicyName))
		}
		return aws.ToString(out.Policy)
	}
	def := get(arn, aws.String("default"))
	assert.Equal(t, def, get(keyIDOf(arn), nil), "PolicyName defaults to default")
	var doc struct {
		Version   string
		Id        string
		Statement []struct {
			Sid       string
			Effect    string
			Principal struct{ AWS string }
			Action    string
			Resource  string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(def), &doc), "the default policy is JSON")
	assert.Equal(t, "2012-10-17", doc.Version)
	assert.Equal(t, "key-default-1", doc.Id)
	require.Len(t, doc.Statement, 1)
	st := doc.Statement[0]
	assert.Equal(t, "Enable IAM User Permissions", st.Sid)
	assert.Equal(t, "Allow", st.Effect)
	assert.Equal(t, "arn:aws:iam::"+account+":root", st.Principal.AWS)
	assert.Equal(t, "kms:*", st.Action)
	assert.Equal(t, "*", st.Resource)

	names, err := c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, []string{"default"}, names.PolicyNames)
	assert.False(t, names.Truncated)

	// Byte for byte: odd spacing, tabs, CRLF, key order and Latin-1.
	policy := "{\r\n\t\"Version\":\"2012-10-17\" ,  \"Statement\":[{\"Effect\":\"Allow\",\"Sid\":\"caf\u00e9\"," +
		"\"Principal\":{\"AWS\":\"arn:aws:iam::" + account + ":root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]   }\n"
	_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default"), Policy: aws.String(policy)})
	require.NoError(t, err)
	assert.Equal(t, policy, get(arn, aws.String("default")))
	_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), Policy: aws.String(def)})
	require.NoError(t, err, "PolicyName defaults to default")
	assert.Equal(t, def, get(arn, nil))

	m := createKey(t, c, &kms.CreateKeyInput{Policy: aws.String(policy)})
	assert.Equal(t, policy, get(aws.ToString(m.Arn), nil), "CreateKey's policy, byte for byte")

	// AWS checks a policy's syntax: "MalformedPolicyDocumentException: The
	// request was rejected because the specified policy is not
	// syntactically or semantically correct."
	t.Run("Malformed", func(t *testing.T) {
		k := newSymmetric(t, c)
		before := readKeys(t, c, []string{k})
		for _, bad := range []string{"not a policy", `{"Version":"2012-10-17","Statement":[`} {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(bad)})
			requireErr[*types.MalformedPolicyDocumentException](t, err, anyMessage)
		}
		assert.Equal(t, before, readKeys(t, c, []string{k}))
		keys := listKeyARNs(t, c)
		_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String("not a policy")})
		requireErr[*types.MalformedPolicyDocumentException](t, err, anyMessage)
		assert.Equal(t, keys, listKeyARNs(t, c))
	})

	_, err = c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("other")})
	requireErr[*types.NotFoundException](t, err, anyMessage)
	_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("other"), Policy: aws.String(policy)})
	requireErr[*types.NotFoundException](t, err, anyMessage)
	assert.Equal(t, def, get(arn, nil), "a refused PutKeyPolicy changes nothing")
}

// testDryRun: every operation with DryRun answers
// DryRunOperationException when the request would have succeeded, and
// does nothing.
func testDryRun(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	sym := newSymmetric(t, c)
	ecc := newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	hmac := newKey(t, c, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym), Plaintext: []byte("dry")})
	require.NoError(t, err)
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ecc), Message: []byte("dry"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	require.NoError(t, err)
	mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(hmac), Message: []byte("dry"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	require.NoError(t, err)
	before := readKeys(t, c, []string{sym, ecc, hmac})
	dry := aws.Bool(true)
	calls := map[string]func() error{
		"Encrypt": func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym), Plaintext: []byte("x"), DryRun: dry})
			return err
		},
		"Decrypt": func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, DryRun: dry})
			return err
		},
		"ReEncrypt": func() error {
			_, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aws.String(sym), DryRun: dry})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(sym), KeySpec: types.DataKeySpecAes256, DryRun: dry})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func() error {
			_, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(sym),
				KeySpec: types.DataKeySpecAes256, DryRun: dry})
			return err
		},
		"GenerateDataKeyPair": func() error {
			_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(sym),
				KeyPairSpec: types.DataKeyPairSpecEccNistP256, DryRun: dry})
			return err
		},
		"GenerateDataKeyPairWithoutPlaintext": func() error {
			_, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(sym),
				KeyPairSpec: types.DataKeyPairSpecEccNistP256, DryRun: dry})
			return err
		},
		"Sign": func() error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ecc), Message: []byte("x"),
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		},
		"Verify": func() error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(ecc), Message: []byte("dry"), Signature: sig.Signature,
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		},
		"GenerateMac": func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(hmac), Message: []byte("x"),
				MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: dry})
			return err
		},
		"VerifyMac": func() error {
			_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(hmac), Message: []byte("dry"), Mac: mac.Mac,
				MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: dry})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			requireErr[*types.DryRunOperationException](t, call(), "The request would have succeeded, but the DryRun option is set.")
		})
	}
	assert.Equal(t, before, readKeys(t, c, []string{sym, ecc, hmac}))
}
