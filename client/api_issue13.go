package client

import (
	"context"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/mech"
)

// WipeToken destroys every object a crypto user owns, keeping the user
// and their password (C_InitToken on the user's token slot). Crypto
// officers only.
func (c *Client) WipeToken(ctx context.Context, name string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.WipeToken(ctx, &hsmpb.UserRequest{User: name, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// DigestStep is one step of a digest that runs in the HSM because it has
// taken a key's value (C_DigestKey): from State (the hash's marshaled
// state, for the step that feeds the first key) or Sealed (the previous
// step's answer), it feeds Key's value (0: none), then Data.
type DigestStep struct {
	Mech   mech.Mech
	State  []byte
	Sealed []byte
	Key    uint64
	Data   []byte
	Final  bool
}

// DigestKey runs one step: it answers the new sealed state, or with Final
// the digest.
func (c *Client) DigestKey(ctx context.Context, st DigestStep) ([]byte, error) {
	pm, err := api.MechToPB("mechanism", st.Mech)
	if err != nil {
		return nil, err
	}
	var r *hsmpb.DigestKeyResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.DigestKey(ctx, &hsmpb.DigestKeyRequest{Mechanism: pm, State: st.State, SealedState: st.Sealed,
			Key: st.Key, Data: st.Data, Final: st.Final})
		return err
	})
	if err != nil {
		return nil, err
	}
	if st.Final {
		return r.GetDigest(), nil
	}
	return r.GetSealedState(), nil
}
