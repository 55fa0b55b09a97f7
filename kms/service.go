// Package kms is the KMS service's operations: AWS KMS's key model (keys,
// versions, aliases, tags, key states, deletion windows, rotation, imported
// material) over the cluster's replicated state, with key material that is
// HSM material of the crypto user kmsuser. The HTTP handler
// (kms/httpapi) calls it through kms/call's contract; docs/kms.md is the
// design.
package kms

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/model"
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
}

// Service runs KMS operations. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New makes the service.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil {
		return nil, errors.New("kms: no engine")
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg}, nil
}

var errNotBuilt = errors.New("kms: not built yet")

// Call implements call.Service.
func (s *Service) Call(ctx context.Context, r *call.Request) (model.Object, error) {
	return nil, errNotBuilt
}

// Secret implements sigv4.Secrets: the secret of an access key and the
// name of the principal it belongs to.
func (s *Service) Secret(accessKeyID string) ([]byte, string, error) {
	return nil, "", errNotBuilt
}

// Upkeep does what the clock decides: it destroys keys whose deletion
// window ended, rotates keys whose rotation is due and expires imported
// material. A node's leader calls it now and then; it is safe anywhere,
// since apply decides again from the command's time.
func (s *Service) Upkeep(ctx context.Context) error { return errNotBuilt }

// PrincipalInfo is a principal as a crypto officer sees it: never its
// secret.
type PrincipalInfo struct {
	Name        string
	ARN         string
	AccessKeyID string
	Created     time.Time
}

// Credentials are a new access key: the secret is shown once.
type Credentials struct {
	PrincipalInfo
	SecretAccessKey string
}

// CreatePrincipal makes a principal with a new access key; the caller must
// be a crypto officer. The first principal also makes kmsuser.
func (s *Service) CreatePrincipal(ctx context.Context, c engine.Caller, name string) (*Credentials, error) {
	return nil, errNotBuilt
}

// ListPrincipals lists the principals; the caller must be a crypto officer.
func (s *Service) ListPrincipals(c engine.Caller) ([]PrincipalInfo, error) { return nil, errNotBuilt }

// DeletePrincipal removes a principal; its access key stops working on
// every node. The caller must be a crypto officer.
func (s *Service) DeletePrincipal(ctx context.Context, c engine.Caller, name string) error {
	return errNotBuilt
}

// RotatePrincipalKey gives a principal a new access key and ends the old
// one. The caller must be a crypto officer.
func (s *Service) RotatePrincipalKey(ctx context.Context, c engine.Caller, name string) (*Credentials, error) {
	return nil, errNotBuilt
}

var _ call.Service = (*Service)(nil)
