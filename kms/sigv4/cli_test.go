package sigv4

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toolEnv is the environment for the unchanged AWS CLI or boto3 signing
// as akid/secret: the test's own environment without any AWS_ setting or
// proxy, empty config and credentials files (so no ~/.aws file speaks),
// and no instance metadata look-up.
func toolEnv(t *testing.T, akid, secret string) []string {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(config, nil, 0o600))
	require.NoError(t, os.WriteFile(creds, nil, 0o600))
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if strings.HasPrefix(upper, "AWS_") || strings.HasSuffix(upper, "_PROXY") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ACCESS_KEY_ID="+akid,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
		"NO_PROXY=127.0.0.1",
	)
}

// runTool runs name with args and env for at most a minute.
func runTool(t *testing.T, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestAWSCLI: the unchanged AWS CLI signs requests this package verifies,
// and reads its refusals as AWS's.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not installed")
	}
	srv := startKMSServer(t, &Verifier{Regions: RegionSet("us-east-1", "eu-west-1")}, testKeys())
	env := toolEnv(t, testAKID, testSecret)
	aws := func(env []string, args ...string) (string, string, error) {
		return runTool(t, env, "aws", append([]string{"--endpoint-url", srv.URL, "--output", "json"}, args...)...)
	}

	out, errOut, err := aws(env, "kms", "list-keys", "--region", "us-east-1")
	require.NoError(t, err, "stderr: %s", errOut)
	assert.JSONEq(t, `{"Keys":[]}`, out)
	got := srv.taken()
	require.Len(t, got, 1)
	require.NoError(t, got[0].err)
	assert.Equal(t, testPrincipal, got[0].id.Principal)
	assert.Equal(t, testAKID, got[0].id.AccessKeyID)
	assert.Equal(t, "us-east-1", got[0].id.Region)
	assert.WithinDuration(t, time.Now(), got[0].id.Time, time.Minute)

	// A request with a body, in the other region.
	_, errOut, err = aws(env, "kms", "encrypt", "--region", "eu-west-1", "--key-id", "alias/test",
		"--plaintext", "aGVsbG8gd29ybGQ=", "--encryption-context", "purpose=test,team=a b")
	require.NoError(t, err, "stderr: %s", errOut)
	got = srv.taken()
	require.Len(t, got, 1)
	require.NoError(t, got[0].err)
	assert.Equal(t, "eu-west-1", got[0].id.Region)

	// A wrong secret: the CLI shows AWS's exception and message, and
	// nothing secret.
	_, errOut, err = aws(toolEnv(t, testAKID, "not-the-secret"), "kms", "list-keys", "--region", "us-east-1")
	require.Error(t, err)
	assert.Contains(t, errOut, "An error occurred (InvalidSignatureException) when calling the ListKeys operation: "+msgMismatch)
	assert.NotContains(t, errOut, testSecret)
	got = srv.taken()
	require.Len(t, got, 1)
	assert.ErrorContains(t, got[0].err, msgMismatch)

	// An unknown key.
	_, errOut, err = aws(toolEnv(t, "AKIDUNKNOWN", testSecret), "kms", "list-keys", "--region", "us-east-1")
	require.Error(t, err)
	assert.Contains(t, errOut, "An error occurred (UnrecognizedClientException) when calling the ListKeys operation: "+msgUnknownKey)
	srv.taken()

	// A region this service does not serve.
	_, errOut, err = aws(env, "kms", "list-keys", "--region", "ap-south-2")
	require.Error(t, err)
	assert.Contains(t, errOut, "(InvalidSignatureException) when calling the ListKeys operation: Credential should be scoped to a valid region, not 'ap-south-2'.")
	srv.taken()
}

// boto3Script lists keys, encrypts with a context, and reports what a
// wrong secret is answered with, through the unchanged boto3.
const boto3Script = `
import sys, boto3, botocore.exceptions
url, region = sys.argv[1], sys.argv[2]
kms = boto3.client("kms", endpoint_url=url, region_name=region)
print("keys", kms.list_keys()["Keys"])
kms.encrypt(KeyId="alias/test", Plaintext=b"\x00secret bytes\xff" * 64, EncryptionContext={"purpose": "test"})
bad = boto3.client("kms", endpoint_url=url, region_name=region, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="wrong")
try:
    bad.list_keys()
    print("wrong secret accepted")
except botocore.exceptions.ClientError as e:
    print("refused", e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
`

// TestBoto3: the unchanged boto3 signs requests this package verifies.
func TestBoto3(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	if _, _, err := runTool(t, os.Environ(), "python3", "-c", "import boto3"); err != nil {
		t.Skip("boto3 is not installed")
	}
	srv := startKMSServer(t, &Verifier{Regions: RegionSet("us-east-1", "eu-west-1")}, testKeys())
	out, errOut, err := runTool(t, toolEnv(t, testAKID, testSecret), "python3", "-c", boto3Script, srv.URL, "eu-west-1")
	require.NoError(t, err, "stderr: %s", errOut)
	assert.Equal(t, "keys []\nrefused InvalidSignatureException 400\n", out)
	got := srv.taken()
	require.Len(t, got, 3)
	for _, o := range got[:2] {
		require.NoError(t, o.err)
		assert.Equal(t, &Identity{Principal: testPrincipal, AccessKeyID: testAKID, Region: "eu-west-1", Time: o.id.Time}, o.id)
	}
	var e *Error
	require.ErrorAs(t, got[2].err, &e)
	assert.Equal(t, CodeInvalidSignature, e.Code)
}
