package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/openhsm/openhsm/client"
)

// backupTimeout bounds a backup command; backups of large stores take long.
const backupTimeout = 2 * time.Hour

// progressPrinter shows progress on standard error, at most a few times a
// second (never in --json mode's standard output).
func (c *cli) progressPrinter() func(client.BackupProgress) {
	var last time.Time
	return func(p client.BackupProgress) {
		if time.Since(last) < 250*time.Millisecond && (p.Total == 0 || p.Done < p.Total) {
			return
		}
		last = time.Now()
		if p.Total > 0 {
			fmt.Fprintf(c.io.err, "%s: %d/%d (%d%%)\n", p.Phase, p.Done, p.Total, p.Done*100/p.Total)
		} else {
			fmt.Fprintf(c.io.err, "%s: %d\n", p.Phase, p.Done)
		}
	}
}

func (c *cli) printBackup(b *client.BackupInfo, verb string) error {
	return c.say(b, "%s %s on %s: %d users, %d objects, %d bytes, taken %s", verb,
		clean(b.ID), clean(b.Node), b.Users, b.Objects, b.Size, clean(b.Created))
}

func (c *cli) backupCreate(ctx context.Context, args []string) error {
	fs := c.newFlags("backup create")
	out := fs.String("o", "", "also copy the backup to this `file`")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := hc.CreateBackup(ctx, c.progressPrinter())
	if err != nil {
		return fmt.Errorf("backup create: %w", err)
	}
	if *out != "" {
		if err := c.download(ctx, hc, b.ID, *out); err != nil {
			return err
		}
	}
	return c.printBackup(b, "took backup")
}

func (c *cli) backupList(ctx context.Context, args []string) error {
	fs := c.newFlags("backup list")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
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

func (c *cli) backupGet(ctx context.Context, args []string) error {
	fs := c.newFlags("backup get")
	out := fs.String("o", "", "`file` to write (required)")
	pos, err := c.parse(fs, args, "ID")
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("backup get: -o FILE is required")
	}
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := c.download(ctx, hc, pos[0], *out); err != nil {
		return err
	}
	return c.say(map[string]any{"id": pos[0], "file": *out}, "wrote %s", *out)
}

// download copies a backup to path through a temporary file, so a failed
// copy leaves nothing behind and an existing file is never overwritten.
func (c *cli) download(ctx context.Context, hc *client.Client, id, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup: refusing to overwrite %q", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".hsm-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := hc.GetBackup(ctx, id, f); err != nil {
		return fmt.Errorf("backup get: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// backupRestore sends a backup to the leader of a new, never activated
// cluster.
func (c *cli) backupRestore(ctx context.Context, args []string) error {
	fs := c.newFlags("backup restore")
	pos, err := c.parse(fs, args, "FILE")
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	defer f.Close()
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
	b, err := lc.RestoreBackup(ctx, f, c.progressPrinter())
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
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
