package hsmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"google.golang.org/grpc/status"
)

// Break-glass unlock: when every officer is locked out, whoever holds the
// cluster passphrase (or key file) and a node's host unlocks one user with
// `hsmd unlock-user -config FILE NAME`. The command reads the node's
// configuration, fetches the sealed domain key from the running node
// (over mutual TLS with the node's own certificate), unseals it with the
// passphrase, and sends a MAC under a key derived from the domain key over
// (name, time, nonce). The node checks it and submits unlock_user with
// actor state.BreakGlassActor through the log; apply checks the MAC
// again, so every node applies the unlock, and a node certificate alone
// cannot forge one.

// UnlockUser is `hsmd unlock-user`: it unlocks name through the running
// node cfg describes.
func UnlockUser(cfg *Config, name string) error {
	if err := state.ValidUserName(name); err != nil {
		return fmt.Errorf("unlock-user: %s", errMsg(err))
	}
	src, err := cfg.KEKSource()
	if err != nil {
		return err
	}
	addr, err := cfg.localAddr()
	if err != nil {
		return err
	}
	peer, closePeer, err := dialPeer(cfg, addr)
	if err != nil {
		return fmt.Errorf("unlock-user: %v", err)
	}
	defer closePeer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := peer.DomainKey(ctx, &hsmpb.Empty{})
	if err != nil {
		return fmt.Errorf("unlock-user: cannot reach the node at %s: %s", addr, status.Convert(err).Message())
	}
	rec, err := seal.UnmarshalSealedDomainKey(resp.Sealed)
	if err != nil {
		return fmt.Errorf("unlock-user: %v", err)
	}
	sealer, err := rec.Unseal(src)
	if err != nil {
		return fmt.Errorf("unlock-user: %w (it needs the cluster's passphrase or key file)", err)
	}
	p, err := sealer.NewBreakGlass(name, time.Now().Unix())
	if err != nil {
		return err
	}
	_, err = peer.BreakGlassUnlock(ctx, &peerpb.BreakGlassRequest{User: name, TimeUnix: p.Time, Nonce: p.Nonce, Mac: p.MAC})
	if err != nil {
		return fmt.Errorf("unlock-user: %s", status.Convert(err).Message())
	}
	return nil
}

// errMsg is an engine error's message without its CKR name.
func errMsg(err error) string {
	var te *hsmerr.Error
	if errors.As(err, &te) {
		return te.Msg
	}
	return err.Error()
}

// localAddr is where this node's own daemon listens.
func (c *Config) localAddr() (string, error) {
	addr := c.Listen
	if c.AddrFile != "" {
		if b, err := os.ReadFile(c.AddrFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			addr = strings.TrimSpace(string(b))
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return "", fmt.Errorf("unlock-user: cannot tell where the node listens (listen %q): is it running?", c.Listen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func (p *peerServer) BreakGlassUnlock(ctx context.Context, r *peerpb.BreakGlassRequest) (*hsmpb.Empty, error) {
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if len(r.Nonce) != seal.BreakGlassNonceLen {
		return nil, bad("nonce", "must be %d bytes", seal.BreakGlassNonceLen)
	}
	s := p.s
	now := s.now().Unix()
	s.mu.Lock()
	for n, exp := range s.bgNonces {
		if exp < now {
			delete(s.bgNonces, n)
		}
	}
	_, seen := s.bgNonces[string(r.Nonce)]
	s.mu.Unlock()
	if seen {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "this break-glass request was already used")
	}
	err := s.engine.BreakGlassUnlock(ctx, r.User, &seal.BreakGlass{Time: r.TimeUnix, Nonce: r.Nonce, MAC: r.Mac})
	if err != nil {
		s.log.WarnContext(ctx, "break-glass unlock refused", "user", r.User, "peer", identityFrom(ctx).CommonName, "ckr", ck.RVName(hsmerr.RV(err)))
		return nil, err
	}
	// Only a request whose proof checked out is remembered, so forged
	// ones cannot fill the table. (Two copies at once would both unlock
	// the same user: no more than one does.)
	s.mu.Lock()
	s.bgNonces[string(r.Nonce)] = now + 2*seal.BreakGlassWindow
	s.mu.Unlock()
	s.log.WarnContext(ctx, "break-glass unlock: user unlocked with the cluster passphrase", "user", r.User, "peer", identityFrom(ctx).CommonName)
	return empty, nil
}
