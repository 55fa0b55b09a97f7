package hsmd

import (
	"context"
	"encoding/hex"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
)

// RevokeCert puts a certificate on the cluster's deny-list. A crypto
// officer may not revoke the certificate its own call came over: that
// would cut the officer off mid-operation, and with one client certificate
// shared by the officers (as cluster.sh makes it) lock every officer out.
// Renew first, then revoke the old certificate over the new one.
func (s *Server) RevokeCert(ctx context.Context, r *hsmpb.RevokeCertRequest) (*hsmpb.Empty, error) {
	fp, err := pki.ParseFingerprint(r.GetFingerprint())
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
	}
	// A crypto user is refused for its role first (by the engine), not
	// for this.
	if fp == identityFrom(ctx).Fingerprint && callerFrom(ctx).Role == object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED,
			"refusing to revoke the certificate this call came over: renew it, connect with the new one, then revoke the old")
	}
	if err := s.engine.RevokeCert(ctx, callerFrom(ctx), hex.EncodeToString(fp[:]), r.GetName()); err != nil {
		return nil, err
	}
	return &hsmpb.Empty{}, nil
}

// ListRevokedCerts lists the deny-list.
func (s *Server) ListRevokedCerts(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ListRevokedCertsResponse, error) {
	list, err := s.engine.ListRevokedCerts(callerFrom(ctx))
	if err != nil {
		return nil, err
	}
	out := &hsmpb.ListRevokedCertsResponse{}
	for _, r := range list {
		out.Certs = append(out.Certs, &hsmpb.RevokedCert{Fingerprint: r.Fingerprint, Name: r.Name, By: r.By, Time: r.Time})
	}
	return out, nil
}
