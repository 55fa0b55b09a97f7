package kms_test

import (
	"database/sql"
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"

	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go/middleware"
	"github.com/openhsm/openhsm/client"
	_ "modernc.org/sqlite"

	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/testcluster"
)

// sdkClient is the unchanged AWS SDK's KMS client, set up from what the
// cluster script printed (the exports `make run` shows a user), for the
// endpoint given ("" is the printed one: haproxy in front of the nodes).
func sdkClient(t *testing.T, env map[string]string, endpoint string) *awskms.Client {
	t.Helper()
	for _, k := range []string{"AWS_ENDPOINT_URL_KMS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_CA_BUNDLE"} {
		require.NotEmpty(t, env[k], "the cluster script printed no %s", k)
	}
	if endpoint == "" {
		endpoint = env["AWS_ENDPOINT_URL_KMS"]
	}
	pem, err := os.ReadFile(env["AWS_CA_BUNDLE"])
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	cfg := aws.Config{
		Region: env["AWS_REGION"],
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: env["AWS_ACCESS_KEY_ID"], SecretAccessKey: env["AWS_SECRET_ACCESS_KEY"]}, nil
		}),
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// readYourWrites: a write acknowledged by one node is seen at once by the
// next request on any other node (no retry, no wait): a new key, a new
// alias, a disabled key.
func readYourWrites(t *testing.T, c *testcluster.Cluster) {
	ctx := context.Background()
	nodes := make([]*awskms.Client, 3)
	for k := range nodes {
		addr, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.kms.addr", k+1)))
		require.NoError(t, err)
		nodes[k] = sdkClient(t, c.Env, "https://"+strings.TrimSpace(string(addr)))
	}
	for i := range 6 {
		a, b := nodes[i%3], nodes[(i+1)%3]
		key, err := a.CreateKey(ctx, &awskms.CreateKeyInput{})
		require.NoError(t, err)
		_, err = b.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
		require.NoError(t, err, "a key made on one node is usable on the next at once")
		alias := fmt.Sprintf("alias/ryw-%d", i)
		_, err = b.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: key.KeyMetadata.KeyId})
		require.NoError(t, err)
		_, err = a.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(alias)})
		require.NoError(t, err, "an alias made on one node resolves on another at once")
		_, err = a.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId})
		require.NoError(t, err)
		_, err = nodes[(i+2)%3].Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")})
		var disabled *types.DisabledException
		require.ErrorAs(t, err, &disabled, "a key disabled on one node is refused on another at once")
	}
}

// leader is the number of the node that leads now.
func leader(t *testing.T, c *testcluster.Cluster) int {
	t.Helper()
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	require.NoError(t, err)
	cl, err := client.Dial(context.Background(), cfg)
	require.NoError(t, err)
	defer cl.Close()
	var k int
	require.Eventually(t, func() bool {
		st, err := cl.ClusterStatus(context.Background())
		if err != nil {
			return false
		}
		_, err = fmt.Sscanf(st.Leader, "node%d", &k)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "no leader")
	return k
}

// TestFailover: through the printed endpoint, 16 clients keep encrypting,
// decrypting and making data keys while a random node is killed (SIGKILL)
// and started again, twice, the leader first. No request fails after the SDK's own retries
// (its defaults), and every ciphertext made decrypts afterwards.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := testcluster.Start(t, 3)
	ctx := context.Background()
	readYourWrites(t, c)
	grantsAcrossNodes(t, c)
	cl := sdkClient(t, c.Env, "")
	key, err := cl.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("failover")})
	require.NoError(t, err)
	id := key.KeyMetadata.KeyId

	type made struct {
		ct, pt []byte
		ec     map[string]string
	}
	var (
		mu       sync.Mutex
		blobs    []made
		failures []string
		calls    atomic.Int64
	)
	fail := func(op string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), op, err))
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ec := map[string]string{"worker": fmt.Sprint(g), "n": fmt.Sprint(i)}
				switch i % 3 {
				case 0:
					pt := []byte(fmt.Sprintf("secret %d/%d", g, i))
					out, err := cl.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: pt, EncryptionContext: ec})
					calls.Add(1)
					if err != nil {
						fail("Encrypt", err)
						continue
					}
					mu.Lock()
					blobs = append(blobs, made{out.CiphertextBlob, pt, ec})
					mu.Unlock()
				case 1:
					out, err := cl.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: aws.Int32(32), EncryptionContext: ec})
					calls.Add(1)
					if err != nil {
						fail("GenerateDataKey", err)
						continue
					}
					mu.Lock()
					blobs = append(blobs, made{out.CiphertextBlob, out.Plaintext, ec})
					mu.Unlock()
				case 2:
					mu.Lock()
					var m made
					if len(blobs) > 0 {
						m = blobs[rand.IntN(len(blobs))]
					}
					mu.Unlock()
					if m.ct == nil {
						continue
					}
					out, err := cl.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: m.ct, EncryptionContext: m.ec})
					calls.Add(1)
					if err != nil {
						fail("Decrypt", err)
						continue
					}
					if !bytes.Equal(out.Plaintext, m.pt) {
						fail("Decrypt", fmt.Errorf("wrong plaintext"))
					}
				}
			}
		}(g)
	}
	for round := 0; round < 2; round++ {
		time.Sleep(2 * time.Second)
		// The leader first (an election under load), then any node.
		k := 1 + rand.IntN(3)
		if round == 0 {
			k = leader(t, c)
		}
		t.Logf("%s round %d: killing node%d after %d calls", time.Now().Format("15:04:05.000"), round, k, calls.Load())
		c.Stop(k, true)
		time.Sleep(3 * time.Second)
		t.Logf("%s starting node%d", time.Now().Format("15:04:05.000"), k)
		out, err := c.StartNode(k)
		require.NoError(t, err, "%s", out)
		t.Logf("%s node%d started", time.Now().Format("15:04:05.000"), k)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d calls, %d ciphertexts", calls.Load(), len(blobs))
	assert.Empty(t, failures, "requests that failed after the SDK's retries")
	for _, m := range blobs {
		out, err := cl.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: m.ct, EncryptionContext: m.ec})
		if !assert.NoError(t, err) {
			break
		}
		assert.Equal(t, m.pt, out.Plaintext)
	}
}

// requestID is the x-amzn-RequestId of an answer or an error.
func requestID(t *testing.T, md middleware.Metadata, err error) string {
	t.Helper()
	if err != nil {
		var re *awshttp.ResponseError
		require.ErrorAs(t, err, &re)
		return re.ServiceRequestID()
	}
	id, ok := awsmw.GetRequestIDMetadata(md)
	require.True(t, ok)
	return id
}

// hsmCLI runs the hsm CLI as the cluster's crypto officer.
func hsmCLI(t *testing.T, c *testcluster.Cluster, args ...string) ([]byte, error) {
	t.Helper()
	return c.HSM([]string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}, args...)
}

// TestAuditTrail: every KMS request, allowed or refused (by SigV4, by
// validation, by the key's state), is in the trail with its request ID,
// principal, operation, key and context keys, never a context value; and
// one flipped byte of a stored KMS record makes `hsm audit verify` fail
// and name that record.
func TestAuditTrail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, 1)
	ctx := context.Background()
	cl := sdkClient(t, c.Env, "")
	want := map[string]string{} // request ID -> operation

	key, err := cl.CreateKey(ctx, &awskms.CreateKeyInput{})
	require.NoError(t, err)
	want[requestID(t, key.ResultMetadata, nil)] = "CreateKey"
	id := key.KeyMetadata.KeyId
	arn := *key.KeyMetadata.Arn
	enc, err := cl.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("p"),
		EncryptionContext: map[string]string{"tenant": "value-never-recorded"}})
	require.NoError(t, err)
	want[requestID(t, enc.ResultMetadata, nil)] = "Encrypt"
	_, err = cl.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.Error(t, err, "the context is missing")
	want[requestID(t, middleware.Metadata{}, err)] = "Decrypt"
	_, err = cl.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	require.Error(t, err)
	want[requestID(t, middleware.Metadata{}, err)] = "DescribeKey"
	_, err = cl.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(2000)})
	require.Error(t, err, "validation")
	want[requestID(t, middleware.Metadata{}, err)] = "GenerateRandom"
	bad := map[string]string{}
	for k, v := range c.Env {
		bad[k] = v
	}
	bad["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-not-the-secret-not-the-se"
	_, err = sdkClient(t, bad, "").ListKeys(ctx, &awskms.ListKeysInput{})
	require.Error(t, err, "a wrong secret")
	want[requestID(t, middleware.Metadata{}, err)] = "ListKeys"

	byID := map[string]client.AuditRecord{}
	require.Eventually(t, func() bool {
		out, err := hsmCLI(t, c, "audit", "list", "--kind", "kms", "--json")
		require.NoError(t, err, "%s", out)
		var got struct {
			Records []client.AuditRecord `json:"records"`
		}
		require.NoError(t, json.Unmarshal(out, &got))
		for _, r := range got.Records {
			var d struct {
				RequestID string `json:"request_id"`
			}
			require.NoError(t, json.Unmarshal(r.Detail, &d))
			byID[d.RequestID] = r
		}
		for rid := range want {
			if _, ok := byID[rid]; !ok {
				return false
			}
		}
		return true
	}, 20*time.Second, 500*time.Millisecond, "every request is in the trail")
	principal := "arn:aws:iam::123456789012:user/app"
	for rid, op := range want {
		r := byID[rid]
		assert.Equal(t, op, r.Op, rid)
		assert.Equal(t, "node1", r.Node)
		if op != "ListKeys" {
			assert.Equal(t, principal, r.User, op)
		} else {
			assert.Equal(t, c.Env["AWS_ACCESS_KEY_ID"], r.User, "a refused signature names the access key")
			assert.Equal(t, "InvalidSignatureException", r.Result)
		}
	}
	assert.Equal(t, arn, byID[requestID(t, enc.ResultMetadata, nil)].Subject)
	assert.Contains(t, string(byID[requestID(t, enc.ResultMetadata, nil)].Detail), `"tenant"`)
	out, err := hsmCLI(t, c, "audit", "list", "--kind", "kms", "--json")
	require.NoError(t, err)
	assert.NotContains(t, string(out), "value-never-recorded", "context values stay out of the trail")

	// Flip one byte of the Encrypt record in the stopped node's store.
	seq := byID[requestID(t, enc.ResultMetadata, nil)].Seq
	c.Stop(1, false)
	db, err := sql.Open("sqlite", filepath.Join(c.Dir, "node1", "hsm.db"))
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE audit SET op = 'Encrypu' WHERE seq = ?`, seq)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	out, err = c.StartNode(1)
	require.NoError(t, err, "%s", out)
	out, err = hsmCLI(t, c, "audit", "verify", "--json")
	require.Error(t, err, "hsm audit verify passed a tampered trail: %s", out)
	js := string(out)
	if i := strings.Index(js, "\nhsm: "); i >= 0 {
		js = js[:i]
	}
	var rep client.AuditReport
	require.NoError(t, json.Unmarshal([]byte(js), &rep), "%s", out)
	assert.False(t, rep.OK)
	assert.Equal(t, seq, rep.FirstBad, "the report names the edited record: %+v", rep)
}

// grantsAcrossNodes: a grant made on one node is usable at once, with its
// token, by its grantee on another node, within its constraints; a revoked
// grant's token stops working on a third. `hsm kms explain` tells the same
// story for the grantee. The grantee is a principal with no identity
// policy, so only the grant can let it in.
func grantsAcrossNodes(t *testing.T, c *testcluster.Cluster) {
	ctx := context.Background()
	officer := []string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}
	out, err := c.HSM(officer, "--json", "kms", "principal", "create", "grantee")
	require.NoError(t, err, "%s", out)
	var cred struct{ Arn, AccessKeyId, SecretAccessKey string }
	require.NoError(t, json.Unmarshal(out, &cred))
	node := func(k int, akid, secret string) *awskms.Client {
		addr, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.kms.addr", k)))
		require.NoError(t, err)
		env := maps.Clone(c.Env)
		if akid != "" {
			env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = akid, secret
		}
		return sdkClient(t, env, "https://"+strings.TrimSpace(string(addr)))
	}
	owner := node(1, "", "")
	grantee2, grantee3 := node(2, cred.AccessKeyId, cred.SecretAccessKey), node(3, cred.AccessKeyId, cred.SecretAccessKey)

	key, err := owner.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("granted")})
	require.NoError(t, err)
	id := key.KeyMetadata.KeyId
	in := func(ec map[string]string, tokens ...string) *awskms.EncryptInput {
		return &awskms.EncryptInput{KeyId: id, Plaintext: []byte("granted"), EncryptionContext: ec, GrantTokens: tokens}
	}
	_, err = grantee2.Encrypt(ctx, in(map[string]string{"app": "billing"}))
	require.Equal(t, "AccessDeniedException", apiCode(err), "no policy lets the grantee in yet")
	assert.Contains(t, err.Error(), cred.Arn)
	assert.Contains(t, err.Error(), "kms:Encrypt")

	g, err := owner.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(cred.Arn),
		Operations:  []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "billing"}}})
	require.NoError(t, err)
	token := aws.ToString(g.GrantToken)
	require.NotEmpty(t, token)

	enc, err := grantee2.Encrypt(ctx, in(map[string]string{"app": "billing", "run": "7"}, token))
	require.NoError(t, err, "the grant, by its token, works at once on another node")
	_, err = grantee3.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
		EncryptionContext: map[string]string{"app": "billing", "run": "7"}, GrantTokens: []string{token}})
	require.NoError(t, err, "and on the third")
	_, err = grantee2.Encrypt(ctx, in(map[string]string{"app": "audit"}, token))
	require.Equal(t, "AccessDeniedException", apiCode(err), "a context outside the constraint")
	_, err = grantee2.Encrypt(ctx, in(map[string]string{"app": "billing"}, "not-a-grant-token"))
	var badToken *types.InvalidGrantTokenException
	require.ErrorAs(t, err, &badToken)

	explain := func(ec string) string {
		out, err := c.HSM(officer, "kms", "explain", "--principal", "grantee", "--key", aws.ToString(id), "--action", "kms:Encrypt", "--context", ec)
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	assert.Regexp(t, `^allowed\n.*grant`, explain("app=billing"))
	assert.Regexp(t, `^denied\n`, explain("app=audit"))

	_, err = owner.RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: id, GrantId: g.GrantId})
	require.NoError(t, err)
	_, err = grantee3.Encrypt(ctx, in(map[string]string{"app": "billing"}, token))
	require.Equal(t, "AccessDeniedException", apiCode(err), "a revoked grant's token is refused at once on another node")
	assert.Regexp(t, `^denied\n`, explain("app=billing"))
}
