package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/client"
)

// The audit commands (docs/audit.md). Each reads one node: --node picks
// which (an address of the configuration's list or any other node of the
// cluster), else the client picks as for any call.

func (c *cli) auditCommand() *cobra.Command {
	return group("audit", "Read and verify the audit trail",
		`Each node keeps a hash-chained audit trail of commands and key uses
(docs/audit.md). Each command reads one node: --node picks which (an address
of the configuration's list or any other node of the cluster), else the
client picks as for any call.`,
		c.auditListCommand(),
		c.auditVerifyCommand(),
	)
}

// auditSession logs in, through the one node given, if any.
func (c *cli) auditSession(ctx context.Context, node string) (*client.Client, func(), error) {
	if node == "" {
		return c.session(ctx)
	}
	if _, _, err := net.SplitHostPort(node); err != nil {
		return nil, nil, usagef("--node: %q is not host:port", node)
	}
	user, password, err := c.credentials()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	cfg.Nodes = []string{node}
	hc, err := client.Dial(ctx, cfg, client.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, nil, err
	}
	done := func() {
		if hc.LoggedIn() {
			hc.Logout(context.WithoutCancel(ctx))
		}
		hc.Close()
	}
	if err := c.login(ctx, hc, user, password); err != nil {
		done()
		return nil, nil, err
	}
	return hc, done, nil
}

// parseSince reads RFC 3339, Unix seconds, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Unix(n, 0), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since: %q is not RFC 3339, Unix seconds or a duration", s)
}

// auditListOpts are the flags of audit list.
type auditListOpts struct {
	since, user, principal, kind, key, node string
	object                                  uint64
}

func (c *cli) auditListCommand() *cobra.Command {
	var o auditListOpts
	cmd := leaf("list [--since TIME] [--filter-user NAME] [--principal ARN] [--key KEY] [--kind KIND] [--object ID] [--node ADDR]",
		"List the audit records you may read (logged in)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.auditList(cmd.Context(), o) })
	cmd.Long = `List the audit records of one node: a crypto officer reads all of them, a
crypto user only its own (of kinds command and use). TIME is RFC 3339, Unix
seconds, or a duration ago (10m, 24h). KMS requests are records of kind kms:
--principal selects a KMS principal's (as --filter-user a user's), --key a
key's, by its ARN or its key ID (in every region). With --json each record
is one JSON object, a KMS record's detail (context keys, source address,
request ID, exception) included.`
	cmd.Example = `  hsm audit list --since 24h --filter-user alice
  hsm audit list --kind kms --key 1234abcd-12ab-34cd-56ef-1234567890ab --since 2026-12-01T00:00:00Z --json`
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "only records at or after `TIME`")
	// --user is the global flag of the user who logs in, so the filter
	// has a name of its own.
	f.StringVar(&o.user, "filter-user", "", "only records of user `NAME`")
	f.StringVar(&o.principal, "principal", "", "only records of KMS principal `ARN` (or access key ID)")
	f.StringVar(&o.key, "key", "", "only KMS records of `KEY`, a key ARN or key ID")
	f.StringVar(&o.kind, "kind", "", "only records of `KIND`: command, use or kms")
	f.Uint64Var(&o.object, "object", 0, "only records of object `ID`")
	f.StringVar(&o.node, "node", "", "read the node at `ADDR` (host:port)")
	setRole(cmd, roleAny)
	return cmd
}

// auditQuery reads audit list's flags.
func auditQuery(o auditListOpts, now time.Time) (client.AuditQuery, error) {
	q := client.AuditQuery{User: o.user, Object: o.object, Kind: o.kind, Key: o.key}
	if o.principal != "" {
		if o.user != "" && o.user != o.principal {
			return q, fmt.Errorf("--principal and --filter-user name the same field; give one")
		}
		q.User = o.principal
	}
	switch o.kind {
	case "", "command", "use", "kms":
	default:
		return q, fmt.Errorf("--kind: %q is not command, use or kms", o.kind)
	}
	if o.key != "" && o.kind != "" && o.kind != "kms" {
		return q, fmt.Errorf("--key selects KMS records; it goes with --kind kms or none")
	}
	if o.since != "" {
		t, err := parseSince(o.since, now)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	return q, nil
}

func (c *cli) auditList(ctx context.Context, o auditListOpts) error {
	q, err := auditQuery(o, time.Now())
	if err != nil {
		return usagef("audit list: %v", err)
	}
	hc, done, err := c.auditSession(ctx, o.node)
	if err != nil {
		return err
	}
	defer done()
	var all []client.AuditRecord
	for {
		recs, next, err := hc.ListAudit(ctx, q)
		if err != nil {
			return fmt.Errorf("audit list: %w", err)
		}
		all = append(all, recs...)
		if next == 0 {
			break
		}
		q.AfterSeq = next
	}
	if c.g.json {
		if all == nil {
			all = []client.AuditRecord{}
		}
		return c.printJSON(map[string]any{"records": all})
	}
	w := c.io.out
	fmt.Fprintf(w, "%-6s %-20s %-7s %-16s %-12s %-8s %-20s %-22s %6s\n", "SEQ", "TIME", "KIND", "OP", "USER", "NODE", "OBJECT", "RESULT", "COUNT")
	for _, r := range all {
		obj := ""
		if r.Object != 0 {
			obj = strconv.FormatUint(r.Object, 10)
		}
		switch {
		case r.Kind == "kms" && r.Subject != "":
			obj = "key " + clean(keyIDOf(r.Subject))
		case r.Subject != "":
			obj = "user " + clean(r.Subject)
		}
		fmt.Fprintf(w, "%-6d %-20s %-7s %-16s %-12s %-8s %-20s %-22s %6d\n", r.Seq, r.Time.Format(time.RFC3339),
			r.Kind, clean(r.Op), clean(r.User), clean(r.Node), obj, r.Result, r.Count)
	}
	return nil
}

// keyIDOf is the key ID of a key ARN (what follows ":key/"), or the
// string as it is.
func keyIDOf(arn string) string {
	if i := strings.LastIndex(arn, ":key/"); i >= 0 && strings.HasPrefix(arn, "arn:") {
		return arn[i+len(":key/"):]
	}
	return arn
}

func (c *cli) auditVerifyCommand() *cobra.Command {
	var node string
	cmd := leaf("verify [--node ADDR]", "Recompute a node's audit chain (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.auditVerify(cmd.Context(), node) })
	cmd.Long = `Recompute the audit chain of one node. Exit status 1 when it was tampered
with. A crypto officer's command.`
	cmd.Flags().StringVar(&node, "node", "", "verify the node at `ADDR` (host:port)")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) auditVerify(ctx context.Context, node string) error {
	hc, done, err := c.auditSession(ctx, node)
	if err != nil {
		return err
	}
	defer done()
	rep, err := hc.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if c.g.json {
		if err := c.printJSON(rep); err != nil {
			return err
		}
	} else if rep.OK {
		fmt.Fprintf(c.io.out, "audit trail on %s: OK, %d records\n", clean(rep.Node), rep.Records)
	}
	if !rep.OK {
		return fmt.Errorf("audit trail on %s: %s at record %d: %s", clean(rep.Node), rep.Problem, rep.FirstBad, clean(rep.Detail))
	}
	return nil
}
