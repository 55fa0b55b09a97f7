package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/pki"
)

func (c *cli) clusterStatusCommand() *cobra.Command {
	cmd := leaf("status", "Show the members, the leader, and each member's health", nil,
		func(cmd *cobra.Command, _ []string) error { return c.clusterStatus(cmd.Context()) })
	cmd.Long = `Show the cluster's members, its leader, and each member's health and applied
index. Needs no login.`
	return cmd
}

// clusterStatus prints the membership and each member's health.
func (c *cli) clusterStatus(ctx context.Context) error {
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

func (c *cli) clusterAddNodeCommand() *cobra.Command {
	cmd := leaf("add-node NAME ADDR", "Add a running node made with 'hsmd init -join' (crypto officer)", []string{"NAME", "ADDR"},
		func(cmd *cobra.Command, pos []string) error { return c.clusterAddNode(cmd.Context(), pos) })
	cmd.Long = `Add a running node, made with 'hsmd init -join', as a member: NAME is the name
in its certificate, ADDR its host:port. It catches up from the others.
A crypto officer's command; --quorum-token when cluster-membership needs a
quorum (docs/quorum.md).`
	cmd.Example = `  hsm cluster add-node node4 10.0.0.9:4001`
	setRole(cmd, roleOfficer)
	return cmd
}

// clusterAddNode adds a running node prepared with 'hsmd init -join'.
func (c *cli) clusterAddNode(ctx context.Context, pos []string) error {
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

func (c *cli) clusterRemoveNodeCommand() *cobra.Command {
	cmd := leaf("remove-node NAME", "Remove a member (crypto officer)", []string{"NAME"},
		func(cmd *cobra.Command, pos []string) error { return c.clusterRemoveNode(cmd.Context(), pos) })
	cmd.Long = `Remove a member of the cluster (not the last one). A crypto officer's
command; --quorum-token when cluster-membership needs a quorum.`
	setRole(cmd, roleOfficer)
	return cmd
}

// clusterRemoveNode removes a member.
func (c *cli) clusterRemoveNode(ctx context.Context, pos []string) error {
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

func (c *cli) clusterIssueNodeCommand() *cobra.Command {
	var dir, hosts string
	cmd := leaf("issue-node --dir DIR NAME", "Issue one more node certificate with the CA in DIR", []string{"NAME"},
		func(cmd *cobra.Command, pos []string) error { return c.clusterIssueNode(dir, hosts, pos) })
	cmd.Long = `Issue a certificate and key for one more node, NAME, with the cluster CA that
'hsm cluster init' left in DIR. Existing files are never overwritten.
Needs no running cluster and no login.`
	cmd.Example = `  hsm cluster issue-node --dir pki --hosts hsm4.example.com node4`
	cmd.Flags().StringVar(&dir, "dir", "", "`directory` holding the cluster CA (from cluster init; required)")
	cmd.Flags().StringVar(&hosts, "hosts", "", "comma-separated host names and IP addresses of the node")
	cmd.MarkFlagDirname("dir")
	return cmd
}

// caToIssue is the CA in dir for the command cmd to issue name's
// certificate with: it checks --dir and NAME and refuses to overwrite
// name's files.
func caToIssue(cmd, dir, name string) (*pki.CA, error) {
	if dir == "" {
		return nil, usagef("%s: --dir is required", cmd)
	}
	if err := pki.ValidateName(name); err != nil {
		return nil, usagef("%s: NAME: %v", cmd, err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	for _, p := range []string{pki.CertPath(dir, name), pki.KeyPath(dir, name)} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s: refusing to overwrite existing file %q", cmd, p)
		}
	}
	return ca, nil
}

// clusterIssueNode issues one more node certificate with the CA in dir.
func (c *cli) clusterIssueNode(dir, hosts string, pos []string) error {
	ca, err := caToIssue("cluster issue-node", dir, pos[0])
	if err != nil {
		return err
	}
	if err := ca.IssueNode(dir, pos[0], splitList(hosts)); err != nil {
		return fmt.Errorf("cluster issue-node: %w", err)
	}
	abs, _ := filepath.Abs(dir)
	return c.say(map[string]any{"name": pos[0], "cert": pki.CertPath(abs, pos[0]), "key": pki.KeyPath(abs, pos[0])},
		"issued %s: %s, %s", pos[0], pki.CertPath(abs, pos[0]), pki.KeyPath(abs, pos[0]))
}

func (c *cli) clusterIssueClientCommand() *cobra.Command {
	var dir string
	cmd := leaf("issue-client --dir DIR NAME", "Issue a client certificate with the CA in DIR (say, for another cluster's KMS)", []string{"NAME"},
		func(cmd *cobra.Command, pos []string) error { return c.clusterIssueClient(dir, pos) })
	cmd.Long = `Issue a client certificate and key, NAME.pem and NAME-key.pem, with the
cluster CA that 'hsm cluster init' left in DIR: OU "client", for client
authentication only, bound to the CA's cluster ID like every certificate of
the cluster, valid for 90 days. Give it to whoever must reach this
cluster's nodes: say, the KMS of another cluster that keeps a custom key
store here ('hsm kms cluster add' there). Existing files are never
overwritten. Needs no running cluster and no login.`
	cmd.Example = `  hsm cluster issue-client --dir pki kms-a`
	cmd.Flags().StringVar(&dir, "dir", "", "`directory` holding the cluster CA (from cluster init; required)")
	cmd.MarkFlagDirname("dir")
	return cmd
}

// clusterIssueClient issues one more client certificate with the CA in dir.
func (c *cli) clusterIssueClient(dir string, pos []string) error {
	ca, err := caToIssue("cluster issue-client", dir, pos[0])
	if err != nil {
		return err
	}
	if err := ca.IssueClient(dir, pos[0]); err != nil {
		return fmt.Errorf("cluster issue-client: %w", err)
	}
	abs, _ := filepath.Abs(dir)
	return c.say(map[string]any{"name": pos[0], "cluster_id": ca.ClusterID(), "cert": pki.CertPath(abs, pos[0]), "key": pki.KeyPath(abs, pos[0])},
		"issued client certificate %s for cluster %s: %s, %s", pos[0], ca.ClusterID(), pki.CertPath(abs, pos[0]), pki.KeyPath(abs, pos[0]))
}
