package kms_test

import (
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

// TestFailover: through the printed endpoint, 16 clients keep encrypting,
// decrypting and making data keys while a random node is killed (SIGKILL)
// and started again, twice. No request fails after the SDK's own retries
// (its defaults), and every ciphertext made decrypts afterwards.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := testcluster.Start(t, 3)
	ctx := context.Background()
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
			failures = append(failures, fmt.Sprintf("%s: %v", op, err))
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
		k := 1 + rand.IntN(3)
		t.Logf("round %d: killing node%d after %d calls", round, k, calls.Load())
		c.Stop(k, true)
		time.Sleep(3 * time.Second)
		out, err := c.StartNode(k)
		require.NoError(t, err, "%s", out)
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
