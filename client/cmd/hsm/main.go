// Command hsm administers an openhsm cluster: it makes the cluster's
// certificates, activates the cluster, manages users and lists, deletes and
// shares keys.
//
// The commands are a cobra tree (root.go builds it); "hsm --help" lists
// them and docs/cli/ holds a generated page for each ("go generate" in this
// folder regenerates them, and a test fails when they are stale).
//
// Exit status: 0 on success, 1 when an operation fails (the message, with
// its CKR_ name and what to do next, goes to standard error), 2 on a usage
// error.
//
// Credentials come from --user / HSM_USER and --password-file /
// HSM_PASSWORD; passwords are never taken on the command line and never
// printed.
package main

//go:generate go run . gen-docs ../../../docs/cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	sio := &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv,
		errTerminal: term.IsTerminal(int(os.Stderr.Fd()))}
	code := run(ctx, os.Args[1:], sio)
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
	// errTerminal: err is a terminal, so progress is drawn as a bar there
	// (else it is printed as plain lines).
	errTerminal bool
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct {
	msg  string
	full bool // print the command's whole help text
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// globals are the flags every command accepts.
type globals struct {
	config       string
	json         bool
	user         string
	passwordFile string
	quorumToken  string
}

// cli is one run of the command.
type cli struct {
	io        *stdio
	g         globals
	stdinUsed bool
	// who is logged in, once a session exists: the hints for refusals
	// name them.
	loggedUser, loggedRole string
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, sio *stdio) int {
	c := &cli{io: sio}
	root := c.newRoot()
	root.SetArgs(normalizeArgs(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if cmd == nil {
		cmd = root
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.full {
			fmt.Fprintf(sio.err, "hsm: %s\n", ue.msg)
			cmd.SetOut(sio.err)
			cmd.Usage()
		} else {
			fmt.Fprintf(sio.err, "hsm: %s\nRun '%s --help' for usage.\n", ue.msg, cmd.CommandPath())
		}
		return 2
	}
	fmt.Fprintf(sio.err, "hsm: %s\n", err)
	if hint := c.nextStep(cmd, err); hint != "" {
		fmt.Fprintf(sio.err, "  next: %s\n", hint)
	}
	return 1
}

// name is a command's path without "hsm ", as messages name it.
func name(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
