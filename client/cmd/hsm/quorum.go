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

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/quorum"
)

// The quorum commands (docs/quorum.md). An approval key's private half is
// read here, on the officer's machine, and never sent.

// maxKeyFile bounds what is read from a key file.
const maxKeyFile = 64 << 10

func (c *cli) quorumCommand() *cobra.Command {
	return group("quorum", "M-of-N crypto officer approvals",
		`Protected commands (user create, delete, reset and unlock; cluster add-node
and remove-node; quorum set) can be made to need the approval of M crypto
officers (docs/quorum.md). An officer makes an approval key on their own
machine and registers its public half; a token is created for a service,
approved by M officers with their keys, and passed to the protected command
with --quorum-token ID. Every command here but keygen is a crypto officer's.`,
		c.quorumKeygenCommand(),
		c.quorumRegisterKeyCommand(),
		c.quorumStatusCommand(),
		c.quorumSetCommand(),
		group("token", "Create, approve and list quorum tokens",
			`A quorum token asks for approval of one protected command on a service; M
officers approve it with their approval keys, then the requester passes
--quorum-token ID to the command.`,
			c.quorumTokenCreateCommand(),
			c.quorumTokenApproveCommand(),
			c.quorumTokenListCommand(),
		),
	)
}

// services are the --service values of quorum set and token create.
var (
	policyServices = []string{quorum.ServiceUserManagement, quorum.ServiceClusterMembership}
	tokenServices  = []string{quorum.ServiceUserManagement, quorum.ServiceClusterMembership, quorum.ServiceQuorum}
)

func (c *cli) quorumKeygenCommand() *cobra.Command {
	var out, typ string
	cmd := leaf("keygen -o FILE [--type ecdsa-p256|ed25519]", "Make an approval key on this machine", nil,
		func(cmd *cobra.Command, _ []string) error { return c.quorumKeygen(out, typ) })
	cmd.Long = `Make an approval key: its private half is written to FILE (PEM, mode 0600,
never over an existing file) and stays on this machine; register its public
half with 'hsm quorum register-key --key FILE'. Needs no cluster.`
	cmd.Flags().StringVarP(&out, "output", "o", "", "`file` to write the private key to (must not exist; required)")
	cmd.Flags().StringVar(&typ, "type", "ecdsa-p256", "ecdsa-p256 or ed25519")
	fixedValues(cmd, "type", "ecdsa-p256", "ed25519")
	return cmd
}

func (c *cli) quorumKeygen(out, typ string) error {
	if out == "" {
		return usagef("quorum keygen: -o FILE is required")
	}
	if typ != "ecdsa-p256" && typ != "ed25519" {
		return usagef("quorum keygen: --type must be ecdsa-p256 or ed25519")
	}
	priv, pemBytes, err := client.GenerateQuorumKey(typ)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("quorum keygen: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(out)
		return fmt.Errorf("quorum keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("quorum keygen: %w", err)
	}
	fp, err := quorumFingerprint(priv)
	if err != nil {
		return err
	}
	return c.say(map[string]any{"file": out, "type": typ, "fingerprint": fp},
		"wrote a %s approval key to %s (fingerprint %s); keep it on this machine, then: hsm quorum register-key --key %s", typ, out, fp, out)
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

func (c *cli) quorumRegisterKeyCommand() *cobra.Command {
	var keyFile string
	cmd := leaf("register-key --key FILE", "Register your approval key's public half", nil,
		func(cmd *cobra.Command, _ []string) error { return c.quorumRegisterKey(cmd.Context(), keyFile) })
	cmd.Long = `Register the public half of your approval key (made by 'hsm quorum keygen')
for the officer who logs in. The private half is read here and never sent:
a signature proves you hold it.`
	cmd.Flags().StringVar(&keyFile, "key", "", "`file` holding your approval key (PEM; required)")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) quorumRegisterKey(ctx context.Context, keyFile string) error {
	priv, err := readQuorumKey(keyFile)
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

func (c *cli) quorumStatusCommand() *cobra.Command {
	cmd := leaf("status", "Show M per service and the officers with approval keys", nil,
		func(cmd *cobra.Command, _ []string) error { return c.quorumStatus(cmd.Context()) })
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) quorumStatus(ctx context.Context) error {
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

func (c *cli) quorumSetCommand() *cobra.Command {
	var service, m string
	cmd := leaf("set --service SERVICE --m M", "Set how many approvals a service needs", nil,
		func(cmd *cobra.Command, _ []string) error { return c.quorumSet(cmd.Context(), service, m) })
	cmd.Long = fmt.Sprintf(`Set M, the approvals a service needs (1: quorum off). Once any M is above 1,
this command itself needs --quorum-token with a token for the "quorum"
service. SERVICE is %s or %s.`, quorum.ServiceUserManagement, quorum.ServiceClusterMembership)
	cmd.Example = `  hsm quorum set --service user-management --m 2`
	cmd.Flags().StringVar(&service, "service", "", "user-management or cluster-membership (required)")
	cmd.Flags().StringVar(&m, "m", "", fmt.Sprintf("approvals needed, 1 to %d (1: quorum off; required)", quorum.MaxM))
	fixedValues(cmd, "service", policyServices...)
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) quorumSet(ctx context.Context, service, m string) error {
	if service != quorum.ServiceUserManagement && service != quorum.ServiceClusterMembership {
		return usagef("quorum set: --service must be %s or %s", quorum.ServiceUserManagement, quorum.ServiceClusterMembership)
	}
	n, err := strconv.Atoi(m)
	if err != nil || n < 1 || n > quorum.MaxM {
		return usagef("quorum set: --m must be 1 to %d", quorum.MaxM)
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.SetQuorumPolicy(ctx, service, n); err != nil {
		return fmt.Errorf("quorum set: %w", err)
	}
	return c.say(map[string]any{"service": service, "m": n}, "%s now needs %d approvals", service, n)
}

func (c *cli) quorumTokenCreateCommand() *cobra.Command {
	var service string
	cmd := leaf("create --service SERVICE", "Ask for approval: make a token for a service", nil,
		func(cmd *cobra.Command, _ []string) error { return c.quorumTokenCreate(cmd.Context(), service) })
	cmd.Long = `Make a quorum token for SERVICE (user-management, cluster-membership or
quorum) and print its ID on standard output. There is one live token per
service and requester: a new one replaces the old.`
	cmd.Flags().StringVar(&service, "service", "", "user-management, cluster-membership or quorum (required)")
	fixedValues(cmd, "service", tokenServices...)
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) quorumTokenCreate(ctx context.Context, service string) error {
	switch service {
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
	t, err := hc.CreateQuorumToken(ctx, service)
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

func (c *cli) quorumTokenApproveCommand() *cobra.Command {
	var keyFile string
	cmd := leaf("approve ID --key FILE", "Sign a token with your approval key", []string{"ID"},
		func(cmd *cobra.Command, pos []string) error { return c.quorumTokenApprove(cmd.Context(), keyFile, pos) })
	cmd.Flags().StringVar(&keyFile, "key", "", "`file` holding your approval key (PEM; required)")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) quorumTokenApprove(ctx context.Context, keyFile string, pos []string) error {
	priv, err := readQuorumKey(keyFile)
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

func (c *cli) quorumTokenListCommand() *cobra.Command {
	cmd := leaf("list", "List the live tokens and their approvals", nil,
		func(cmd *cobra.Command, _ []string) error { return c.quorumTokenList(cmd.Context()) })
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) quorumTokenList(ctx context.Context) error {
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
