// Package xks is the HSM side of an AWS KMS external key store: an
// http.Handler serving the External Key Store (XKS) Proxy API v1 in front
// of a Backend (the HSM cluster: HSMBackend, over the engine; hsmd serves
// it with an [xks] section, hsmd/xks.go). docs/xks.md describes the API as served,
// for operators.
//
// The facts below are from AWS's "External Key Store Proxy API
// Specification" v1 [S] (github.com/aws/aws-kms-xksproxy-api-spec,
// xks_proxy_api_spec.md; the section named is given in brackets). AWS's
// reference proxy [R] (github.com/aws-samples/aws-kms-xks-proxy) was read
// for how the spec is met in practice; nothing was copied from it.
//
// # Contract
//
// New(Config) checks the configuration and answers a *Handler. It serves:
//
//   - POST <prefix>/kms/xks/v1/health: GetHealthStatus.
//   - POST <prefix>/kms/xks/v1/keys/<externalKeyId>/metadata: GetKeyMetadata.
//   - POST <prefix>/kms/xks/v1/keys/<externalKeyId>/encrypt: Encrypt.
//   - POST <prefix>/kms/xks/v1/keys/<externalKeyId>/decrypt: Decrypt.
//   - GET or HEAD Config.PingPath ("/ping"): the load balancers' check
//     ([S] "Load balancer health checks" asks for one): 200 "OK" while at
//     least one HSM node is ACTIVE or DEGRADED, else 503; no signature.
//
// <prefix> is "" or a path of XksProxyUriPath's characters; the prefix
// ends at the first "/kms/xks/v1/" of the path. A prefix is served while
// Credentials holds a credential for it. An API request goes through these
// steps in order; the first that refuses answers:
//
//  1. The path: not one of the four forms is InvalidUriPathException (404).
//  2. The method: anything but POST on an API path is 405 Method Not
//     Allowed, with Allow: POST ([S] "API operations": MUST).
//  3. The prefix is served, and the externalKeyId has the spec's form
//     (1-128 of A-Z a-z 0-9 - _ .): else InvalidUriPathException.
//  4. The body, at most a bound derived from Limits (about 80 KiB by
//     default): a larger one is UnsupportedOperationException (501).
//  5. SigV4 (kms/sigv4's Verifier, service "kms-xks-proxy", any region,
//     5 minutes of clock skew) against the prefix's credentials
//     ([S] "Authentication", Appendix A): any refusal is
//     AuthenticationFailedException (401), its message sigv4's.
//  6. The JSON body, and the requestMetadata fields the spec makes
//     REQUIRED for the operation (kmsRequestId and kmsOperation always;
//     awsPrincipalArn except for health; kmsKeyArn for encrypt and
//     decrypt): ValidationException (400). Values are not judged: the spec
//     says kmsOperation and kmsRequestId MUST NOT be, and unknown fields
//     are ignored (KMS may add some, [S] Appendix B).
//  7. Secondary authorization (Authorizer; never for health, [S]
//     "GetHealthStatus": MUST be excluded): AccessDeniedException (403).
//  8. The operation's fields (below), then the Backend, whose errors map
//     as ErrKeyNotFound and the others say; any other error is
//     InternalException (500) with a fixed message.
//
// Errors are {"errorName": ..., "errorMessage": ...} with the HTTP status
// of [S] "Error codes" (errorStatus is that table); errorMessage is
// printable ASCII under 512 characters, as [S] requires, and never holds
// plaintext, key material or a secret. ThrottlingException is in the
// table but not sent yet.
//
// Encrypt: encryptionAlgorithm must be AES_GCM, ciphertextDataIntegrity-
// ValueAlgorithm absent or SHA_256 (ValidationException). Plaintext up to
// Limits.Plaintext (4300 bytes, [S] "Encrypt": MUST support 4300) and AAD
// up to Limits.AAD (8192, MUST support 8192); more is
// UnsupportedOperationException ([S] error table: "exceeded the maximum
// size ... currently supported"). The IV is 12 random bytes made here:
// [S] has the external key manager generate it, and this proxy with its
// HSM cluster is that key manager. The Backend gets the AAD framed as [S]
// asks: 2-byte big-endian AAD length || AAD || 1-byte metadata length ||
// metadata, with no metadata in it (length 0; see below). The answer
// carries ciphertextMetadata (20 bytes, [S]'s maximum) and, when asked,
// the CDIV of [S] Appendix C, computed before a check decryption of
// exactly the bytes returned, as Appendix C recommends.
//
// Decrypt: the IV must be 12 or 16 bytes and the tag 16 ([S] "Decrypt");
// else InvalidCiphertextException, and so is a missing, changed or moved
// ciphertextMetadata, or a tag that does not verify. ciphertextMetadata
// over 20 bytes is ValidationException.
//
// ciphertextMetadata is format (1) || key version (4, big-endian) || the
// first 15 bytes of an HMAC-SHA256 under Config.MetadataKey over the key
// ID, the key version, the IV and the tag. [S] "Encrypt" asks for the
// metadata to be inside the GCM AAD; it cannot be here, because the key
// version is chosen by the HSM during the encryption (Backend.Encrypt
// returns it). The MAC gives the guarantee [S] asks for ("MUST detect
// when the ciphertextMetadata passed to decrypt has been modified"), and
// a changed key version would also fail the tag under another key.
//
// Credentials holds any number of credentials per prefix, all valid at
// once, changed at run time ([S] "SigV4 credentials rotation": SHOULD
// support two at once and changes without a restart). Event and
// CallerFrom report each request's requestMetadata and kmsRequestId
// without plaintext ([S] "Logging").
//
// [S]: https://github.com/aws/aws-kms-xksproxy-api-spec/blob/main/xks_proxy_api_spec.md
// [R]: https://github.com/aws-samples/aws-kms-xks-proxy
package xks
