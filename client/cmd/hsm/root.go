package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/openhsm/openhsm/client"
)

const rootLong = `hsm administers an openhsm cluster: it makes the cluster's certificates,
activates the cluster, manages users, keys, backups, quorum approvals, the
audit trail, revoked certificates and the KMS service's principals.

It reads the client configuration from --config, else $HSM_CONFIG, else
` + client.DefaultConfigPath + ` ('hsm cluster init' writes one). Commands that log in
take the user from --user or $HSM_USER and the password from the first line
of --password-file (- reads standard input) or from $HSM_PASSWORD.
Passwords are never taken on the command line and never printed.

Global flags may come before or after the command and its arguments;
single-dash spellings of long flags (-json, -user NAME) are accepted too.

Exit status: 0 success, 1 operation failed, 2 usage error.`

// newRoot builds the command tree of one run.
func (c *cli) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "hsm COMMAND",
		Short: "Administer an openhsm cluster",
		Long:  rootLong,
		Example: `  eval "$(cat run.env)"   # from 'make run': HSM_CONFIG, HSM_USER, HSM_PASSWORD
  hsm cluster status
  hsm user list --json
  hsm backup create -o today.hsmbak`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownSub(cmd, "unknown command", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return &usageError{msg: "no command", full: true}
		},
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		DisableAutoGenTag:     true, // docs/cli/ does not change with the date
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%s: %v", name(cmd), err)
	})
	// -o is the shorthand of --output; --o, which the flag package allowed,
	// still works.
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		if n == "o" {
			return "output"
		}
		return pflag.NormalizedName(n)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&c.g.config, "config", "", "client configuration `file` (default $HSM_CONFIG, else "+client.DefaultConfigPath+")")
	pf.BoolVar(&c.g.json, "json", false, "machine-readable output")
	pf.StringVar(&c.g.user, "user", "", "user `name` to log in as (default $HSM_USER)")
	pf.StringVar(&c.g.passwordFile, "password-file", "", "`file` whose first line is the password; - for standard input (default: $HSM_PASSWORD)")
	pf.StringVar(&c.g.quorumToken, "quorum-token", "", "an approved quorum token `ID` for a protected command")

	root.AddCommand(
		c.clusterCommand(),
		c.infoCommand(),
		c.userCommand(),
		c.keyCommand(),
		c.backupCommand(),
		c.quorumCommand(),
		c.auditCommand(),
		c.certCommand(),
		c.kmsCommand(),
		c.genDocsCommand(),
	)
	root.SetUsageTemplate(usageTemplate)
	root.SetIn(c.io.in)
	root.SetOut(c.io.out)
	root.SetErr(c.io.err)
	// cobra's completion command (bash, zsh, fish, powershell), made now
	// so that, like the other groups, an unknown shell is a usage error.
	root.InitDefaultCompletionCmd()
	if comp := subcommand(root, "completion"); comp != nil {
		comp.Use += " COMMAND"
		comp.Args = cobra.ArbitraryArgs
		comp.RunE = groupRun
	}
	return root
}

// usageTemplate is cobra's usage text with one change: a command with
// subcommands shows "COMMAND" in its usage line, not the line of a command
// that runs by itself (groups run only to report a missing or unknown
// subcommand).
const usageTemplate = `Usage:{{if .HasAvailableSubCommands}}
  {{.CommandPath}} COMMAND{{else if .Runnable}}
  {{.UseLine}}{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run "{{.CommandPath}} COMMAND --help" for more about a command.{{end}}
`

// group makes a command that only holds subcommands. Run by itself, or
// with a word that is not one of them, it is a usage error.
func group(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:                   use + " COMMAND",
		Short:                 short,
		Long:                  long,
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
		RunE:                  groupRun,
	}
	g.AddCommand(subs...)
	return g
}

// groupRun runs a group: with no subcommand or an unknown one.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 || args[0] == "" {
		return &usageError{msg: name(cmd) + ": missing subcommand", full: true}
	}
	return unknownSub(cmd, name(cmd)+": unknown subcommand", args[0])
}

// unknownSub is the usage error of a word that is not a subcommand of
// cmd, with the close ones, if any.
func unknownSub(cmd *cobra.Command, what, word string) error {
	msg := fmt.Sprintf("%s %q", what, word)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		return usagef("%s; did you mean %s?", msg, strings.Join(s, " or "))
	}
	var subs []string
	for _, sc := range cmd.Commands() {
		if sc.IsAvailableCommand() {
			subs = append(subs, sc.Name())
		}
	}
	return usagef("%s; the commands are %s", msg, strings.Join(subs, ", "))
}

// positional checks that a command gets exactly the named positional
// arguments, none of them empty.
func positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("%s: missing %s", name(cmd), names[len(args)])
		}
		if len(args) > len(names) {
			want := "no arguments"
			if len(names) > 0 {
				want = fmt.Sprint(names)
			}
			return usagef("%s: too many arguments %q (want %s)", name(cmd), args[len(names):], want)
		}
		for i, a := range args {
			if a == "" {
				return usagef("%s: %s is empty", name(cmd), names[i])
			}
		}
		return nil
	}
}

// leaf makes a command that runs: use is its usage line (name first),
// args the names of its positional arguments.
func leaf(use, short string, args []string, run func(cmd *cobra.Command, pos []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  positional(args...),
		RunE:  run,
	}
}

// fixedValues completes a flag from a fixed list.
func fixedValues(cmd *cobra.Command, flag string, values ...string) {
	cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// normalizeArgs rewrites single-dash long flags (-json, -user NAME,
// -password-file=F), which the standard flag package the CLI was first
// written with accepted, to the double-dash form pflag reads. Only names
// that are long flags of the command being run are rewritten; shorthands
// (-o, -h) and everything after "--" or in a flag's value stay as they
// are.
func normalizeArgs(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	cmd := root
	descend := true
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case a == "-" || !strings.HasPrefix(a, "-"):
			if descend {
				if sub := subcommand(cmd, a); sub != nil {
					cmd = sub
				} else {
					descend = false
				}
			}
			out = append(out, a)
			continue
		}
		body := strings.TrimPrefix(a, "-")
		long := strings.HasPrefix(body, "-")
		if !long {
			n, _, _ := strings.Cut(body, "=")
			if f := lookupFlag(cmd, n); n == "help" || f != nil && (len(n) > 1 || shorthand(cmd, n) == nil) {
				a, body, long = "-"+a, "-"+body, true
			}
		}
		out = append(out, a)
		// Copy a flag's separate value as it is, whatever it looks like.
		var f *pflag.Flag
		if long {
			n, _, hasValue := strings.Cut(body[1:], "=")
			if !hasValue {
				f = lookupFlag(cmd, n)
			}
		} else if len(body) == 1 {
			f = shorthand(cmd, body)
		}
		if f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

func subcommand(cmd *cobra.Command, word string) *cobra.Command {
	for _, sc := range cmd.Commands() {
		if sc.Name() == word || sc.HasAlias(word) {
			return sc
		}
	}
	return nil
}

// lookupFlag finds a long flag that cmd accepts: its own, or a persistent
// one of it or of a parent.
func lookupFlag(cmd *cobra.Command, n string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags(), cmd.InheritedFlags()} {
		if f := fs.Lookup(n); f != nil {
			return f
		}
	}
	return nil
}

// shorthand finds a flag by its one-letter shorthand, as lookupFlag.
func shorthand(cmd *cobra.Command, s string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags(), cmd.InheritedFlags()} {
		if f := fs.ShorthandLookup(s); f != nil {
			return f
		}
	}
	return nil
}

// genDocsCommand writes docs/cli/ ("go generate" in this folder runs it).
func (c *cli) genDocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write a markdown page for every command into DIR",
		Hidden: true,
		Args:   positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			return genDocs(cmd.Root(), pos[0])
		},
	}
}

// genDocs replaces the pages in dir by those of the tree root.
func genDocs(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, root.Name()+"*.md"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return doc.GenMarkdownTree(root, dir)
}
