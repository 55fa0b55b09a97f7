package security

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/testcluster"
)

// The rows of docs/security-model.md's threat model for a KMS access key
// under key policies, identity policies and grants (docs/kms-access.md):
// what a principal the key's policy does not name can do to the key, and
// what a grant token is worth without its grant.

// kmsAccessAdmin is the identity policy of `hsm kms principal create
// --admin` (kms.AdminPolicy), written out here so the test says what it
// gives.
const kmsAccessAdmin = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

// kmsPolicyPrincipal makes a principal with an identity policy ("" for
// none) through a crypto officer's session.
func kmsPolicyPrincipal(t *testing.T, c *testcluster.Cluster, name, policy string) kmsCreds {
	t.Helper()
	cr, err := kmsOfficer(t, c).CreateKMSPrincipalWithPolicy(ctx, name, policy)
	require.NoError(t, err, "make the KMS principal %s", name)
	return kmsCreds{Name: name, AccessKeyID: cr.AccessKeyID, Secret: cr.SecretAccessKey}
}

// kmsDeniedMessage is AWS's AccessDeniedException message: the principal,
// the action, the resource when there is one, and which kind of policy
// did not allow it. Nothing else.
var kmsDeniedMessage = regexp.MustCompile(`^User: (arn:aws:iam::\d{12}:user/[A-Za-z0-9+=,.@_-]+) is not authorized to perform: (kms:[A-Za-z]+) ` +
	`(?:on resource: arn:aws:kms:[a-z0-9-]+:\d{12}:(?:key/[0-9a-f-]{36}|alias/[A-Za-z0-9/_-]+) )?` +
	`(?:because no (?:resource|identity)-based policy allows the (kms:[A-Za-z]+) action|with an explicit deny in an? (?:resource|identity)-based policy)$`)

// kmsDenied requires err to be AccessDeniedException naming arn and
// action, in AWS's words, holding none of the secrets.
func kmsDenied(t *testing.T, err error, arn, action, what string, secrets ...string) {
	t.Helper()
	code, msg := kmsCode(err)
	require.Equal(t, "AccessDeniedException", code, "%s: %v", what, err)
	m := kmsDeniedMessage.FindStringSubmatch(msg)
	require.NotNil(t, m, "%s: the refusal is not AWS's AccessDenied message, or says more: %q", what, msg)
	require.Equal(t, arn, m[1], "%s: the refusal names another principal", what)
	require.Equal(t, action, m[2], "%s: the refusal names another action", what)
	if m[3] != "" {
		require.Equal(t, action, m[3], "%s", what)
	}
	for _, s := range secrets {
		require.NotContains(t, msg, s, "%s: the refusal holds a detail it must not", what)
	}
}

// TestAttackKMSPolicyDenies: a principal that a key's policy does not
// name, with no identity policy (nobody) or with one that allows kms:* on
// every resource (mallory, who can make keys and aliases of her own),
// cannot use, describe or manage the key, nor escalate to it: not by
// PutKeyPolicy, a CreateGrant for herself, CreateAlias onto the key,
// UpdateAlias of her own alias to the key, ReEncrypt from the key, or
// ScheduleKeyDeletion. Each refusal is AccessDeniedException in AWS's
// words, naming the principal and action only (not the policy's
// statements, its condition values, the encryption context or anything
// encrypted); a DryRun is refused the same way, never
// DryRunOperationException. Afterwards the owner finds the key, its
// policy, grants and aliases as they were.
func TestAttackKMSPolicyDenies(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	owner := kmsPolicyPrincipal(t, c, "owner", kmsAccessAdmin)
	mallory := kmsPolicyPrincipal(t, c, "mallory", kmsAccessAdmin)
	nobody := kmsPolicyPrincipal(t, c, "nobody", "")
	own := kmsSDK(t, c, url, owner, kmsOpts{})

	// The account, from a key the owner makes.
	probe, err := own.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	account := strings.Split(aws.ToString(probe.KeyMetadata.Arn), ":")[4]
	arn := func(name string) string { return "arn:aws:iam::" + account + ":user/" + name }

	// The key's policy names the owner for everything and mallory for
	// Encrypt under one context value; it does not delegate to the account,
	// so no identity policy reaches it.
	const sid, ctxValue = "OwnerOnlyStatementSid", "billing-7f3a"
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[`+
		`{"Sid":%q,"Effect":"Allow","Principal":{"AWS":%q},"Action":"kms:*","Resource":"*"},`+
		`{"Sid":"MalloryBillingOnly","Effect":"Allow","Principal":{"AWS":%q},"Action":"kms:Encrypt","Resource":"*",`+
		`"Condition":{"StringEquals":{"kms:EncryptionContext:purpose":%q}}}]}`, sid, arn("owner"), arn("mallory"), ctxValue)
	made, err := own.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(policy), Description: aws.String("the owner's key")})
	require.NoError(t, err)
	key := aws.ToString(made.KeyMetadata.KeyId)
	_, err = own.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/owners"), TargetKeyId: aws.String(key)})
	require.NoError(t, err)
	plaintext := []byte("the owner's plaintext 5b1c")
	ownerCtx := map[string]string{"purpose": ctxValue, "tenant": "acme-owner-ctx"}
	enc, err := own.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: plaintext, EncryptionContext: ownerCtx})
	require.NoError(t, err)
	ct := enc.CiphertextBlob
	before, err := own.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(key)})
	require.NoError(t, err)

	// Mallory's own key and alias: what she controls.
	rec := &kmsRecorder{}
	mal := kmsSDK(t, c, url, mallory, kmsOpts{noRetry: true, recorder: rec})
	mine, err := mal.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err, "mallory's identity policy lets her make keys")
	mineID := aws.ToString(mine.KeyMetadata.KeyId)
	_, err = mal.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/mallorys"), TargetKeyId: aws.String(mineID)})
	require.NoError(t, err)
	// The one thing the key policy gives her, under its condition.
	_, err = mal.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x"), EncryptionContext: map[string]string{"purpose": ctxValue}})
	require.NoError(t, err, "the key policy lets mallory encrypt for billing")

	hidden := []string{sid, ctxValue, "acme-owner-ctx", "other-ctx-9e2d", string(plaintext), base64.StdEncoding.EncodeToString(ct),
		owner.Secret, mallory.Secret, nobody.Secret, "owner's key", "MalloryBillingOnly"}
	bypass := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["%s","%s"]},"Action":"kms:*","Resource":"*"}]}`,
		arn("mallory"), arn("nobody"))

	for _, who := range []kmsCreds{mallory, nobody} {
		cl := kmsSDK(t, c, url, who, kmsOpts{noRetry: true, recorder: rec})
		me := arn(who.Name)
		try := func(action string, err error) {
			t.Helper()
			kmsDenied(t, err, me, action, who.Name+": "+action, hidden...)
		}
		k := aws.String(key)
		for _, id := range []string{key, "alias/owners", aws.ToString(made.KeyMetadata.Arn)} {
			_, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
			try("kms:DescribeKey", err)
		}
		_, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: k, Plaintext: []byte("x"), EncryptionContext: map[string]string{"purpose": "other-ctx-9e2d"}})
		try("kms:Encrypt", err)
		_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ownerCtx})
		try("kms:Decrypt", err)
		_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ownerCtx, KeyId: k})
		try("kms:Decrypt", err)
		_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k, KeySpec: types.DataKeySpecAes256})
		try("kms:GenerateDataKey", err)
		_, err = cl.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: k})
		try("kms:GetKeyPolicy", err)
		_, err = cl.ListGrants(ctx, &kms.ListGrantsInput{KeyId: k})
		try("kms:ListGrants", err)

		// Escalation.
		_, err = cl.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k, Policy: aws.String(bypass), BypassPolicyLockoutSafetyCheck: true})
		try("kms:PutKeyPolicy", err)
		_, err = cl.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: k, GranteePrincipal: aws.String(me),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt, types.GrantOperationCreateGrant}})
		try("kms:CreateGrant", err)
		_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/" + who.Name + "-onto-owners"), TargetKeyId: k})
		if who.Name == "nobody" {
			require.Equal(t, "AccessDeniedException", kmsCodeOnly(err), "nobody: CreateAlias: %v", err)
		} else {
			try("kms:CreateAlias", err)
		}
		_, err = cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/mallorys"), TargetKeyId: k})
		require.Equal(t, "AccessDeniedException", kmsCodeOnly(err), "%s: UpdateAlias onto the owner's key: %v", who.Name, err)
		_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: ct, SourceEncryptionContext: ownerCtx, DestinationKeyId: aws.String(mineID)})
		if who.Name == "mallory" {
			try("kms:ReEncryptFrom", err)
		} else {
			require.Equal(t, "AccessDeniedException", kmsCodeOnly(err), "nobody: ReEncrypt: %v", err)
		}
		_, err = cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k, PendingWindowInDays: aws.Int32(7)})
		try("kms:ScheduleKeyDeletion", err)
		_, err = cl.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k})
		try("kms:DisableKey", err)
		_, err = cl.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: k, Description: aws.String("mine now")})
		try("kms:UpdateKeyDescription", err)

		// DryRun: the same refusal, never "would have succeeded".
		_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: k, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
		try("kms:Encrypt", err)
		_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ownerCtx, DryRun: aws.Bool(true)})
		try("kms:Decrypt", err)
		_, err = cl.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: k, GranteePrincipal: aws.String(me),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}, DryRun: aws.Bool(true)})
		try("kms:CreateGrant", err)
		_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: ct, SourceEncryptionContext: ownerCtx,
			DestinationKeyId: aws.String(mineID), DryRun: aws.Bool(true)})
		require.Equal(t, "AccessDeniedException", kmsCodeOnly(err), "%s: ReEncrypt DryRun: %v", who.Name, err)
		_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k, KeySpec: types.DataKeySpecAes256, DryRun: aws.Bool(true)})
		try("kms:GenerateDataKey", err)
	}
	// nobody, with no identity policy, cannot even make a key.
	_, err = kmsSDK(t, c, url, nobody, kmsOpts{noRetry: true}).CreateKey(ctx, &kms.CreateKeyInput{})
	kmsDenied(t, err, arn("nobody"), "kms:CreateKey", "nobody: CreateKey", hidden...)

	// No answer to either held the plaintext or the owner's context.
	for _, b := range rec.all() {
		for _, s := range []string{string(plaintext), "acme-owner-ctx", sid} {
			require.NotContains(t, string(b), s, "an answer to the attackers holds a detail of the owner's key")
		}
	}

	// The owner finds everything as it was.
	after, err := own.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(key)})
	require.NoError(t, err)
	require.JSONEq(t, aws.ToString(before.Policy), aws.ToString(after.Policy), "the key policy changed")
	d, err := own.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	require.NoError(t, err)
	require.Equal(t, types.KeyStateEnabled, d.KeyMetadata.KeyState)
	require.Equal(t, "the owner's key", aws.ToString(d.KeyMetadata.Description))
	grants, err := own.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(key)})
	require.NoError(t, err)
	require.Empty(t, grants.Grants, "a refused CreateGrant made a grant")
	aliases, err := own.ListAliases(ctx, &kms.ListAliasesInput{})
	require.NoError(t, err)
	for _, a := range aliases.Aliases {
		switch aws.ToString(a.AliasName) {
		case "alias/mallorys":
			require.Equal(t, mineID, aws.ToString(a.TargetKeyId), "mallory's alias moved onto the owner's key")
		case "alias/owners":
			require.Equal(t, key, aws.ToString(a.TargetKeyId))
		default:
			require.NotEqual(t, key, aws.ToString(a.TargetKeyId), "a refused CreateAlias points %s at the owner's key", aws.ToString(a.AliasName))
		}
	}
	dec, err := own.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ownerCtx})
	require.NoError(t, err)
	require.Equal(t, plaintext, dec.Plaintext)
}

// kmsCodeOnly is the AWS exception of an SDK error.
func kmsCodeOnly(err error) string {
	code, _ := kmsCode(err)
	return code
}

// TestAttackKMSForgedGrantToken: a grant token is worth only its grant. A
// principal the key's policy does not name (and with no identity policy)
// cannot use the key with a made-up token, a real token with one byte
// changed, the token of a grant on another key, or the token of another
// principal's grant on this key, on any node; and a token stops working,
// at once on every node, once its grant is revoked or retired.
func TestAttackKMSForgedGrantToken(t *testing.T) {
	c := testcluster.Start(t, 3)
	urls := []string{kmsNodeURL(t, c, 1), kmsNodeURL(t, c, 2), kmsNodeURL(t, c, 3)}
	owner := kmsPolicyPrincipal(t, c, "owner", kmsAccessAdmin)
	mallory := kmsPolicyPrincipal(t, c, "mallory", "")
	bob := kmsPolicyPrincipal(t, c, "bob", "")
	own := kmsSDK(t, c, urls[0], owner, kmsOpts{})
	for _, u := range urls {
		kmsWaitReady(t, kmsSDK(t, c, u, owner, kmsOpts{}))
	}
	probe, err := own.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	account := strings.Split(aws.ToString(probe.KeyMetadata.Arn), ":")[4]
	arn := func(name string) string { return "arn:aws:iam::" + account + ":user/" + name }

	target := kmsKey(t, own, types.KeySpecSymmetricDefault, "") // mallory holds no grant on it
	other := kmsKey(t, own, types.KeySpecSymmetricDefault, "")  // mallory holds a grant on this one
	grant := func(key, grantee string, retiring string) (string, string) {
		in := &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(arn(grantee)),
			Operations: []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt}}
		if retiring != "" {
			in.RetiringPrincipal = aws.String(arn(retiring))
		}
		out, err := own.CreateGrant(ctx, in)
		require.NoError(t, err)
		return aws.ToString(out.GrantId), aws.ToString(out.GrantToken)
	}
	_, otherTok := grant(other, "mallory", "")
	_, bobTok := grant(target, "bob", "")
	require.True(t, strings.HasPrefix(bobTok, "ohgt1."), "the test knows the token's form")

	flipped := []byte(bobTok)
	i := len(flipped) / 2
	for flipped[i] == '.' {
		i++
	}
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	randBytes := make([]byte, 96)
	_, err = rand.Read(randBytes)
	require.NoError(t, err)
	random := "ohgt1." + base64.RawURLEncoding.EncodeToString(randBytes[:64]) + "." + base64.RawURLEncoding.EncodeToString(randBytes[64:])

	encrypt := func(u string, cr kmsCreds, key, tok string) error {
		cl := kmsSDK(t, c, u, cr, kmsOpts{noRetry: true})
		_, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("via a token"), GrantTokens: []string{tok}})
		return err
	}
	for k, u := range urls {
		node := fmt.Sprintf("node%d", k+1)
		for _, tc := range []struct {
			name, tok, want string
		}{
			{"a made-up token", random, "InvalidGrantTokenException"},
			{"bob's token with one byte changed", string(flipped), "InvalidGrantTokenException"},
			{"not a token at all", "AQIDBAUGBwgJCgsMDQ4PEA", "InvalidGrantTokenException"},
			{"the token of mallory's grant on another key", otherTok, "AccessDeniedException"},
			{"the token of bob's grant on this key", bobTok, "AccessDeniedException"},
		} {
			err := encrypt(u, mallory, target, tc.tok)
			kmsWant(t, err, tc.want, node+": mallory with "+tc.name, tc.tok, mallory.Secret, bob.Secret, owner.Secret)
			if tc.want == "AccessDeniedException" {
				kmsDenied(t, err, arn("mallory"), "kms:Encrypt", node+": mallory with "+tc.name, tc.tok)
			}
		}
		// The tokens do work for their own grantees, on their own keys.
		require.NoError(t, encrypt(u, bob, target, bobTok), "%s: bob with his token", node)
		require.NoError(t, encrypt(u, mallory, other, otherTok), "%s: mallory with her token on its key", node)
	}
	grants, err := own.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(target)})
	require.NoError(t, err)
	require.Len(t, grants.Grants, 1, "a refused request made a grant")

	// Revoked and retired: refused at once on every node, token or not.
	revokedID, revokedTok := grant(target, "mallory", "")
	retiredID, retiredTok := grant(other, "bob", "bob")
	for k, u := range urls {
		require.NoError(t, encrypt(u, mallory, target, revokedTok), "node%d: the new token works before the grant is revoked", k+1)
		require.NoError(t, encrypt(u, bob, other, retiredTok), "node%d: the new token works before the grant is retired", k+1)
	}
	_, err = own.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(target), GrantId: aws.String(revokedID)})
	require.NoError(t, err)
	_, err = kmsSDK(t, c, urls[2], bob, kmsOpts{}).RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(retiredTok)})
	require.NoError(t, err, "bob, the retiring principal, retires his grant by its token")
	for k, u := range urls {
		node := fmt.Sprintf("node%d", k+1)
		err := encrypt(u, mallory, target, revokedTok)
		kmsDenied(t, err, arn("mallory"), "kms:Encrypt", node+": mallory with her revoked grant's token", revokedTok)
		err = encrypt(u, bob, other, retiredTok)
		kmsDenied(t, err, arn("bob"), "kms:Encrypt", node+": bob with his retired grant's token", retiredTok)
	}
	_, err = own.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(other), GrantId: aws.String(retiredID)})
	require.Equal(t, "NotFoundException", kmsCodeOnly(err), "the retired grant is gone")
}
