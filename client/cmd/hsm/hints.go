package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/object"
)

// Who may run a command, as its annotation "role" says; the hints for a
// refusal use it.
const (
	roleNone    = ""        // no login (the default)
	roleAny     = "any"     // any logged-in user
	roleOfficer = "officer" // a crypto officer
	roleOwner   = "owner"   // the crypto user who owns the key
)

func setRole(cmd *cobra.Command, role string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations["role"] = role
}

func roleOf(cmd *cobra.Command) string { return cmd.Annotations["role"] }

// loginHow is how to log in, for the hints.
var loginHow = fmt.Sprintf("set %s and %s, or pass --user NAME and --password-file FILE", envUser, envPassword)

// nextStep says what to do about an operation's failure, or "" when the
// error says it already (the node's messages often do) or nothing useful
// can be added. It never repeats a secret: it sees only names and paths.
func (c *cli) nextStep(cmd *cobra.Command, err error) string {
	cfg := c.configPath()
	var ce *client.ConfigError
	if errors.As(err, &ce) {
		return configHint(ce, cfg)
	}
	msg := err.Error()
	rv := client.RV(err)
	var le *loginError
	isLogin := errors.As(err, &le)
	switch {
	case unreachable(msg):
		return fmt.Sprintf("start hsmd on the nodes listed in %s (or fix that list) and check that this machine reaches them; once some answer, 'hsm cluster status' shows which", cfg)
	case strings.Contains(msg, "client TLS setup failed"):
		return fmt.Sprintf("check the ca, cert and key files named in %s: they must be the cluster CA and a client certificate and key it issued ('hsm cluster init', 'hsm cert renew')", cfg)
	case isTLSRefusal(msg):
		return fmt.Sprintf("the node refused this client's certificate: check that cert and key in %s are a client certificate of this cluster, not revoked ('hsm cert list'); 'hsm cert renew --dir DIR NAME' issues a fresh one", cfg)
	case strings.Contains(msg, "try again in"):
		return "wait as the node says, then run the command again"
	}
	if isLogin {
		switch rv {
		case ck.CKR_PIN_INCORRECT, ck.CKR_USER_PIN_NOT_INITIALIZED:
			return fmt.Sprintf("check the user name and the password of %q (%s, or the first line of --password-file); an account locks after %d wrong passwords", le.user, envPassword, object.MaxFailedLogins)
		case ck.CKR_PIN_LOCKED:
			return fmt.Sprintf("the account is locked: a crypto officer unlocks it with 'hsm user unlock %s'", le.user)
		}
		return ""
	}
	if rv != ck.CKR_USER_NOT_LOGGED_IN {
		return ""
	}
	if strings.Contains(msg, "session has ended") {
		return "run the command again: it logs in anew"
	}
	if c.loggedUser == "" {
		if roleOf(cmd) != roleNone {
			return "log in first: " + loginHow
		}
		return ""
	}
	who := fmt.Sprintf("you are logged in as %q, a %s", c.loggedUser, roleName(c.loggedRole))
	switch roleOf(cmd) {
	case roleOfficer:
		if c.loggedRole != object.RoleCO.String() {
			return who + "; this command needs a crypto officer: log in as one (" + loginHow + ")"
		}
	case roleOwner:
		if c.loggedRole != object.RoleCU.String() {
			return who + "; keys belong to crypto users: log in as the key's owner (" + loginHow + ")"
		}
		return "only the key's owner may do this: log in as the user 'hsm key list' shows as its OWNER"
	}
	return ""
}

func roleName(r string) string {
	switch r {
	case object.RoleCO.String():
		return "crypto officer"
	case object.RoleCU.String():
		return "crypto user"
	}
	return "user of role " + r
}

// configHint is the next step for a configuration that does not load.
func configHint(ce *client.ConfigError, cfg string) string {
	switch {
	case ce.Key == "" && errors.Is(ce, fs.ErrNotExist):
		return fmt.Sprintf("point --config or %s at the client.toml that 'hsm cluster init --dir DIR' wrote (or run it to make one); this run looked at %s", client.EnvConfig, cfg)
	case errors.Is(ce, fs.ErrPermission):
		return fmt.Sprintf("the file is not readable by this user (uid %d): run as a user who may read it, or give it a copy it may", os.Getuid())
	case ce.Key == "ca" || ce.Key == "cert" || ce.Key == "key":
		return fmt.Sprintf("fix %s in %s (relative paths are relative to that file), or make the files with 'hsm cluster init' or 'hsm cert renew'", ce.Key, ce.Path)
	case ce.Key != "":
		return fmt.Sprintf("fix %s in %s (docs/client.md lists the keys)", ce.Key, ce.Path)
	}
	return "fix the file (docs/client.md describes it), or point --config or " + client.EnvConfig + " at another"
}

// unreachable reports whether a message says no node answered at all, as
// opposed to a node that answered with a refusal.
func unreachable(msg string) bool {
	for _, s := range []string{
		"no HSM node could serve the call",
		"no HSM node answered",
		"connection refused",
		"no such host",
		"i/o timeout",
		"no route to host",
		"network is unreachable",
		"timed out",
		"the cluster has no leader",
	} {
		if strings.Contains(msg, s) {
			return !isTLSRefusal(msg)
		}
	}
	return false
}

// isTLSRefusal reports whether a node turned away this client's
// certificate in the handshake.
func isTLSRefusal(msg string) bool {
	for _, s := range []string{"bad certificate", "certificate required", "certificate revoked", "unknown certificate authority", "certificate is not valid"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
