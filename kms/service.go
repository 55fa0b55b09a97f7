// Package kms is the KMS service's operations: AWS KMS's key model (keys,
// versions, aliases, tags, key states, deletion windows, rotation, imported
// material) over the cluster's replicated state, with key material that is
// HSM material of the crypto user kmsuser. The HTTP handler
// (kms/httpapi) calls it through kms/call's contract; docs/kms.md is the
// design.
//
// The contract: Call runs one validated request (kms/model has checked
// every constraint of the AWS model) and answers with AWS's output members,
// or a *kmserr.Error with AWS's exception and message, or an *hsmerr.Error
// whose table row names the exception. Reads are served from this node's
// replica; every change is one command through the engine's applier and
// the state machine's one apply function, which checks the key's state
// again at its log index, so two nodes racing decide alike. A refused
// request changes nothing.
package kms

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// DefaultAccount is the account of a cluster whose config names none: the
// account of AWS's documentation examples.
const DefaultAccount = "123456789012"

// Config is what a node gives the service.
type Config struct {
	Engine  *engine.Engine
	Account string // the 12-digit account ID of the ARNs ("": DefaultAccount)
	// Clock is the service's time for key life cycles (deletion windows,
	// rotation, import expiry); tests move it forward. nil is time.Now.
	Clock func() time.Time
	Log   *slog.Logger
	// XKSRootCAs verify the TLS certificates of external key stores'
	// proxies; nil is the system's roots.
	XKSRootCAs *x509.CertPool
}

// Service runs KMS operations. It is safe for concurrent use.
type Service struct {
	e       *engine.Engine
	keys    KeyStore // the default store: this cluster's HSM
	store   state.Store
	cache   *rowCache
	account string
	clock   func() time.Time
	log     *slog.Logger
	cks     storeClients // clients of connected custom key stores (keystore_cloudhsm.go)
	xks     xksClients   // clients of external key stores' proxies (keystore_xks.go)
	// xksRoots verify XKS proxies' TLS certificates (nil: the system's).
	xksRoots *x509.CertPool
}

// New makes the service.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil {
		return nil, errors.New("kms: no engine")
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if !validAccount(cfg.Account) {
		return nil, errors.New("kms: the account must be 12 digits")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{e: cfg.Engine, keys: hsmStore{cfg.Engine}, cache: newRowCache(), store: cfg.Engine.Store(), account: cfg.Account, clock: cfg.Clock, log: cfg.Log, xksRoots: cfg.XKSRootCAs}, nil
}

func validAccount(a string) bool {
	if len(a) != 12 {
		return false
	}
	for _, c := range a {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Account is the account of the service's ARNs.
func (s *Service) Account() string { return s.account }

// opFunc runs one operation.
type opFunc func(s *Service, ctx context.Context, r *call.Request) (model.Object, error)

// operations is every operation the service answers; the others of the
// model (multi-Region keys, DeriveSharedSecret, ...: docs/kms.md) are
// UnsupportedOperationException.
var operations map[string]opFunc

func init() {
	operations = map[string]opFunc{
		"CreateKey":            (*Service).createKey,
		"DescribeKey":          (*Service).describeKey,
		"ListKeys":             (*Service).listKeys,
		"EnableKey":            (*Service).enableKey,
		"DisableKey":           (*Service).disableKey,
		"UpdateKeyDescription": (*Service).updateKeyDescription,
		"ScheduleKeyDeletion":  (*Service).scheduleKeyDeletion,
		"CancelKeyDeletion":    (*Service).cancelKeyDeletion,
		"EnableKeyRotation":    (*Service).enableKeyRotation,
		"DisableKeyRotation":   (*Service).disableKeyRotation,
		"GetKeyRotationStatus": (*Service).getKeyRotationStatus,
		"RotateKeyOnDemand":    (*Service).rotateKeyOnDemand,
		"ListKeyRotations":     (*Service).listKeyRotations,
		"GetKeyPolicy":         (*Service).getKeyPolicy,
		"PutKeyPolicy":         (*Service).putKeyPolicy,
		"ListKeyPolicies":      (*Service).listKeyPolicies,
		"TagResource":          (*Service).tagResource,
		"UntagResource":        (*Service).untagResource,
		"ListResourceTags":     (*Service).listResourceTags,

		"CreateAlias": (*Service).createAlias,
		"UpdateAlias": (*Service).updateAlias,
		"DeleteAlias": (*Service).deleteAlias,
		"ListAliases": (*Service).listAliases,

		"Encrypt":                             (*Service).encrypt,
		"Decrypt":                             (*Service).decrypt,
		"ReEncrypt":                           (*Service).reEncrypt,
		"GenerateDataKey":                     (*Service).generateDataKey,
		"GenerateDataKeyWithoutPlaintext":     (*Service).generateDataKeyWithoutPlaintext,
		"GenerateDataKeyPair":                 (*Service).generateDataKeyPair,
		"GenerateDataKeyPairWithoutPlaintext": (*Service).generateDataKeyPairWithoutPlaintext,
		"GenerateRandom":                      (*Service).generateRandom,
		"Sign":                                (*Service).sign,
		"Verify":                              (*Service).verify,
		"GetPublicKey":                        (*Service).getPublicKey,
		"GenerateMac":                         (*Service).generateMac,
		"VerifyMac":                           (*Service).verifyMac,

		"GetParametersForImport":    (*Service).getParametersForImport,
		"ImportKeyMaterial":         (*Service).importKeyMaterial,
		"DeleteImportedKeyMaterial": (*Service).deleteImportedKeyMaterial,

		"CreateCustomKeyStore":     (*Service).createCustomKeyStore,
		"DescribeCustomKeyStores":  (*Service).describeCustomKeyStores,
		"UpdateCustomKeyStore":     (*Service).updateCustomKeyStore,
		"ConnectCustomKeyStore":    (*Service).connectCustomKeyStore,
		"DisconnectCustomKeyStore": (*Service).disconnectCustomKeyStore,
		"DeleteCustomKeyStore":     (*Service).deleteCustomKeyStore,
		"CreateGrant":              (*Service).createGrant, // grants.go
		"ListGrants":               (*Service).listGrants,
		"ListRetirableGrants":      (*Service).listRetirableGrants,
		"RetireGrant":              (*Service).retireGrant,
		"RevokeGrant":              (*Service).revokeGrant,
	}
}

// Operations lists the operations the service implements.
func Operations() []string {
	out := make([]string, 0, len(operations))
	for op := range operations {
		out = append(out, op)
	}
	return out
}

// Call implements call.Service.
func (s *Service) Call(ctx context.Context, r *call.Request) (model.Object, error) {
	// The handler names the principal by the ARN Secret gave; commands
	// name it by its name.
	r.Principal = strings.TrimPrefix(r.Principal, s.PrincipalArn(""))
	fn := operations[r.Op]
	if fn == nil {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s is not supported by this service", r.Op)
	}
	// Access control (access.go): the request's access state, and the
	// decision of an operation no key policy governs, come first; the
	// operation decides its keys as it resolves them.
	ctx, a, err := s.begin(ctx, r)
	if err != nil {
		return nil, kmsError(err)
	}
	if a.rule.kind == iamOnly {
		if err := s.authorizeIAM(r, a, a.rule.action, "*"); err != nil {
			return nil, err
		}
	}
	if dry, _ := r.Input.Bool("DryRun"); dry {
		return nil, kmsError(s.dryRun(r, a))
	}
	out, err := fn(s, ctx, r)
	return out, kmsError(err)
}

// kmsError turns a refusal of the engine or of apply whose row names a KMS
// exception into that exception, with its message; anything else stays as
// it is, for the handler to log and answer as an internal error.
func kmsError(err error) error {
	var he *hsmerr.Error
	if err == nil || !errors.As(err, &he) {
		return err
	}
	if typ := hsmerr.KMSException(err); typ != "" {
		return &kmserr.Error{Type: typ, Message: he.Msg}
	}
	return err
}

// dryRun answers DryRun: once the request's keys resolve (a missing key
// is NotFoundException) and the caller may do what it asks on them
// (AccessDeniedException), DryRunOperationException.
func (s *Service) dryRun(r *call.Request, a *access) error {
	if r.Op == "RetireGrant" {
		if _, _, err := s.retireTarget(r); err != nil {
			return err
		}
	}
	members := make([]string, 0, len(a.rule.members))
	for m := range a.rule.members {
		members = append(members, m)
	}
	slices.Sort(members)
	for _, m := range members {
		if r.Op == "RetireGrant" || m == aliasMember {
			continue
		}
		if _, ok := r.Input.String(m); ok {
			if _, err := s.key(r, m, true); err != nil {
				return err
			}
		} else if ct, ok := r.Input.Bytes("CiphertextBlob"); ok && (m == "KeyId" || m == "SourceKeyId") {
			if _, err := s.ciphertextKey(r, m, ct); err != nil {
				return err
			}
		}
	}
	return kmserr.New(kmserr.DryRun, "The request would have succeeded, but the DryRun option is set.")
}

var _ call.Service = (*Service)(nil)

func (s *Service) sealer() (*seal.Sealer, error) {
	sl, err := s.e.Sealer()
	if err != nil {
		return nil, kmserr.New(kmserr.KeyUnavailable, "The node cannot reach its key material now.")
	}
	return sl, nil
}

// now is the service clock in Unix seconds.
func (s *Service) now() int64 { return s.clock().Unix() }

// submit applies a KMS command, stamped with the service clock.
func (s *Service) submit(ctx context.Context, c *state.Command) error {
	c.Time = s.now()
	if c.KMS != nil && c.KMS.Account == "" {
		c.KMS.Account = s.account
	}
	if c.KMS != nil && c.KMS.Principal != "" {
		c.KMS.Access = accessEntries(ctx)
	}
	return s.e.SubmitKMS(ctx, c)
}
