package sigv4

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCacheBounded: the signing key cache never holds more than CacheSize
// keys, and a key that fell out is derived again.
func TestCacheBounded(t *testing.T) {
	keys := keyring{}
	for i := range 10 {
		keys[fmt.Sprintf("AKID%02d", i)] = [2]string{fmt.Sprintf("secret-%d", i), fmt.Sprintf("p%d", i)}
	}
	v := testVerifier(signTime)
	v.CacheSize = 3
	for round := range 2 {
		for i := range 10 {
			akid := fmt.Sprintf("AKID%02d", i)
			r := kmsRequest()
			sdkSign(t, r, refusalBody, akid, keys[akid][0], "", "kms", "us-east-1", signTime)
			id, err := v.Verify(r, refusalBody, keys)
			require.NoError(t, err, "round %d key %s", round, akid)
			assert.Equal(t, fmt.Sprintf("p%d", i), id.Principal)
			assert.LessOrEqual(t, len(v.keys), 3)
		}
	}

	// A negative size caches nothing.
	v = testVerifier(signTime)
	v.CacheSize = -1
	r := kmsRequest()
	sdkSign(t, r, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	_, err := v.Verify(r, refusalBody, testKeys())
	require.NoError(t, err)
	assert.Empty(t, v.keys)
}

// TestCacheRotatedSecret: after a key's secret changes, the old secret's
// cached signing key is never used: the new secret verifies and the old
// one is refused at once.
func TestCacheRotatedSecret(t *testing.T) {
	keys := keyring{testAKID: {"first-secret", testPrincipal}}
	v := testVerifier(signTime)
	sign := func(secret string) error {
		r := kmsRequest()
		sdkSign(t, r, refusalBody, testAKID, secret, "", "kms", "us-east-1", signTime)
		_, err := v.Verify(r, refusalBody, keys)
		return err
	}
	require.NoError(t, sign("first-secret"))
	require.NoError(t, sign("first-secret")) // from the cache
	keys[testAKID] = [2]string{"second-secret", testPrincipal}
	require.NoError(t, sign("second-secret"))
	require.ErrorContains(t, sign("first-secret"), msgMismatch)
}

// TestConcurrentVerify: one Verifier, many goroutines, a cache smaller
// than the key set (run with -race).
func TestConcurrentVerify(t *testing.T) {
	keys := keyring{}
	for i := range 8 {
		keys[fmt.Sprintf("AKID%d", i)] = [2]string{fmt.Sprintf("secret-%d", i), fmt.Sprintf("p%d", i)}
	}
	v := testVerifier(signTime)
	v.CacheSize = 2
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for i := range 8 {
		akid := fmt.Sprintf("AKID%d", i)
		wg.Go(func() {
			for range 20 {
				r := kmsRequest()
				sdkSign(t, r, refusalBody, akid, keys[akid][0], "", "kms", "eu-west-1", signTime)
				id, err := v.Verify(r, refusalBody, keys)
				if err == nil && id.AccessKeyID != akid {
					err = fmt.Errorf("verified %s as %s", akid, id.AccessKeyID)
				}
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
