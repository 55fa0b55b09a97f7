package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/client"
)

// The cluster settings: replicated through the log, so every node applies
// the same value (docs/pkcs11-library.md, "Before login", for
// public_objects).
func (c *cli) clusterSettingCommand() *cobra.Command {
	return group("setting", "Show and change cluster-wide settings",
		`Cluster settings are replicated: a crypto officer changes one and every node
applies it at the same point of the log. public_objects (on, the default, or
off) says whether PKCS#11 sessions that have not logged in may find and read
a token's public objects (certificates, public keys, public data objects).`,
		c.clusterSettingListCommand(),
		c.clusterSettingSetCommand(),
	)
}

func (c *cli) clusterSettingListCommand() *cobra.Command {
	cmd := leaf("list", "Show every cluster setting (logged in)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.settingList(cmd.Context()) })
	setRole(cmd, roleAny)
	return cmd
}

func (c *cli) clusterSettingSetCommand() *cobra.Command {
	cmd := leaf("set NAME VALUE", "Change a cluster setting (crypto officer)", []string{"NAME", "VALUE"},
		func(cmd *cobra.Command, pos []string) error { return c.settingSet(cmd.Context(), pos[0], pos[1]) })
	cmd.Long = `Change a cluster setting on every node, through the log. Settings:
  public_objects  on|off  public sessions (no login) may read a token's public objects`
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) settingList(ctx context.Context) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	m, err := hc.ClusterSettings(ctx)
	if err != nil {
		return err
	}
	if c.g.json {
		return c.printJSON(m)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE")
	for _, n := range client.SettingNames(m) {
		fmt.Fprintf(tw, "%s\t%s\n", clean(n), clean(m[n]))
	}
	return tw.Flush()
}

func (c *cli) settingSet(ctx context.Context, name, value string) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.SetClusterSetting(ctx, name, value); err != nil {
		return fmt.Errorf("cluster setting set %s: %w", clean(name), err)
	}
	return c.say(map[string]any{"setting": name, "value": value}, "%s = %s", clean(name), clean(value))
}
