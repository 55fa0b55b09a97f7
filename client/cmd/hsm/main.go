// Command hsm administers an openhsm cluster: it makes the cluster's
// certificates, activates the cluster, manages users and lists, deletes and
// shares keys.
//
// Run "hsm help" for the commands. Exit status: 0 on success, 1 when an
// operation fails (the message, with its CKR_ name, goes to standard
// error), 2 on a usage error.
//
// Credentials come from --user / HSM_USER and --password-file /
// HSM_PASSWORD; passwords are never taken on the command line and never
// printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/openhsm/openhsm/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// Environment variables besides client.EnvConfig.
const (
	envUser     = "HSM_USER"
	envPassword = "HSM_PASSWORD"
)

// stdio is the command's view of its process, replaceable in tests.
type stdio struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct {
	msg  string
	full bool // print the whole usage text
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const usageText = `usage: hsm [global flags] COMMAND [arguments]

Cluster:
  hsm cluster init --dir DIR [--nodes N] [--hosts h1,h2] [--client NAME] [--node-addrs a:p,b:p]
                   [--cluster-id ID | --backup FILE]
        make the cluster CA, node certificates node1..nodeN, a client
        certificate and DIR/client.toml (nothing is overwritten), all bound
        to the cluster ID (given, the backup's, or a new random one)
  hsm cluster activate --user NAME --password-file F
        create the first crypto officer of a new cluster
  hsm cluster status
        the members, the leader, and each member's health
  hsm cluster add-node NAME ADDR
        add a running node made with 'hsmd init -join' (crypto officer)
  hsm cluster remove-node NAME
        remove a member (crypto officer)
  hsm cluster issue-node --dir DIR [--hosts h1,h2] NAME
        issue one more node certificate with the CA in DIR
  hsm cluster rotate-passphrase --old FILE --new FILE
        re-seal the domain key under a new passphrase (crypto officer,
        who gives the current one too); update every node's passphrase_file
  hsm info
        describe the node and cluster

Users (logged in as a crypto officer, except list and passwd):
  hsm user create NAME --role CO|CU --new-password-file F
  hsm user list
  hsm user delete NAME
  hsm user reset NAME --new-password-file F
  hsm user unlock NAME
  hsm user passwd --new-password-file F      change your own password

Keys:
  hsm key list [--label L] [--class private|public|secret|certificate|data]
  hsm key delete ID
  hsm key share ID USER
  hsm key unshare ID USER

Backups (crypto officer, except restore):
  hsm backup create [-o FILE]     take a backup now (on the node asked); -o also copies it here
  hsm backup list                 every node's backups
  hsm backup get ID -o FILE       copy a backup here
  hsm backup restore FILE         restore into a new cluster that was never activated
                                  (its nodes need the old cluster's passphrase or key file)

` + quorumUsage + `
Audit trail:
  hsm audit list [--since TIME] [--filter-user NAME] [--object ID] [--node ADDR]
  hsm audit verify [--node ADDR]  recompute a node's chain (crypto officer)
Certificates (docs/certificates.md):
  hsm cert revoke FINGERPRINT|PEMFILE [--name N]   deny a certificate on every node (crypto officer)
  hsm cert list                                    the deny-list (logged in)
  hsm cert renew --dir DIR [--revoke] NAME         a fresh certificate and key for NAME with the
                                                   CA in DIR; --revoke denies the old one

Global flags (accepted before or after the command):
  --config PATH         client configuration (default $HSM_CONFIG, else ` + client.DefaultConfigPath + `)
  --json                machine-readable output
  --user NAME           user to log in as (default $HSM_USER)
  --password-file F     file whose first line is the password; - for standard
                        input (default: $HSM_PASSWORD)
  --quorum-token ID     an approved quorum token for a protected command

Password files: the first line, without its line ending; - reads standard input.
Exit status: 0 success, 1 operation failed, 2 usage error.
`

// globals are the flags every command accepts.
type globals struct {
	config       string
	json         bool
	user         string
	passwordFile string
	quorumToken  string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", g.config, "client configuration `file`")
	fs.BoolVar(&g.json, "json", g.json, "machine-readable output")
	fs.StringVar(&g.user, "user", g.user, "user `name` to log in as")
	fs.StringVar(&g.passwordFile, "password-file", g.passwordFile, "`file` holding the password (- for standard input)")
	fs.StringVar(&g.quorumToken, "quorum-token", g.quorumToken, "an approved quorum token `ID`")
}

// cli is one run of the command.
type cli struct {
	io        *stdio
	g         globals
	stdinUsed bool
}

func run(ctx context.Context, args []string, sio *stdio) int {
	c := &cli{io: sio}
	err := c.dispatch(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(sio.out, usageText)
		return 0
	case errors.As(err, &ue):
		if ue.full {
			fmt.Fprintf(sio.err, "hsm: %s\n%s", ue.msg, usageText)
		} else {
			fmt.Fprintf(sio.err, "hsm: %s\nRun 'hsm help' for usage.\n", ue.msg)
		}
		return 2
	default:
		fmt.Fprintf(sio.err, "hsm: %s\n", err)
		return 1
	}
}

// newFlags makes a flag set for a command that carries the global flags.
// Errors are returned, not printed: run prints them.
func (c *cli) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c.g.register(fs)
	return fs
}

// parse parses flags that may come before, between or after the
// positional arguments, and checks the number of positional arguments.
func (c *cli) parse(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != len(names) {
		want := "no arguments"
		if len(names) > 0 {
			want = fmt.Sprint(names)
		}
		if len(pos) < len(names) {
			return nil, usagef("%s: missing %s", fs.Name(), names[len(pos)])
		}
		return nil, usagef("%s: too many arguments %q (want %s)", fs.Name(), pos[len(names):], want)
	}
	for i, p := range pos {
		if p == "" {
			return nil, usagef("%s: %s is empty", fs.Name(), names[i])
		}
	}
	return pos, nil
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	fs := c.newFlags("hsm")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	args = fs.Args()
	if len(args) == 0 {
		return &usageError{msg: "no command", full: true}
	}
	cmd, args := args[0], args[1:]
	sub := func() (string, []string, error) {
		// Global flags may also sit between the command and the
		// subcommand.
		gfs := c.newFlags(cmd)
		if err := gfs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", nil, err
			}
			return "", nil, usagef("%s: %v", cmd, err)
		}
		args := gfs.Args()
		if len(args) == 0 || args[0] == "" {
			return "", nil, usagef("%s: missing subcommand", cmd)
		}
		return args[0], args[1:], nil
	}
	switch cmd {
	case "help", "-h", "--help":
		return flag.ErrHelp
	case "info":
		return c.info(ctx, args)
	case "cluster":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "init":
			return c.clusterInit(rest)
		case "activate":
			return c.clusterActivate(ctx, rest)
		case "status":
			return c.clusterStatus(ctx, rest)
		case "add-node":
			return c.clusterAddNode(ctx, rest)
		case "remove-node":
			return c.clusterRemoveNode(ctx, rest)
		case "issue-node":
			return c.clusterIssueNode(rest)
		case "rotate-passphrase":
			return c.clusterRotatePassphrase(ctx, rest)
		}
		return usagef("cluster: unknown subcommand %q", s)
	case "user":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "create":
			return c.userCreate(ctx, rest)
		case "list":
			return c.userList(ctx, rest)
		case "delete":
			return c.userSimple(ctx, "user delete", rest, (*client.Client).DeleteUser, "deleted user")
		case "reset":
			return c.userReset(ctx, rest)
		case "unlock":
			return c.userSimple(ctx, "user unlock", rest, (*client.Client).UnlockUser, "unlocked user")
		case "passwd":
			return c.userPasswd(ctx, rest)
		}
		return usagef("user: unknown subcommand %q", s)
	case "backup":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "create":
			return c.backupCreate(ctx, rest)
		case "list":
			return c.backupList(ctx, rest)
		case "get":
			return c.backupGet(ctx, rest)
		case "restore":
			return c.backupRestore(ctx, rest)
		}
		return usagef("backup: unknown subcommand %q", s)
	case "key":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "list":
			return c.keyList(ctx, rest)
		case "delete":
			return c.keyDelete(ctx, rest)
		case "share":
			return c.keyShare(ctx, rest, false)
		case "unshare":
			return c.keyShare(ctx, rest, true)
		}
		return usagef("key: unknown subcommand %q", s)
	case "quorum":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		return c.quorum(ctx, s, rest)
	case "audit":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		return c.audit(ctx, s, rest)
	case "cert":
		s, rest, err := sub()
		if err != nil {
			return err
		}
		return c.certCommand(ctx, s, rest)
	}
	return usagef("unknown command %q", cmd)
}
