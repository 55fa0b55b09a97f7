package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/sigv4"
)

const testKeyARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// sdkFixture is the handler behind a TLS server on 127.0.0.1 and the
// unchanged aws-sdk-go-v2 KMS client pointed at it. The client's only
// settings are its endpoint, region, credentials, the server's TLS
// client, and a retryer that does not sleep between attempts.
type sdkFixture struct {
	*fixture
	srv    *httptest.Server
	client *kms.Client
}

func newSDKFixture(t *testing.T, ops map[string]func(*call.Request) (model.Object, error)) *sdkFixture {
	t.Helper()
	f := newFixture(t, Config{
		Verifier: &sigv4.Verifier{Regions: sigv4.RegionSet(testRegion)}, // the real clock
		Now:      time.Now,
	})
	f.svc.ops = ops
	srv := httptest.NewTLSServer(f.h)
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}, nil
		}),
		HTTPClient: srv.Client(),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
	return &sdkFixture{fixture: f, srv: srv, client: client}
}

// TestSDKOutput: the SDK decodes an operation's output, and the
// x-amzn-RequestId reaches its response metadata.
func TestSDKOutput(t *testing.T) {
	random := []byte{0, 1, 2, 0xfe, 0xff, 0x80, 7, 8}
	f := newSDKFixture(t, map[string]func(*call.Request) (model.Object, error){
		"GenerateRandom": func(r *call.Request) (model.Object, error) {
			n, _ := r.Input.Int("NumberOfBytes")
			if n != int64(len(random)) {
				return nil, fmt.Errorf("asked for %d bytes", n)
			}
			return model.Object{"Plaintext": random}, nil
		},
	})
	out, err := f.client.GenerateRandom(context.Background(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(int32(len(random)))})
	require.NoError(t, err)
	assert.Equal(t, random, out.Plaintext)

	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	require.True(t, ok, "the SDK found x-amzn-RequestId")
	assert.Regexp(t, uuidV4, id)

	events := f.trail.all()
	require.Len(t, events, 1)
	assert.Equal(t, id, events[0].RequestID)
	assert.Equal(t, "GenerateRandom", events[0].Op)
	assert.Equal(t, testPrincipal, events[0].Principal)
	assert.Equal(t, "127.0.0.1", events[0].Source)
	assert.Empty(t, events[0].Error)
	assert.InDelta(t, time.Now().Unix(), events[0].Time, 5)

	req := f.svc.lastRequest()
	assert.Equal(t, testAKID, req.AccessKeyID)
	assert.Equal(t, testRegion, req.Region)
	assert.Equal(t, "127.0.0.1", req.Source)
	assert.Equal(t, id, req.RequestID)
}

// TestSDKTypedError: a kmserr answer reaches the SDK as its typed
// exception with its message, its request ID and HTTP 400, and is not
// retried.
func TestSDKTypedError(t *testing.T) {
	const msg = "Key '" + testKeyARN + "' does not exist"
	f := newSDKFixture(t, map[string]func(*call.Request) (model.Object, error){
		"DescribeKey": func(r *call.Request) (model.Object, error) {
			r.KeyARN = testKeyARN
			return nil, kmserr.New(kmserr.NotFound, "Key '%s' does not exist", testKeyARN)
		},
	})
	_, err := f.client.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(testKeyARN)})
	require.Error(t, err)
	var nf *types.NotFoundException
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, msg, nf.ErrorMessage())
	assert.Equal(t, "NotFoundException", nf.ErrorCode())

	var re *awshttp.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusBadRequest, re.HTTPStatusCode())
	assert.EqualValues(t, 1, f.svc.calls.Load(), "a 400 is not retried")

	events := f.trail.all()
	require.Len(t, events, 1)
	assert.Equal(t, re.ServiceRequestID(), events[0].RequestID)
	assert.Equal(t, "NotFoundException", events[0].Error)
	assert.Equal(t, testKeyARN, events[0].Key)
}

// TestSDKRetriesInternalErrors: a 5xx answer (KMSInternalException,
// DependencyTimeoutException) makes the SDK try again; it gives up after
// its default three attempts, with the typed exception and the message
// that hides the cause.
func TestSDKRetriesInternalErrors(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		var n atomic.Int64
		f := newSDKFixture(t, map[string]func(*call.Request) (model.Object, error){
			"GenerateRandom": func(r *call.Request) (model.Object, error) {
				if n.Add(1) < 3 {
					return nil, errors.New("store: disk on fire")
				}
				return model.Object{"Plaintext": []byte{42}}, nil
			},
		})
		out, err := f.client.GenerateRandom(context.Background(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1)})
		require.NoError(t, err)
		assert.Equal(t, []byte{42}, out.Plaintext)
		assert.EqualValues(t, 3, f.svc.calls.Load())
		events := f.trail.all()
		require.Len(t, events, 3, "every attempt is a request of the trail")
		assert.Equal(t, "KMSInternalException", events[0].Error)
		assert.Equal(t, "KMSInternalException", events[1].Error)
		assert.Empty(t, events[2].Error)
		assert.Contains(t, f.log.String(), "store: disk on fire", "the cause is logged")
		assert.Contains(t, f.log.String(), "request_id="+events[0].RequestID)
	})
	for _, c := range []struct {
		name   string
		err    error
		status int
		check  func(t *testing.T, err error)
	}{
		{"KMSInternalException", errors.New("store: disk on fire"), 500, func(t *testing.T, err error) {
			var ie *types.KMSInternalException
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, kmserr.InternalMessage, ie.ErrorMessage())
			assert.NotContains(t, err.Error(), "disk on fire")
		}},
		{"DependencyTimeoutException", kmserr.New(kmserr.DependencyTimeout, "The HSM cluster did not answer in time."), 503,
			func(t *testing.T, err error) {
				var de *types.DependencyTimeoutException
				require.ErrorAs(t, err, &de)
				assert.Equal(t, "The HSM cluster did not answer in time.", de.ErrorMessage())
			}},
	} {
		t.Run("gives up on "+c.name, func(t *testing.T) {
			f := newSDKFixture(t, map[string]func(*call.Request) (model.Object, error){
				"GenerateRandom": func(*call.Request) (model.Object, error) { return nil, c.err },
			})
			_, err := f.client.GenerateRandom(context.Background(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1)})
			require.Error(t, err)
			c.check(t, err)
			var re *awshttp.ResponseError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, c.status, re.HTTPStatusCode())
			assert.EqualValues(t, retry.DefaultMaxAttempts, f.svc.calls.Load())
		})
	}
}

// TestSDKEncryptTrail: through the SDK, the trail of an Encrypt holds
// the context's keys (never its values or the plaintext) and the key ARN
// the operation resolved.
func TestSDKEncryptTrail(t *testing.T) {
	plaintext := []byte("attack at dawn, quietly")
	f := newSDKFixture(t, map[string]func(*call.Request) (model.Object, error){
		"Encrypt": func(r *call.Request) (model.Object, error) {
			p, _ := r.Input.Bytes("Plaintext")
			if string(p) != string(plaintext) {
				return nil, errors.New("plaintext garbled")
			}
			r.KeyARN = testKeyARN
			return model.Object{"KeyId": testKeyARN, "CiphertextBlob": []byte("opaque"),
				"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
		},
	})
	out, err := f.client.Encrypt(context.Background(), &kms.EncryptInput{
		KeyId:             aws.String("alias/test"),
		Plaintext:         plaintext,
		EncryptionContext: map[string]string{"tenant": "value-one", "purpose": "value-two"},
	})
	require.NoError(t, err)
	assert.Equal(t, testKeyARN, aws.ToString(out.KeyId))
	assert.Equal(t, []byte("opaque"), out.CiphertextBlob)
	assert.Equal(t, types.EncryptionAlgorithmSpecSymmetricDefault, out.EncryptionAlgorithm)

	events := f.trail.all()
	require.Len(t, events, 1)
	assert.Equal(t, []string{"purpose", "tenant"}, events[0].ContextKeys)
	assert.Equal(t, testKeyARN, events[0].Key)
	trail := fmt.Sprintf("%+v", events[0])
	assert.NotContains(t, trail, "value-one")
	assert.NotContains(t, trail, "attack")
}
