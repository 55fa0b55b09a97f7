package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/backup"
	"github.com/openhsm/openhsm/pki"
)

// initClusterID picks the cluster ID of `cluster init`: the one given, the
// one of a backup to be restored (so the restored cluster's certificates
// and store agree), or a fresh random one.
func initClusterID(given, backupFile string) (string, error) {
	switch {
	case given != "" && backupFile != "":
		return "", usagef("cluster init: --cluster-id and --backup exclude each other")
	case given != "":
		if err := pki.ValidateClusterID(given); err != nil {
			return "", usagef("cluster init: --cluster-id: %v", err)
		}
		return given, nil
	case backupFile != "":
		f, err := os.Open(backupFile)
		if err != nil {
			return "", fmt.Errorf("cluster init: --backup: %w", err)
		}
		defer f.Close()
		h, err := backup.ReadHeader(f)
		if err != nil {
			return "", fmt.Errorf("cluster init: --backup %s: %w", backupFile, err)
		}
		if err := pki.ValidateClusterID(h.ClusterID); err != nil {
			return "", fmt.Errorf("cluster init: --backup %s: %w", backupFile, err)
		}
		return h.ClusterID, nil
	}
	return pki.NewClusterID()
}

// fingerprintArg reads FINGERPRINT|PEMFILE: a file that exists is a PEM
// certificate, anything else must be a fingerprint.
func fingerprintArg(cmd, arg string) (string, string, error) {
	if st, err := os.Stat(arg); err == nil && st.Mode().IsRegular() {
		fp, name, err := pki.CertFileFingerprint(arg)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", cmd, err)
		}
		return hex.EncodeToString(fp[:]), name, nil
	}
	fp, err := pki.ParseFingerprint(arg)
	if err != nil {
		return "", "", usagef("%s: %q is neither a certificate file nor a fingerprint: %v", cmd, arg, err)
	}
	return hex.EncodeToString(fp[:]), "", nil
}

func (c *cli) certCommand() *cobra.Command {
	return group("cert", "Revoke, list and renew certificates",
		`The cluster keeps a deny-list of certificates every node refuses
(docs/certificates.md). revoke is a crypto officer's; list needs a login;
renew is an operator command run where the CA key is.`,
		c.certRevokeCommand(),
		c.certListCommand(),
		c.certRenewCommand(),
	)
}

func (c *cli) certRevokeCommand() *cobra.Command {
	var cname string
	cmd := leaf("revoke FINGERPRINT|PEMFILE [--name N]", "Deny a certificate on every node (crypto officer)", []string{"FINGERPRINT|PEMFILE"},
		func(cmd *cobra.Command, pos []string) error { return c.certRevoke(cmd.Context(), cname, pos[0]) })
	cmd.Long = `Put a certificate on the cluster's deny-list: every node refuses it from then
on. The argument is a PEM certificate file, or the certificate's SHA-256
fingerprint (hex, optionally "SHA256:" first).`
	cmd.Flags().StringVar(&cname, "name", "", "`name` to record with a bare fingerprint (a PEM file gives its own)")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) certRevoke(ctx context.Context, name, arg string) error {
	fp, cn, err := fingerprintArg("cert revoke", arg)
	if err != nil {
		return err
	}
	if name != "" {
		cn = name
	}
	return c.revoke(ctx, fp, cn)
}

func (c *cli) revoke(ctx context.Context, fp, name string) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.RevokeCert(ctx, fp, name); err != nil {
		return fmt.Errorf("revoke %s: %w", fp, err)
	}
	return c.say(map[string]any{"fingerprint": fp, "name": name, "revoked": true}, "revoked %s %s", fp, clean(name))
}

// certRenew issues a fresh certificate and key for a name, with the CA key
// in --dir (the operator's: the daemons never hold it), and with --revoke
// puts the old certificate on the cluster's deny-list.
func (c *cli) certRenewCommand() *cobra.Command {
	var dir string
	var revoke bool
	cmd := leaf("renew --dir DIR [--revoke] NAME", "Issue a fresh certificate and key for NAME with the CA in DIR", []string{"NAME"},
		func(cmd *cobra.Command, pos []string) error { return c.certRenew(cmd.Context(), dir, revoke, pos) })
	cmd.Long = `Issue a fresh certificate and key for NAME (a node or client) with the cluster
CA that 'hsm cluster init' left in DIR. With --revoke, also put the old
certificate on the deny-list, which needs a crypto officer's login; without,
the old one stays valid until it expires or is revoked.`
	cmd.Flags().StringVar(&dir, "dir", "", "`directory` holding the cluster CA and the certificate (from cluster init; required)")
	cmd.Flags().BoolVar(&revoke, "revoke", false, "revoke the old certificate through the cluster (crypto officer)")
	cmd.MarkFlagDirname("dir")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) certRenew(ctx context.Context, dir string, revoke bool, pos []string) error {
	if dir == "" {
		return usagef("cert renew: --dir is required")
	}
	if err := pki.ValidateName(pos[0]); err != nil {
		return usagef("cert renew: NAME: %v", err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return fmt.Errorf("cert renew: %w", err)
	}
	oldFP, newFP, err := ca.Renew(dir, pos[0])
	if err != nil {
		return fmt.Errorf("cert renew: %w", err)
	}
	abs, _ := filepath.Abs(dir)
	old, fresh := hex.EncodeToString(oldFP[:]), hex.EncodeToString(newFP[:])
	if !revoke {
		return c.say(map[string]any{"name": pos[0], "cert": pki.CertPath(abs, pos[0]), "old": old, "new": fresh},
			"renewed %s: %s (new %s; old %s still valid: revoke it once nothing uses it)", pos[0], pki.CertPath(abs, pos[0]), fresh, old)
	}
	if !c.g.json {
		fmt.Fprintf(c.io.out, "renewed %s: %s (new %s)\n", pos[0], pki.CertPath(abs, pos[0]), fresh)
	}
	if err := c.revoke(ctx, old, pos[0]); err != nil {
		return fmt.Errorf("the certificate is renewed, but the old one is not revoked (run 'hsm cert revoke %s'): %w", old, err)
	}
	return nil
}

type revokedJSON struct {
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	By          string `json:"by"`
	Time        string `json:"time"`
}

func (c *cli) certListCommand() *cobra.Command {
	cmd := leaf("list", "Show the deny-list (logged in)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.certList(cmd.Context()) })
	setRole(cmd, roleAny)
	return cmd
}

func (c *cli) certList(ctx context.Context) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	list, err := hc.ListRevokedCerts(ctx)
	if err != nil {
		return err
	}
	rows := make([]revokedJSON, 0, len(list))
	for _, r := range list {
		rows = append(rows, revokedJSON{Fingerprint: r.Fingerprint, Name: r.Name, By: r.By, Time: r.Time.Format(time.RFC3339)})
	}
	if c.g.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FINGERPRINT\tNAME\tREVOKED BY\tTIME")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Fingerprint, orDash(clean(r.Name)), clean(r.By), r.Time)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
