package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func (c *cli) clusterRotatePassphraseCommand() *cobra.Command {
	var oldFile, newFile string
	cmd := leaf("rotate-passphrase --old FILE --new FILE", "Re-seal the domain key under a new passphrase (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error {
			return c.clusterRotatePassphrase(cmd.Context(), oldFile, newFile)
		})
	cmd.Long = `Re-seal the cluster's domain key under a new passphrase (or key file) on
every node. The crypto officer gives the current one too. Afterwards put the
new file in place of each node's passphrase_file before that node next
starts; older backups still need the old one (docs/encryption-at-rest.md).`
	cmd.Flags().StringVar(&oldFile, "old", "", "`file` holding the current passphrase (or key)")
	cmd.Flags().StringVar(&newFile, "new", "", "`file` holding the new passphrase (or key)")
	setRole(cmd, roleOfficer)
	return cmd
}

// clusterRotatePassphrase re-seals the domain key under a new passphrase
// file's contents. The officer gives the current passphrase too.
func (c *cli) clusterRotatePassphrase(ctx context.Context, oldFile, newFile string) error {
	if oldFile == "" || newFile == "" {
		return usagef("cluster rotate-passphrase: --old FILE and --new FILE are both required")
	}
	oldSecret, err := os.ReadFile(oldFile)
	if err != nil {
		return fmt.Errorf("--old: %v", err)
	}
	newSecret, err := os.ReadFile(newFile)
	if err != nil {
		return fmt.Errorf("--new: %v", err)
	}
	defer clear(oldSecret)
	defer clear(newSecret)
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.RotatePassphrase(ctx, oldSecret, newSecret); err != nil {
		return fmt.Errorf("rotate-passphrase: %w", err)
	}
	return c.say(map[string]any{"rotated": true},
		"the domain key is now sealed under the new passphrase on every node; put the new file in place of each node's passphrase_file before that node next starts; older backups still need the old one")
}
