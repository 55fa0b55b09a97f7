package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/openhsm/openhsm/client"
)

// maxPasswordFile bounds what is read from a password file.
const maxPasswordFile = 4096

// readSecret reads a password from path ("-": standard input): the first
// line without its line ending. what names it in errors ("--password-file").
func (c *cli) readSecret(flagName, path string) (string, error) {
	var r io.Reader
	if path == "-" {
		if c.stdinUsed {
			return "", usagef("%s: standard input is already used by another flag", flagName)
		}
		c.stdinUsed = true
		r = c.io.in
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flagName, err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(io.LimitReader(r, maxPasswordFile), 256)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: read %s: %w", flagName, displayPath(path), err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s: %s holds no password on its first line", flagName, displayPath(path))
	}
	return line, nil
}

func displayPath(p string) string {
	if p == "-" {
		return "standard input"
	}
	return fmt.Sprintf("%q", p)
}

// credentials returns the user name and password to log in with, from the
// flags or the environment.
func (c *cli) credentials() (user, password string, err error) {
	user, password, err = c.userPassword()
	switch {
	case err != nil:
		return "", "", err
	case user == "":
		return "", "", usagef("log in first: set %s and %s, or pass --user NAME and --password-file FILE", envUser, envPassword)
	case password == "":
		return "", "", usagef("log in first: no password for %q: set %s or pass --password-file FILE (- reads standard input)", user, envPassword)
	}
	return user, password, nil
}

// activateCredentials are the name and password of the first crypto
// officer, which cluster activate creates.
func (c *cli) activateCredentials() (user, password string, err error) {
	user, password, err = c.userPassword()
	switch {
	case err != nil:
		return "", "", err
	case user == "":
		return "", "", usagef("cluster activate: name the first crypto officer: pass --user NAME (or set %s), and give the password with --password-file FILE (or %s)", envUser, envPassword)
	case password == "":
		return "", "", usagef("cluster activate: give %q a password: pass --password-file FILE (- reads standard input) or set %s", user, envPassword)
	}
	return user, password, nil
}

// userPassword reads the user and password from the flags or the
// environment; either may be "".
func (c *cli) userPassword() (user, password string, err error) {
	user = c.g.user
	if user == "" {
		user = c.io.getenv(envUser)
	}
	if user == "" {
		return "", "", nil
	}
	if c.g.passwordFile != "" {
		password, err = c.readSecret("--password-file", c.g.passwordFile)
		return user, password, err
	}
	return user, c.io.getenv(envPassword), nil
}

// configPath is the client configuration file this run reads.
func (c *cli) configPath() string {
	path := c.g.config
	if path == "" {
		path = c.io.getenv(client.EnvConfig)
	}
	if path == "" {
		path = client.DefaultConfigPath
	}
	return path
}

func (c *cli) loadConfig() (*client.Config, error) {
	return client.LoadConfig(c.configPath())
}

// connect loads the configuration and dials the cluster. The returned
// function closes the client (logging out first if logged in).
func (c *cli) connect(ctx context.Context) (*client.Client, func(), error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	var closeLog io.Closer
	if cfg.LogFile != "" {
		l, cl, err := cfg.NewLogger()
		if err != nil {
			return nil, nil, err
		}
		logger, closeLog = l, cl
	}
	hc, err := client.Dial(ctx, cfg, client.WithLogger(logger))
	if err != nil {
		if closeLog != nil {
			closeLog.Close()
		}
		return nil, nil, err
	}
	if c.g.quorumToken != "" {
		hc.SetQuorumToken(c.g.quorumToken)
	}
	done := func() {
		if hc.LoggedIn() {
			hc.Logout(context.WithoutCancel(ctx))
		}
		hc.Close()
		if closeLog != nil {
			closeLog.Close()
		}
	}
	return hc, done, nil
}

// session reads the credentials, connects and logs in.
func (c *cli) session(ctx context.Context) (*client.Client, func(), error) {
	user, password, err := c.credentials()
	if err != nil {
		return nil, nil, err
	}
	return c.sessionAs(ctx, user, password)
}

func (c *cli) sessionAs(ctx context.Context, user, password string) (*client.Client, func(), error) {
	hc, done, err := c.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := c.login(ctx, hc, user, password); err != nil {
		done()
		return nil, nil, err
	}
	return hc, done, nil
}

// loginError is a failed login: the hints treat it apart from refusals
// of a logged-in user.
type loginError struct {
	user string
	err  error
}

func (e *loginError) Error() string { return fmt.Sprintf("log in as %q: %v", e.user, e.err) }
func (e *loginError) Unwrap() error { return e.err }

// login logs hc in and remembers who is logged in, for the hints.
func (c *cli) login(ctx context.Context, hc *client.Client, user, password string) error {
	if err := hc.Login(ctx, user, password); err != nil {
		return &loginError{user: user, err: err}
	}
	c.loggedUser, c.loggedRole = hc.User(), hc.Role()
	return nil
}

// printJSON writes v as indented JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.io.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// say prints a human message, or the JSON value in --json mode.
func (c *cli) say(v any, format string, args ...any) error {
	if c.g.json {
		return c.printJSON(v)
	}
	_, err := fmt.Fprintf(c.io.out, format+"\n", args...)
	return err
}
