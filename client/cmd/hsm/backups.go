package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/client"
)

// backupTimeout bounds a backup command; backups of large stores take long.
const backupTimeout = 2 * time.Hour

func (c *cli) backupCommand() *cobra.Command {
	return group("backup", "Take, list, copy and restore backups",
		`Backups are encrypted copies of the whole store (docs/backups.md). Each node
keeps the ones it takes in its backup_dir. create, list and get are a crypto
officer's; restore needs no login, since it goes to a new cluster that has no
users yet. create, get and restore show their progress on standard error: a
bar on a terminal, plain lines otherwise.`,
		c.backupCreateCommand(),
		c.backupListCommand(),
		c.backupGetCommand(),
		c.backupRestoreCommand(),
	)
}

func (c *cli) printBackup(b *client.BackupInfo, verb string) error {
	return c.say(b, "%s %s on %s: %d users, %d objects, %d bytes, taken %s", verb,
		clean(b.ID), clean(b.Node), b.Users, b.Objects, b.Size, clean(b.Created))
}

func (c *cli) backupCreateCommand() *cobra.Command {
	var out string
	cmd := leaf("create [-o FILE]", "Take a backup now (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.backupCreate(cmd.Context(), out) })
	cmd.Long = `Have the node the client reaches take a backup now, into its backup_dir; with
-o, also copy it to FILE here (never over an existing file). Progress: the
node writes the store's records and verifies them, then the copy streams.`
	cmd.Example = `  hsm backup create -o today.hsmbak`
	cmd.Flags().StringVarP(&out, "output", "o", "", "also copy the backup to this `file`")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) backupCreate(ctx context.Context, out string) error {
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	p := c.newProgress()
	b, err := hc.CreateBackup(ctx, p.node)
	if err != nil {
		p.finish(false)
		return fmt.Errorf("backup create: %w", err)
	}
	if out != "" {
		if err := c.download(ctx, hc, p, b.ID, b.Size, out); err != nil {
			return err
		}
	}
	p.finish(true)
	return c.printBackup(b, "took backup")
}

func (c *cli) backupListCommand() *cobra.Command {
	cmd := leaf("list", "List every node's backups (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.backupList(cmd.Context()) })
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) backupList(ctx context.Context) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	bs, unreachable, err := hc.ListBackups(ctx)
	if err != nil {
		return err
	}
	if c.g.json {
		return c.printJSON(map[string]any{"backups": bs, "unreachable": unreachable})
	}
	w := c.io.out
	fmt.Fprintf(w, "%-52s %-8s %-20s %6s %8s %10s\n", "ID", "NODE", "CREATED", "USERS", "OBJECTS", "BYTES")
	for _, b := range bs {
		if b.Error != "" {
			fmt.Fprintf(w, "%-52s %-8s %s\n", clean(b.ID), clean(b.Node), clean(b.Error))
			continue
		}
		fmt.Fprintf(w, "%-52s %-8s %-20s %6d %8d %10d\n", clean(b.ID), clean(b.Node), clean(b.Created), b.Users, b.Objects, b.Size)
	}
	for _, n := range unreachable {
		fmt.Fprintf(c.io.err, "node %s did not answer; its backups are not listed\n", clean(n))
	}
	return nil
}

func (c *cli) backupGetCommand() *cobra.Command {
	var out string
	cmd := leaf("get ID -o FILE", "Copy a backup here (crypto officer)", []string{"ID"},
		func(cmd *cobra.Command, pos []string) error { return c.backupGet(cmd.Context(), out, pos[0]) })
	cmd.Long = `Copy the backup ID (as backup list shows it), from whichever node holds it, to
FILE here. An existing file is never overwritten, and a failed copy leaves
nothing behind.`
	cmd.Example = `  hsm backup get backup-20261206T120000Z-node1-0123abcd.hsmbak -o today.hsmbak`
	cmd.Flags().StringVarP(&out, "output", "o", "", "`file` to write (required)")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) backupGet(ctx context.Context, out, id string) error {
	if out == "" {
		return usagef("backup get: -o FILE is required")
	}
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	p := c.newProgress()
	if err := c.download(ctx, hc, p, id, backupSize(ctx, hc, id), out); err != nil {
		return err
	}
	p.finish(true)
	return c.say(map[string]any{"id": id, "file": out}, "wrote %s", out)
}

// backupSize is the size of backup id as the cluster lists it, or 0 when
// that is not known (the download then counts bytes without a total).
func backupSize(ctx context.Context, hc *client.Client, id string) int64 {
	bs, _, err := hc.ListBackups(ctx)
	if err != nil {
		return 0
	}
	for _, b := range bs {
		if b.ID == id && b.Error == "" {
			return b.Size
		}
	}
	return 0
}

// download copies a backup to path through a temporary file, so a failed
// copy leaves nothing behind and an existing file is never overwritten.
// size (0: unknown) is the total the progress shows.
func (c *cli) download(ctx context.Context, hc *client.Client, p *progress, id string, size int64, path string) (err error) {
	defer func() {
		if err != nil {
			p.finish(false)
		}
	}()
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup: refusing to overwrite %q: give another -o FILE or move that file away", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".hsm-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	p.update("download", 0, size)
	cw := &countingWriter{w: f, report: func(n int64) { p.update("download", n, size) }}
	if _, err := hc.GetBackup(ctx, id, cw); err != nil {
		return fmt.Errorf("backup get: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	p.update("download", cw.n, cw.n)
	return nil
}

func (c *cli) backupRestoreCommand() *cobra.Command {
	cmd := leaf("restore FILE", "Restore a backup into a new cluster that was never activated", []string{"FILE"},
		func(cmd *cobra.Command, pos []string) error { return c.backupRestore(cmd.Context(), pos[0]) })
	cmd.Long = `Send the backup FILE to the leader of a new cluster that was never activated;
it checks the whole file before it writes anything. The new cluster's nodes
need the old cluster's passphrase or key file, and its certificates the old
cluster ID ('hsm cluster init --backup FILE' makes such certificates). Needs
no login. Progress: the file is sent, then the node checks, decrypts and
restores its records.`
	cmd.Example = `  hsm cluster init --dir pki --backup today.hsmbak
  # start the nodes with the old cluster's passphrase, then:
  hsm --config pki/client.toml backup restore today.hsmbak`
	return cmd
}

// backupRestore sends a backup to the leader of a new, never activated
// cluster.
func (c *cli) backupRestore(ctx context.Context, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	leader, err := c.leaderAddr(ctx)
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	cfg.Nodes = []string{leader}
	lc, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer lc.Close()
	p := c.newProgress()
	p.update("upload", 0, size)
	r := &countingReader{r: f, report: func(n int64) { p.update("upload", n, size) }}
	b, err := lc.RestoreBackup(ctx, r, func(m client.BackupProgress) {
		// The node's count of what it received repeats the upload's: a
		// second bar would only flash by (plain lines keep it).
		if m.Phase != "receive" || !p.bar {
			p.node(m)
		}
	})
	if err != nil {
		p.finish(false)
		return fmt.Errorf("backup restore: %w", err)
	}
	p.finish(true)
	return c.say(b, "restored the backup of cluster %s taken on %s at %s: %d users, %d objects",
		clean(b.ClusterID), clean(b.Node), clean(b.Created), b.Users, b.Objects)
}

// leaderWait bounds how long restore waits for a new cluster to elect its
// leader.
const leaderWait = 20 * time.Second

// leaderAddr asks the cluster for its leader's address, waiting while an
// election is under way.
func (c *cli) leaderAddr(ctx context.Context) (string, error) {
	hc, done, err := c.connect(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	deadline := time.Now().Add(leaderWait)
	for {
		st, err := hc.ClusterStatus(ctx)
		if err != nil {
			return "", err
		}
		for _, n := range st.Nodes {
			if n.Leader {
				return n.Addr, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the cluster has no leader after %v", leaderWait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
