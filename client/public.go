package client

import (
	"context"
	"sort"

	"github.com/openhsm/openhsm/api/hsmpb"
)

// OpenPublic opens a public session on a crypto user's token with the
// client certificate alone (PKCS#11's session before C_Login): the calls
// that follow read the token's public objects and make public session
// objects (CKA_TOKEN and CKA_PRIVATE false), nothing else. Logout ends it.
// When its token expires the client opens another (its session objects
// are then gone, as after a login's expiry).
func (c *Client) OpenPublic(ctx context.Context, token string) error {
	s, err := c.startSession(ctx, &savedCreds{user: token, public: true}, func(ctx context.Context) (*session, error) {
		return c.publicRPC(ctx, token)
	})
	if err != nil {
		return err
	}
	c.log.Debug("hsm client: public session", "session", s.id)
	return nil
}

func (c *Client) publicRPC(ctx context.Context, token string) (*session, error) {
	return c.sessionRPC(ctx, token, func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.LoginResponse, error) {
		return hc.OpenPublicSession(ctx, &hsmpb.PublicSessionRequest{Token: token})
	})
}

// SetClusterSetting changes a cluster setting (a crypto officer's call);
// ClusterSettings lists them. See docs/cli/hsm.md, "cluster setting".
func (c *Client) SetClusterSetting(ctx context.Context, name, value string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.SetClusterSetting(ctx, &hsmpb.ClusterSetting{Name: name, Value: value})
		return err
	})
}

// ClusterSettings returns every cluster setting's value, by name.
func (c *Client) ClusterSettings(ctx context.Context) (map[string]string, error) {
	var r *hsmpb.ClusterSettingsResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListClusterSettings(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range r.GetSettings() {
		out[s.GetName()] = s.GetValue()
	}
	return out, nil
}

// SettingNames sorts a settings map's names.
func SettingNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
