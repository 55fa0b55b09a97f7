package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// These tests drive the operations in process, on one node with a real
// SQLite store, through model.Validate as the handler does. The suites
// under interop run the same operations through the AWS SDK, CLI and
// boto3 against a real cluster.

type world struct {
	t     *testing.T
	svc   *kms.Service
	srv   *kmstest.Server
	store state.Store
	co    engine.Caller
}

// newWorld is one node's real engine and store (internal/kmstest), with a
// principal "app".
func newWorld(t *testing.T) *world {
	srv := kmstest.Start(t)
	w := &world{t: t, svc: srv.Service, srv: srv, store: srv.Store, co: engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}}
	_, err := w.svc.CreatePrincipalWithPolicy(context.Background(), w.co, "app", kms.AdminPolicy)
	require.NoError(t, err)
	return w
}

// advance moves the key life-cycle clock forward.
func (w *world) advance(d time.Duration) { w.srv.Advance(d) }

// call runs an operation with a JSON body, as the handler would.
func (w *world) call(op string, body any) (model.Object, error) {
	w.t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(w.t, err)
	in, err := model.Validate(op, raw)
	if err != nil {
		return nil, err
	}
	return w.svc.Call(context.Background(), &call.Request{Op: op, Input: in, Principal: "app", Region: "us-east-1", RequestID: "r"})
}

func (w *world) ok(op string, body any) model.Object {
	w.t.Helper()
	out, err := w.call(op, body)
	require.NoError(w.t, err, op)
	return out
}

func (w *world) refused(exception, op string, body any) string {
	w.t.Helper()
	_, err := w.call(op, body)
	require.Error(w.t, err, op)
	var ke *kmserr.Error
	if assert.ErrorAs(w.t, err, &ke, "%s: %v", op, err) {
		assert.Equal(w.t, exception, ke.Type, "%s: %v", op, err)
		return ke.Message
	}
	return ""
}

func (w *world) createKey(body map[string]any) model.Object {
	out := w.ok("CreateKey", body)
	md, _ := out.Object("KeyMetadata")
	return md
}

func TestSymmetricLifeCycle(t *testing.T) {
	w := newWorld(t)
	md := w.createKey(map[string]any{"Description": "app key"})
	id, _ := md.String("KeyId")
	arn, _ := md.String("Arn")
	assert.Equal(t, "arn:aws:kms:us-east-1:123456789012:key/"+id, arn)
	assert.Equal(t, "Enabled", md["KeyState"])
	assert.Equal(t, []any{"SYMMETRIC_DEFAULT"}, md["EncryptionAlgorithms"])

	ec := map[string]string{"purpose": "test", "a=b": "c,d"}
	enc := w.ok("Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("hello"), "EncryptionContext": ec})
	assert.Equal(t, arn, enc["KeyId"])
	ct, _ := enc.Bytes("CiphertextBlob")
	dec := w.ok("Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})
	assert.Equal(t, []byte("hello"), dec["Plaintext"])
	assert.Equal(t, arn, dec["KeyId"])

	// The context is authenticated: another one, or none, fails.
	w.refused(kmserr.InvalidCiphertext, "Decrypt", map[string]any{"CiphertextBlob": ct})
	w.refused(kmserr.InvalidCiphertext, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": map[string]string{"purpose": "test"}})
	// A flipped byte fails.
	bad := append([]byte(nil), ct...)
	bad[len(bad)-1] ^= 1
	w.refused(kmserr.InvalidCiphertext, "Decrypt", map[string]any{"CiphertextBlob": bad, "EncryptionContext": ec})

	// Another key named: IncorrectKeyException.
	other, _ := w.createKey(nil).String("KeyId")
	w.refused(kmserr.IncorrectKey, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec, "KeyId": other})

	// Rotations keep old ciphertexts decrypting; new ones use the newest.
	w.ok("EnableKeyRotation", map[string]any{"KeyId": id})
	for i := 0; i < 3; i++ {
		w.ok("RotateKeyOnDemand", map[string]any{"KeyId": id})
	}
	dec = w.ok("Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})
	assert.Equal(t, []byte("hello"), dec["Plaintext"])
	rot := w.ok("ListKeyRotations", map[string]any{"KeyId": id})
	assert.Len(t, rot["Rotations"], 3)
	st := w.ok("GetKeyRotationStatus", map[string]any{"KeyId": id})
	assert.Equal(t, true, st["KeyRotationEnabled"])
	assert.Equal(t, int64(365), st["RotationPeriodInDays"])

	// Disabled: use refused with DisabledException; enable restores.
	w.ok("DisableKey", map[string]any{"KeyId": id})
	w.refused(kmserr.Disabled, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	w.refused(kmserr.Disabled, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})
	w.ok("EnableKey", map[string]any{"KeyId": id})

	// Deletion: refused at once, cancel restores (disabled), the window
	// ends in the destruction of the material.
	msg := w.refused(kmserr.Validation, "ScheduleKeyDeletion", map[string]any{"KeyId": id, "PendingWindowInDays": 6})
	assert.Contains(t, msg, "pendingWindowInDays")
	out := w.ok("ScheduleKeyDeletion", map[string]any{"KeyId": id, "PendingWindowInDays": 7})
	assert.Equal(t, "PendingDeletion", out["KeyState"])
	w.refused(kmserr.InvalidState, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	w.ok("CancelKeyDeletion", map[string]any{"KeyId": id})
	md = w.ok("DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(model.Object)
	assert.Equal(t, "Disabled", md["KeyState"])
	w.ok("ScheduleKeyDeletion", map[string]any{"KeyId": id, "PendingWindowInDays": 7})
	before := countKMSObjects(t, w)
	w.advance(7*24*time.Hour + time.Second)
	require.NoError(t, w.svc.Upkeep(context.Background()))
	w.refused(kmserr.NotFound, "DescribeKey", map[string]any{"KeyId": id})
	assert.Equal(t, before-4, countKMSObjects(t, w), "the four backing keys are gone from the HSM")
	w.refused(kmserr.AccessDenied, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})
}

func countKMSObjects(t *testing.T, w *world) int {
	objs, err := w.store.Find(state.Query{Owner: state.KMSUser})
	require.NoError(t, err)
	return len(objs)
}

func TestAliases(t *testing.T) {
	w := newWorld(t)
	a, _ := w.createKey(nil).String("KeyId")
	b, _ := w.createKey(nil).String("KeyId")
	rsa, _ := w.createKey(map[string]any{"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}).String("KeyId")
	w.ok("CreateAlias", map[string]any{"AliasName": "alias/app", "TargetKeyId": a})
	w.refused(kmserr.AlreadyExists, "CreateAlias", map[string]any{"AliasName": "alias/app", "TargetKeyId": b})
	w.refused(kmserr.NotAuthorized, "CreateAlias", map[string]any{"AliasName": "alias/aws/x", "TargetKeyId": b})
	ct, _ := w.ok("Encrypt", map[string]any{"KeyId": "alias/app", "Plaintext": []byte("p")}).Bytes("CiphertextBlob")
	w.refused(kmserr.Validation, "UpdateAlias", map[string]any{"AliasName": "alias/app", "TargetKeyId": rsa})
	w.ok("UpdateAlias", map[string]any{"AliasName": "alias/app", "TargetKeyId": b})
	out := w.ok("Encrypt", map[string]any{"KeyId": "arn:aws:kms:us-east-1:123456789012:alias/app", "Plaintext": []byte("p")})
	assert.Contains(t, out["KeyId"], b)
	w.ok("Decrypt", map[string]any{"CiphertextBlob": ct})
	list := w.ok("ListAliases", map[string]any{"KeyId": b})
	assert.Len(t, list["Aliases"], 1)
	w.ok("DeleteAlias", map[string]any{"AliasName": "alias/app"})
	w.refused(kmserr.NotFound, "DescribeKey", map[string]any{"KeyId": "alias/app"})
	w.refused(kmserr.NotFound, "DeleteAlias", map[string]any{"AliasName": "alias/app"})
}

func TestAsymmetricAndMac(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct{ spec, usage, alg string }{
		{"RSA_2048", "SIGN_VERIFY", "RSASSA_PSS_SHA_256"},
		{"RSA_2048", "SIGN_VERIFY", "RSASSA_PKCS1_V1_5_SHA_384"},
		{"ECC_NIST_P256", "SIGN_VERIFY", "ECDSA_SHA_256"},
		{"ECC_NIST_P384", "SIGN_VERIFY", "ECDSA_SHA_384"},
		{"ECC_NIST_P521", "SIGN_VERIFY", "ECDSA_SHA_512"},
		{"ECC_SECG_P256K1", "SIGN_VERIFY", "ECDSA_SHA_256"},
	} {
		id, _ := w.createKey(map[string]any{"KeySpec": c.spec, "KeyUsage": c.usage}).String("KeyId")
		for _, mt := range []string{"RAW", "DIGEST"} {
			msg := []byte("message to sign")
			if mt == "DIGEST" {
				msg = digestFor(c.alg, msg)
			}
			sig := w.ok("Sign", map[string]any{"KeyId": id, "Message": msg, "MessageType": mt, "SigningAlgorithm": c.alg})
			s, _ := sig.Bytes("Signature")
			ver := w.ok("Verify", map[string]any{"KeyId": id, "Message": msg, "MessageType": mt, "SigningAlgorithm": c.alg, "Signature": s})
			assert.Equal(t, true, ver["SignatureValid"], c)
			s[len(s)/2] ^= 1
			w.refused(kmserr.InvalidSignature, "Verify", map[string]any{"KeyId": id, "Message": msg, "MessageType": mt, "SigningAlgorithm": c.alg, "Signature": s})
		}
		w.refused(kmserr.InvalidKeyUsage, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
		pk := w.ok("GetPublicKey", map[string]any{"KeyId": id})
		assert.NotEmpty(t, pk["PublicKey"])
	}
	mac, _ := w.createKey(map[string]any{"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}).String("KeyId")
	m := w.ok("GenerateMac", map[string]any{"KeyId": mac, "Message": []byte("m"), "MacAlgorithm": "HMAC_SHA_256"})
	tag, _ := m.Bytes("Mac")
	assert.Len(t, tag, 32)
	w.ok("VerifyMac", map[string]any{"KeyId": mac, "Message": []byte("m"), "MacAlgorithm": "HMAC_SHA_256", "Mac": tag})
	tag[0] ^= 1
	w.refused(kmserr.InvalidMac, "VerifyMac", map[string]any{"KeyId": mac, "Message": []byte("m"), "MacAlgorithm": "HMAC_SHA_256", "Mac": tag})
	w.refused(kmserr.InvalidKeyUsage, "GenerateMac", map[string]any{"KeyId": mac, "Message": []byte("m"), "MacAlgorithm": "HMAC_SHA_512"})
}

func TestDataKeys(t *testing.T) {
	w := newWorld(t)
	id, _ := w.createKey(nil).String("KeyId")
	dk := w.ok("GenerateDataKey", map[string]any{"KeyId": id, "KeySpec": "AES_256"})
	pt, _ := dk.Bytes("Plaintext")
	assert.Len(t, pt, 32)
	ct, _ := dk.Bytes("CiphertextBlob")
	assert.Equal(t, pt, w.ok("Decrypt", map[string]any{"CiphertextBlob": ct})["Plaintext"])
	w.refused(kmserr.Validation, "GenerateDataKey", map[string]any{"KeyId": id})
	w.refused(kmserr.Validation, "GenerateDataKey", map[string]any{"KeyId": id, "KeySpec": "AES_128", "NumberOfBytes": 16})
	assert.Len(t, w.ok("GenerateDataKey", map[string]any{"KeyId": id, "NumberOfBytes": 1024})["Plaintext"], 1024)
	nop := w.ok("GenerateDataKeyWithoutPlaintext", map[string]any{"KeyId": id, "KeySpec": "AES_128"})
	assert.NotContains(t, nop, "Plaintext")
	for _, spec := range []string{"ECC_NIST_P256", "ECC_SECG_P256K1", "RSA_2048"} {
		pair := w.ok("GenerateDataKeyPair", map[string]any{"KeyId": id, "KeyPairSpec": spec})
		priv, _ := pair.Bytes("PrivateKeyCiphertextBlob")
		assert.Equal(t, pair["PrivateKeyPlaintext"], w.ok("Decrypt", map[string]any{"CiphertextBlob": priv})["Plaintext"])
		pk, _ := pair.Bytes("PrivateKeyPlaintext")
		_, key, err := mech.ParsePrivateKey(pk)
		require.NoError(t, err, spec)
		pub, _ := pair.Bytes("PublicKey")
		parsed, err := mech.ParsePKIXPublicKey(pub)
		require.NoError(t, err, spec)
		assert.True(t, parsed.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()), spec)
	}
	assert.Len(t, w.ok("GenerateRandom", map[string]any{"NumberOfBytes": 77})["Plaintext"], 77)
	// ReEncrypt to another key.
	other, _ := w.createKey(nil).String("KeyId")
	re := w.ok("ReEncrypt", map[string]any{"CiphertextBlob": ct, "DestinationKeyId": other, "DestinationEncryptionContext": map[string]string{"k": "v"}})
	ct2, _ := re.Bytes("CiphertextBlob")
	assert.Equal(t, pt, w.ok("Decrypt", map[string]any{"CiphertextBlob": ct2, "EncryptionContext": map[string]string{"k": "v"}})["Plaintext"])
}

func digestFor(alg string, msg []byte) []byte {
	switch {
	case len(alg) > 3 && alg[len(alg)-3:] == "256":
		h := sha256.Sum256(msg)
		return h[:]
	case len(alg) > 3 && alg[len(alg)-3:] == "384":
		h := sha512.Sum384(msg)
		return h[:]
	}
	h := sha512.Sum512(msg)
	return h[:]
}

func TestImportedMaterial(t *testing.T) {
	w := newWorld(t)
	md := w.createKey(map[string]any{"Origin": "EXTERNAL"})
	id, _ := md.String("KeyId")
	assert.Equal(t, "PendingImport", md["KeyState"])
	w.refused(kmserr.InvalidState, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})

	material := bytes.Repeat([]byte{0x42}, 32)
	imp := func(material []byte, extra map[string]any) error {
		p := w.ok("GetParametersForImport", map[string]any{"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"})
		der, _ := p.Bytes("PublicKey")
		pub, err := x509.ParsePKIXPublicKey(der)
		require.NoError(t, err)
		wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
		require.NoError(t, err)
		body := map[string]any{"KeyId": id, "ImportToken": p["ImportToken"], "EncryptedKeyMaterial": wrapped}
		for k, v := range extra {
			body[k] = v
		}
		_, err = w.call("ImportKeyMaterial", body)
		return err
	}
	require.NoError(t, imp(material, nil))
	ct, _ := w.ok("Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")}).Bytes("CiphertextBlob")
	w.refused(kmserr.UnsupportedOperation, "EnableKeyRotation", map[string]any{"KeyId": id})

	// Deleted material: the key waits for an import; only the same
	// material comes back.
	w.ok("DeleteImportedKeyMaterial", map[string]any{"KeyId": id})
	w.refused(kmserr.InvalidState, "Decrypt", map[string]any{"CiphertextBlob": ct})
	err := imp(bytes.Repeat([]byte{0x43}, 32), nil)
	assert.True(t, kmserr.Is(err, kmserr.IncorrectKeyMaterial), "%v", err)
	require.NoError(t, imp(material, map[string]any{"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": time.Now().Add(48 * time.Hour).Unix()}))
	assert.Equal(t, []byte("x"), w.ok("Decrypt", map[string]any{"CiphertextBlob": ct})["Plaintext"])
	md = w.ok("DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(model.Object)
	assert.Equal(t, "KEY_MATERIAL_EXPIRES", md["ExpirationModel"])

	// Expiry deletes the material.
	w.advance(49 * time.Hour)
	require.NoError(t, w.svc.Upkeep(context.Background()))
	md = w.ok("DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(model.Object)
	assert.Equal(t, "PendingImport", md["KeyState"])

	// A token of earlier parameters, or an expired one, is refused.
	p := w.ok("GetParametersForImport", map[string]any{"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_1", "WrappingKeySpec": "RSA_2048"})
	w.advance(25 * time.Hour)
	w.refused(kmserr.ExpiredImportToken, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": p["ImportToken"], "EncryptedKeyMaterial": []byte("x")})
	w.refused(kmserr.InvalidImportToken, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": []byte("not the token"), "EncryptedKeyMaterial": []byte("x")})

	// Symmetric keys of AWS_KMS origin take no imports.
	kmsKey, _ := w.createKey(nil).String("KeyId")
	w.refused(kmserr.UnsupportedOperation, "GetParametersForImport", map[string]any{"KeyId": kmsKey, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"})
}

func TestPrincipals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cred, err := w.svc.CreatePrincipal(ctx, w.co, "ci")
	require.NoError(t, err)
	secret, name, err := w.svc.Secret(cred.AccessKeyID)
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::123456789012:user/ci", name)
	assert.Equal(t, cred.SecretAccessKey, string(secret))
	_, err = w.svc.CreatePrincipal(ctx, w.co, "ci")
	assert.True(t, kmserr.Is(kmsErr(err), kmserr.AlreadyExists), "%v", err)
	_, err = w.svc.CreatePrincipal(ctx, engine.Caller{User: state.KMSUser, Role: object.RoleCU}, "x")
	assert.Error(t, err, "a crypto user manages no principals")

	rot, err := w.svc.RotatePrincipalKey(ctx, w.co, "ci")
	require.NoError(t, err)
	assert.NotEqual(t, cred.AccessKeyID, rot.AccessKeyID)
	_, _, err = w.svc.Secret(cred.AccessKeyID)
	assert.Error(t, err, "the old key stops working")
	list, err := w.svc.ListPrincipals(w.co)
	require.NoError(t, err)
	assert.Len(t, list, 3, "tester (kmstest), app and ci")
	require.NoError(t, w.svc.DeletePrincipal(ctx, w.co, "ci"))
	_, _, err = w.svc.Secret(rot.AccessKeyID)
	assert.Error(t, err)

	// A deleted principal's commands are refused in apply.
	_, err = w.svc.Call(ctx, &call.Request{Op: "CreateKey", Input: model.Object{}, Principal: "ci", Region: "us-east-1"})
	assert.True(t, kmserr.Is(err, kmserr.AccessDenied), "%v", err)
}

// An identity policy that does not parse (a Principal element, which an
// identity policy may not have; not JSON) is refused before anything is
// submitted, as MalformedPolicyDocumentException; one that does is kept.
func TestPrincipalPolicyChecked(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, bad := range []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`,
		`not json`,
	} {
		_, err := w.svc.CreatePrincipalWithPolicy(ctx, w.co, "bad", bad)
		assert.True(t, kmserr.Is(kmsErr(err), kmserr.MalformedPolicy), "%v", err)
		assert.True(t, kmserr.Is(kmsErr(w.svc.SetPrincipalPolicy(ctx, w.co, "app", bad)), kmserr.MalformedPolicy))
	}
	_, err := w.svc.PrincipalPolicy(w.co, "bad")
	assert.True(t, kmserr.Is(kmsErr(err), kmserr.NotFound), "a refused principal was not made: %v", err)
	doc, err := w.svc.PrincipalPolicy(w.co, "app")
	require.NoError(t, err)
	assert.Equal(t, kms.AdminPolicy, doc, "a refused policy changed nothing")

	narrow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Describe*","Resource":"*"}]}`
	require.NoError(t, w.svc.SetPrincipalPolicy(ctx, w.co, "app", narrow))
	doc, err = w.svc.PrincipalPolicy(w.co, "app")
	require.NoError(t, err)
	assert.Equal(t, narrow, doc)
	w.refused(kmserr.AccessDenied, "CreateKey", map[string]any{})
}

func kmsErr(err error) error {
	var he *hsmerr.Error
	if errors.As(err, &he) && hsmerr.KMSException(err) != "" {
		return &kmserr.Error{Type: hsmerr.KMSException(err), Message: he.Msg}
	}
	return err
}

// DryRun resolves the key first, then answers DryRunOperationException;
// nothing is made.
func TestDryRun(t *testing.T) {
	w := newWorld(t)
	id, _ := w.createKey(nil).String("KeyId")
	w.refused(kmserr.DryRun, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x"), "DryRun": true})
	w.refused(kmserr.NotFound, "Encrypt", map[string]any{"KeyId": "alias/none", "Plaintext": []byte("x"), "DryRun": true})
}
