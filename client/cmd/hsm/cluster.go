package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/pki"
)

// ConfigFile is the client configuration cluster init writes.
const configFile = "client.toml"

// caName is the common name of the CA cluster init makes.
const caName = "openhsm cluster CA"

// basePort numbers the default node addresses 127.0.0.1:4001, 4002, ...
const basePort = 4001

// maxNodes bounds --nodes.
const maxNodes = 64

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type initFile struct {
	Name string `json:"name,omitempty"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

type initResult struct {
	Dir    string     `json:"dir"`
	CA     initFile   `json:"ca"`
	Nodes  []initFile `json:"nodes"`
	Client initFile   `json:"client"`
	Config string     `json:"config"`
	Addrs  []string   `json:"node_addrs"`
	// ClusterID is the cluster every certificate is bound to.
	ClusterID string `json:"cluster_id"`
}

func (c *cli) clusterCommand() *cobra.Command {
	return group("cluster", "Create, activate and change the cluster",
		`The cluster commands make the cluster's certificates, create its first crypto
officer, show and change its membership, and re-seal its domain key.
docs/cluster.md and docs/certificates.md describe them.`,
		c.clusterInitCommand(),
		c.clusterActivateCommand(),
		c.clusterStatusCommand(),
		c.clusterAddNodeCommand(),
		c.clusterRemoveNodeCommand(),
		c.clusterIssueNodeCommand(),
		c.clusterIssueClientCommand(),
		c.clusterRotatePassphraseCommand(),
		c.clusterSettingCommand(),
	)
}

// clusterInitOpts are the flags of cluster init.
type clusterInitOpts struct {
	dir, hosts, clientName, addrs, clusterID, fromBackup string
	nodes                                                int
}

func (c *cli) clusterInitCommand() *cobra.Command {
	var o clusterInitOpts
	cmd := leaf("init --dir DIR", "Make the cluster CA, node and client certificates and client.toml", nil,
		func(cmd *cobra.Command, _ []string) error { return c.clusterInit(o) })
	cmd.Long = `Make, in DIR, the cluster CA, node certificates node1..nodeN, a client
certificate and DIR/client.toml, all bound to the cluster ID (the one given,
the backup's, or a new random one). Nothing is overwritten: if any of the
files exists, nothing is made. Needs no running cluster and no login.`
	cmd.Example = `  hsm cluster init --dir pki --nodes 3 --hosts hsm1.example.com,10.0.0.7
  hsm cluster init --dir pki --backup old.hsmbak   # to restore that backup`
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "`directory` to create the files in (required)")
	f.IntVar(&o.nodes, "nodes", 3, "number of node certificates")
	f.StringVar(&o.hosts, "hosts", "", "comma-separated host names and IP addresses of the nodes")
	f.StringVar(&o.clientName, "client", "client", "`name` of the client certificate")
	f.StringVar(&o.addrs, "node-addrs", "", "comma-separated node addresses (host:port) for client.toml (default 127.0.0.1:4001, 4002, ...)")
	f.StringVar(&o.clusterID, "cluster-id", "", "cluster `ID` the certificates are bound to (default: a new random one)")
	f.StringVar(&o.fromBackup, "backup", "", "take the cluster ID from this backup `file`, to restore it into the new cluster")
	cmd.MarkFlagDirname("dir")
	return cmd
}

func (c *cli) clusterInit(o clusterInitOpts) error {
	if o.dir == "" {
		return usagef("cluster init: --dir is required")
	}
	id, err := initClusterID(o.clusterID, o.fromBackup)
	if err != nil {
		return err
	}
	if o.nodes < 1 || o.nodes > maxNodes {
		return usagef("cluster init: --nodes must be 1 to %d", maxNodes)
	}
	if err := pki.ValidateName(o.clientName); err != nil {
		return usagef("cluster init: --client: %v", err)
	}
	nodeNames := make([]string, o.nodes)
	for i := range nodeNames {
		nodeNames[i] = fmt.Sprintf("node%d", i+1)
		if nodeNames[i] == o.clientName {
			return usagef("cluster init: --client %q is also a node name", o.clientName)
		}
	}
	hostList := splitList(o.hosts)
	nodeAddrs := splitList(o.addrs)
	for _, a := range nodeAddrs {
		if err := client.CheckNodeAddr(a); err != nil {
			return usagef("cluster init: --node-addrs: %v", err)
		}
	}
	if len(nodeAddrs) == 0 {
		for i := range o.nodes {
			nodeAddrs = append(nodeAddrs, fmt.Sprintf("127.0.0.1:%d", basePort+i))
		}
	}

	absDir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	res := initResult{
		Dir:       absDir,
		CA:        initFile{Cert: filepath.Join(absDir, pki.CACertFile), Key: filepath.Join(absDir, pki.CAKeyFile)},
		Client:    initFile{Name: o.clientName, Cert: pki.CertPath(absDir, o.clientName), Key: pki.KeyPath(absDir, o.clientName)},
		Config:    filepath.Join(absDir, configFile),
		Addrs:     nodeAddrs,
		ClusterID: id,
	}
	all := []string{res.CA.Cert, res.CA.Key, res.Client.Cert, res.Client.Key, res.Config}
	for _, n := range nodeNames {
		f := initFile{Name: n, Cert: pki.CertPath(absDir, n), Key: pki.KeyPath(absDir, n)}
		res.Nodes = append(res.Nodes, f)
		all = append(all, f.Cert, f.Key)
	}
	// Refuse before making anything, so a second run changes nothing.
	for _, p := range all {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("cluster init: refusing to overwrite existing file %q", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cluster init: %w", err)
		}
	}
	if err := c.makeCluster(absDir, id, nodeNames, hostList, o.clientName, nodeAddrs, all); err != nil {
		return err
	}

	if c.g.json {
		return c.printJSON(res)
	}
	out := c.io.out
	fmt.Fprintf(out, "created in %s for cluster %s:\n", absDir, id)
	fmt.Fprintf(out, "  CA           %s (key %s: keep it offline)\n", res.CA.Cert, res.CA.Key)
	for _, n := range res.Nodes {
		fmt.Fprintf(out, "  %-12s %s, %s\n", n.Name, n.Cert, n.Key)
	}
	fmt.Fprintf(out, "  %-12s %s, %s (client certificate)\n", o.clientName, res.Client.Cert, res.Client.Key)
	fmt.Fprintf(out, "  config       %s (nodes %s)\n", res.Config, strings.Join(nodeAddrs, ", "))
	if o.addrs == "" {
		fmt.Fprintf(out, "edit the nodes list in %s if the daemons listen elsewhere\n", res.Config)
	}
	return nil
}

// makeCluster writes the files; on failure it removes the ones it made.
func (c *cli) makeCluster(dir, clusterID string, nodeNames, hosts []string, clientName string, addrs, all []string) (err error) {
	defer func() {
		if err != nil {
			for _, p := range all {
				os.Remove(p)
			}
		}
	}()
	ca, err := pki.CreateClusterCA(dir, caName, clusterID)
	if err != nil {
		return fmt.Errorf("cluster init: %w", err)
	}
	for _, n := range nodeNames {
		if err := ca.IssueNode(dir, n, hosts); err != nil {
			return fmt.Errorf("cluster init: node %s: %w", n, err)
		}
	}
	if err := ca.IssueClient(dir, clientName); err != nil {
		return fmt.Errorf("cluster init: client: %w", err)
	}
	cfg := &client.Config{
		Nodes:      addrs,
		CA:         pki.CACertFile,
		Cert:       filepath.Base(pki.CertPath(dir, clientName)),
		Key:        filepath.Base(pki.KeyPath(dir, clientName)),
		ServerName: client.DefaultServerName,
	}
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, configFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("cluster init: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("cluster init: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cluster init: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cluster init: write %s: %w", path, err)
	}
	return nil
}

func (c *cli) clusterActivateCommand() *cobra.Command {
	cmd := leaf("activate", "Create the first crypto officer of a new cluster", nil,
		func(cmd *cobra.Command, _ []string) error { return c.clusterActivate(cmd.Context()) })
	cmd.Long = `Create the first crypto officer of a cluster that was never activated: its
name is --user (or $HSM_USER), its password the first line of --password-file
(or $HSM_PASSWORD). Needs no login.`
	cmd.Example = `  hsm cluster activate --user admin --password-file admin.pw`
	return cmd
}

func (c *cli) clusterActivate(ctx context.Context) error {
	user, password, err := c.activateCredentials()
	if err != nil {
		return err
	}
	hc, done, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.Bootstrap(ctx, user, password); err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	return c.say(map[string]any{"activated": true, "user": user, "role": "CO"},
		"cluster activated: crypto officer %q created", user)
}

type mechJSON struct {
	Name       string `json:"name"`
	Type       uint64 `json:"type"`
	MinKeySize uint64 `json:"min_key_size"`
	MaxKeySize uint64 `json:"max_key_size"`
	Flags      uint64 `json:"flags"`
}

func (c *cli) infoCommand() *cobra.Command {
	cmd := leaf("info", "Describe the node and cluster", nil,
		func(cmd *cobra.Command, _ []string) error { return c.info(cmd.Context()) })
	cmd.Long = `Describe the node the client reaches: its version, the cluster ID, whether the
cluster is activated, and the mechanisms it offers. Needs no login.`
	return cmd
}

func (c *cli) info(ctx context.Context) error {
	hc, done, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	in, err := hc.Info(ctx)
	if err != nil {
		return err
	}
	if c.g.json {
		mechs := make([]mechJSON, 0, len(in.Mechanisms))
		for _, m := range in.Mechanisms {
			mechs = append(mechs, mechJSON{Name: ck.MechName(m.Type), Type: m.Type, MinKeySize: m.MinKeySize, MaxKeySize: m.MaxKeySize, Flags: m.Flags})
		}
		return c.printJSON(map[string]any{
			"version": in.Version, "cluster_id": in.ClusterID, "node": in.Node,
			"address": hc.Node(), "initialized": in.Initialized, "mechanisms": mechs,
		})
	}
	out := c.io.out
	fmt.Fprintf(out, "version      %s\n", clean(in.Version))
	fmt.Fprintf(out, "cluster      %s\n", clean(in.ClusterID))
	fmt.Fprintf(out, "node         %s (%s)\n", clean(in.Node), hc.Node())
	fmt.Fprintf(out, "activated    %s\n", yesNo(in.Initialized))
	fmt.Fprintf(out, "mechanisms   %d\n", len(in.Mechanisms))
	for _, m := range in.Mechanisms {
		fmt.Fprintf(out, "  %-32s %d-%d\n", ck.MechName(m.Type), m.MinKeySize, m.MaxKeySize)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
