package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/pki"
)

func (c *cli) kmsCommand() *cobra.Command {
	return group("kms", "Manage the KMS service (crypto officer)",
		`Each node can serve an AWS KMS-compatible API (docs/kms.md), enabled by the
[kms] section of its config. The AWS CLI and SDKs sign their requests with a
principal's access key; crypto officers manage the principals here.`,
		group("principal", "Manage KMS principals: the users of the KMS API (crypto officer)",
			`A KMS principal is a user of the KMS API with one access key, as an IAM user
is: it may call the KMS operations on the cluster's KMS keys, signed with that
key, and nothing else (no HSM login, no user management). Its name follows
IAM's rule for user names: 1 to 64 of the letters, digits and + = , . @ _ -.

create and rotate-key print the secret access key once; the cluster keeps it
only sealed, so it cannot be shown again. A lost secret is replaced with
rotate-key. --json prints {"Name","Arn","AccessKeyId","SecretAccessKey","Created"}.`,
			c.kmsPrincipalCreateCommand(),
			c.kmsPrincipalListCommand(),
			c.kmsPrincipalDeleteCommand(),
			c.kmsPrincipalRotateCommand(),
			c.kmsPrincipalPolicyCommand(),
		),
		c.kmsExplainCommand(),
		group("cluster", "Tell the KMS where the HSM clusters of its custom key stores are (crypto officer)",
			`A custom key store of type AWS_CLOUDHSM keeps its keys in another openhsm
cluster, named by that cluster's ID (docs/kms.md, "Custom key stores"). AWS
finds a CloudHSM cluster by its ID; this KMS must be told where the
cluster's nodes are, and be given a client certificate and key issued by
that cluster's CA ('hsm cluster issue-client' there) to reach them with.
After 'add', a principal's CreateCustomKeyStore may name the cluster ID.

The private key is read from its file and sent once; the cluster keeps it
sealed under its domain key, and no command shows it again.
--json prints [{"ClusterId","Nodes","Certificate","Added"}] for list.`,
			c.kmsClusterAddCommand(),
			c.kmsClusterListCommand(),
			c.kmsClusterRemoveCommand(),
		),
	)
}

// principalArg checks a principal's name on the command line: IAM's rule,
// as the node checks it, refused before logging in.
func principalArg(cmd *cobra.Command, arg string) error {
	err := api.CheckPrincipalName("NAME", arg)
	var fe *api.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return usagef("%s: NAME: %s", name(cmd), fe.Why)
	}
	return usagef("%s: NAME: %v", name(cmd), err)
}

// principalLeaf makes a principal command that takes NAME.
func principalLeaf(use, short string, run func(ctx context.Context, name string) error) *cobra.Command {
	cmd := leaf(use+" NAME", short, []string{"NAME"}, func(cmd *cobra.Command, pos []string) error {
		if err := principalArg(cmd, pos[0]); err != nil {
			return err
		}
		return run(cmd.Context(), pos[0])
	})
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	setRole(cmd, roleOfficer)
	return cmd
}

// principalJSON is a principal in --json output, in the AWS SDKs'
// spelling; SecretAccessKey only in the answers of create and rotate-key.
type principalJSON struct {
	Name        string
	Arn         string
	AccessKeyId string
	Created     string // RFC 3339, UTC; "" if the node did not say
}

type credentialsJSON struct {
	Name            string
	Arn             string
	AccessKeyId     string
	SecretAccessKey string
	Created         string
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) kmsPrincipalCreateCommand() *cobra.Command {
	var policyFile string
	var admin bool
	cmd := principalLeaf("create", "Create a KMS principal with an access key (crypto officer)",
		func(ctx context.Context, name string) error {
			doc, err := createPolicy(policyFile, admin)
			if err != nil {
				return err
			}
			return c.kmsCredentials(ctx, name, "create KMS principal", func(hc *client.Client, ctx context.Context, name string) (*client.KMSCredentials, error) {
				return hc.CreateKMSPrincipalWithPolicy(ctx, name, doc)
			})
		})
	cmd.Long = `Create a KMS principal and its access key, and print the access key ID and
the secret access key, with export lines for the AWS CLI and SDKs. The secret
is shown this once: store it now.

A new principal has no identity policy, as a new IAM user has none: it may
use a key only where the key policy names it or a grant allows it. --policy
FILE gives it the IAM policy document in FILE; --admin gives it one that
allows every KMS action on every resource (where a key policy delegates to
the account, as the default key policy does, it may do everything).
docs/kms-access.md says how the policies combine.`
	cmd.Example = `  hsm kms principal create ci-deployer
  hsm kms principal create app --admin
  hsm kms principal create reader --policy reader-policy.json --json > reader.json`
	cmd.Flags().StringVar(&policyFile, "policy", "", "the principal's identity policy: an IAM policy document in FILE")
	cmd.Flags().BoolVar(&admin, "admin", false, "an identity policy that allows kms:* on every resource")
	return cmd
}

func (c *cli) kmsPrincipalRotateCommand() *cobra.Command {
	cmd := principalLeaf("rotate-key", "Give a KMS principal a new access key; the old one stops working (crypto officer)",
		func(ctx context.Context, name string) error {
			return c.kmsCredentials(ctx, name, "rotate the key of KMS principal", (*client.Client).RotateKMSPrincipalKey)
		})
	cmd.Long = `Give a KMS principal a new access key and end its old one on every node, and
print the new access key ID and secret as create does. The secret is shown
this once.`
	return cmd
}

// kmsCredentials runs create or rotate-key and prints the new access key.
func (c *cli) kmsCredentials(ctx context.Context, name, what string,
	do func(*client.Client, context.Context, string) (*client.KMSCredentials, error)) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	cr, err := do(hc, ctx, name)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, name, err)
	}
	if c.g.json {
		return c.printJSON(credentialsJSON{Name: cr.Name, Arn: cr.ARN, AccessKeyId: cr.AccessKeyID,
			SecretAccessKey: cr.SecretAccessKey, Created: rfc3339(cr.Created)})
	}
	_, err = fmt.Fprint(c.io.out, credentialsText(cr))
	return err
}

// credentialsText is the human output of create and rotate-key: the
// secret appears once, in its export line.
func credentialsText(cr *client.KMSCredentials) string {
	var b strings.Builder
	fmt.Fprintf(&b, "KMS principal:  %s\n", clean(cr.Name))
	fmt.Fprintf(&b, "ARN:            %s\n", clean(cr.ARN))
	fmt.Fprintf(&b, "access key ID:  %s\n", clean(cr.AccessKeyID))
	b.WriteString("\nThe secret access key (the last line) is shown this once and never again:\n" +
		"the cluster keeps it only sealed. Store it now. If it is lost, make a new\n" +
		"one with 'hsm kms principal rotate-key " + clean(cr.Name) + "'.\n\n")
	fmt.Fprintf(&b, "export AWS_ACCESS_KEY_ID=%s\n", shellQuote(cr.AccessKeyID))
	fmt.Fprintf(&b, "export AWS_SECRET_ACCESS_KEY=%s\n", shellQuote(cr.SecretAccessKey))
	return b.String()
}

// shellQuote makes s one word for a POSIX shell: as it is when it holds
// only characters no shell treats specially, else in single quotes. What
// the node sent is pasted into a shell: it must not run anything.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-./:=@_%,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (c *cli) kmsPrincipalListCommand() *cobra.Command {
	cmd := leaf("list", "List the KMS principals, without their secrets (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.kmsPrincipalList(cmd.Context()) })
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) kmsPrincipalList(ctx context.Context) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	list, err := hc.ListKMSPrincipals(ctx)
	if err != nil {
		return fmt.Errorf("list KMS principals: %w", err)
	}
	rows := make([]principalJSON, 0, len(list))
	for _, p := range list {
		rows = append(rows, principalJSON{Name: p.Name, Arn: p.ARN, AccessKeyId: p.AccessKeyID, Created: rfc3339(p.Created)})
	}
	if c.g.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tACCESS KEY ID\tCREATED\tARN")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(r.Name), orDash(clean(r.AccessKeyId)), orDash(r.Created), orDash(clean(r.Arn)))
	}
	return tw.Flush()
}

func (c *cli) kmsPrincipalDeleteCommand() *cobra.Command {
	cmd := principalLeaf("delete", "Delete a KMS principal; its access key stops working (crypto officer)",
		func(ctx context.Context, name string) error { return c.kmsPrincipalDelete(ctx, name) })
	return cmd
}

func (c *cli) kmsPrincipalDelete(ctx context.Context, name string) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.DeleteKMSPrincipal(ctx, name); err != nil {
		return fmt.Errorf("delete KMS principal %q: %w", name, err)
	}
	return c.say(map[string]any{"Name": name, "Deleted": true},
		"deleted KMS principal %q: its access key no longer works", name)
}

// ---- kms cluster: the HSM clusters of custom key stores ----

// maxPEMFile bounds the certificate and key files kms cluster add reads.
const maxPEMFile = 64 << 10

// clusterIDArg checks a cluster ID on the command line.
func clusterIDArg(cmd *cobra.Command, arg string) error {
	if err := pki.ValidateClusterID(arg); err != nil {
		return usagef("%s: CLUSTER-ID: %q is not a cluster ID (the HSM_CLUSTER_ID that cluster's scripts/cluster.sh printed, or 'hsm cluster status' there)", name(cmd), arg)
	}
	return nil
}

// readPEMFile reads a certificate or key file of at most maxPEMFile bytes.
// Errors name the file, never its content.
func readPEMFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("--%s: read %s: %w", flag, path, err)
	}
	if len(b) > maxPEMFile {
		clear(b)
		return nil, fmt.Errorf("--%s: %s is larger than %d bytes: not a PEM certificate or key", flag, path, maxPEMFile)
	}
	return b, nil
}

func (c *cli) kmsClusterAddCommand() *cobra.Command {
	var certFile, keyFile string
	cmd := &cobra.Command{
		Use:   "add CLUSTER-ID NODE-ADDRESS... --cert FILE --key FILE",
		Short: "Tell the KMS where an HSM cluster's nodes are, and how to reach them (crypto officer)",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usagef("%s: missing CLUSTER-ID", name(cmd))
			case len(args) == 1:
				return usagef("%s: missing NODE-ADDRESS (host:port of a node of that cluster; give each node)", name(cmd))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, pos []string) error {
			return c.kmsClusterAdd(cmd, pos[0], pos[1:], certFile, keyFile)
		},
	}
	cmd.Long = `Record, for the KMS, the nodes (host:port of their HSM API) of the openhsm
cluster CLUSTER-ID, and the client certificate and private key (PEM files,
issued by that cluster's CA with 'hsm cluster issue-client') its custom key
stores reach them with. The certificate must be a client certificate bound
to CLUSTER-ID. Adding a known cluster again replaces its nodes and
certificate; stores use them from their next connection.

The key file is read and sent once, and never printed; the cluster keeps
the key sealed under its domain key.`
	cmd.Example = `  hsm kms cluster add cluster-hbfpljz6sbvb7ttw 10.0.1.5:4001 10.0.1.6:4001 \
      --cert kms-a.pem --key kms-a-key.pem`
	cmd.Flags().StringVar(&certFile, "cert", "", "client certificate `file` (PEM) issued by that cluster's CA (required)")
	cmd.Flags().StringVar(&keyFile, "key", "", "its private key `file` (PEM; required)")
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) kmsClusterAdd(cmd *cobra.Command, id string, nodes []string, certFile, keyFile string) error {
	if err := clusterIDArg(cmd, id); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := client.CheckNodeAddr(n); err != nil {
			return usagef("%s: NODE-ADDRESS: %v", name(cmd), err)
		}
	}
	if certFile == "" || keyFile == "" {
		return usagef("%s: --cert and --key are required", name(cmd))
	}
	certPEM, err := readPEMFile("cert", certFile)
	if err != nil {
		return err
	}
	keyPEM, err := readPEMFile("key", keyFile)
	if err != nil {
		return err
	}
	defer clear(keyPEM)
	// The pair and the binding are checked here too, before logging in,
	// so a wrong file is named by its path.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("kms cluster add: %s and %s are not a certificate and its key: %w", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("kms cluster add: %s: %w", certFile, err)
	}
	bound, err := pki.ClusterIDOf(leaf)
	if err != nil {
		return fmt.Errorf("kms cluster add: %s: %w", certFile, err)
	}
	if bound != id {
		return fmt.Errorf("kms cluster add: %s is bound to cluster %s, not %s: issue one with that cluster's CA", certFile, bound, id)
	}
	ctx := cmd.Context()
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.AddKMSHSMCluster(ctx, id, nodes, certPEM, keyPEM); err != nil {
		return fmt.Errorf("add HSM cluster %s: %w", id, err)
	}
	return c.say(map[string]any{"ClusterId": id, "Nodes": nodes, "Added": true},
		"added HSM cluster %s (%d node(s)): custom key stores may now name it", id, len(nodes))
}

// hsmClusterJSON is an HSM cluster in --json output: never its key.
type hsmClusterJSON struct {
	ClusterId   string
	Nodes       []string
	Certificate string // PEM
	Added       string // RFC 3339, UTC; "" if the node did not say
}

func (c *cli) kmsClusterListCommand() *cobra.Command {
	cmd := leaf("list", "List the HSM clusters the KMS knows, without their keys (crypto officer)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.kmsClusterList(cmd.Context()) })
	cmd.Long = `List the HSM clusters the KMS knows: each one's ID, its nodes, and the
client certificate the KMS reaches it with (its common name and when it
expires; --json gives the PEM). Never a private key.`
	setRole(cmd, roleOfficer)
	return cmd
}

// certSummary is a PEM certificate's common name and expiry, or "-".
func certSummary(p string) string {
	b, _ := pem.Decode([]byte(p))
	if b == nil || b.Type != "CERTIFICATE" {
		return "-"
	}
	crt, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "-"
	}
	return fmt.Sprintf("%s (until %s)", clean(crt.Subject.CommonName), crt.NotAfter.UTC().Format("2006-01-02"))
}

func (c *cli) kmsClusterList(ctx context.Context) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	list, err := hc.ListKMSHSMClusters(ctx)
	if err != nil {
		return fmt.Errorf("list HSM clusters: %w", err)
	}
	rows := make([]hsmClusterJSON, 0, len(list))
	for _, h := range list {
		rows = append(rows, hsmClusterJSON{ClusterId: h.ClusterID, Nodes: h.Nodes, Certificate: h.CertPEM, Added: rfc3339(h.Added)})
	}
	if c.g.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER ID\tNODES\tADDED\tCLIENT CERTIFICATE")
	for _, r := range rows {
		nodes := make([]string, len(r.Nodes))
		for i, n := range r.Nodes {
			nodes[i] = clean(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(r.ClusterId), orDash(strings.Join(nodes, ",")), orDash(r.Added), certSummary(r.Certificate))
	}
	return tw.Flush()
}

func (c *cli) kmsClusterRemoveCommand() *cobra.Command {
	cmd := leaf("remove CLUSTER-ID", "Make the KMS forget an HSM cluster no custom key store uses (crypto officer)", []string{"CLUSTER-ID"},
		func(cmd *cobra.Command, pos []string) error { return c.kmsClusterRemove(cmd, pos[0]) })
	cmd.Long = `Make the KMS forget the HSM cluster CLUSTER-ID, and its client certificate
and key. A cluster that a custom key store names is refused: delete the
store first.`
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) kmsClusterRemove(cmd *cobra.Command, id string) error {
	if err := clusterIDArg(cmd, id); err != nil {
		return err
	}
	ctx := cmd.Context()
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := hc.RemoveKMSHSMCluster(ctx, id); err != nil {
		return fmt.Errorf("remove HSM cluster %s: %w", id, err)
	}
	return c.say(map[string]any{"ClusterId": id, "Removed": true}, "removed HSM cluster %s", id)
}
