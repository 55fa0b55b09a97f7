package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/quorum"
)

// The quorum commands (docs/quorum.md). An approval key's private half is
// read here, on the officer's machine, and never sent.

const quorumUsage = `Quorum (M of N crypto officers; docs/quorum.md):
  hsm quorum keygen -o FILE [--type ecdsa-p256|ed25519]
        make an approval key (private, PEM, mode 0600) on this machine
  hsm quorum register-key --key FILE      register your approval key's public half
  hsm quorum status                       M per service, officers with keys
  hsm quorum set --service user-management|cluster-membership --m M
        set M (once any M is above 1: --quorum-token of a "quorum" token)
  hsm quorum token create --service user-management|cluster-membership|quorum
  hsm quorum token approve ID --key FILE  sign a token with your approval key
  hsm quorum token list
  Protected commands (user create|delete|reset|unlock, cluster add-node|
  remove-node, quorum set) take --quorum-token ID.
`

// maxKeyFile bounds what is read from a key file.
const maxKeyFile = 64 << 10

func (c *cli) quorum(ctx context.Context, sub string, args []string) error {
	switch sub {
	case "keygen":
		return c.quorumKeygen(args)
	case "register-key":
		return c.quorumRegisterKey(ctx, args)
	case "status":
		return c.quorumStatus(ctx, args)
	case "set":
		return c.quorumSet(ctx, args)
	case "token":
		if len(args) == 0 {
			return usagef("quorum token: missing subcommand (create, approve or list)")
		}
		switch args[0] {
		case "create":
			return c.quorumTokenCreate(ctx, args[1:])
		case "approve":
			return c.quorumTokenApprove(ctx, args[1:])
		case "list":
			return c.quorumTokenList(ctx, args[1:])
		}
		return usagef("quorum token: unknown subcommand %q", args[0])
	}
	return usagef("quorum: unknown subcommand %q", sub)
}

func (c *cli) quorumKeygen(args []string) error {
	fs := c.newFlags("quorum keygen")
	out := fs.String("o", "", "`file` to write the private key to (must not exist)")
	typ := fs.String("type", "ecdsa-p256", "ecdsa-p256 or ed25519")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("quorum keygen: -o FILE is required")
	}
	if *typ != "ecdsa-p256" && *typ != "ed25519" {
		return usagef("quorum keygen: --type must be ecdsa-p256 or ed25519")
	}
	priv, pemBytes, err := client.GenerateQuorumKey(*typ)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("quorum keygen: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("quorum keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("quorum keygen: %w", err)
	}
	fp, err := quorumFingerprint(priv)
	if err != nil {
		return err
	}
	return c.say(map[string]any{"file": *out, "type": *typ, "fingerprint": fp},
		"wrote a %s approval key to %s (fingerprint %s); keep it on this machine, then: hsm quorum register-key --key %s", *typ, *out, fp, *out)
}

func quorumFingerprint(priv any) (string, error) {
	der, err := client.QuorumPublicDER(priv)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// readQuorumKey reads an approval key's private half from a PEM file.
func readQuorumKey(path string) (any, error) {
	if path == "" {
		return nil, usagef("--key FILE is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	priv, err := client.ParseQuorumKey(b)
	if err != nil {
		return nil, fmt.Errorf("--key %q: %v", path, err)
	}
	return priv, nil
}

func (c *cli) quorumRegisterKey(ctx context.Context, args []string) error {
	fs := c.newFlags("quorum register-key")
	keyFile := fs.String("key", "", "`file` holding your approval key (PEM)")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	priv, err := readQuorumKey(*keyFile)
	if err != nil {
		return err
	}
	fp, err := quorumFingerprint(priv)
	if err != nil {
		return err
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.RegisterQuorumKey(ctx, priv); err != nil {
		return fmt.Errorf("register-key: %w", err)
	}
	return c.say(map[string]any{"user": hc.User(), "fingerprint": fp}, "registered approval key %s for %q", fp, hc.User())
}

func (c *cli) quorumStatus(ctx context.Context, args []string) error {
	fs := c.newFlags("quorum status")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, err := hc.QuorumStatus(ctx)
	if err != nil {
		return err
	}
	if c.g.json {
		return c.printJSON(st)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tM")
	for _, s := range append(quorum.Services, quorum.ServiceQuorum) {
		fmt.Fprintf(tw, "%s\t%d\n", s, st.Policy[s])
	}
	fmt.Fprintln(tw, "\nOFFICER\tKEY\tFINGERPRINT")
	for _, o := range st.Officers {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", clean(o.Name), clean(o.KeyType), clean(o.Fingerprint))
	}
	return tw.Flush()
}

func (c *cli) quorumSet(ctx context.Context, args []string) error {
	fs := c.newFlags("quorum set")
	service := fs.String("service", "", "user-management or cluster-membership")
	m := fs.String("m", "", "approvals needed, 1 to 8 (1: quorum off)")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if *service != quorum.ServiceUserManagement && *service != quorum.ServiceClusterMembership {
		return usagef("quorum set: --service must be %s or %s", quorum.ServiceUserManagement, quorum.ServiceClusterMembership)
	}
	n, err := strconv.Atoi(*m)
	if err != nil || n < 1 || n > quorum.MaxM {
		return usagef("quorum set: --m must be 1 to %d", quorum.MaxM)
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.SetQuorumPolicy(ctx, *service, n); err != nil {
		return fmt.Errorf("quorum set: %w", err)
	}
	return c.say(map[string]any{"service": *service, "m": n}, "%s now needs %d approvals", *service, n)
}

func (c *cli) quorumTokenCreate(ctx context.Context, args []string) error {
	fs := c.newFlags("quorum token create")
	service := fs.String("service", "", "user-management, cluster-membership or quorum")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	switch *service {
	case quorum.ServiceUserManagement, quorum.ServiceClusterMembership, quorum.ServiceQuorum:
	default:
		return usagef("quorum token create: --service must be %s, %s or %s", quorum.ServiceUserManagement,
			quorum.ServiceClusterMembership, quorum.ServiceQuorum)
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := hc.CreateQuorumToken(ctx, *service)
	if err != nil {
		return fmt.Errorf("quorum token create: %w", err)
	}
	if c.g.json {
		return c.printJSON(t)
	}
	fmt.Fprintf(c.io.out, "%s\n", t.ID)
	fmt.Fprintf(c.io.err, "token for %s, expires %s; needs %d approvals: hsm quorum token approve %s --key FILE\n",
		t.Service, t.Expires.UTC().Format(time.RFC3339), t.Required, t.ID)
	return nil
}

func (c *cli) quorumTokenApprove(ctx context.Context, args []string) error {
	fs := c.newFlags("quorum token approve")
	keyFile := fs.String("key", "", "`file` holding your approval key (PEM)")
	pos, err := c.parse(fs, args, "ID")
	if err != nil {
		return err
	}
	priv, err := readQuorumKey(*keyFile)
	if err != nil {
		return err
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := hc.ApproveQuorumToken(ctx, pos[0], priv)
	if err != nil {
		return fmt.Errorf("quorum token approve: %w", err)
	}
	return c.say(map[string]any{"id": t.ID, "service": t.Service, "requester": t.Requester, "approved": true},
		"approved token %s: %s for %q", t.ID, t.Service, t.Requester)
}

func (c *cli) quorumTokenList(ctx context.Context, args []string) error {
	fs := c.newFlags("quorum token list")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, err := hc.QuorumStatus(ctx)
	if err != nil {
		return err
	}
	if c.g.json {
		return c.printJSON(st.Tokens)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSERVICE\tREQUESTER\tAPPROVALS\tEXPIRES")
	for _, t := range st.Tokens {
		approvals := fmt.Sprintf("%d/%d", len(t.Approvals), t.Required)
		if len(t.Approvals) > 0 {
			names := make([]string, len(t.Approvals))
			for i, a := range t.Approvals {
				names[i] = clean(a)
			}
			approvals += " (" + strings.Join(names, ",") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clean(t.ID), clean(t.Service), clean(t.Requester), approvals,
			t.Expires.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
