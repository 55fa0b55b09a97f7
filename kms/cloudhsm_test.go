package kms_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// apiCode is the exception name of an SDK error ("" for none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// dialB is a client of cluster B with B's client certificate.
func dialB(t *testing.T, b *testcluster.Cluster) *client.Client {
	t.Helper()
	read := func(f string) []byte {
		v, err := os.ReadFile(filepath.Join(b.Dir, "pki", f))
		require.NoError(t, err)
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, &client.Config{Nodes: []string{b.Addr(1), b.Addr(2)}, Timeout: 10 * time.Second,
		Creds: &client.Credentials{CA: read("ca.pem"), Cert: read("client.pem"), Key: read("client-key.pem")}})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// startStoreCluster starts B, a real 2-node cluster without the KMS, whose
// crypto officer makes kmsuser (a crypto user) with the password given,
// and answers B with its CA and a client certificate and key of B's PKI.
func startStoreCluster(t *testing.T, kmsuserPW string) (b *testcluster.Cluster, ca, cert, key []byte) {
	t.Helper()
	t.Setenv("HSM_NO_KMS", "1")
	b = testcluster.Start(t, 2)
	t.Setenv("HSM_NO_KMS", "")
	require.NotEmpty(t, b.Env["HSM_CLUSTER_ID"])
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(kmsuserPW+"\n"), 0o600))
	coEnv := []string{"HSM_USER=" + b.Env["HSM_USER"], "HSM_PASSWORD=" + b.Env["HSM_PASSWORD"]}
	out, err := b.HSM(coEnv, "user", "create", "kmsuser", "--role", "CU", "--new-password-file", pwFile)
	require.NoError(t, err, string(out))
	read := func(name string) []byte {
		v, err := os.ReadFile(filepath.Join(b.Dir, "pki", name))
		require.NoError(t, err)
		return v
	}
	return b, read("ca.pem"), read("client.pem"), read("client-key.pem")
}

// TestCloudHSMKeyStoreKeys runs the KMS in process (cluster A) with a
// custom key store on a real two-node cluster B started without a KMS,
// through the unchanged SDK: connect, keys made on B, the cryptographic
// operations, the refused ones, and the errors when B or the key on B is
// gone.
func TestCloudHSMKeyStoreKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	ctx := context.Background()
	const kmsuserPW = "kmsuser-initial-pass-1"
	b, ca, cert, key := startStoreCluster(t, kmsuserPW)
	clusterID := b.Env["HSM_CLUSTER_ID"]
	a := kmstest.Start(t)
	c := inProcessSDK(t, a)
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	require.NoError(t, a.Service.AddHSMCluster(ctx, co, clusterID, []string{b.Addr(1), b.Addr(2)}, cert, key))

	// A wrong kmsuser password: FAILED with INVALID_CREDENTIALS.
	cs, err := c.CreateCustomKeyStore(ctx, &awskms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("b"),
		CloudHsmClusterId: aws.String(clusterID), TrustAnchorCertificate: aws.String(string(ca)), KeyStorePassword: aws.String("not-kmsusers-password")})
	require.NoError(t, err)
	store := aws.ToString(cs.CustomKeyStoreId)
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	stt, code := waitStore(t, c, store)
	require.Equal(t, types.ConnectionStateTypeFailed, stt)
	assert.Equal(t, types.ConnectionErrorCodeTypeInvalidCredentials, code)
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)

	// The right one: CONNECTED, and kmsuser's password was rotated.
	_, err = c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(store), KeyStorePassword: aws.String(kmsuserPW)})
	require.NoError(t, err)
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	stt, code = waitStore(t, c, store)
	require.Equal(t, types.ConnectionStateTypeConnected, stt, "error code %s", code)
	old := dialB(t, b)
	err = old.Login(ctx, "kmsuser", kmsuserPW)
	require.Error(t, err, "the password given to the store must no longer log in once connect rotated it")

	// CreateKey in the store.
	ck1, err := c.CreateKey(ctx, &awskms.CreateKeyInput{CustomKeyStoreId: aws.String(store), Origin: types.OriginTypeAwsCloudhsm, Description: aws.String("on B")})
	require.NoError(t, err)
	md := ck1.KeyMetadata
	keyID := aws.ToString(md.KeyId)
	assert.Equal(t, store, aws.ToString(md.CustomKeyStoreId))
	assert.Equal(t, clusterID, aws.ToString(md.CloudHsmClusterId))
	assert.Equal(t, types.OriginTypeAwsCloudhsm, md.Origin)
	assert.Equal(t, types.KeyStateEnabled, md.KeyState)
	_, err = c.CreateKey(ctx, &awskms.CreateKeyInput{CustomKeyStoreId: aws.String(store), Origin: types.OriginTypeAwsCloudhsm,
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	assert.Equal(t, "UnsupportedOperationException", apiCode(err), "an asymmetric key in a custom key store")
	_, err = c.CreateKey(ctx, &awskms.CreateKeyInput{CustomKeyStoreId: aws.String(store)})
	assert.Equal(t, "ValidationException", apiCode(err), "Origin AWS_KMS in a custom key store")

	// The key on B: non-extractable, sensitive, kmsuser's alone.
	ids, attrs, err := kms.StoreKeyObjects(a.Service, a.Region, store, keyID, []uint64{ck.CKA_EXTRACTABLE, ck.CKA_SENSITIVE, ck.CKA_TOKEN, ck.CKA_VALUE})
	require.NoError(t, err)
	require.Len(t, ids, 1)
	assert.Equal(t, object.EncodeBool(false), attrs[0][0].Value, "CKA_EXTRACTABLE")
	assert.Equal(t, object.EncodeBool(true), attrs[0][1].Value, "CKA_SENSITIVE")
	assert.Equal(t, object.EncodeBool(true), attrs[0][2].Value, "CKA_TOKEN")
	assert.Equal(t, uint64(ck.CKR_ATTRIBUTE_SENSITIVE), attrs[0][3].RV, "CKA_VALUE must not be readable")
	other := dialB(t, b)
	require.NoError(t, other.Login(ctx, b.Env["P11_TOKEN_LABEL"], b.Env["P11_PIN"]))
	seen, err := other.FindObjects(ctx, object.Template{{Type: ck.CKA_LABEL, Value: []byte(keyID)}}, 0)
	require.NoError(t, err)
	assert.Empty(t, seen, "another crypto user of B must not see kmsuser's key")

	// The cryptographic operations AWS allows.
	ec := map[string]string{"purpose": "test"}
	works := func() error {
		enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("hello B"), EncryptionContext: ec})
		if err != nil {
			return err
		}
		dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		if err != nil {
			return err
		}
		if string(dec.Plaintext) != "hello B" || aws.ToString(dec.KeyId) != aws.ToString(md.Arn) {
			return errors.New("Decrypt answered something else")
		}
		return nil
	}
	require.NoError(t, works())

	// Another crypto user of B plants a key under the KMS key's label and
	// shares it with kmsuser: the KMS goes on with kmsuser's own key (a
	// planted key would let that user decrypt the key's ciphertexts).
	planted, err := other.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}, {Type: ck.CKA_LABEL, Value: []byte(keyID)},
		{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
		{Type: ck.CKA_ENCRYPT, Value: object.EncodeBool(true)}, {Type: ck.CKA_DECRYPT, Value: object.EncodeBool(true)}})
	require.NoError(t, err)
	require.NoError(t, other.Share(ctx, planted, "kmsuser"))
	kms.DropStoreClients(a.Service) // forget the cached handle: find the key again
	require.NoError(t, works(), "a planted shared key changes nothing")
	require.NoError(t, other.DestroyObject(ctx, planted))

	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x"), EncryptionContext: ec})
	require.NoError(t, err)
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}})
	assert.Equal(t, "InvalidCiphertextException", apiCode(err), "another encryption context")
	dk, err := c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	require.Len(t, dk.Plaintext, 32)
	dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, KeyId: aws.String(keyID)})
	require.NoError(t, err)
	assert.Equal(t, dk.Plaintext, dec.Plaintext)
	dkw, err := c.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(keyID), NumberOfBytes: aws.Int32(16)})
	require.NoError(t, err)
	local, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	require.NoError(t, err)
	re, err := c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: dkw.CiphertextBlob, DestinationKeyId: local.KeyMetadata.KeyId})
	require.NoError(t, err)
	back, err := c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, DestinationKeyId: aws.String(keyID)})
	require.NoError(t, err)
	d1, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: back.CiphertextBlob})
	require.NoError(t, err)
	assert.Len(t, d1.Plaintext, 16)
	rnd, err := c.GenerateRandom(ctx, &awskms.GenerateRandomInput{CustomKeyStoreId: aws.String(store), NumberOfBytes: aws.Int32(48)})
	require.NoError(t, err)
	assert.Len(t, rnd.Plaintext, 48)

	// The operations AWS does not support on keys in custom key stores.
	k := aws.String(keyID)
	refused := []struct {
		op string
		do func() error
	}{
		{"GenerateDataKeyPair", func() error {
			_, err := c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: k, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
			return err
		}},
		{"GenerateDataKeyPairWithoutPlaintext", func() error {
			_, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: k, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
			return err
		}},
		{"Sign", func() error {
			_, err := c.Sign(ctx, &awskms.SignInput{KeyId: k, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}},
		{"Verify", func() error {
			_, err := c.Verify(ctx, &awskms.VerifyInput{KeyId: k, Message: []byte("m"), Signature: []byte("s"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}},
		{"GenerateMac", func() error {
			_, err := c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: k, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		}},
		{"VerifyMac", func() error {
			_, err := c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: k, Message: []byte("m"), Mac: []byte("mac"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		}},
		{"GetPublicKey", func() error { _, err := c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: k}); return err }},
		{"EnableKeyRotation", func() error { _, err := c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: k}); return err }},
		{"RotateKeyOnDemand", func() error { _, err := c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: k}); return err }},
		{"GetParametersForImport", func() error {
			_, err := c.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: k,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			return err
		}},
		{"ImportKeyMaterial", func() error {
			_, err := c.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: k, ImportToken: []byte("t"),
				EncryptedKeyMaterial: []byte("m"), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
			return err
		}},
		{"DeleteImportedKeyMaterial", func() error {
			_, err := c.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: k})
			return err
		}},
	}
	require.Len(t, refused, kms.StoreRefusedOps(), "every operation of the table is tried")
	for _, r := range refused {
		err := r.do()
		assert.Equal(t, "UnsupportedOperationException", apiCode(err), r.op)
		assert.ErrorContains(t, err, "origin is AWS_CLOUDHSM which is not valid for this operation", r.op)
	}

	// A node that did not connect the store logs in by itself, with the
	// rotated password of the store's row.
	kms.DropStoreClients(a.Service)
	require.NoError(t, works())

	// Disconnected: the key is unavailable and described so.
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	err = works()
	assert.Equal(t, "KMSInvalidStateException", apiCode(err))
	assert.ErrorContains(t, err, "is unavailable")
	dsc, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: k})
	require.NoError(t, err)
	assert.Equal(t, types.KeyStateUnavailable, dsc.KeyMetadata.KeyState)
	_, err = c.GenerateRandom(ctx, &awskms.GenerateRandomInput{CustomKeyStoreId: aws.String(store), NumberOfBytes: aws.Int32(8)})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", apiCode(err))
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	stt, code = waitStore(t, c, store)
	require.Equal(t, types.ConnectionStateTypeConnected, stt, "error code %s", code)
	require.NoError(t, works())

	// B down: KMSInvalidStateException; B back: the key works again.
	b.Stop(1, false)
	b.Stop(2, false)
	err = works()
	assert.Equal(t, "KMSInvalidStateException", apiCode(err))
	for _, n := range []int{1, 2} {
		out, err := b.StartNode(n)
		require.NoError(t, err, string(out))
	}
	require.Eventually(t, func() bool { return works() == nil }, 90*time.Second, time.Second, "the key must work again once B is back")

	// ScheduleKeyDeletion: at the end of the window the key on B goes too.
	// B has just restarted: CreateKey needs both of its nodes reachable
	// again (each node's view of the other catches up within a bound).
	var ck2 *awskms.CreateKeyOutput
	require.Eventually(t, func() bool {
		ck2, err = c.CreateKey(ctx, &awskms.CreateKeyInput{CustomKeyStoreId: aws.String(store), Origin: types.OriginTypeAwsCloudhsm})
		return err == nil
	}, 60*time.Second, time.Second, "CreateKey once B's two nodes are back")
	key2 := aws.ToString(ck2.KeyMetadata.KeyId)
	ids2, _, err := kms.StoreKeyObjects(a.Service, a.Region, store, key2, nil)
	require.NoError(t, err)
	require.Len(t, ids2, 1)
	_, err = c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(key2), PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	a.Advance(8 * 24 * time.Hour)
	require.NoError(t, a.Service.Upkeep(ctx))
	ids2, _, err = kms.StoreKeyObjects(a.Service, a.Region, store, key2, nil)
	require.NoError(t, err)
	assert.Empty(t, ids2, "the deleted key's material must be gone from B")

	// The backing key deleted on B: KMSInvalidStateException.
	require.NoError(t, kms.DestroyStoreObject(a.Service, a.Region, store, ids[0]))
	err = works()
	assert.Equal(t, "KMSInvalidStateException", apiCode(err))
	assert.ErrorContains(t, err, "is unavailable")
}
