package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/client"
)

// KMS access control for crypto officers (docs/kms-access.md): a
// principal's identity policy, and explain.

// adminPolicy is the identity policy of --admin: kms:* on every resource
// (the same document as kms.AdminPolicy, which the client may not link).
const adminPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

// maxPolicyFile bounds a policy file: AWS's policies are at most 32 KB.
const maxPolicyFile = 32 * 1024

// readPolicyFile reads an identity policy document from a file.
func readPolicyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("cannot read the policy file: %v", err)
	}
	if len(b) > maxPolicyFile {
		return "", usagef("the policy file %s is larger than %d bytes", path, maxPolicyFile)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", usagef("the policy file %s is empty", path)
	}
	return string(b), nil
}

// createPolicy is the identity policy create's flags ask for.
func createPolicy(file string, admin bool) (string, error) {
	switch {
	case file != "" && admin:
		return "", usagef("kms principal create: give --policy or --admin, not both")
	case admin:
		return adminPolicy, nil
	case file != "":
		return readPolicyFile(file)
	}
	return "", nil
}

func (c *cli) kmsPrincipalPolicyCommand() *cobra.Command {
	put := leaf("put NAME FILE", "Set a KMS principal's identity policy from FILE (crypto officer)", []string{"NAME", "FILE"},
		func(cmd *cobra.Command, pos []string) error {
			if err := principalArg(cmd, pos[0]); err != nil {
				return err
			}
			doc, err := readPolicyFile(pos[1])
			if err != nil {
				return err
			}
			return c.withSession(cmd.Context(), func(ctx context.Context, hc *client.Client) error {
				if err := hc.PutKMSPrincipalPolicy(ctx, pos[0], doc); err != nil {
					return fmt.Errorf("set the policy of KMS principal %q: %w", pos[0], err)
				}
				return c.say(map[string]any{"Name": pos[0], "PolicySet": true}, "set the identity policy of KMS principal %q", pos[0])
			})
		})
	setRole(put, roleOfficer)
	get := principalLeaf("get", "Print a KMS principal's identity policy (crypto officer)", func(ctx context.Context, name string) error {
		return c.withSession(ctx, func(ctx context.Context, hc *client.Client) error {
			doc, err := hc.GetKMSPrincipalPolicy(ctx, name)
			if err != nil {
				return fmt.Errorf("read the policy of KMS principal %q: %w", name, err)
			}
			if c.g.json {
				return c.printJSON(map[string]any{"Name": name, "Policy": doc})
			}
			if doc == "" {
				_, err = fmt.Fprintf(c.io.out, "KMS principal %q has no identity policy\n", name)
				return err
			}
			_, err = fmt.Fprintln(c.io.out, strings.TrimRight(doc, "\n"))
			return err
		})
	})
	del := principalLeaf("delete", "Remove a KMS principal's identity policy (crypto officer)", func(ctx context.Context, name string) error {
		return c.withSession(ctx, func(ctx context.Context, hc *client.Client) error {
			if err := hc.DeleteKMSPrincipalPolicy(ctx, name); err != nil {
				return fmt.Errorf("remove the policy of KMS principal %q: %w", name, err)
			}
			return c.say(map[string]any{"Name": name, "PolicyDeleted": true}, "removed the identity policy of KMS principal %q", name)
		})
	})
	return group("policy", "Manage a KMS principal's identity policy (crypto officer)",
		`A principal's identity policy is an IAM policy document (no Principal
element). As in AWS it counts only where a key policy delegates to the
account (arn:aws:iam::ACCOUNT:root), and for the operations no key policy
governs (CreateKey, ListKeys, ListAliases, GenerateRandom, the aliases' side
of CreateAlias and so on). put refuses a document that does not parse with
MalformedPolicyDocumentException's message. docs/kms-access.md has the rules.`,
		put, get, del)
}

// withSession runs f in a logged-in session.
func (c *cli) withSession(ctx context.Context, f func(context.Context, *client.Client) error) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	return f(ctx, hc)
}

func (c *cli) kmsExplainCommand() *cobra.Command {
	var q client.KMSExplainRequest
	var pairs []string
	cmd := leaf("explain", "Say whether a principal may do an action on a KMS key, and why (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct{ flag, v string }{{"--principal", q.Principal}, {"--key", q.Key}, {"--action", q.Action}} {
				if f.v == "" {
					return usagef("kms explain: %s is required", f.flag)
				}
			}
			if err := principalArg(cmd, q.Principal); err != nil {
				return err
			}
			if len(pairs) > 0 {
				q.Context = map[string]string{}
				for _, p := range pairs {
					k, v, ok := strings.Cut(p, "=")
					if !ok || k == "" {
						return usagef("kms explain: --context takes KEY=VALUE, not %q", p)
					}
					q.Context[k] = v
				}
			}
			return c.withSession(cmd.Context(), func(ctx context.Context, hc *client.Client) error {
				d, err := hc.ExplainKMS(ctx, q)
				if err != nil {
					return fmt.Errorf("explain: %w", err)
				}
				if c.g.json {
					return c.printJSON(map[string]any{"Allowed": d.Allowed, "Reason": d.Reason})
				}
				verdict := "denied"
				if d.Allowed {
					verdict = "allowed"
				}
				_, err = fmt.Fprintf(c.io.out, "%s\n%s\n", verdict, clean(d.Reason))
				return err
			})
		})
	cmd.Long = `Ask the cluster's one access decision (docs/kms-access.md) whether the
principal may do the action on the key, with the encryption context and
source IP given, and print "allowed" or "denied" and the reason: the key
policy statement, identity policy or grant that decided, or what was
missing. The reason names statements, grants and principals, never values.
Grant tokens are not considered.`
	cmd.Example = `  hsm kms explain --principal app --key alias/billing --action kms:Decrypt --context purpose=billing
  hsm kms explain --principal ci --key 1234abcd-12ab-34cd-56ef-1234567890ab --action kms:Encrypt --source-ip 203.0.113.9`
	cmd.Flags().StringVar(&q.Principal, "principal", "", "the principal's name")
	cmd.Flags().StringVar(&q.Key, "key", "", "key ID, key ARN, alias name or alias ARN")
	cmd.Flags().StringVar(&q.Action, "action", "", "the action, e.g. kms:Encrypt")
	cmd.Flags().StringVar(&q.Region, "region", "", "the region of a key ID or alias name (default us-east-1)")
	cmd.Flags().StringVar(&q.SourceIP, "source-ip", "", "the request's source IP (aws:SourceIp)")
	cmd.Flags().StringArrayVar(&pairs, "context", nil, "an encryption context pair KEY=VALUE (repeatable)")
	setRole(cmd, roleOfficer)
	return cmd
}
