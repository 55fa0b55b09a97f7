package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/openhsm/openhsm/pki"
)

// clusterStatus prints the membership and each member's health.
func (c *cli) clusterStatus(ctx context.Context, args []string) error {
	fs := c.newFlags("cluster status")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	hc, done, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, err := hc.ClusterStatus(ctx)
	if err != nil {
		return err
	}
	if c.g.json {
		return c.printJSON(st)
	}
	out := c.io.out
	fmt.Fprintf(out, "cluster  %s\nleader   %s\ncommit   %d\n", clean(st.ClusterID), clean(st.Leader), st.CommitIndex)
	fmt.Fprintf(out, "%-12s %-24s %-10s %-10s %s\n", "NODE", "ADDRESS", "STATE", "APPLIED", "HEALTH")
	for _, n := range st.Nodes {
		health := "ok"
		if !n.Reachable {
			health = "unreachable"
		}
		state := n.State
		if state == "" {
			state = "-"
		}
		fmt.Fprintf(out, "%-12s %-24s %-10s %-10d %s\n", clean(n.Name), clean(n.Addr), clean(state), n.AppliedIndex, health)
	}
	return nil
}

// clusterAddNode adds a running node prepared with 'hsmd init -join'.
func (c *cli) clusterAddNode(ctx context.Context, args []string) error {
	fs := c.newFlags("cluster add-node")
	pos, err := c.parse(fs, args, "NAME", "ADDR")
	if err != nil {
		return err
	}
	if err := pki.ValidateName(pos[0]); err != nil {
		return usagef("cluster add-node: NAME: %v", err)
	}
	if _, _, err := net.SplitHostPort(pos[1]); err != nil {
		return usagef("cluster add-node: ADDR %q is not host:port", pos[1])
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.AddNode(ctx, pos[0], pos[1]); err != nil {
		return fmt.Errorf("add-node: %w", err)
	}
	return c.say(map[string]any{"added": pos[0], "addr": pos[1]}, "node %s (%s) added; it catches up from the others", pos[0], pos[1])
}

// clusterRemoveNode removes a member.
func (c *cli) clusterRemoveNode(ctx context.Context, args []string) error {
	fs := c.newFlags("cluster remove-node")
	pos, err := c.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if err := pki.ValidateName(pos[0]); err != nil {
		return usagef("cluster remove-node: NAME: %v", err)
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.RemoveNode(ctx, pos[0]); err != nil {
		return fmt.Errorf("remove-node: %w", err)
	}
	return c.say(map[string]any{"removed": pos[0]}, "node %s removed", pos[0])
}

// clusterIssueNode issues one more node certificate with the CA in --dir.
func (c *cli) clusterIssueNode(args []string) error {
	fs := c.newFlags("cluster issue-node")
	dir := fs.String("dir", "", "directory holding the cluster CA (from cluster init)")
	hosts := fs.String("hosts", "", "comma-separated host names and IP addresses of the node")
	pos, err := c.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if *dir == "" {
		return usagef("cluster issue-node: --dir is required")
	}
	if err := pki.ValidateName(pos[0]); err != nil {
		return usagef("cluster issue-node: NAME: %v", err)
	}
	ca, err := pki.LoadCA(*dir)
	if err != nil {
		return fmt.Errorf("cluster issue-node: %w", err)
	}
	for _, p := range []string{pki.CertPath(*dir, pos[0]), pki.KeyPath(*dir, pos[0])} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("cluster issue-node: refusing to overwrite existing file %q", p)
		}
	}
	if err := ca.IssueNode(*dir, pos[0], splitList(*hosts)); err != nil {
		return fmt.Errorf("cluster issue-node: %w", err)
	}
	abs, _ := filepath.Abs(*dir)
	return c.say(map[string]any{"name": pos[0], "cert": pki.CertPath(abs, pos[0]), "key": pki.KeyPath(abs, pos[0])},
		"issued %s: %s, %s", pos[0], pki.CertPath(abs, pos[0]), pki.KeyPath(abs, pos[0]))
}
