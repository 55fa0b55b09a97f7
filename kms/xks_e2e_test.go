package kms_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/testcluster"
)

// TestExternalKeyStoreEndToEnd: our KMS on cluster A keeps a key in an
// external key store whose XKS proxy is cluster B's (hsmd's [xks], set up
// by `cluster.sh up --xks`), all through the unchanged AWS SDK: create and
// connect the store, create a key on B's external key, Encrypt, Decrypt
// and GenerateDataKey with double encryption; a wrong credential fails the
// connection with INVALID_CREDENTIALS; B down makes the key unusable and B
// back makes it usable again.
func TestExternalKeyStoreEndToEnd(t *testing.T) {
	ctx := context.Background()
	t.Setenv("HSM_XKS", "1")
	t.Setenv("HSM_NO_KMS", "1")
	b := testcluster.Start(t, 1)
	t.Setenv("HSM_XKS", "")
	t.Setenv("HSM_NO_KMS", "")
	t.Setenv("HSM_KMS_CONFIG", `xks_ca_file = "`+b.Env["XKS_CA_CERT"]+`"`)
	a := testcluster.Start(t, 1)
	c := sdkClient(t, a.Env, "")

	cred := func(secret string) *types.XksProxyAuthenticationCredentialType {
		return &types.XksProxyAuthenticationCredentialType{AccessKeyId: aws.String(b.Env["XKS_ACCESS_KEY_ID"]), RawSecretAccessKey: aws.String(secret)}
	}
	created, err := c.CreateCustomKeyStore(ctx, &awskms.CreateCustomKeyStoreInput{
		CustomKeyStoreName:               aws.String("xks-on-b"),
		CustomKeyStoreType:               types.CustomKeyStoreTypeExternalKeyStore,
		XksProxyUriEndpoint:              aws.String("https://" + b.Env["XKS_PROXY_HOST"]),
		XksProxyUriPath:                  aws.String(b.Env["XKS_URI_PATH"]),
		XksProxyConnectivity:             types.XksProxyConnectivityTypePublicEndpoint,
		XksProxyAuthenticationCredential: cred(b.Env["XKS_SECRET_ACCESS_KEY"]),
	})
	require.NoError(t, err)
	store := aws.ToString(created.CustomKeyStoreId)

	// Not connected: CreateKey names the store's state.
	_, err = c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(store), XksKeyId: aws.String(b.Env["XKS_KEY_ID"])})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", apiCode(err))

	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	stt, code := waitStore(t, c, store)
	require.Equal(t, types.ConnectionStateTypeConnected, stt, "error code %s", code)

	// An external key the proxy does not have.
	_, err = c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(store), XksKeyId: aws.String("no-such-key")})
	assert.Equal(t, "XksKeyNotFoundException", apiCode(err))

	key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(store), XksKeyId: aws.String(b.Env["XKS_KEY_ID"])})
	require.NoError(t, err)
	md := key.KeyMetadata
	assert.Equal(t, types.OriginTypeExternalKeyStore, md.Origin)
	assert.Equal(t, store, aws.ToString(md.CustomKeyStoreId))
	require.NotNil(t, md.XksKeyConfiguration)
	assert.Equal(t, b.Env["XKS_KEY_ID"], aws.ToString(md.XksKeyConfiguration.Id))
	id := md.KeyId

	// One KMS key per external key.
	_, err = c.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(store), XksKeyId: aws.String(b.Env["XKS_KEY_ID"])})
	assert.Equal(t, "XksKeyAlreadyInUseException", apiCode(err))

	ec := map[string]string{"purpose": "xks-e2e"}
	pt := []byte("double encrypted: our HSM inside, the proxy outside")
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: pt, EncryptionContext: ec})
	require.NoError(t, err)
	dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, pt, dec.Plaintext)
	assert.Equal(t, aws.ToString(md.Arn), aws.ToString(dec.KeyId))
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}})
	assert.Error(t, err, "another encryption context must not decrypt")
	bad := append([]byte(nil), enc.CiphertextBlob...)
	bad[len(bad)-1] ^= 1
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: bad, EncryptionContext: ec})
	assert.Error(t, err, "a changed outer ciphertext must not decrypt")

	dk, err := c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: id, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	dk2, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, dk.Plaintext, dk2.Plaintext)

	// A wrong credential: the connection fails with INVALID_CREDENTIALS,
	// and the right one brings the store back.
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: pt})
	assert.Equal(t, "KMSInvalidStateException", apiCode(err), "a key of a disconnected store")
	wrong := "WrongWrongWrongWrongWrongWrongWrongWrongWrong"
	_, err = c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(store), XksProxyAuthenticationCredential: cred(wrong)})
	require.NoError(t, err)
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	stt, code = waitStore(t, c, store)
	assert.Equal(t, types.ConnectionStateTypeFailed, stt)
	assert.Equal(t, types.ConnectionErrorCodeType("INVALID_CREDENTIALS"), code)
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	_, err = c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(store), XksProxyAuthenticationCredential: cred(b.Env["XKS_SECRET_ACCESS_KEY"])})
	require.NoError(t, err)
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(store)})
	require.NoError(t, err)
	stt, code = waitStore(t, c, store)
	require.Equal(t, types.ConnectionStateTypeConnected, stt, "error code %s", code)
	dec, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, pt, dec.Plaintext)

	// The unchanged AWS CLI manages an external key store too. AWS CLI v1
	// fetches a parameter that starts with https:// unless told not to
	// (cli_follow_urlparam), which an endpoint parameter needs.
	cliConfig := t.TempDir() + "/aws-config"
	require.NoError(t, os.WriteFile(cliConfig, []byte("[default]\ncli_follow_urlparam = false\n"), 0o600))
	awsCLI := func(args ...string) []byte {
		cmd := exec.Command("aws", append([]string{"kms"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE="+cliConfig)
		for k, v := range a.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "aws kms %s: %s", args[0], stderr.String())
		return out
	}
	var cliCreated struct{ CustomKeyStoreId string }
	require.NoError(t, json.Unmarshal(awsCLI("create-custom-key-store", "--custom-key-store-name", "xks-by-cli",
		"--custom-key-store-type", "EXTERNAL_KEY_STORE", "--xks-proxy-uri-endpoint", "https://"+b.Env["XKS_PROXY_HOST"],
		"--xks-proxy-uri-path", "/cli"+b.Env["XKS_URI_PATH"], "--xks-proxy-connectivity", "PUBLIC_ENDPOINT",
		"--xks-proxy-authentication-credential", "AccessKeyId="+b.Env["XKS_ACCESS_KEY_ID"]+",RawSecretAccessKey="+b.Env["XKS_SECRET_ACCESS_KEY"]), &cliCreated))
	var described struct {
		CustomKeyStores []struct {
			CustomKeyStoreId, CustomKeyStoreType, ConnectionState string
			XksProxyConfiguration                                 struct{ Connectivity, AccessKeyId, UriEndpoint, UriPath string }
		}
	}
	require.NoError(t, json.Unmarshal(awsCLI("describe-custom-key-stores", "--custom-key-store-id", cliCreated.CustomKeyStoreId), &described))
	require.Len(t, described.CustomKeyStores, 1)
	got := described.CustomKeyStores[0]
	assert.Equal(t, "EXTERNAL_KEY_STORE", got.CustomKeyStoreType)
	assert.Equal(t, "DISCONNECTED", got.ConnectionState)
	assert.Equal(t, "PUBLIC_ENDPOINT", got.XksProxyConfiguration.Connectivity)
	assert.Equal(t, b.Env["XKS_ACCESS_KEY_ID"], got.XksProxyConfiguration.AccessKeyId)
	assert.Equal(t, "/cli"+b.Env["XKS_URI_PATH"], got.XksProxyConfiguration.UriPath)
	awsCLI("update-custom-key-store", "--custom-key-store-id", cliCreated.CustomKeyStoreId, "--new-custom-key-store-name", "xks-renamed")
	awsCLI("delete-custom-key-store", "--custom-key-store-id", cliCreated.CustomKeyStoreId)
	left, err := c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{})
	require.NoError(t, err)
	assert.Len(t, left.CustomKeyStores, 1, "only the SDK's store is left")

	// B down: the key cannot be used; B back: it can.
	b.Stop(1, false)
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	assert.Equal(t, "KMSInvalidStateException", apiCode(err), "the proxy is down")
	out, err := b.StartNode(1)
	require.NoError(t, err, "%s", out)
	deadline := time.Now().Add(60 * time.Second)
	for {
		dec, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.NoError(t, err, "the proxy is back")
	assert.Equal(t, pt, dec.Plaintext)
}
