package main

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
)

func TestNextStep(t *testing.T) {
	officerCmd := &cobra.Command{Use: "create"}
	setRole(officerCmd, roleOfficer)
	ownerCmd := &cobra.Command{Use: "delete"}
	setRole(ownerCmd, roleOwner)
	anyCmd := &cobra.Command{Use: "list"}
	setRole(anyCmd, roleAny)
	noLogin := &cobra.Command{Use: "status"}
	env := map[string]string{client.EnvConfig: "/x/client.toml"}

	for _, tc := range []struct {
		name       string
		cmd        *cobra.Command
		user, role string
		err        error
		want       string // "" : no hint
	}{
		{"no config", noLogin, "", "", &client.ConfigError{Path: "/x/client.toml", Msg: "cannot read the file", Err: fs.ErrNotExist},
			"point --config or HSM_CONFIG at the client.toml that 'hsm cluster init --dir DIR' wrote"},
		{"unreadable config", noLogin, "", "", &client.ConfigError{Path: "/x/client.toml", Err: fs.ErrPermission}, "not readable by this user (uid "},
		{"no cert", noLogin, "", "", &client.ConfigError{Path: "/x/client.toml", Key: "cert", Err: fmt.Errorf("file %q: %w", "/x/c.pem", fs.ErrNotExist)},
			"fix cert in /x/client.toml"},
		{"bad key", noLogin, "", "", &client.ConfigError{Path: "/x/client.toml", Key: "timeout", Msg: "must be positive"}, "fix timeout in /x/client.toml"},
		{"unreachable", anyCmd, "", "", &loginError{"bob", hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "no HSM node answered (127.0.0.1:1: connect: connection refused)")},
			"start hsmd on the nodes listed in /x/client.toml"},
		{"all nodes failed", anyCmd, "bob", "CU", hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "no HSM node could serve the call (a: x; b: y)"), "start hsmd"},
		{"refused certificate", anyCmd, "", "", hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "no HSM node answered (a: remote error: tls: bad certificate)"),
			"the node refused this client's certificate"},
		{"TLS files", anyCmd, "", "", &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "client TLS setup failed", Err: errors.New("x")}, "check the ca, cert and key files"},
		{"wrong password", anyCmd, "", "", &loginError{"bob", hsmerr.Errorf(ck.CKR_PIN_INCORRECT, "wrong")},
			`check the user name and the password of "bob" (HSM_PASSWORD, or the first line of --password-file)`},
		{"locked", anyCmd, "", "", &loginError{"bob", hsmerr.Errorf(ck.CKR_PIN_LOCKED, "locked")}, "hsm user unlock bob"},
		{"throttled", anyCmd, "", "", &loginError{"bob", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "too many failed logins; try again in 4s")}, "wait as the node says"},
		{"a crypto user", officerCmd, "cu1", "CU", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "crypto users cannot manage users"),
			`you are logged in as "cu1", a crypto user; this command needs a crypto officer`},
		{"an officer's key", ownerCmd, "admin", "CO", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "crypto officers cannot destroy keys"),
			`you are logged in as "admin", a crypto officer; keys belong to crypto users`},
		{"another's key", ownerCmd, "cu2", "CU", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "no"), "only the key's owner"},
		{"session ended", anyCmd, "cu1", "CU", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the session has ended; log in again"), "run the command again"},
		{"not logged in", anyCmd, "", "", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in"), "log in first: set HSM_USER and HSM_PASSWORD, or pass --user NAME and --password-file FILE"},
		// The node's message says it already.
		{"quorum", officerCmd, "admin", "CO", hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "needs the approval of 2 crypto officers: hsm quorum token create ..."), ""},
		{"officer refused anyway", officerCmd, "admin", "CO", hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "x"), ""},
		{"other", anyCmd, "bob", "CU", hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad"), ""},
	} {
		c := &cli{io: &stdio{getenv: func(k string) string { return env[k] }}, loggedUser: tc.user, loggedRole: tc.role}
		got := c.nextStep(tc.cmd, tc.err)
		if tc.want == "" {
			assert.Empty(t, got, tc.name)
		} else {
			assert.Contains(t, got, tc.want, tc.name)
		}
	}
}
