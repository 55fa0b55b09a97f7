package client

import (
	"context"

	"github.com/openhsm/openhsm/api/hsmpb"
)

// ClusterNode is one member of the cluster as the asked node sees it.
type ClusterNode struct {
	Name         string `json:"name"`
	Addr         string `json:"addr"`
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
	Reachable    bool   `json:"reachable"`
	State        string `json:"state"`
	AppliedIndex uint64 `json:"applied_index"`
	Error        string `json:"error,omitempty"`
}

// ClusterStatus is the cluster's membership and each member's health.
type ClusterStatus struct {
	ClusterID   string        `json:"cluster_id"`
	Leader      string        `json:"leader"`
	CommitIndex uint64        `json:"commit_index"`
	Nodes       []ClusterNode `json:"nodes"`
}

// ClusterStatus asks a node for the membership and the health of every
// member. It needs no login.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var r *hsmpb.ClusterStatusResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ClusterStatus(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &ClusterStatus{ClusterID: r.ClusterId, Leader: r.Leader, CommitIndex: r.CommitIndex}
	for _, n := range r.Nodes {
		out.Nodes = append(out.Nodes, ClusterNode{Name: n.Name, Addr: n.Addr, Voter: n.Voter, Leader: n.Leader,
			Reachable: n.Reachable, State: n.State, AppliedIndex: n.AppliedIndex, Error: n.Error})
	}
	return out, nil
}

// AddNode adds a running node that was prepared with 'hsmd init -join' to
// the cluster (crypto officer). It catches up from the others.
func (c *Client) AddNode(ctx context.Context, name, addr string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.AddNode(ctx, &hsmpb.AddNodeRequest{Name: name, Addr: addr, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// RemoveNode removes a node from the cluster (crypto officer).
func (c *Client) RemoveNode(ctx context.Context, name string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.RemoveNode(ctx, &hsmpb.RemoveNodeRequest{Name: name, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// Index is the highest log index the client has seen a node apply: the
// point its reads must see. Another client can be given it with
// AdvanceIndex, to read what this one wrote.
func (c *Client) Index() uint64 { return c.index.load() }

// AdvanceIndex raises the client's index to idx if it is higher.
func (c *Client) AdvanceIndex(idx uint64) { c.index.observe(idx) }

// RotatePassphrase re-seals the cluster's domain key under a new passphrase
// (or key file): oldSecret and newSecret are the two files' contents. It
// needs a crypto officer's session.
func (c *Client) RotatePassphrase(ctx context.Context, oldSecret, newSecret []byte) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.RotatePassphrase(ctx, &hsmpb.RotatePassphraseRequest{OldSecret: oldSecret, NewSecret: newSecret})
		return err
	})
}
