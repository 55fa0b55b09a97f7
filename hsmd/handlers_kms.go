package hsmd

import (
	"context"
	"errors"
	"strings"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/object"
)

// The crypto officer's management of KMS principals (docs/kms.md,
// "Authentication"): thin handlers over kms.Service. Each checks the
// caller's role and the name first, so a crypto user is refused alike
// whether or not this node serves KMS; the service checks both again. A
// secret access key is only ever in the answer of create and rotate: it
// is never logged here (the log lines name the principal and the access
// key ID).

// errNoKMS answers every principal call on a node whose config has no
// [kms] section.
var errNoKMS = hsmerr.Errorf(ck.CKR_FUNCTION_NOT_SUPPORTED,
	"the KMS service is not enabled on this node: set [kms] in the node config")

// kmsOfficer returns the node's KMS service for a crypto officer's call.
func (s *Server) kmsOfficer(ctx context.Context, what string) (*kms.Service, error) {
	if callerFrom(ctx).Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may %s KMS principals", what)
	}
	if s.KMS == nil {
		return nil, errNoKMS
	}
	return s.KMS, nil
}

// principalName checks a request's principal name (api.CheckPrincipalName,
// IAM's rule for user names).
func principalName(name string) error { return api.CheckPrincipalName("name", name) }

// kmsRefusal turns a KMS API error (*kmserr.Error) that the service may
// answer with into the engine error of its row in the error table (the
// row whose "kms-" reason carries that exception), so it reaches the
// client with its CKR and message. Engine errors, and exceptions without
// such a row, pass as they are (the latter then answer as internal
// errors, logged by toStatus).
func kmsRefusal(err error) error {
	var ke *kmserr.Error
	if err == nil || isEngineError(err) || !errors.As(err, &ke) {
		return err
	}
	for _, r := range hsmerr.Rows() {
		if r.KMS == ke.Type && strings.HasPrefix(string(r.Reason), "kms-") {
			return hsmerr.KMSf(ke.Type, "%s", ke.Message)
		}
	}
	return err
}

func principalToPB(p *kms.PrincipalInfo) *hsmpb.KMSPrincipal {
	out := &hsmpb.KMSPrincipal{Name: p.Name, Arn: p.ARN, AccessKeyId: p.AccessKeyID}
	if !p.Created.IsZero() {
		out.CreatedUnix = p.Created.Unix()
	}
	return out
}

func credentialsToPB(c *kms.Credentials) (*hsmpb.KMSCredentials, error) {
	if c == nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		// The service must give a key when it says it made one.
		return nil, errors.New("kms: the service answered without an access key")
	}
	return &hsmpb.KMSCredentials{Principal: principalToPB(&c.PrincipalInfo), SecretAccessKey: c.SecretAccessKey}, nil
}

func (s *Server) KMSCreatePrincipal(ctx context.Context, r *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSCredentials, error) {
	svc, err := s.kmsOfficer(ctx, "create")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetName()); err != nil {
		return nil, err
	}
	c, err := svc.CreatePrincipalWithPolicy(ctx, callerFrom(ctx), r.GetName(), r.GetPolicy())
	if err != nil {
		return nil, kmsRefusal(err)
	}
	out, err := credentialsToPB(c)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "created KMS principal", "target", r.GetName(), "access_key_id", c.AccessKeyID)
	return out, nil
}

func (s *Server) KMSListPrincipals(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.KMSListPrincipalsResponse, error) {
	svc, err := s.kmsOfficer(ctx, "list")
	if err != nil {
		return nil, err
	}
	list, err := svc.ListPrincipals(callerFrom(ctx))
	if err != nil {
		return nil, kmsRefusal(err)
	}
	out := &hsmpb.KMSListPrincipalsResponse{Principals: make([]*hsmpb.KMSPrincipal, 0, len(list))}
	for i := range list {
		out.Principals = append(out.Principals, principalToPB(&list[i]))
	}
	return out, nil
}

func (s *Server) KMSDeletePrincipal(ctx context.Context, r *hsmpb.KMSPrincipalRequest) (*hsmpb.Empty, error) {
	svc, err := s.kmsOfficer(ctx, "delete")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetName()); err != nil {
		return nil, err
	}
	if err := svc.DeletePrincipal(ctx, callerFrom(ctx), r.GetName()); err != nil {
		return nil, kmsRefusal(err)
	}
	s.audit(ctx, "deleted KMS principal", "target", r.GetName())
	return empty, nil
}

func (s *Server) KMSRotatePrincipalKey(ctx context.Context, r *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSCredentials, error) {
	svc, err := s.kmsOfficer(ctx, "rotate the keys of")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetName()); err != nil {
		return nil, err
	}
	c, err := svc.RotatePrincipalKey(ctx, callerFrom(ctx), r.GetName())
	if err != nil {
		return nil, kmsRefusal(err)
	}
	out, err := credentialsToPB(c)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "rotated KMS principal key", "target", r.GetName(), "access_key_id", c.AccessKeyID)
	return out, nil
}
