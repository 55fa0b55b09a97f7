package security

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/kms/blob"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
)

// The rows of docs/security-model.md's threat model for a KMS access key
// (an access key ID and its secret access key), and the KMS notes of the
// crypto officer, data directory and backup file rows. Every test here runs
// real daemons (internal/testcluster) and reaches their KMS API with the
// unchanged aws-sdk-go-v2 KMS client, and their HSM API with the Go client
// or the PKCS#11 library.

// TestAttackKMSForgedSignature: an access key signs only as its own
// principal. A wrong secret, another principal's access key ID with this
// secret, a made-up access key ID, and no signature at all are refused
// with AWS's exceptions, whose messages hold no secret; none of the
// refused writes made a key.
func TestAttackKMSForgedSignature(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	alice := kmsPrincipal(t, c, "alice")
	bob := kmsPrincipal(t, c, "bob")
	own := kmsSDK(t, c, url, alice, kmsOpts{})
	enc, err := own.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(kmsKey(t, own, types.KeySpecSymmetricDefault, "")), Plaintext: []byte("alice's data")})
	require.NoError(t, err, "alice uses her own access key")
	before, err := own.ListKeys(ctx, &kms.ListKeysInput{})
	require.NoError(t, err)

	flip := []byte(alice.Secret)
	flip[7] ^= 1
	for _, tc := range []struct {
		name string
		cr   kmsCreds
		anon bool
		want string
	}{
		{"alice's key ID with a wrong secret", kmsCreds{AccessKeyID: alice.AccessKeyID, Secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}, false, "InvalidSignatureException"},
		{"alice's key ID with one bit of her secret flipped", kmsCreds{AccessKeyID: alice.AccessKeyID, Secret: string(flip)}, false, "InvalidSignatureException"},
		{"bob's key ID with alice's secret", kmsCreds{AccessKeyID: bob.AccessKeyID, Secret: alice.Secret}, false, "InvalidSignatureException"},
		{"alice's secret under a made-up key ID", kmsCreds{AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", Secret: alice.Secret}, false, "UnrecognizedClientException"},
		{"alice's name as the key ID", kmsCreds{AccessKeyID: "alice", Secret: alice.Secret}, false, "UnrecognizedClientException"},
		{"no signature", kmsCreds{}, true, "MissingAuthenticationTokenException"},
	} {
		cl := kmsSDK(t, c, url, tc.cr, kmsOpts{anon: tc.anon, noRetry: true})
		_, err := cl.CreateKey(ctx, &kms.CreateKeyInput{})
		kmsWant(t, err, tc.want, tc.name+": CreateKey", alice.Secret, bob.Secret)
		_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		kmsWant(t, err, tc.want, tc.name+": Decrypt", alice.Secret, bob.Secret)
		_, err = cl.ListKeys(ctx, &kms.ListKeysInput{})
		kmsWant(t, err, tc.want, tc.name+": ListKeys", alice.Secret, bob.Secret)
	}
	after, err := own.ListKeys(ctx, &kms.ListKeysInput{})
	require.NoError(t, err)
	require.Equal(t, len(before.Keys), len(after.Keys), "a refused CreateKey made a key")
}

// TestAttackKMSReplayOutsideWindow: a request captured off the wire (or
// signed by a clock that is off) is accepted only within 5 minutes of the
// time it was signed, as AWS accepts it. One signed 6 minutes ago, or 6
// minutes ahead, is InvalidSignatureException, and a write so refused
// changed nothing. (Replaying within the window works, as on AWS: TLS is
// what keeps a request from being captured.)
func TestAttackKMSReplayOutsideWindow(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	cr := kmsPrincipal(t, c, "replayed")
	own := kmsSDK(t, c, url, cr, kmsOpts{})
	count := func() int {
		out, err := own.ListKeys(ctx, &kms.ListKeysInput{})
		require.NoError(t, err)
		return len(out.Keys)
	}
	before := count()
	random := []byte(`{"NumberOfBytes":16}`)
	create := []byte(`{"Description":"replayed"}`)

	code, typ, _ := kmsSigned(t, c, url, "GenerateRandom", random, cr, time.Now().Add(-time.Minute))
	require.Equal(t, 200, code, "a request signed a minute ago (within the window) is served: %s", typ)

	for _, tc := range []struct {
		name string
		when time.Time
		says string
	}{
		{"signed 6 minutes ago", time.Now().Add(-6 * time.Minute), "Signature expired"},
		{"signed 5 minutes 30 seconds ago", time.Now().Add(-5*time.Minute - 30*time.Second), "Signature expired"},
		{"signed 6 minutes ahead", time.Now().Add(6 * time.Minute), "Signature not yet current"},
		{"signed a day ago", time.Now().Add(-24 * time.Hour), "Signature expired"},
	} {
		for op, body := range map[string][]byte{"GenerateRandom": random, "CreateKey": create} {
			code, typ, msg := kmsSigned(t, c, url, op, body, cr, tc.when)
			require.Equal(t, 400, code, "%s: %s", tc.name, op)
			require.Equal(t, "InvalidSignatureException", typ, "%s: %s", tc.name, op)
			require.Contains(t, msg, tc.says, "%s: %s", tc.name, op)
			require.NotContains(t, msg, cr.Secret)
		}
	}
	require.Equal(t, before, count(), "a refused CreateKey made a key")
}

// TestAttackKMSRevokedAccessKey: once `hsm kms principal rotate-key`
// returns, the old access key is refused by every node, at once (each node
// asked directly, one attempt, no wait), even by nodes that had just served
// it and hold its signing key; the new one works everywhere. Once `hsm kms
// principal delete` returns, the principal's key is refused everywhere.
func TestAttackKMSRevokedAccessKey(t *testing.T) {
	c := testcluster.Start(t, 3)
	urls := []string{kmsNodeURL(t, c, 1), kmsNodeURL(t, c, 2), kmsNodeURL(t, c, 3)}
	use := func(cr kmsCreds) []error {
		var errs []error
		for _, u := range urls {
			cl := kmsSDK(t, c, u, cr, kmsOpts{noRetry: true})
			_, err := cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
			errs = append(errs, err)
		}
		return errs
	}

	old := kmsCLIPrincipal(t, c, "create", "ci")
	// Every node serves it, and so holds its signing key for today.
	for _, u := range urls {
		kmsWaitReady(t, kmsSDK(t, c, u, old, kmsOpts{}))
	}
	for k, err := range use(old) {
		require.NoError(t, err, "node%d serves the new principal", k+1)
	}

	cur := kmsCLIPrincipal(t, c, "rotate-key", "ci")
	require.NotEqual(t, old.AccessKeyID, cur.AccessKeyID)
	require.NotEqual(t, old.Secret, cur.Secret)
	for k, err := range use(old) {
		kmsWant(t, err, "UnrecognizedClientException", fmt.Sprintf("node%d, the rotated-out key", k+1), old.Secret, cur.Secret)
	}
	for k, err := range use(cur) {
		require.NoError(t, err, "node%d serves the new key", k+1)
	}
	// The old key ID with the new secret is no way back either.
	for k, err := range use(kmsCreds{AccessKeyID: old.AccessKeyID, Secret: cur.Secret}) {
		kmsWant(t, err, "UnrecognizedClientException", fmt.Sprintf("node%d, the old key ID with the new secret", k+1), old.Secret, cur.Secret)
	}

	out, err := c.HSM(kmsOfficerEnv(c), "kms", "principal", "delete", "ci")
	require.NoError(t, err, "%s", out)
	for k, err := range use(cur) {
		kmsWant(t, err, "UnrecognizedClientException", fmt.Sprintf("node%d, the deleted principal's key", k+1), cur.Secret)
	}
	for k, err := range use(old) {
		kmsWant(t, err, "UnrecognizedClientException", fmt.Sprintf("node%d, the deleted principal's old key", k+1), old.Secret)
	}
}

// TestAttackKMSNoHSMLogin: a KMS access key is no HSM credential. Logging
// in to the HSM API as kmsuser with the secret, the access key ID or
// guesses, or as the principal's name, fails as any wrong password does;
// C_Login on kmsuser's token through the PKCS#11 library fails the same way
// and the principal has no token. kmsuser's password was random and is
// kept nowhere. The guesses lock kmsuser (as they would any crypto user),
// and the KMS service, which uses kmsuser's keys inside the daemon without
// a login, goes on working: a client certificate cannot stop the KMS by
// locking kmsuser.
func TestAttackKMSNoHSMLogin(t *testing.T) {
	prog, lib := kmsBuildP11(t)
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	cr := kmsPrincipal(t, c, "app2")
	svc := kmsSDK(t, c, url, cr, kmsOpts{})
	key := kmsKey(t, svc, types.KeySpecSymmetricDefault, "")

	// The harnesses log in when they should.
	require.Equal(t, "CKR_OK", kmsP11Login(t, c, prog, lib, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"]), "the crypto user's own C_Login")
	pinned(t, c, 1, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])

	refused := []uint64{ck.CKR_PIN_INCORRECT, ck.CKR_PIN_LOCKED}
	for _, tc := range []struct{ name, user, password string }{
		{"kmsuser with the secret access key", state.KMSUser, cr.Secret},
		{"kmsuser with the access key ID", state.KMSUser, cr.AccessKeyID},
		{"the principal's name with its secret", cr.Name, cr.Secret},
		{"kmsuser with a guess", state.KMSUser, "kmsuser-password-guess-1"},
	} {
		rv := kmsLoginRefused(t, c, tc.user, tc.password, tc.name)
		require.Contains(t, refused, rv, "%s: refused with %s", tc.name, ck.RVName(rv))
	}
	got := kmsP11Login(t, c, prog, lib, state.KMSUser, cr.Secret)
	require.Contains(t, []string{"CKR_PIN_INCORRECT", "CKR_PIN_LOCKED"}, got, "C_Login on kmsuser's token with the secret access key")
	require.Equal(t, "no token", kmsP11Login(t, c, prog, lib, cr.Name, cr.Secret), "the principal has a PKCS#11 token")
	for i := 2; i <= 4; i++ {
		kmsLoginRefused(t, c, state.KMSUser, fmt.Sprintf("kmsuser-password-guess-%d", i), "kmsuser with a guess")
	}
	users, err := kmsOfficer(t, c).ListUsers(ctx)
	require.NoError(t, err)
	locked := false
	for _, u := range users {
		if u.Name == state.KMSUser {
			locked = u.Locked
		}
	}
	require.True(t, locked, "six wrong passwords did not lock kmsuser")

	// The service goes on: new keys, encryption, decryption.
	out, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("still served")})
	require.NoError(t, err, "the KMS stopped once kmsuser was locked")
	dec, err := svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
	require.NoError(t, err)
	require.Equal(t, "still served", string(dec.Plaintext))
	kmsKey(t, svc, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
}

// kmsKey makes a key of spec (and usage, "" for the spec's default) and
// returns its ID.
func kmsKey(t *testing.T, cl *kms.Client, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	in := &kms.CreateKeyInput{KeySpec: spec}
	if usage != "" {
		in.KeyUsage = usage
	}
	out, err := cl.CreateKey(ctx, in)
	require.NoError(t, err, "CreateKey %s %s", spec, usage)
	return aws.ToString(out.KeyMetadata.KeyId)
}

// kmsKeySet is one key of each kind a principal can make, by name.
type kmsKeySet map[string]string

// kmsMakeKeys makes a key of each kind and runs every operation that
// touches a key, or answers key material of its own, on each: what a
// principal can make the service answer. It returns the keys and the
// public keys GetPublicKey gave, by key ID (DER).
func kmsMakeKeys(t *testing.T, cl *kms.Client) (kmsKeySet, map[string][]byte) {
	t.Helper()
	keys := kmsKeySet{
		"aes":      kmsKey(t, cl, types.KeySpecSymmetricDefault, ""),
		"hmac":     kmsKey(t, cl, types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac),
		"rsa-enc":  kmsKey(t, cl, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt),
		"rsa-sign": kmsKey(t, cl, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify),
		"ec":       kmsKey(t, cl, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify),
	}
	imp, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	require.NoError(t, err)
	keys["import"] = aws.ToString(imp.KeyMetadata.KeyId)
	_, err = cl.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: imp.KeyMetadata.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	require.NoError(t, err, "GetParametersForImport")

	aes := aws.String(keys["aes"])
	_, err = cl.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aes})
	require.NoError(t, err)
	_, err = cl.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aes})
	require.NoError(t, err)
	pubs := map[string][]byte{}
	for name, id := range keys {
		kid := aws.String(id)
		_, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kid})
		require.NoError(t, err)
		_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/at-rest-" + name), TargetKeyId: kid})
		require.NoError(t, err)
		_, err = cl.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: kid})
		require.NoError(t, err)
		_, err = cl.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: kid})
		require.NoError(t, err)
		_, err = cl.TagResource(ctx, &kms.TagResourceInput{KeyId: kid, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String(name)}}})
		require.NoError(t, err)
		_, err = cl.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: kid})
		require.NoError(t, err)
		pk, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: kid})
		switch name {
		case "rsa-enc", "rsa-sign", "ec":
			require.NoError(t, err, "GetPublicKey %s", name)
			pubs[id] = pk.PublicKey
		default:
			require.Error(t, err, "GetPublicKey of a %s key answered", name)
		}
	}
	_, err = cl.ListKeys(ctx, &kms.ListKeysInput{})
	require.NoError(t, err)
	_, err = cl.ListAliases(ctx, &kms.ListAliasesInput{})
	require.NoError(t, err)
	_, err = cl.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aes})
	require.NoError(t, err)
	_, err = cl.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aes})
	require.NoError(t, err)
	_, err = cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1024)})
	require.NoError(t, err)

	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aes, Plaintext: []byte("at rest")})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aes})
	require.NoError(t, err)
	_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aes, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	_, err = cl.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aes, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	_, err = cl.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aes, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	require.NoError(t, err)
	_, err = cl.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aes, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	require.NoError(t, err)

	mac, err := cl.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(keys["hmac"]), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: []byte("m")})
	require.NoError(t, err)
	_, err = cl.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(keys["hmac"]), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: []byte("m"), Mac: mac.Mac})
	require.NoError(t, err)

	renc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keys["rsa-enc"]), Plaintext: []byte("m"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(keys["rsa-enc"]), CiphertextBlob: renc.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	require.NoError(t, err)
	for name, alg := range map[string]types.SigningAlgorithmSpec{"rsa-sign": types.SigningAlgorithmSpecRsassaPssSha256, "ec": types.SigningAlgorithmSpecEcdsaSha256} {
		sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: aws.String(keys[name]), Message: []byte("m"), MessageType: types.MessageTypeRaw, SigningAlgorithm: alg})
		require.NoError(t, err)
		_, err = cl.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(keys[name]), Message: []byte("m"), MessageType: types.MessageTypeRaw, SigningAlgorithm: alg, Signature: sig.Signature})
		require.NoError(t, err)
	}
	return keys, pubs
}

// kmsStopAndRead stops node k, reads kmsuser's objects and their material
// from its store (kmsMaterial), and starts the node again.
func kmsStopAndRead(t *testing.T, c *testcluster.Cluster, k int, cl *kms.Client) []kmsObject {
	t.Helper()
	c.Stop(k, false)
	objs := kmsMaterial(t, c, k)
	out, err := c.StartNode(k)
	require.NoError(t, err, "%s", out)
	kmsWaitReady(t, cl)
	return objs
}

// kmsRefusedUse requires err to be a refusal to use a key the caller may
// not use.
func kmsRefusedUse(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, "%s: allowed", what)
	rv := hsmerr.RV(err)
	require.Contains(t, []uint64{ck.CKR_OBJECT_HANDLE_INVALID, ck.CKR_KEY_HANDLE_INVALID, ck.CKR_USER_NOT_LOGGED_IN}, rv,
		"%s: refused with %s (%v)", what, ck.RVName(rv), err)
}

// kmsUseAll tries every use and change of object id as cl's user, and
// requires each to be refused.
func kmsUseAll(t *testing.T, cl *client.Client, who string, o kmsObject) {
	t.Helper()
	what := func(op string) string {
		return fmt.Sprintf("%s: %s of kmsuser's object %d (%s)", who, op, o.ID, o.Label)
	}
	cbc := objectsCBC()
	_, err := cl.Encrypt(ctx, o.ID, cbc, []byte("attacker's data"))
	kmsRefusedUse(t, err, what("C_Encrypt"))
	_, err = cl.Decrypt(ctx, o.ID, cbc, make([]byte, 32))
	kmsRefusedUse(t, err, what("C_Decrypt"))
	_, err = cl.Sign(ctx, o.ID, mech.Mech{Type: ck.CKM_SHA256_HMAC}, []byte("m"))
	kmsRefusedUse(t, err, what("C_Sign"))
	_, err = cl.Sign(ctx, o.ID, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("m"))
	kmsRefusedUse(t, err, what("C_Sign (ECDSA)"))
	_, err = cl.Sign(ctx, o.ID, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, []byte("m"))
	kmsRefusedUse(t, err, what("C_Sign (RSA)"))
	_, err = cl.CopyObject(ctx, o.ID, object.Template{{Type: ck.CKA_LABEL, Value: []byte("mine now")}})
	require.Error(t, err, what("C_CopyObject"))
	require.Error(t, cl.SetAttributes(ctx, o.ID, object.Template{{Type: ck.CKA_LABEL, Value: []byte("edited")}}), what("C_SetAttributeValue"))
	require.Error(t, cl.Share(ctx, o.ID, "cu1"), what("share"))
	require.Error(t, cl.DestroyObject(ctx, o.ID), what("C_DestroyObject"))
	if o.Material != nil {
		av, err := cl.GetAttributes(ctx, o.ID, []uint64{ck.CKA_VALUE, ck.CKA_LABEL})
		if err == nil {
			require.NotEqual(t, uint64(ck.CKR_OK), av[0].RV, what("read CKA_VALUE"))
			require.Empty(t, av[0].Value, what("read CKA_VALUE"))
		}
		require.True(t, err == nil || hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID), "%s: %v", what("C_GetAttributeValue"), err)
	}
}

// TestAttackKMSNoMaterialOut: a principal gets no key material out in the
// clear. One key of every kind is made and every operation run on it
// through the SDK; the material (read afterwards from the stopped node's
// store with the passphrase, which the test holds) is in no answer, in no
// form; GetPublicKey answers exactly the public half of the key pair and
// nothing for symmetric or HMAC keys; every secret and private object of
// kmsuser is sensitive and never extractable. Crypto users (cu1, and a new
// one) find none of kmsuser's objects with FindObjects or ListObjects, and
// cannot read, use, copy, change, share or destroy them by handle.
func TestAttackKMSNoMaterialOut(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	cr := kmsPrincipal(t, c, "reader")
	rec := &kmsRecorder{}
	cl := kmsSDK(t, c, url, cr, kmsOpts{recorder: rec})
	keys, pubs := kmsMakeKeys(t, cl)
	cu2pw := objectsUser(t, c, "cu2")
	objs := kmsStopAndRead(t, c, 1, cl)

	byKey := map[string][]kmsObject{}
	var needles [][]byte
	for _, o := range objs {
		byKey[strings.TrimPrefix(o.Label, "kms:")] = append(byKey[strings.TrimPrefix(o.Label, "kms:")], o)
		needles = append(needles, o.Needles...)
	}
	for name, id := range keys {
		require.NotEmpty(t, byKey[id], "key %s (%s) has no objects of kmsuser", name, id)
	}
	require.NotEmpty(t, needles)
	// The scan finds what an answer does hold: a data key's plaintext.
	dk, err := cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keys["aes"]), KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	bodies := rec.all()
	require.Greater(t, len(bodies), 40, "the recorder saw the answers")
	require.Equal(t, 0, kmsFind(bodies[len(bodies)-1], [][]byte{dk.Plaintext}), "the scan misses a data key in its answer")
	bodies = bodies[:len(bodies)-1]
	for i, b := range bodies {
		if n := kmsFind(b, needles); n >= 0 {
			t.Fatalf("answer %d holds kmsuser's key material (needle %d)", i, n)
		}
	}

	// GetPublicKey is the public half, and only that.
	for id, der := range pubs {
		_, err := x509.ParsePKIXPublicKey(der)
		require.NoError(t, err, "GetPublicKey of %s is no SubjectPublicKeyInfo", id)
		var found bool
		for _, o := range byKey[id] {
			if o.Class != ck.CKO_PRIVATE_KEY {
				continue
			}
			priv, err := x509.ParsePKCS8PrivateKey(o.Material)
			require.NoError(t, err)
			want, err := x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public())
			require.NoError(t, err)
			found = found || bytes.Equal(want, der)
		}
		require.True(t, found, "GetPublicKey of %s is not the public half of its key pair", id)
	}

	// The crypto users: nothing of kmsuser's is theirs to find or touch.
	for _, who := range []struct{ name, pw string }{{"cu1", secret(t, c, "cu.password")}, {"cu2", cu2pw}} {
		u := pinned(t, c, 1, who.name, who.pw)
		ids, err := u.FindObjects(ctx, nil, 0)
		require.NoError(t, err)
		infos, err := u.ListObjects(ctx, nil, 0)
		require.NoError(t, err)
		for _, o := range objs {
			require.NotContains(t, ids, o.ID, "%s finds kmsuser's object %d", who.name, o.ID)
			for _, in := range infos {
				require.NotEqual(t, o.ID, in.ID, "%s lists kmsuser's object %d", who.name, o.ID)
			}
			found, err := u.FindObjects(ctx, object.Template{{Type: ck.CKA_LABEL, Value: []byte(o.Label)}}, 0)
			require.NoError(t, err)
			require.Empty(t, found, "%s finds kmsuser's objects by their label", who.name)
			_, err = u.GetAttributes(ctx, o.ID, []uint64{ck.CKA_LABEL})
			require.True(t, hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID), "%s reads object %d: %v", who.name, o.ID, err)
			kmsUseAll(t, u, who.name, o)
		}
	}

	// The service still has every key.
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keys["aes"]), Plaintext: []byte("x")})
	require.NoError(t, err)
}

// TestAttackKMSOfficerCannotUseKeys: a crypto officer's session cannot use
// the KMS keys. It finds, among kmsuser's objects, only the public keys
// (CKA_PRIVATE false, as PKCS#11 lets anyone see them); the secret and
// private ones are invisible to it; it cannot encrypt, decrypt, sign,
// copy, change, share or destroy any of them, nor delete kmsuser while
// kmsuser owns them. (Whether an officer can become kmsuser instead is
// TestAttackKMSOfficerBecomesKMSUser.)
func TestAttackKMSOfficerCannotUseKeys(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	cr := kmsPrincipal(t, c, "svc")
	cl := kmsSDK(t, c, url, cr, kmsOpts{})
	keys, _ := kmsMakeKeys(t, cl)
	objs := kmsStopAndRead(t, c, 1, cl)
	require.NotEmpty(t, objs)

	co := kmsOfficer(t, c)
	ids, err := co.FindObjects(ctx, nil, 0)
	require.NoError(t, err)
	for _, o := range objs {
		if o.Class == ck.CKO_PUBLIC_KEY {
			require.Contains(t, ids, o.ID, "the officer does not see a public key (it may, as PKCS#11 lets anyone)")
			continue
		}
		require.NotContains(t, ids, o.ID, "the officer finds kmsuser's secret or private object %d (%s)", o.ID, o.Label)
		_, err := co.GetAttributes(ctx, o.ID, []uint64{ck.CKA_LABEL})
		require.True(t, hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID), "the officer reads object %d: %v", o.ID, err)
	}
	for _, o := range objs {
		kmsUseAll(t, co, "the officer", o)
	}
	err = co.DeleteUser(ctx, state.KMSUser)
	require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "the officer deleting kmsuser, who owns the KMS keys: %v", err)

	out, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keys["aes"]), Plaintext: []byte("x")})
	require.NoError(t, err, "the KMS lost a key to the officer's attempts")
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
	require.NoError(t, err)
}

// kmsBackdoor tries, as whoever knows password, to log in to the HSM API
// as kmsuser and decrypt a KMS ciphertext there, outside the KMS API (no
// SigV4, no KMS audit record): the key's AES object by its label, AES-GCM
// with the blob's nonce and additional data. It returns the plaintext, or
// the first refusal.
func kmsBackdoor(t *testing.T, c *testcluster.Cluster, password, keyID string, ct []byte, ec map[string]string) ([]byte, error) {
	t.Helper()
	cl := pinned(t, c, 1, "", "")
	if err := cl.Login(ctx, state.KMSUser, password); err != nil {
		return nil, err
	}
	ids, err := cl.FindObjects(ctx, object.Template{{Type: ck.CKA_LABEL, Value: []byte(state.KMSMaterialLabel(keyID))}}, 0)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("kmsuser's key object is not found")
	}
	h, body, err := blob.Parse(ct)
	require.NoError(t, err)
	aad := blob.AAD(blob.Scope{Partition: "aws", Region: kmsRegion, Account: "123456789012"}, ct[:blob.HeaderLen], ec)
	var lastErr error
	for _, id := range ids {
		pt, err := cl.Decrypt(ctx, id, mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: h.Nonce[:], AAD: aad, TagBits: 128}}, body)
		if err == nil {
			return pt, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// TestAttackKMSOfficerBecomesKMSUser: a crypto officer must not be able to
// make itself kmsuser, and so use every KMS key through the HSM API with no
// SigV4 and no KMS audit record. Three ways are tried: resetting kmsuser's
// password; deleting kmsuser while it owns no key yet and making it again
// with a password of the officer's choice; and making a crypto user named
// kmsuser before the first principal (allowed, for a custom key store of
// another cluster's KMS, but then this cluster's KMS refuses principals). Each ends with the officer logging
// in as kmsuser and decrypting a principal's ciphertext, which must fail.
// (With quorum on, M officers can still reset any crypto user: quorum.md.)
func TestAttackKMSOfficerBecomesKMSUser(t *testing.T) {
	const pw = "the-officer-chose-this-1"
	secretText := []byte("a principal's secret")
	ec := map[string]string{"app": "billing"}

	t.Run("ResetPassword", func(t *testing.T) {
		c := testcluster.Start(t, 1)
		cr := kmsPrincipal(t, c, "victim")
		svc := kmsSDK(t, c, kmsNodeURL(t, c, 1), cr, kmsOpts{})
		key := kmsKey(t, svc, types.KeySpecSymmetricDefault, "")
		enc, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: secretText, EncryptionContext: ec})
		require.NoError(t, err)

		err = kmsOfficer(t, c).SetPassword(ctx, state.KMSUser, pw)
		assert.Error(t, err, "an officer set kmsuser's password")
		pt, err := kmsBackdoor(t, c, pw, key, enc.CiphertextBlob, ec)
		assert.Error(t, err, "an officer logged in as kmsuser and decrypted a principal's ciphertext outside the KMS API (plaintext recovered: %t)",
			bytes.Equal(pt, secretText))
	})

	t.Run("DeleteAndRemake", func(t *testing.T) {
		c := testcluster.Start(t, 1)
		cr := kmsPrincipal(t, c, "victim") // kmsuser exists, and owns no key yet
		co := kmsOfficer(t, c)
		if err := co.DeleteUser(ctx, state.KMSUser); !assert.Error(t, err, "an officer deleted kmsuser") {
			assert.Error(t, co.CreateUser(ctx, state.KMSUser, "CU", pw), "an officer made kmsuser again, with a password of its choice")
		}
		svc := kmsSDK(t, c, kmsNodeURL(t, c, 1), cr, kmsOpts{})
		out, err := svc.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			return // the service refused to use a kmsuser it did not make: no backdoor
		}
		key := aws.ToString(out.KeyMetadata.KeyId)
		enc, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: secretText, EncryptionContext: ec})
		require.NoError(t, err)
		pt, err := kmsBackdoor(t, c, pw, key, enc.CiphertextBlob, ec)
		assert.Error(t, err, "an officer logged in as the kmsuser it made and decrypted a principal's ciphertext (plaintext recovered: %t)",
			bytes.Equal(pt, secretText))
	})

	t.Run("MakeBeforeFirstPrincipal", func(t *testing.T) {
		// An officer may make kmsuser on a cluster whose KMS has not
		// claimed it (to serve another cluster's KMS as a custom key
		// store); this cluster's KMS then refuses every principal, so the
		// officer's kmsuser never holds a key of this cluster's KMS.
		c := testcluster.StartEmpty(t)
		boot := pinned(t, c, 1, "", "")
		officerPW := "officer-password-" + fmt.Sprint(time.Now().UnixNano())
		require.NoError(t, boot.Bootstrap(ctx, "admin", officerPW))
		co := pinned(t, c, 1, "admin", officerPW)
		require.NoError(t, co.CreateUser(ctx, state.KMSUser, "CU", pw), "an officer makes kmsuser for another cluster's KMS")
		cred, err := co.CreateKMSPrincipal(ctx, "victim")
		if hsmerr.IsRV(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
			t.Fatalf("the node refused to make a KMS principal (%v): %s", err, kmsNotWired)
		}
		require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "the KMS adopted a kmsuser an officer made: %v", err)
		require.Contains(t, err.Error(), "cannot have principals")
		require.Nil(t, cred)
		// Deleted, kmsuser is the KMS's to make and claim: the officer
		// cannot make it again.
		require.NoError(t, co.DeleteUser(ctx, state.KMSUser))
		cred, err = co.CreateKMSPrincipalWithPolicy(ctx, "victim2", kmsAccessAdmin)
		require.NoError(t, err, "the first principal makes and claims kmsuser")
		cr := kmsCreds{Name: "victim2", AccessKeyID: cred.AccessKeyID, Secret: cred.SecretAccessKey}
		err = co.CreateUser(ctx, state.KMSUser, "CU", pw)
		require.True(t, hsmerr.IsRV(err, ck.CKR_ACTION_PROHIBITED), "an officer made kmsuser again after the KMS claimed it: %v", err)
		svc := kmsSDK(t, c, kmsNodeURL(t, c, 1), cr, kmsOpts{})
		kmsWaitReady(t, svc)
		key := kmsKey(t, svc, types.KeySpecSymmetricDefault, "")
		enc, err := svc.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: secretText, EncryptionContext: ec})
		require.NoError(t, err)
		pt, err := kmsBackdoor(t, c, pw, key, enc.CiphertextBlob, ec)
		assert.Error(t, err, "an officer logged in as kmsuser and decrypted a principal's ciphertext (plaintext recovered: %t)",
			bytes.Equal(pt, secretText))
	})
}

// TestAttackKMSCiphertextMoved: a ciphertext decrypts only under its key,
// its version, its region and account, and its exact encryption context
// (the blob's additional data, docs/kms.md). A changed, added or dropped
// context pair, another key named, the header edited to name another key
// or version, the blob taken to another region, or one flipped bit are
// refused; none answers a plaintext. (Another account is another cluster;
// the account's place in the additional data is kms/blob
// TestAADBindsEverything.)
func TestAttackKMSCiphertextMoved(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	cr := kmsPrincipal(t, c, "mover")
	cl := kmsSDK(t, c, url, cr, kmsOpts{})
	west := kmsSDK(t, c, url, cr, kmsOpts{region: "eu-west-1"})
	a := kmsKey(t, cl, types.KeySpecSymmetricDefault, "")
	b := kmsKey(t, cl, types.KeySpecSymmetricDefault, "")
	w := kmsKey(t, west, types.KeySpecSymmetricDefault, "")
	ec := map[string]string{"tenant": "alice", "purpose": "invoice"}
	secretText := []byte("moved ciphertext must not open")
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(a), Plaintext: secretText, EncryptionContext: ec})
	require.NoError(t, err)
	ct := enc.CiphertextBlob
	dec, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec})
	require.NoError(t, err, "the ciphertext opens as it was made")
	require.Equal(t, secretText, dec.Plaintext)
	_, err = cl.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(a)})
	require.NoError(t, err)

	edit := func(at int, with []byte) []byte {
		out := append([]byte(nil), ct...)
		copy(out[at:], with)
		return out
	}
	flipped := append([]byte(nil), ct...)
	flipped[len(flipped)-20] ^= 1
	for _, tc := range []struct {
		name string
		cl   *kms.Client
		in   kms.DecryptInput
		want string
	}{
		{"a context value changed", cl, kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: map[string]string{"tenant": "mallory", "purpose": "invoice"}}, "InvalidCiphertextException"},
		{"a context pair added", cl, kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: map[string]string{"tenant": "alice", "purpose": "invoice", "x": "y"}}, "InvalidCiphertextException"},
		{"a context pair dropped", cl, kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: map[string]string{"tenant": "alice"}}, "InvalidCiphertextException"},
		{"no context", cl, kms.DecryptInput{CiphertextBlob: ct}, "InvalidCiphertextException"},
		{"another key named", cl, kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec, KeyId: aws.String(b)}, "IncorrectKeyException"},
		{"the header names another key", cl, kms.DecryptInput{CiphertextBlob: edit(1, kmsKeyBytes(t, b)), EncryptionContext: ec}, "InvalidCiphertextException"},
		{"the header names the next version", cl, kms.DecryptInput{CiphertextBlob: edit(17, []byte{0, 0, 0, 2}), EncryptionContext: ec}, "InvalidCiphertextException"},
		{"the header names a version that does not exist", cl, kms.DecryptInput{CiphertextBlob: edit(17, []byte{0, 0, 0, 9}), EncryptionContext: ec}, "InvalidCiphertextException"},
		{"taken to another region", west, kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec}, "AccessDeniedException"},
		{"taken to another region, the header naming a key there", west, kms.DecryptInput{CiphertextBlob: edit(1, kmsKeyBytes(t, w)), EncryptionContext: ec}, "InvalidCiphertextException"},
		{"one bit flipped", cl, kms.DecryptInput{CiphertextBlob: flipped, EncryptionContext: ec}, "InvalidCiphertextException"},
		{"truncated", cl, kms.DecryptInput{CiphertextBlob: ct[:len(ct)-1], EncryptionContext: ec}, "InvalidCiphertextException"},
	} {
		in := tc.in
		out, err := tc.cl.Decrypt(ctx, &in)
		if err == nil {
			t.Fatalf("%s: decrypted (%d bytes)", tc.name, len(out.Plaintext))
		}
		kmsWant(t, err, tc.want, tc.name, cr.Secret, string(secretText))
	}
	_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: ct, SourceEncryptionContext: map[string]string{"tenant": "mallory", "purpose": "invoice"},
		DestinationKeyId: aws.String(b)})
	kmsWant(t, err, "InvalidCiphertextException", "ReEncrypt under a changed context")
	// The untouched ciphertext still opens after the rotation.
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec})
	require.NoError(t, err)
	require.Equal(t, secretText, dec.Plaintext)
}

// TestAttackKMSPrincipalCannotManage: a principal's access key manages
// nothing. Without a client certificate it cannot reach the HSM API at
// all; the KMS API has no operation that manages principals or users
// (IAM's names and made-up ones are unknown operations, grants and custom
// key stores unsupported); and the principal RPCs need a crypto officer's
// session: with no session, or a crypto user's, they are refused. The
// principals are unchanged afterwards.
func TestAttackKMSPrincipalCannotManage(t *testing.T) {
	c := testcluster.Start(t, 1)
	url := kmsNodeURL(t, c, 1)
	cr := kmsPrincipal(t, c, "climber")
	co := kmsOfficer(t, c)
	before, err := co.ListKMSPrincipals(ctx)
	require.NoError(t, err)
	usersBefore, err := co.ListUsers(ctx)
	require.NoError(t, err)

	// The HSM API without a client certificate: the handshake fails.
	pem, err := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	conn, err := grpc.NewClient(c.Addr(1), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"})))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	anon := hsmpb.NewHSMClient(conn)
	_, err = anon.Info(ctx, &hsmpb.Empty{})
	require.Error(t, err, "the HSM API answered a caller with no client certificate")
	_, err = anon.Login(ctx, &hsmpb.LoginRequest{User: state.KMSUser, Password: cr.Secret})
	require.Error(t, err)
	_, err = anon.KMSCreatePrincipal(ctx, &hsmpb.KMSPrincipalRequest{Name: "mine"})
	require.Error(t, err)

	// The KMS API: nothing there manages principals or users.
	for _, op := range []string{"CreatePrincipal", "KMSCreatePrincipal", "KMSRotatePrincipalKey", "KMSDeletePrincipal", "ListPrincipals",
		"CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "CreateUser", "DeleteUser", "AttachUserPolicy"} {
		code, typ, _ := kmsSigned(t, c, url, op, []byte(`{"Name":"mine","UserName":"climber"}`), cr, time.Now())
		require.Equal(t, 400, code, "%s", op)
		require.Equal(t, "UnknownOperationException", typ, "%s", op)
	}
	svc := kmsSDK(t, c, url, cr, kmsOpts{})
	key := kmsKey(t, svc, types.KeySpecSymmetricDefault, "")
	// A grant lets a principal (made or not) use this principal's own key;
	// it makes no principal and no user (both lists are checked below).
	_, err = svc.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String("arn:aws:iam::123456789012:user/mine"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	require.NoError(t, err, "CreateGrant on its own key")
	_, err = svc.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("mine"), CloudHsmClusterId: aws.String("cluster-234567abcdefg"),
		KeyStorePassword: aws.String("kmsuser-password"), TrustAnchorCertificate: aws.String("x")})
	// A principal names only clusters a crypto officer added (`hsm kms
	// cluster add`), with a CA certificate as the trust anchor.
	kmsWant(t, err, "IncorrectTrustAnchorException", "CreateCustomKeyStore")

	// The principal RPCs with the cluster's client certificate but no
	// session, and with a crypto user's session.
	raw := miscRawConn(t, c, "client")
	for name, call := range map[string]func() error{
		"KMSCreatePrincipal": func() error {
			_, err := raw.KMSCreatePrincipal(ctx, &hsmpb.KMSPrincipalRequest{Name: "mine"})
			return err
		},
		"KMSRotatePrincipalKey": func() error {
			_, err := raw.KMSRotatePrincipalKey(ctx, &hsmpb.KMSPrincipalRequest{Name: "climber"})
			return err
		},
		"KMSDeletePrincipal": func() error {
			_, err := raw.KMSDeletePrincipal(ctx, &hsmpb.KMSPrincipalRequest{Name: "climber"})
			return err
		},
		"KMSListPrincipals": func() error { _, err := raw.KMSListPrincipals(ctx, &hsmpb.Empty{}); return err },
	} {
		err := call()
		require.Error(t, err, "%s without a session", name)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%s without a session: %v", name, err)
	}
	cu := pinned(t, c, 1, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])
	for name, call := range map[string]func() error{
		"create":     func() error { _, err := cu.CreateKMSPrincipal(ctx, "mine"); return err },
		"rotate-key": func() error { _, err := cu.RotateKMSPrincipalKey(ctx, "climber"); return err },
		"delete":     func() error { return cu.DeleteKMSPrincipal(ctx, "climber") },
		"list":       func() error { _, err := cu.ListKMSPrincipals(ctx); return err },
		"user":       func() error { return cu.CreateUser(ctx, "mine", "CU", "a-password-of-mine-1") },
		"reset":      func() error { return cu.SetPassword(ctx, state.KMSUser, "a-password-of-mine-1") },
	} {
		err := call()
		require.True(t, hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN), "a crypto user's %s: %v", name, err)
	}

	after, err := co.ListKMSPrincipals(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "the principals changed")
	usersAfter, err := co.ListUsers(ctx)
	require.NoError(t, err)
	require.Equal(t, len(usersBefore), len(usersAfter), "the users changed")
	kmsWaitReady(t, kmsSDK(t, c, url, cr, kmsOpts{}))
}

// TestAttackKMSScheduledDeletion: a key scheduled for deletion is refused
// for every use on every node at once, by key ID and by alias, and cannot
// be enabled again; once its window ends (the KMS clock moved 8 days by
// the clock_file test hook) the leader's upkeep destroys it: every node
// answers NotFoundException, its ciphertexts open nowhere, and no node's
// store holds its objects, its row or its alias. Another key is untouched.
func TestAttackKMSScheduledDeletion(t *testing.T) {
	clock := filepath.Join(t.TempDir(), "kms-clock")
	t.Setenv("HSM_KMS_CONFIG", fmt.Sprintf("clock_file = %q\nupkeep_interval = \"1s\"", clock))
	c := testcluster.Start(t, 3)
	cr := kmsPrincipal(t, c, "deleter")
	var nodes []*kms.Client
	for k := 1; k <= 3; k++ {
		nodes = append(nodes, kmsSDK(t, c, kmsNodeURL(t, c, k), cr, kmsOpts{}))
	}
	cl := nodes[0]
	doomed := kmsKey(t, cl, types.KeySpecSymmetricDefault, "")
	kept := kmsKey(t, cl, types.KeySpecSymmetricDefault, "")
	_, err := cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: aws.String(doomed)})
	require.NoError(t, err)
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(doomed), Plaintext: []byte("soon unreadable")})
	require.NoError(t, err)

	// Before: node3's store holds the key's object.
	count := func(k int, label string) int {
		st, err := sqlite.Open(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "hsm.db"), sqlite.Options{})
		require.NoError(t, err)
		defer st.Close()
		objs, err := st.Find(state.Query{Owner: state.KMSUser, Label: []byte(label)})
		require.NoError(t, err)
		return len(objs)
	}
	c.Stop(3, false)
	require.Equal(t, 1, count(3, state.KMSMaterialLabel(doomed)), "node3 holds the key's object before")
	out, err := c.StartNode(3)
	require.NoError(t, err, "%s", out)
	kmsWaitReady(t, nodes[2])

	_, err = cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(doomed), PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	for k, n := range nodes {
		where := fmt.Sprintf("node%d", k+1)
		_, err := n.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(doomed), Plaintext: []byte("x")})
		kmsWant(t, err, "KMSInvalidStateException", where+": Encrypt")
		_, err = n.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/doomed"), Plaintext: []byte("x")})
		kmsWant(t, err, "KMSInvalidStateException", where+": Encrypt by alias")
		_, err = n.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		kmsWant(t, err, "KMSInvalidStateException", where+": Decrypt")
		_, err = n.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aws.String(kept)})
		kmsWant(t, err, "KMSInvalidStateException", where+": ReEncrypt")
		_, err = n.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(doomed), KeySpec: types.DataKeySpecAes256})
		kmsWant(t, err, "KMSInvalidStateException", where+": GenerateDataKey")
		_, err = n.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(doomed)})
		kmsWant(t, err, "KMSInvalidStateException", where+": EnableKey")
		_, err = n.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: aws.String(doomed)})
		kmsWant(t, err, "KMSInvalidStateException", where+": UpdateAlias")
	}

	require.NoError(t, os.WriteFile(clock, []byte(fmt.Sprint(8*24*3600)), 0o600))
	deadline := time.Now().Add(2 * time.Minute)
	for k, n := range nodes {
		for {
			_, err := n.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(doomed)})
			if code, _ := kmsCode(err); code == "NotFoundException" {
				break
			}
			require.False(t, time.Now().After(deadline), "node%d still has the key two minutes after its window ended: %v", k+1, err)
			time.Sleep(500 * time.Millisecond)
		}
		_, err := n.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		kmsWant(t, err, "AccessDeniedException", fmt.Sprintf("node%d: Decrypt after the window", k+1))
		_, err = n.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/doomed"), Plaintext: []byte("x")})
		kmsWant(t, err, "NotFoundException", fmt.Sprintf("node%d: the alias after the window", k+1))
		_, err = n.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(kept), Plaintext: []byte("x")})
		require.NoError(t, err, "node%d lost the other key", k+1)
	}

	out, err = c.Script("down", c.Dir)
	require.NoError(t, err, "%s", out)
	for k := 1; k <= 3; k++ {
		require.Zero(t, count(k, state.KMSMaterialLabel(doomed)), "node%d's store still holds the deleted key's objects", k)
		require.Equal(t, 1, count(k, state.KMSMaterialLabel(kept)), "node%d lost the other key's object", k)
		st, err := sqlite.Open(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "hsm.db"), sqlite.Options{})
		require.NoError(t, err)
		_, err = st.Meta(state.KMSKeyMeta(kmsRegion, doomed))
		require.ErrorIs(t, err, state.ErrNotFound, "node%d still holds the key's row", k)
		_, err = st.Meta(state.KMSAliasMeta(kmsRegion, "alias/doomed"))
		require.ErrorIs(t, err, state.ErrNotFound, "node%d still holds the key's alias", k)
		st.Close()
	}
}

// TestAttackKMSStoreRowEdit: whoever can write a node's store file cannot
// change a KMS key there. With node3 stopped, its file is edited: key B's
// row says Enabled instead of Disabled (bytes of the row changed, its MAC
// kept), and key C's row is replaced by enabled key A's row (a valid row
// with a valid MAC, moved). Restarted, node3 refuses both keys (an internal
// error, never a use) while nodes 1 and 2 answer the truth (disabled); and
// when the cluster next changes B, node3 stops (exit 70) rather than apply
// on a row it cannot trust, as state TestCorruptRowStopsTheNode shows for
// users and objects. Nodes 1 and 2 go on.
func TestAttackKMSStoreRowEdit(t *testing.T) {
	c := testcluster.Start(t, 3)
	cr := kmsPrincipal(t, c, "editor")
	n1 := kmsSDK(t, c, kmsNodeURL(t, c, 1), cr, kmsOpts{})
	n3 := kmsSDK(t, c, kmsNodeURL(t, c, 3), cr, kmsOpts{})
	a := kmsKey(t, n1, types.KeySpecSymmetricDefault, "")
	b := kmsKey(t, n1, types.KeySpecSymmetricDefault, "")
	cc := kmsKey(t, n1, types.KeySpecSymmetricDefault, "")
	for _, k := range []string{b, cc} {
		_, err := n1.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k)})
		require.NoError(t, err)
	}
	_, err := n3.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(b), Plaintext: []byte("x")})
	kmsWant(t, err, "DisabledException", "node3 before the edit")

	c.Stop(3, false)
	db, err := sql.Open("sqlite", filepath.Join(c.Dir, "node3", "hsm.db"))
	require.NoError(t, err)
	var rowB, rowA []byte
	require.NoError(t, db.QueryRow(`SELECT value FROM meta WHERE key = ?`, state.KMSKeyMeta(kmsRegion, b)).Scan(&rowB))
	require.NoError(t, db.QueryRow(`SELECT value FROM meta WHERE key = ?`, state.KMSKeyMeta(kmsRegion, a)).Scan(&rowA))
	edited := bytes.Replace(rowB, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
	require.NotEqual(t, rowB, edited, "B's row does not hold its state as expected: %s", rowB)
	for key, value := range map[string][]byte{state.KMSKeyMeta(kmsRegion, b): edited, state.KMSKeyMeta(kmsRegion, cc): rowA} {
		res, err := db.Exec(`UPDATE meta SET value = ? WHERE key = ?`, value, key)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	}
	require.NoError(t, db.Close())

	node3 := c.RunNode(3, nil)
	kmsWaitReady(t, n3)
	for name, k := range map[string]string{"B (edited to Enabled)": b, "C (A's row moved in)": cc} {
		out, err := n3.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("x")})
		if err == nil {
			t.Fatalf("node3 encrypted under %s: %d bytes", name, len(out.CiphertextBlob))
		}
		kmsWant(t, err, "KMSInternalException", "node3, key "+name)
		d, err := n3.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)})
		if err == nil {
			t.Fatalf("node3 described %s as %s", name, d.KeyMetadata.KeyState)
		}
		_, err = n1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("x")})
		kmsWant(t, err, "DisabledException", "node1, key "+name)
	}
	logb, err := os.ReadFile(c.LogFile(3))
	require.NoError(t, err)
	require.Contains(t, string(logb), "failed its integrity check", "node3's log does not say why it refused")

	_, err = n1.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(b)})
	require.NoError(t, err, "the majority enables B")
	code, ended := node3.Wait(2 * time.Minute)
	require.True(t, ended, "node3 went on applying changes to a row it cannot trust")
	require.Equal(t, 70, code, "node3's exit code")
	logb, err = os.ReadFile(c.LogFile(3))
	require.NoError(t, err)
	require.Contains(t, string(logb), "stopping: this node cannot go on safely")
	for k := 1; k <= 2; k++ {
		n := kmsSDK(t, c, kmsNodeURL(t, c, k), cr, kmsOpts{})
		_, err := n.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(b), Plaintext: []byte("x")})
		require.NoError(t, err, "node%d after B was enabled", k)
		_, err = n.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(cc), Plaintext: []byte("x")})
		kmsWant(t, err, "DisabledException", fmt.Sprintf("node%d, key C", k))
	}
}

// TestAttackKMSAtRest: a node's data directory (its store, WAL, Raft log
// and snapshots, logs) and a backup file hold no principal's secret access
// key, current or rotated out, and no KMS key material, in any form: the
// secrets are sealed under the domain key, the material is kmsuser's
// sealed objects, and a backup is encrypted whole (not even a key ID or a
// principal's name reads from it).
func TestAttackKMSAtRest(t *testing.T) {
	c := testcluster.StartWith(t, 1, "snapshot_threshold = 16\ntrailing_logs = 4")
	url := kmsNodeURL(t, c, 1)
	first := kmsPrincipal(t, c, "stored")
	old := kmsSDK(t, c, url, first, kmsOpts{})
	kmsWaitReady(t, old)
	cr := kmsCLIPrincipal(t, c, "rotate-key", "stored")
	cl := kmsSDK(t, c, url, cr, kmsOpts{})
	keys, _ := kmsMakeKeys(t, cl)

	// The client certificate and key this KMS would reach a custom key
	// store's cluster with (`hsm kms cluster add`): the key is sealed at
	// rest and no listing shows it.
	other := filepath.Join(t.TempDir(), "other-pki")
	const otherID = "cluster-otherclusterabcd"
	out, err := c.HSM(nil, "cluster", "init", "--dir", other, "--cluster-id", otherID, "--nodes", "1")
	require.NoError(t, err, "%s", out)
	out, err = c.HSM(kmsOfficerEnv(c), "kms", "cluster", "add", otherID, "127.0.0.1:1", "--cert", filepath.Join(other, "client.pem"),
		"--key", filepath.Join(other, "client-key.pem"))
	require.NoError(t, err, "%s", out)
	keyPEM, err := os.ReadFile(filepath.Join(other, "client-key.pem"))
	require.NoError(t, err)
	keyBlock, _ := pem.Decode(keyPEM)
	require.NotNil(t, keyBlock)
	out, err = c.HSM(kmsOfficerEnv(c), "--json", "kms", "cluster", "list")
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), otherID)
	require.NotContains(t, string(out), "PRIVATE KEY", "a listing shows the cluster's client key")
	require.Equal(t, -1, kmsFind(out, [][]byte{keyBlock.Bytes}))

	file := filepath.Join(t.TempDir(), "cluster.hsmbak")
	out, err = c.HSM(kmsOfficerEnv(c), "backup", "create", "-o", file)
	require.NoError(t, err, "%s", out)
	bak, err := os.ReadFile(file)
	require.NoError(t, err)

	// Raft snapshots hold the rows too: wait for one to scan.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		snaps, _ := filepath.Glob(filepath.Join(c.Dir, "node1", "raft", "snapshots", "*", "state.bin"))
		if len(snaps) > 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "the node took no Raft snapshot to scan")
		time.Sleep(500 * time.Millisecond)
	}
	out, err = c.Script("down", c.Dir)
	require.NoError(t, err, "%s", out)
	objs := kmsMaterial(t, c, 1)

	secrets := map[string][]byte{"the secret access key": []byte(cr.Secret), "the rotated-out secret access key": []byte(first.Secret),
		"the store cluster's client key (DER)": keyBlock.Bytes, "the store cluster's client key (PEM)": keyPEM}
	for _, o := range objs {
		for i, n := range o.Needles {
			secrets[fmt.Sprintf("object %d (%s) material %d", o.ID, o.Label, i)] = n
		}
	}
	require.Greater(t, len(secrets), 8)
	for what, s := range secrets {
		found, scanned := objectsScan(t, filepath.Join(c.Dir, "node1"), s)
		require.Greater(t, scanned, 3)
		require.Empty(t, found, "%s is in the data directory", what)
		for _, f := range []string{c.LogFile(1), filepath.Join(c.Dir, "node1.out")} {
			b, _ := os.ReadFile(f)
			require.Equal(t, -1, kmsFind(b, [][]byte{s}), "%s is in %s", what, f)
		}
		require.Equal(t, -1, kmsFind(bak, [][]byte{s}), "%s is in the backup file", what)
	}
	for _, plain := range []string{keys["aes"], cr.AccessKeyID, "alias/at-rest-aes", `"state":"Enabled"`} {
		require.False(t, bytes.Contains(bak, []byte(plain)), "the backup file shows %q", plain)
	}
}
