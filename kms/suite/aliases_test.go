package suite

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aliasesOf lists the aliases of a key.
func aliasesOf(t *testing.T, c *kms.Client, keyID string) []types.AliasListEntry {
	t.Helper()
	var out []types.AliasListEntry
	p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{KeyId: aws.String(keyID)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		out = append(out, page.Aliases...)
	}
	return out
}

// aliasTarget is the key ID an alias names now.
func aliasTarget(t *testing.T, c *kms.Client, alias string) string {
	t.Helper()
	return aws.ToString(describe(t, c, alias).KeyId)
}

// testAliases: CreateAlias, UpdateAlias, DeleteAlias and ListAliases, the
// alias/ prefix, the reserved alias/aws/, AlreadyExists, and UpdateAlias
// across key types refused.
func testAliases(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	k1, k2 := newSymmetric(t, c), newSymmetric(t, c)
	name := newAlias()

	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(keyIDOf(k1))})
	require.NoError(t, err)
	list := aliasesOf(t, c, k1)
	require.Len(t, list, 1)
	a := list[0]
	assert.Equal(t, name, aws.ToString(a.AliasName))
	assert.Equal(t, aliasARN(mainRegion, name), aws.ToString(a.AliasArn))
	assert.Equal(t, keyIDOf(k1), aws.ToString(a.TargetKeyId))
	require.NotNil(t, a.CreationDate)
	require.NotNil(t, a.LastUpdatedDate)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(name), Plaintext: []byte("through an alias")})
	require.NoError(t, err)
	assert.Equal(t, k1, aws.ToString(enc.KeyId), "the response KeyId is the key ARN")

	t.Run("AlreadyExists", func(t *testing.T) {
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(k2)})
		requireErr[*types.AlreadyExistsException](t, err, "An alias with the name "+aliasARN(mainRegion, name)+" already exists")
		assert.Equal(t, keyIDOf(k1), aliasTarget(t, c, name))
	})
	t.Run("Names", func(t *testing.T) {
		before := readKeys(t, c, []string{k2})
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("suite-no-prefix"), TargetKeyId: aws.String(k2)})
		requireCode(t, err, "ValidationException", `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/"), TargetKeyId: aws.String(k2)})
		requireCode(t, err, "ValidationException", anyMessage)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/suite"), TargetKeyId: aws.String(k2)})
		requireCode(t, err, "NotAuthorizedException", anyMessage)
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(newAlias()), TargetKeyId: aws.String(name)})
		requireCode(t, err, "ValidationException", "Aliases must refer to keys. Not aliases")
		missing := "21111111-2222-4333-8444-555555555555"
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(newAlias()), TargetKeyId: aws.String(missing)})
		requireErr[*types.NotFoundException](t, err, "Key '"+keyARN(mainRegion, missing)+"' does not exist")
		_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/aws/suite"), TargetKeyId: aws.String(k2)})
		requireCode(t, err, "NotAuthorizedException", anyMessage)
		assert.Equal(t, before, readKeys(t, c, []string{k2}), "refused alias requests change nothing")
	})
	t.Run("Update", func(t *testing.T) {
		_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(k2)})
		require.NoError(t, err)
		assert.Equal(t, keyIDOf(k2), aliasTarget(t, c, name))
		list := aliasesOf(t, c, k2)
		require.Len(t, list, 1)
		assert.False(t, list[0].LastUpdatedDate.Before(*list[0].CreationDate))
		assert.Empty(t, aliasesOf(t, c, k1))
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(aliasARN(mainRegion, name)), Plaintext: []byte("x")})
		require.NoError(t, err)
		assert.Equal(t, k2, aws.ToString(enc.KeyId))

		missing := newAlias()
		_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(missing), TargetKeyId: aws.String(k1)})
		requireErr[*types.NotFoundException](t, err, "Alias "+aliasARN(mainRegion, missing)+" is not found.")
	})
	t.Run("UpdateAcrossKeyTypes", func(t *testing.T) {
		rsaEnc := newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
		rsaSign := newKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
		ecc := newKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
		h256 := newKey(t, c, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac)
		h512 := newKey(t, c, types.KeySpecHmac512, types.KeyUsageTypeGenerateVerifyMac)
		for _, step := range []struct {
			from, to string
			ok       bool
		}{
			{k1, k2, true},           // symmetric to symmetric
			{k1, rsaEnc, false},      // symmetric to asymmetric, same usage
			{k1, h256, false},        // symmetric to HMAC
			{rsaSign, ecc, true},     // asymmetric, same usage
			{rsaSign, rsaEnc, false}, // asymmetric, other usage
			{ecc, h256, false},       // asymmetric to HMAC
			{h256, h512, true},       // HMAC to HMAC
			{h256, k1, false},        // HMAC to symmetric
		} {
			alias := newAlias()
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(step.from)})
			require.NoError(t, err)
			before := readKeys(t, c, []string{step.from, step.to})
			_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(step.to)})
			if step.ok {
				require.NoError(t, err, "UpdateAlias %s -> %s", describe(t, c, step.from).KeySpec, describe(t, c, step.to).KeySpec)
				assert.Equal(t, keyIDOf(step.to), aliasTarget(t, c, alias))
				continue
			}
			requireCode(t, err, "ValidationException", anyMessage)
			assert.Equal(t, keyIDOf(step.from), aliasTarget(t, c, alias))
			assert.Equal(t, before, readKeys(t, c, []string{step.from, step.to}))
		}
	})
	t.Run("Delete", func(t *testing.T) {
		_, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(name)})
		require.NoError(t, err)
		_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
		requireErr[*types.NotFoundException](t, err, "Alias "+aliasARN(mainRegion, name)+" is not found.")
		_, err = c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(name)})
		requireErr[*types.NotFoundException](t, err, "Alias "+aliasARN(mainRegion, name)+" is not found.")
		for _, a := range aliasesOf(t, c, k2) {
			assert.NotEqual(t, name, aws.ToString(a.AliasName), "ListAliases lists a deleted alias")
		}
		assert.Equal(t, types.KeyStateEnabled, describe(t, c, k2).KeyState, "deleting an alias leaves its key")
		// The name is free again.
		_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(k1)})
		require.NoError(t, err)
	})
	t.Run("ListPaging", func(t *testing.T) {
		k := newSymmetric(t, c)
		var names []string
		for i := range 5 {
			n := fmt.Sprintf("%s-%d", newAlias(), i)
			names = append(names, n)
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(n), TargetKeyId: aws.String(k)})
			require.NoError(t, err)
		}
		var got []string
		var marker *string
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			out, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(k), Limit: aws.Int32(2), Marker: marker})
			require.NoError(t, err)
			assert.LessOrEqual(t, len(out.Aliases), 2)
			for _, a := range out.Aliases {
				got = append(got, aws.ToString(a.AliasName))
				assert.Equal(t, keyIDOf(k), aws.ToString(a.TargetKeyId))
			}
			if !out.Truncated {
				assert.Nil(t, out.NextMarker)
				break
			}
			require.NotNil(t, out.NextMarker)
			marker = out.NextMarker
		}
		assert.ElementsMatch(t, names, got)
		var all []string
		p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{Limit: aws.Int32(3)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			require.NoError(t, err)
			for _, a := range page.Aliases {
				all = append(all, aws.ToString(a.AliasName))
			}
		}
		assert.Subset(t, all, names)
		_, err := c.ListAliases(ctx, &kms.ListAliasesInput{Marker: aws.String("not a marker")})
		requireErr[*types.InvalidMarkerException](t, err, anyMessage)
	})
}
