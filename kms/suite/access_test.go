package suite

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/kmstest"
	okms "github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/object"
)

// accessWorld is the in-process server with a client per principal.
type accessWorld struct {
	srv *kmstest.Server
}

// principal makes a principal with an identity policy and its SDK client.
func (w *accessWorld) principal(t *testing.T, name, policy string) *kms.Client {
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	cred, err := w.srv.Service.CreatePrincipalWithPolicy(t.Context(), co, name, policy)
	require.NoError(t, err)
	return kms.New(kms.Options{Region: mainRegion, BaseEndpoint: aws.String(w.srv.URL), HTTPClient: w.srv.Client,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}, nil
		})})
}

func denied(t *testing.T, err error, msg string) {
	t.Helper()
	var ad smithy.APIError
	require.True(t, errors.As(err, &ad), "want AccessDeniedException, got %v", err)
	require.Equal(t, "AccessDeniedException", ad.ErrorCode(), "%v", err)
	if msg != "" {
		assert.Equal(t, msg, ad.ErrorMessage())
	}
}

func userArn(name string) string { return "arn:aws:iam::" + account + ":user/" + name }

// TestAccessControl drives key policies, identity policies, grants and
// grant tokens through the unchanged Go SDK.
func TestAccessControl(t *testing.T) {
	w := &accessWorld{srv: kmstest.Start(t)}
	ctx := t.Context()
	admin := w.principal(t, "keyadmin", okms.AdminPolicy)
	none := w.principal(t, "nobody", "")
	reader := w.principal(t, "reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Describe*","Resource":"*"}]}`)

	key, err := admin.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	arn := aws.ToString(key.KeyMetadata.Arn)

	t.Run("IAMOnlyRefused", func(t *testing.T) {
		_, err := none.CreateKey(ctx, &kms.CreateKeyInput{})
		denied(t, err, "User: "+userArn("nobody")+" is not authorized to perform: kms:CreateKey because no identity-based policy allows the kms:CreateKey action")
	})
	t.Run("DelegationNeedsIdentityPolicy", func(t *testing.T) {
		_, err := none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
		denied(t, err, "User: "+userArn("nobody")+" is not authorized to perform: kms:Encrypt on resource: "+arn+" because no identity-based policy allows the kms:Encrypt action")
		_, err = reader.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
		require.NoError(t, err, "the identity policy allows Describe* through the default key policy")
		_, err = reader.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
		denied(t, err, "")
	})
	t.Run("DryRunChecksPermission", func(t *testing.T) {
		_, err := none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"), DryRun: aws.Bool(true)})
		denied(t, err, "")
		_, err = admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"), DryRun: aws.Bool(true)})
		var dr *types.DryRunOperationException
		require.ErrorAs(t, err, &dr)
	})
	t.Run("KeyPolicyDenies", func(t *testing.T) {
		k, err := admin.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(`{"Version":"2012-10-17","Statement":[
 {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"NoDecrypt","Effect":"Deny","Principal":{"AWS":"` + userArn("keyadmin") + `"},"Action":"kms:Decrypt","Resource":"*"}]}`)})
		require.NoError(t, err)
		karn := aws.ToString(k.KeyMetadata.Arn)
		enc, err := admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(karn), Plaintext: []byte("x")})
		require.NoError(t, err)
		_, err = admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		denied(t, err, "User: "+userArn("keyadmin")+" is not authorized to perform: kms:Decrypt on resource: "+karn+" with an explicit deny in a resource-based policy")
	})
	t.Run("LockoutSafetyCheck", func(t *testing.T) {
		lockout := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + userArn("reader") + `"},"Action":"kms:Encrypt","Resource":"*"}]}`
		k, err := admin.CreateKey(ctx, &kms.CreateKeyInput{})
		require.NoError(t, err)
		_, err = admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyMetadata.KeyId, Policy: aws.String(lockout)})
		var mp *types.MalformedPolicyDocumentException
		require.ErrorAs(t, err, &mp)
		assert.Equal(t, "The new key policy will not allow you to update the key policy in the future.", mp.ErrorMessage())
		_, err = admin.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(lockout)})
		require.ErrorAs(t, err, &mp)
		_, err = admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyMetadata.KeyId, Policy: aws.String(lockout), BypassPolicyLockoutSafetyCheck: true})
		require.NoError(t, err)
		_, err = admin.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyMetadata.KeyId})
		denied(t, err, "")
		_, err = admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyMetadata.KeyId, Policy: aws.String(`{"Statement":[]}`)})
		denied(t, err, "")
		_, err = admin.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
		require.ErrorAs(t, err, &mp)
		assert.Contains(t, mp.ErrorMessage(), "Statement")
	})
	t.Run("GrantWithSubsetConstraint", func(t *testing.T) {
		g, err := admin.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(userArn("nobody")),
			Operations:  []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt},
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "billing"}},
			Name:        aws.String("billing")})
		require.NoError(t, err)
		again, err := admin.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(userArn("nobody")),
			Operations:  []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt},
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "billing"}},
			Name:        aws.String("billing")})
		require.NoError(t, err)
		assert.Equal(t, aws.ToString(g.GrantId), aws.ToString(again.GrantId), "the same name and parameters answer the same grant")

		enc, err := none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"),
			EncryptionContext: map[string]string{"purpose": "billing", "run": "42"}})
		require.NoError(t, err)
		_, err = none.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "billing", "run": "42"}})
		require.NoError(t, err)
		_, err = none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"), EncryptionContext: map[string]string{"purpose": "audit"}})
		denied(t, err, "")
		_, err = none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
		denied(t, err, "")

		list, err := admin.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		require.Len(t, list.Grants, 1)
		assert.Equal(t, userArn("nobody"), aws.ToString(list.Grants[0].GranteePrincipal))
		assert.Equal(t, map[string]string{"purpose": "billing"}, list.Grants[0].Constraints.EncryptionContextSubset)

		_, err = admin.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: g.GrantId})
		require.NoError(t, err)
		_, err = none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"),
			EncryptionContext: map[string]string{"purpose": "billing"}})
		denied(t, err, "")
		// A revoked grant's token is never honoured again.
		_, err = none.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"),
			EncryptionContext: map[string]string{"purpose": "billing"}, GrantTokens: []string{aws.ToString(g.GrantToken)}})
		denied(t, err, "")
	})
	t.Run("TaggingAtCreateNeedsTagResource", func(t *testing.T) {
		maker := w.principal(t, "maker", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*"}]}`)
		_, err := maker.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("a")}}})
		denied(t, err, "User: "+userArn("maker")+" is not authorized to perform: kms:TagResource because no identity-based policy allows the kms:TagResource action")
		_, err = maker.CreateKey(ctx, &kms.CreateKeyInput{})
		require.NoError(t, err, "without tags CreateKey alone is enough")
	})
	t.Run("GrantOperationsFitTheKey", func(t *testing.T) {
		_, err := admin.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(userArn("nobody")),
			Operations: []types.GrantOperation{types.GrantOperationSign}})
		var ae smithy.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "ValidationException", ae.ErrorCode())
		assert.Contains(t, ae.ErrorMessage(), "Sign is not valid for a KMS key with KeySpec SYMMETRIC_DEFAULT")
	})
	t.Run("GrantCreatesOnlyNarrowerGrants", func(t *testing.T) {
		_, err := admin.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(userArn("reader")),
			Operations:  []types.GrantOperation{types.GrantOperationCreateGrant, types.GrantOperationDecrypt},
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "billing"}}})
		require.NoError(t, err)
		sub := func(ops []types.GrantOperation, c *types.GrantConstraints) error {
			_, err := reader.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(userArn("nobody")),
				Operations: ops, Constraints: c})
			return err
		}
		billing := &types.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "billing"}}
		require.NoError(t, sub([]types.GrantOperation{types.GrantOperationDecrypt}, billing), "as narrow as its own grant")
		require.NoError(t, sub([]types.GrantOperation{types.GrantOperationDecrypt},
			&types.GrantConstraints{EncryptionContextEquals: map[string]string{"purpose": "billing", "run": "1"}}), "stricter")
		denied(t, sub([]types.GrantOperation{types.GrantOperationEncrypt}, billing), "")
		denied(t, sub([]types.GrantOperation{types.GrantOperationDecrypt}, nil), "")
		denied(t, sub([]types.GrantOperation{types.GrantOperationDecrypt},
			&types.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "audit"}}), "")
	})
	t.Run("RetireGrant", func(t *testing.T) {
		g, err := admin.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(userArn("nobody")),
			RetiringPrincipal: aws.String(userArn("reader")), Operations: []types.GrantOperation{types.GrantOperationGenerateDataKey}})
		require.NoError(t, err)
		_, err = none.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256,
			GrantTokens: []string{aws.ToString(g.GrantToken)}})
		require.NoError(t, err)
		r, err := reader.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(userArn("reader"))})
		denied(t, err, "") // ListRetirableGrants is IAM-only and reader's policy allows only Describe*
		r, err = admin.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(userArn("reader"))})
		require.NoError(t, err)
		require.Len(t, r.Grants, 1)
		// The retiring principal retires it by token, without a policy.
		_, err = reader.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
		require.NoError(t, err)
		_, err = none.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256,
			GrantTokens: []string{aws.ToString(g.GrantToken)}})
		denied(t, err, "")
		_, err = admin.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: g.GrantId})
		var nf *types.NotFoundException
		require.ErrorAs(t, err, &nf)
	})
	t.Run("ResourceAliasesCondition", func(t *testing.T) {
		// The identity policy allows Encrypt only on keys an alias
		// alias/app-* names: the service reads the key's aliases for it,
		// and sees an alias made or deleted at once.
		app := w.principal(t, "aliased", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*",
 "Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/app-*"}}}]}`)
		k, err := admin.CreateKey(ctx, &kms.CreateKeyInput{})
		require.NoError(t, err)
		in := &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")}
		_, err = app.Encrypt(ctx, in)
		denied(t, err, "")
		_, err = admin.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/other-1"), TargetKeyId: k.KeyMetadata.KeyId})
		require.NoError(t, err)
		_, err = app.Encrypt(ctx, in)
		denied(t, err, "")
		_, err = admin.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app-1"), TargetKeyId: k.KeyMetadata.KeyId})
		require.NoError(t, err)
		_, err = app.Encrypt(ctx, in)
		require.NoError(t, err, "an alias alias/app-* names the key")
		_, err = app.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
		denied(t, err, "")
		_, err = admin.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/app-1")})
		require.NoError(t, err)
		_, err = app.Encrypt(ctx, in)
		denied(t, err, "")
	})
	t.Run("GarbageGrantToken", func(t *testing.T) {
		_, err := admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"), GrantTokens: []string{"not-a-token"}})
		var it *types.InvalidGrantTokenException
		require.ErrorAs(t, err, &it)
		_, err = admin.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: aws.String("nope")})
		var ig *types.InvalidGrantIdException
		require.ErrorAs(t, err, &ig)
	})
}
