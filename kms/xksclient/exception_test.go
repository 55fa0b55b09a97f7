package xksclient

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/xks"
)

// The mapping as a table: each failure for each kind of operation.
func TestException(t *testing.T) {
	tr := func(e error) error { return &TransportError{Op: "health", Err: fmt.Errorf("%w: detail", e)} }
	xe := func(n string) error { return &xks.Error{Name: n, Message: "proxy's own words"} }
	cases := []struct {
		err                      error
		store, createKey, crypto string
		code, msg                string
	}{
		{xe(xks.ValidationException), "XksProxyInvalidResponseException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgCannotInterpret},
		{xe(xks.InvalidStateException), "XksProxyInvalidConfigurationException", "XksKeyInvalidConfigurationException", "KMSInvalidStateException", "XKS_PROXY_INVALID_CONFIGURATION", msgKeyNotEnabled},
		{xe(xks.InvalidCiphertextException), "XksProxyInvalidResponseException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgInvalidCiphertext},
		{xe(xks.InvalidKeyUsageException), "XksProxyInvalidResponseException", "XksKeyInvalidConfigurationException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgKeyUsage},
		{xe(xks.AuthenticationFailedException), "XksProxyIncorrectAuthenticationCredentialException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "INVALID_CREDENTIALS", msgAuthFailed},
		{xe(xks.AccessDeniedException), "XksProxyInvalidConfigurationException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_ACCESS_DENIED", msgAccessDenied},
		{xe(xks.KeyNotFoundException), "XksProxyInvalidResponseException", "XksKeyNotFoundException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgKeyNotFound},
		{xe(xks.InvalidURIPathException), "XksProxyInvalidConfigurationException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_CONFIGURATION", msgInvalidURIPath},
		{xe(xks.UnsupportedOperationException), "XksProxyInvalidResponseException", "XksKeyInvalidConfigurationException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgUnsupported},
		{xe(xks.DependencyTimeoutException), "XksProxyUriUnreachableException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_TIMED_OUT", msgDependencyTimeout},
		{xe(xks.ThrottlingException), "XksProxyUriUnreachableException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_TIMED_OUT", msgThrottling},
		{xe(xks.InternalException), "XksProxyInvalidResponseException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgInternal},
		{xe("SomethingNewException"), "XksProxyInvalidResponseException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgCannotInterpret},
		{fmt.Errorf("wrapped: %w", xe(xks.KeyNotFoundException)), "XksProxyInvalidResponseException", "XksKeyNotFoundException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgKeyNotFound},
		{tr(ErrUnreachable), "XksProxyUriUnreachableException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_NOT_REACHABLE", msgNoTCP},
		{tr(ErrTLS), "XksProxyUriUnreachableException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_TLS_CONFIGURATION", msgNoTLS},
		{tr(ErrTimeout), "XksProxyUriUnreachableException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_TIMED_OUT", msgTimeout},
		{tr(ErrInvalidResponse), "XksProxyInvalidResponseException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgCannotInterpret},
		{ErrKeyManagerUnavailable, "XksProxyUriUnreachableException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_NOT_REACHABLE", msgUnavailable},
		{fmt.Errorf("x: %w", ErrKeyInvalidConfiguration), "XksProxyInvalidResponseException", "XksKeyInvalidConfigurationException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgKeyConfig},
		{fmt.Errorf("x: %w", ErrKeyNotEnabled), "XksProxyInvalidConfigurationException", "XksKeyInvalidConfigurationException", "KMSInvalidStateException", "XKS_PROXY_INVALID_CONFIGURATION", msgKeyNotEnabled},
		{ErrProxyPlaintextInvalid, "XksProxyInvalidResponseException", "CustomKeyStoreInvalidStateException", "KMSInvalidStateException", "XKS_PROXY_INVALID_RESPONSE", msgProxyCiphertext},
		{errors.New("not ours"), "KMSInternalException", "KMSInternalException", "KMSInternalException", "INTERNAL_ERROR", msgInternalError},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			for _, op := range []string{"CreateCustomKeyStore", "UpdateCustomKeyStore", "ConnectCustomKeyStore"} {
				typ, msg := Exception(tc.err, op)
				assert.Equal(t, tc.store, typ, op)
				assert.Equal(t, tc.msg, msg, op)
			}
			typ, msg := Exception(tc.err, "CreateKey")
			assert.Equal(t, tc.createKey, typ)
			assert.Equal(t, tc.msg, msg)
			for _, op := range []string{"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "SomeFutureOperation"} {
				typ, msg := Exception(tc.err, op)
				assert.Equal(t, tc.crypto, typ, op)
				assert.Equal(t, tc.msg, msg, op)
			}
			assert.Equal(t, tc.code, ConnectionErrorCode(tc.err))
			assert.NotContains(t, tc.msg, "proxy's own words")
		})
	}
}

// Every exception of Mapping is in the error list the KMS API model gives
// the operation ([K]), every connection error code is one of the model's,
// every errorName of the spec has a row, and messages are the printable
// one-line sentences AWS shows.
func TestMappingAgreesWithTheModel(t *testing.T) {
	errorsOf := func(op string) map[string]bool {
		o, ok := model.LookupOperation(op)
		require.True(t, ok, op)
		m := map[string]bool{}
		for _, e := range o.Errors {
			m[e] = true
		}
		return m
	}
	codes, ok := model.LookupShape("ConnectionErrorCodeType")
	require.True(t, ok)
	seen := map[string]bool{}
	for _, r := range Mapping {
		require.False(t, seen[r.Failure], "two rows for %s", r.Failure)
		seen[r.Failure] = true
		for _, op := range []string{"CreateCustomKeyStore", "UpdateCustomKeyStore"} {
			assert.True(t, errorsOf(op)[r.Store], "%s: %s not in %s's errors", r.Failure, r.Store, op)
		}
		assert.True(t, errorsOf("CreateKey")[r.CreateKey], "%s: %s not in CreateKey's errors", r.Failure, r.CreateKey)
		for _, op := range []string{"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"} {
			assert.True(t, errorsOf(op)[r.Crypto], "%s: %s not in %s's errors", r.Failure, r.Crypto, op)
		}
		assert.Contains(t, codes.Enum, r.ConnectionErrorCode, r.Failure)
		assert.Regexp(t, `^[ -~]+\.$`, r.Message)
		assert.NotContains(t, r.Message, "  ")
	}
	for _, n := range []string{xks.ValidationException, xks.InvalidStateException, xks.InvalidCiphertextException,
		xks.InvalidKeyUsageException, xks.AuthenticationFailedException, xks.AccessDeniedException, xks.KeyNotFoundException,
		xks.InvalidURIPathException, xks.ThrottlingException, xks.UnsupportedOperationException,
		xks.DependencyTimeoutException, xks.InternalException} {
		assert.True(t, seen[n], n)
	}
}

// docs/xks.md's client section lists every row of Mapping as it is.
func TestDocsListTheMapping(t *testing.T) {
	b, err := os.ReadFile("../../docs/xks.md")
	require.NoError(t, err)
	const head = "## The KMS's client side (kms/xksclient)"
	i := strings.Index(string(b), head)
	require.GreaterOrEqual(t, i, 0, "docs/xks.md has no %q", head)
	doc := string(b[i:])
	if j := strings.Index(doc[len(head):], "\n## "); j >= 0 {
		doc = doc[:len(head)+j]
	}
	cell := regexp.QuoteMeta
	for _, r := range Mapping {
		line := `\| ` + cell(r.Failure) + `\*? \| ` + cell(r.Store) + `\*? \| ` + cell(r.CreateKey) + `\*? \| ` + cell(r.Crypto) + ` \| ` + cell(r.ConnectionErrorCode) + `\*? \|`
		assert.Regexp(t, line, doc, r.Failure)
	}
}
