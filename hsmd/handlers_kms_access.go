package hsmd

import (
	"context"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/kms"
)

// KMS access control for crypto officers (docs/kms-access.md): a
// principal's identity policy, and explain. Thin handlers over
// kms.Service, which checks the role and the inputs again; a policy
// document is never logged (the log lines name the principal).

func (s *Server) KMSPutPrincipalPolicy(ctx context.Context, r *hsmpb.KMSPrincipalPolicy) (*hsmpb.Empty, error) {
	svc, err := s.kmsOfficer(ctx, "set the policies of")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetName()); err != nil {
		return nil, err
	}
	if err := svc.SetPrincipalPolicy(ctx, callerFrom(ctx), r.GetName(), r.GetPolicy()); err != nil {
		return nil, kmsRefusal(err)
	}
	s.audit(ctx, "set KMS principal policy", "target", r.GetName())
	return empty, nil
}

func (s *Server) KMSGetPrincipalPolicy(ctx context.Context, r *hsmpb.KMSPrincipalRequest) (*hsmpb.KMSPrincipalPolicy, error) {
	svc, err := s.kmsOfficer(ctx, "read the policies of")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetName()); err != nil {
		return nil, err
	}
	doc, err := svc.PrincipalPolicy(callerFrom(ctx), r.GetName())
	if err != nil {
		return nil, kmsRefusal(err)
	}
	return &hsmpb.KMSPrincipalPolicy{Name: r.GetName(), Policy: doc}, nil
}

func (s *Server) KMSDeletePrincipalPolicy(ctx context.Context, r *hsmpb.KMSPrincipalRequest) (*hsmpb.Empty, error) {
	svc, err := s.kmsOfficer(ctx, "remove the policies of")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetName()); err != nil {
		return nil, err
	}
	if err := svc.SetPrincipalPolicy(ctx, callerFrom(ctx), r.GetName(), ""); err != nil {
		return nil, kmsRefusal(err)
	}
	s.audit(ctx, "removed KMS principal policy", "target", r.GetName())
	return empty, nil
}

func (s *Server) KMSExplain(ctx context.Context, r *hsmpb.KMSExplainRequest) (*hsmpb.KMSExplainResponse, error) {
	svc, err := s.kmsOfficer(ctx, "explain the access of")
	if err != nil {
		return nil, err
	}
	if err := principalName(r.GetPrincipal()); err != nil {
		return nil, err
	}
	d, err := svc.Explain(callerFrom(ctx), kms.ExplainRequest{Principal: r.GetPrincipal(), Key: r.GetKey(), Region: r.GetRegion(),
		Action: r.GetAction(), Context: r.GetContext(), SourceIP: r.GetSourceIp()})
	if err != nil {
		return nil, kmsRefusal(err)
	}
	return &hsmpb.KMSExplainResponse{Allowed: d.Allowed, Reason: d.Reason}, nil
}
