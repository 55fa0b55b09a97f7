package suite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

func rotations(t *testing.T, c *kms.Client, arn string) []types.RotationsListEntry {
	t.Helper()
	var out []types.RotationsListEntry
	p := kms.NewListKeyRotationsPaginator(c, &kms.ListKeyRotationsInput{KeyId: aws.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		out = append(out, page.Rotations...)
	}
	return out
}

// testRotation: EnableKeyRotation's period (90 to 2560 days, default
// 365), GetKeyRotationStatus, RotateKeyOnDemand up to 25 times,
// ListKeyRotations; a ciphertext made before three rotations still
// decrypts; asymmetric, HMAC and imported keys do not rotate.
func testRotation(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)
	status := func() *kms.GetKeyRotationStatusOutput {
		t.Helper()
		out, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		assert.Equal(t, arn, aws.ToString(out.KeyId))
		return out
	}
	st := status()
	assert.False(t, st.KeyRotationEnabled)
	assert.Nil(t, st.RotationPeriodInDays)
	assert.Nil(t, st.NextRotationDate)

	t.Run("Period", func(t *testing.T) {
		_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		st := status()
		assert.True(t, st.KeyRotationEnabled)
		assert.Equal(t, int32(365), aws.ToInt32(st.RotationPeriodInDays), "the default period")
		require.NotNil(t, st.NextRotationDate)
		assert.WithinDuration(t, tg.now().Add(365*day), *st.NextRotationDate, 5*time.Minute)
		for _, d := range []int32{90, 2560} {
			_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(keyIDOf(arn)), RotationPeriodInDays: aws.Int32(d)})
			require.NoError(t, err)
			assert.Equal(t, d, aws.ToInt32(status().RotationPeriodInDays))
		}
		before := readKeys(t, c, []string{arn})
		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn), RotationPeriodInDays: aws.Int32(89)})
		requireCode(t, err, "ValidationException", "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90")
		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn), RotationPeriodInDays: aws.Int32(2561)})
		requireCode(t, err, "ValidationException", "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560")
		assert.Equal(t, before, readKeys(t, c, []string{arn}))
		_, err = c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		st = status()
		assert.False(t, st.KeyRotationEnabled)
	})

	t.Run("ThreeRotations", func(t *testing.T) {
		ec := map[string]string{"made": "before"}
		old, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("old secret"), EncryptionContext: ec})
		require.NoError(t, err)
		assert.Empty(t, rotations(t, c, arn))
		for i := range 3 {
			out, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)})
			require.NoError(t, err, "rotation %d", i+1)
			assert.Contains(t, []string{arn, keyIDOf(arn)}, aws.ToString(out.KeyId))
		}
		rs := rotations(t, c, arn)
		require.Len(t, rs, 3)
		for _, r := range rs {
			assert.Equal(t, types.RotationTypeOnDemand, r.RotationType)
			assert.Equal(t, keyIDOf(arn), aws.ToString(r.KeyId))
			require.NotNil(t, r.RotationDate)
			assert.WithinDuration(t, tg.now(), *r.RotationDate, 5*time.Minute)
		}
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob, EncryptionContext: ec})
		require.NoError(t, err, "a ciphertext made before three rotations still decrypts")
		assert.Equal(t, []byte("old secret"), dec.Plaintext)
		assert.Equal(t, arn, aws.ToString(dec.KeyId))
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
		requireErr[*types.InvalidCiphertextException](t, err, "")
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("new secret")})
		require.NoError(t, err)
		dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		require.NoError(t, err)
		assert.Equal(t, []byte("new secret"), dec.Plaintext)
		re, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: old.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: aws.String(arn)})
		require.NoError(t, err, "ReEncrypt moves an old ciphertext to the newest version")
		dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob})
		require.NoError(t, err)
		assert.Equal(t, []byte("old secret"), dec.Plaintext)
	})

	t.Run("OnDemandLimit", func(t *testing.T) {
		for i := len(rotations(t, c, arn)); i < 25; i++ {
			_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)})
			require.NoError(t, err, "on-demand rotation %d", i+1)
		}
		before := readKeys(t, c, []string{arn})
		_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)})
		requireErr[*types.LimitExceededException](t, err, anyMessage)
		assert.Equal(t, before, readKeys(t, c, []string{arn}))
		var n int
		var marker *string
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			out, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(arn), Limit: aws.Int32(10), Marker: marker})
			require.NoError(t, err)
			assert.LessOrEqual(t, len(out.Rotations), 10)
			n += len(out.Rotations)
			if !out.Truncated {
				assert.Nil(t, out.NextMarker)
				break
			}
			require.NotNil(t, out.NextMarker)
			marker = out.NextMarker
		}
		assert.Equal(t, 25, n)
		_, err = c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(arn), Marker: aws.String("not a marker")})
		requireErr[*types.InvalidMarkerException](t, err, anyMessage)
	})

	t.Run("Unsupported", func(t *testing.T) {
		ext := aws.ToString(createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).Arn)
		for _, k := range []string{
			newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt),
			newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify),
			newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify),
			newKey(t, c, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac),
			ext,
		} {
			before := readKeys(t, c, []string{k})
			for name, call := range rotationCalls(c, k) {
				requireErr[*types.UnsupportedOperationException](t, call(ctx), anyMessage)
				_ = name
			}
			assert.Equal(t, before, readKeys(t, c, []string{k}))
		}
	})

	t.Run("Disabled", func(t *testing.T) {
		k := newSymmetric(t, c)
		_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k)})
		require.NoError(t, err)
		before := readKeys(t, c, []string{k})
		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(k)})
		requireErr[*types.DisabledException](t, err, k+" is disabled.")
		_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(k)})
		requireErr[*types.DisabledException](t, err, k+" is disabled.")
		assert.Equal(t, before, readKeys(t, c, []string{k}))
	})
}

// rotationCalls are the rotation operations on a key.
func rotationCalls(c *kms.Client, k string) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"EnableKeyRotation": func(ctx context.Context) error {
			_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(k)})
			return err
		},
		"DisableKeyRotation": func(ctx context.Context) error {
			_, err := c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(k)})
			return err
		},
		"GetKeyRotationStatus": func(ctx context.Context) error {
			_, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(k)})
			return err
		},
		"RotateKeyOnDemand": func(ctx context.Context) error {
			_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(k)})
			return err
		},
		"ListKeyRotations": func(ctx context.Context) error {
			_, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(k)})
			return err
		},
	}
}

// stateKeys are keys of each kind, with what the state-rule table needs
// to call every operation on them.
type stateKeys struct {
	sym, ecc, hmac string
	blob, sig, mac []byte
	alias          string // an alias of another symmetric key, for UpdateAlias
}

func makeStateKeys(t *testing.T, c *kms.Client) *stateKeys {
	t.Helper()
	ctx := t.Context()
	k := &stateKeys{
		sym:  newSymmetric(t, c),
		ecc:  newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify),
		hmac: newKey(t, c, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac),
	}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k.sym), Plaintext: []byte("state")})
	require.NoError(t, err)
	k.blob = enc.CiphertextBlob
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(k.ecc), Message: []byte("state"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	require.NoError(t, err)
	k.sig = sig.Signature
	mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(k.hmac), Message: []byte("state"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	require.NoError(t, err)
	k.mac = mac.Mac
	k.alias = newAlias()
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(k.alias), TargetKeyId: aws.String(newSymmetric(t, c))})
	require.NoError(t, err)
	return k
}

func (k *stateKeys) all() []string { return []string{k.sym, k.ecc, k.hmac} }

// stateOp is one operation on a key of the state-rule table.
type stateOp struct {
	name string
	key  func(k *stateKeys) string
	call func(ctx context.Context, c *kms.Client, k *stateKeys) error
	// use: a cryptographic use of the key (refused unless Enabled);
	// readOnly: works in every state; else refused while PendingDeletion.
	use, readOnly bool
	// disabled is the exception while Disabled ("" for success).
	disabled string
}

func symKey(k *stateKeys) string  { return k.sym }
func eccKey(k *stateKeys) string  { return k.ecc }
func hmacKey(k *stateKeys) string { return k.hmac }

var stateOps = []stateOp{
	{name: "Encrypt", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k.sym), Plaintext: []byte("x")})
		return err
	}},
	{name: "Decrypt", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: k.blob})
		return err
	}},
	{name: "ReEncrypt", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: k.blob, DestinationKeyId: aws.String(k.sym)})
		return err
	}},
	{name: "GenerateDataKey", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k.sym), KeySpec: types.DataKeySpecAes256})
		return err
	}},
	{name: "GenerateDataKeyWithoutPlaintext", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(k.sym), NumberOfBytes: aws.Int32(16)})
		return err
	}},
	{name: "GenerateDataKeyPair", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(k.sym), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		return err
	}},
	{name: "GenerateDataKeyPairWithoutPlaintext", key: symKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(k.sym),
			KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		return err
	}},
	{name: "Sign", key: eccKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(k.ecc), Message: []byte("x"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		return err
	}},
	{name: "Verify", key: eccKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(k.ecc), Message: []byte("state"), Signature: k.sig,
			SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		return err
	}},
	{name: "GetPublicKey", key: eccKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(k.ecc)})
		return err
	}},
	{name: "GenerateMac", key: hmacKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(k.hmac), Message: []byte("x"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		return err
	}},
	{name: "VerifyMac", key: hmacKey, use: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(k.hmac), Message: []byte("state"), Mac: k.mac,
			MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		return err
	}},
	{name: "EnableKeyRotation", key: symKey, disabled: "DisabledException", call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "DisableKeyRotation", key: symKey, disabled: "DisabledException", call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "RotateKeyOnDemand", key: symKey, disabled: "DisabledException", call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "CancelKeyDeletion", key: symKey, disabled: "KMSInvalidStateException", call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(k.sym)})
		return err
	}},
	// The rest work on a disabled key and change it; the table calls them
	// while PendingDeletion only, where they are refused.
	{name: "EnableKey", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "DisableKey", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "UpdateKeyDescription", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(k.sym), Description: aws.String("changed")})
		return err
	}},
	{name: "PutKeyPolicy", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k.sym), Policy: aws.String(rootPolicy)})
		return err
	}},
	{name: "TagResource", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k.sym), Tags: []types.Tag{tag("state", "x")}})
		return err
	}},
	{name: "UntagResource", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(k.sym), TagKeys: []string{"state"}})
		return err
	}},
	{name: "CreateAlias", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(newAlias()), TargetKeyId: aws.String(k.sym)})
		return err
	}},
	{name: "UpdateAlias", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(k.alias), TargetKeyId: aws.String(k.sym)})
		return err
	}},
	{name: "ScheduleKeyDeletion", key: symKey, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(k.sym), PendingWindowInDays: aws.Int32(7)})
		return err
	}},
	// Reads work in every state.
	{name: "DescribeKey", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "GetKeyPolicy", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(k.sym), PolicyName: aws.String("default")})
		return err
	}},
	{name: "ListKeyPolicies", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "ListResourceTags", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "ListAliases", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "GetKeyRotationStatus", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(k.sym)})
		return err
	}},
	{name: "ListKeyRotations", key: symKey, readOnly: true, call: func(ctx context.Context, c *kms.Client, k *stateKeys) error {
		_, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(k.sym)})
		return err
	}},
}

// testStateRules: every operation on a Disabled and on a PendingDeletion
// key gets AWS's answer for that state, and a refusal changes nothing.
func testStateRules(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	checkRefusal := func(t *testing.T, err error, code, msg string) {
		t.Helper()
		switch code {
		case "DisabledException":
			requireErr[*types.DisabledException](t, err, msg)
		case "KMSInvalidStateException":
			requireErr[*types.KMSInvalidStateException](t, err, msg)
		default:
			t.Fatalf("no check for %s", code)
		}
	}

	t.Run("Disabled", func(t *testing.T) {
		k := makeStateKeys(t, c)
		for _, arn := range k.all() {
			_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)})
			require.NoError(t, err)
		}
		before := readKeys(t, c, k.all())
		for _, op := range stateOps {
			want := op.disabled
			if op.use {
				want = "DisabledException"
			}
			if want == "" && !op.readOnly {
				continue // works, and changes the key: see below
			}
			t.Run(op.name, func(t *testing.T) {
				err := op.call(ctx, c, k)
				if want == "" {
					require.NoError(t, err)
					return
				}
				msg := anyMessage
				if want == "DisabledException" {
					msg = op.key(k) + " is disabled."
				}
				checkRefusal(t, err, want, msg)
			})
		}
		assert.Equal(t, before, readKeys(t, c, k.all()), "refusals change nothing")

		// What a disabled key still allows.
		_, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(k.sym), Description: aws.String("while disabled")})
		require.NoError(t, err)
		_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k.sym), Tags: []types.Tag{tag("while", "disabled")}})
		require.NoError(t, err)
		_, err = c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(k.sym), TagKeys: []string{"while"}})
		require.NoError(t, err)
		_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k.sym), Policy: aws.String(rootPolicy)})
		require.NoError(t, err)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(newAlias()), TargetKeyId: aws.String(k.sym)})
		require.NoError(t, err)
		_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(k.alias), TargetKeyId: aws.String(k.sym)})
		require.NoError(t, err)
		m := describe(t, c, k.sym)
		assert.Equal(t, types.KeyStateDisabled, m.KeyState)
		assert.Equal(t, "while disabled", aws.ToString(m.Description))
	})

	t.Run("PendingDeletion", func(t *testing.T) {
		k := makeStateKeys(t, c)
		for _, arn := range k.all() {
			out, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn)})
			require.NoError(t, err)
			assert.Equal(t, types.KeyStatePendingDeletion, out.KeyState)
		}
		before := readKeys(t, c, k.all())
		for _, op := range stateOps {
			if op.name == "CancelKeyDeletion" {
				continue // works: testScheduleKeyDeletion
			}
			t.Run(op.name, func(t *testing.T) {
				err := op.call(ctx, c, k)
				if op.readOnly {
					require.NoError(t, err)
					return
				}
				msg := anyMessage
				if op.use {
					msg = op.key(k) + " is pending deletion."
				}
				checkRefusal(t, err, "KMSInvalidStateException", msg)
			})
		}
		assert.Equal(t, before, readKeys(t, c, k.all()), "refusals change nothing")
	})
}

// testScheduleKeyDeletion: the window (7 to 30 days, default 30), a key
// pending deletion refused at once, CancelKeyDeletion leaves it Disabled.
func testScheduleKeyDeletion(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("doomed")})
	require.NoError(t, err)

	before := readKeys(t, c, []string{arn})
	for _, d := range []int32{1, 6, 31, 365} {
		_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(d)})
		requireCode(t, err, "ValidationException", fmt.Sprintf("1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30", d))
	}
	assert.Equal(t, before, readKeys(t, c, []string{arn}), "a refused ScheduleKeyDeletion changes nothing")

	for _, w := range []struct {
		days *int32
		want int32
	}{{nil, 30}, {aws.Int32(7), 7}, {aws.Int32(30), 30}} {
		out, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyIDOf(arn)), PendingWindowInDays: w.days})
		require.NoError(t, err)
		assert.Equal(t, arn, aws.ToString(out.KeyId))
		assert.Equal(t, types.KeyStatePendingDeletion, out.KeyState)
		assert.Equal(t, w.want, aws.ToInt32(out.PendingWindowInDays))
		require.NotNil(t, out.DeletionDate)
		assert.WithinDuration(t, tg.now().Add(time.Duration(w.want)*day), *out.DeletionDate, 5*time.Minute)
		m := describe(t, c, arn)
		assert.Equal(t, types.KeyStatePendingDeletion, m.KeyState)
		assert.False(t, m.Enabled)
		assert.Equal(t, out.DeletionDate, m.DeletionDate)
		assert.Equal(t, w.want, aws.ToInt32(m.PendingDeletionWindowInDays))

		// Refused at once.
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
		requireErr[*types.KMSInvalidStateException](t, err, arn+" is pending deletion.")
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		requireErr[*types.KMSInvalidStateException](t, err, arn+" is pending deletion.")
		_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn)})
		requireErr[*types.KMSInvalidStateException](t, err, arn+" is pending deletion.")

		cancel, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		assert.Equal(t, arn, aws.ToString(cancel.KeyId))
		m = describe(t, c, arn)
		assert.Equal(t, types.KeyStateDisabled, m.KeyState, "a cancelled deletion leaves the key Disabled")
		assert.Nil(t, m.DeletionDate)
		assert.Nil(t, m.PendingDeletionWindowInDays)
		_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(arn)})
		requireErr[*types.KMSInvalidStateException](t, err, anyMessage)
		_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		require.NoError(t, err)
		assert.Equal(t, []byte("doomed"), dec.Plaintext)
	}
	// A disabled key can be scheduled too.
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)})
	require.NoError(t, err)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(arn)})
	require.NoError(t, err)
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)})
	require.NoError(t, err)
}

// testDeletionWindowEnds: when the window ends, the key, its aliases and
// its material are gone; a key whose window has not ended stays, and
// cancelling restores it, disabled.
func testDeletionWindowEnds(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	short, long := newSymmetric(t, c), newSymmetric(t, c)
	alias := newAlias()
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(short)})
	require.NoError(t, err)
	ecShort, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(short), Plaintext: []byte("short")})
	require.NoError(t, err)
	ecLong, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(long), Plaintext: []byte("long")})
	require.NoError(t, err)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(short), PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(long), PendingWindowInDays: aws.Int32(30)})
	require.NoError(t, err)

	tg.advance(t, 6*day)
	if tg.upkeep != nil {
		require.NoError(t, tg.upkeep(ctx))
	} else {
		time.Sleep(3 * time.Second) // three upkeep intervals
	}
	assert.Equal(t, types.KeyStatePendingDeletion, describe(t, c, short).KeyState, "the window has a day to go")

	tg.advance(t, day+time.Hour)
	tg.eventually(t, "the key whose 7-day window ended is deleted", func() bool {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(short)})
		var nf *types.NotFoundException
		return errors.As(err, &nf)
	})
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(short)})
	requireErr[*types.NotFoundException](t, err, "Key '"+short+"' does not exist")
	assert.NotContains(t, listKeyARNs(t, c), short)
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	requireErr[*types.NotFoundException](t, err, "Alias "+aliasARN(mainRegion, alias)+" is not found.")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ecShort.CiphertextBlob})
	require.Error(t, err, "a ciphertext of a deleted key decrypts no more")
	assert.NotContains(t, err.Error(), "short")

	m := describe(t, c, long)
	assert.Equal(t, types.KeyStatePendingDeletion, m.KeyState)
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(long)})
	require.NoError(t, err)
	assert.Equal(t, types.KeyStateDisabled, describe(t, c, long).KeyState)
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(long)})
	require.NoError(t, err)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ecLong.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, []byte("long"), dec.Plaintext)
}

// testScheduledRotation: a key whose rotation period has passed rotates
// by itself, and its old ciphertexts still decrypt.
func testScheduledRotation(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	arn := newSymmetric(t, c)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("before the rotation")})
	require.NoError(t, err)
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn), RotationPeriodInDays: aws.Int32(90)})
	require.NoError(t, err)
	tg.advance(t, 91*day)
	tg.eventually(t, "the key rotated on its schedule", func() bool { return len(rotations(t, c, arn)) > 0 })
	rs := rotations(t, c, arn)
	require.Len(t, rs, 1)
	assert.Equal(t, types.RotationTypeAutomatic, rs[0].RotationType)
	st, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)})
	require.NoError(t, err)
	require.NotNil(t, st.NextRotationDate)
	assert.True(t, st.NextRotationDate.After(tg.now().Add(80*day)), "the next rotation is a period later: %v", st.NextRotationDate)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, []byte("before the rotation"), dec.Plaintext)
}
