package client

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
)

// The health checker: one goroutine per node asks it for Info every
// HealthInterval and marks it healthy or unhealthy. Dial starts the
// goroutines and waits for the first node to answer; Close stops them and
// waits for them to end.

// Bounds of a health check's wait for Info.
const (
	minHealthTimeout = time.Second
	maxHealthTimeout = 5 * time.Second
)

// healthTimeout is how long a check waits for Info: the interval, at least
// 1s and at most 5s, and never more than the call timeout.
func (c *Client) healthTimeout() time.Duration {
	d := min(max(c.cfg.HealthInterval, minHealthTimeout), maxHealthTimeout)
	return min(d, c.cfg.Timeout)
}

// probeResult is a node's first check, which Dial waits for.
type probeResult struct {
	n   *node
	err error
}

// healthLoop checks n until the client closes. The first check may take
// as long as a call (Dial waits for it, as it always has); it is reported
// to first.
func (c *Client) healthLoop(n *node, first chan<- probeResult) {
	defer c.wg.Done()
	timeout := c.cfg.Timeout
	t := time.NewTimer(c.cfg.HealthInterval)
	t.Stop()
	for {
		err := c.check(n, timeout)
		if c.life.Err() != nil {
			return
		}
		up := !nodeDown(err)
		if up {
			c.setHealthy(n)
		} else {
			c.setUnhealthy(n, "health check", err)
		}
		if first != nil {
			first <- probeResult{n: n, err: err}
			first = nil
		}
		timeout = c.healthTimeout()
		t.Reset(c.cfg.HealthInterval)
		select {
		case <-c.life.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// check asks n for Info. Any answer, even an error from the daemon, shows
// that the node is up; nodeDown tells the errors that do not.
// The first answer tells the cluster id, to share the index (joinIndex).
func (c *Client) check(n *node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(c.life, timeout)
	defer cancel()
	var hdr metadata.MD
	r, err := n.api.Info(ctx, &hsmpb.Empty{}, grpc.Header(&hdr))
	if err == nil {
		c.joinIndex(r.GetClusterId())
		// What the node has applied, so calls that need an index go to a
		// node that has it.
		raiseTo(&n.applied, r.GetAppliedIndex())
		n.leader.Store(r.GetState() == api.StateLeader)
		if idx, ok := indexFrom(hdr); ok {
			raiseTo(&n.applied, idx)
		}
	}
	return err
}

// setHealthy marks n healthy (after a good check or a call it answered).
func (c *Client) setHealthy(n *node) {
	switch n.state.Swap(stateHealthy) {
	case stateUnknown:
		c.log.Debug("hsm client: node is up", "node", n.addr)
	case stateUnhealthy:
		c.log.Info("hsm client: node is up again", "node", n.addr)
	}
}

// setUnhealthy marks n unhealthy, so that calls avoid it while another node
// is healthy. If another node is healthy, the idempotent calls in flight on
// n are ended (a dead connection may otherwise hold them until their
// deadline) and go there instead. why says who found it ("health check"
// or a method name); err is its error.
func (c *Client) setUnhealthy(n *node, why string, err error) {
	msg := status.Convert(err).Message()
	n.mu.Lock()
	n.lastErr = msg
	n.mu.Unlock()
	if n.state.Swap(stateUnhealthy) != stateUnhealthy {
		c.log.Warn("hsm client: node is down", "node", n.addr, "found_by", why, "error", msg)
	}
	if !c.healthyBesides(n) {
		return
	}
	n.mu.Lock()
	var cut []*attempt
	for a := range n.attempts {
		if a.cuttable() {
			cut = append(cut, a)
		}
	}
	n.mu.Unlock()
	for _, a := range cut {
		a.cancel(errNodeDown)
	}
	if len(cut) > 0 {
		c.log.Warn("hsm client: moving calls off a dead node", "node", n.addr, "calls", len(cut))
	}
}

// healthyBesides reports whether a node other than n is healthy.
func (c *Client) healthyBesides(n *node) bool {
	for _, o := range c.nodes {
		if o != n && o.state.Load() == stateHealthy {
			return true
		}
	}
	return false
}
