package hsmd

import (
	"context"
	"sort"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/object"
)

// OpenPublicSession opens a public session on a crypto user's token: the
// client certificate alone, no password (PKCS#11's session before
// C_Login). Its token is bound to the certificate like a login's, carries
// object.RolePublic whatever the user's role, may call only the methods
// api.Methods marks Public, and counts in the session quota against the
// certificate, not the user. It writes nothing to the log.
func (s *Server) OpenPublicSession(ctx context.Context, r *hsmpb.PublicSessionRequest) (*hsmpb.LoginResponse, error) {
	if err := userName("token", r.Token); err != nil {
		return nil, err
	}
	u, err := s.engine.TokenUser(r.Token)
	if err != nil {
		return nil, err
	}
	id := identityFrom(ctx)
	session := newSessionID()
	cl := &claims{Role: object.RolePublic, Cert: id.Fingerprint}
	if err := s.sessions.admit(session, quotaKey(cl)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.lastSeen[session] = s.now() // swept, and uncounted, when idle
	s.mu.Unlock()
	s.log.DebugContext(ctx, "public session", "token", u.Name, "peer", id.CommonName)
	return s.issue(ctx, u, object.RolePublic, session, s.now().Add(s.maxLife).Unix())
}

// SetClusterSetting changes a cluster setting through the log; a crypto
// officer's call.
func (s *Server) SetClusterSetting(ctx context.Context, r *hsmpb.ClusterSetting) (*hsmpb.Empty, error) {
	if len(r.Name) > 64 || len(r.Value) > 64 {
		return nil, bad("setting", "name and value are at most 64 bytes")
	}
	if err := s.engine.SetSetting(ctx, callerFrom(ctx), r.Name, r.Value); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "cluster setting changed", "setting", r.Name, "value", r.Value, "by", callerFrom(ctx).User)
	return empty, nil
}

// ListClusterSettings lists every cluster setting with its value.
func (s *Server) ListClusterSettings(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ClusterSettingsResponse, error) {
	m, err := s.engine.Settings(callerFrom(ctx))
	if err != nil {
		return nil, err
	}
	out := &hsmpb.ClusterSettingsResponse{}
	for n, v := range m {
		out.Settings = append(out.Settings, &hsmpb.ClusterSetting{Name: n, Value: v})
	}
	sort.Slice(out.Settings, func(i, j int) bool { return out.Settings[i].Name < out.Settings[j].Name })
	return out, nil
}
