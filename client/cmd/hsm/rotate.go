package main

import (
	"context"
	"fmt"
	"os"
)

// clusterRotatePassphrase re-seals the domain key under a new passphrase
// file's contents. The officer gives the current passphrase too.
func (c *cli) clusterRotatePassphrase(ctx context.Context, args []string) error {
	fs := c.newFlags("cluster rotate-passphrase")
	oldFile := fs.String("old", "", "file holding the current passphrase (or key)")
	newFile := fs.String("new", "", "file holding the new passphrase (or key)")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if *oldFile == "" || *newFile == "" {
		return usagef("cluster rotate-passphrase: --old FILE and --new FILE are both required")
	}
	oldSecret, err := os.ReadFile(*oldFile)
	if err != nil {
		return fmt.Errorf("--old: %v", err)
	}
	newSecret, err := os.ReadFile(*newFile)
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
