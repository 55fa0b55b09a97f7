package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/object"
)

// withNewPassword runs a command that sets a password: it reads the
// caller's credentials and the new password from pwFile, the
// --new-password-file flag's file (every secret before connecting), logs
// in and calls do with the client, the caller's user name and the new
// password.
func (c *cli) withNewPassword(ctx context.Context, name, pwFile string,
	do func(hc *client.Client, user, newPW string) error) error {
	if pwFile == "" {
		return usagef("%s: --new-password-file is required", name)
	}
	user, password, err := c.credentials()
	if err != nil {
		return err
	}
	newPW, err := c.readSecret("--new-password-file", pwFile)
	if err != nil {
		return err
	}
	hc, done, err := c.sessionAs(ctx, user, password)
	if err != nil {
		return err
	}
	defer done()
	return do(hc, user, newPW)
}

func (c *cli) userCommand() *cobra.Command {
	return group("user", "Manage users (crypto officer, except list and passwd)",
		`Crypto officers (CO) manage users and the cluster; crypto users (CU) own keys.
Every command here but list and passwd is a crypto officer's; create, delete,
reset, unlock and wipe take --quorum-token when user-management needs a quorum
(docs/quorum.md). New passwords come from --new-password-file (its first
line; - reads standard input), never from the command line.`,
		c.userCreateCommand(),
		c.userListCommand(),
		c.userSimpleCommand("delete", "Delete a user (crypto officer)", (*client.Client).DeleteUser, "deleted user"),
		c.userResetCommand(),
		c.userSimpleCommand("unlock", "Unlock a user locked out by failed logins (crypto officer)", (*client.Client).UnlockUser, "unlocked user"),
		c.userPasswdCommand(),
		c.userSimpleCommand("wipe", "Destroy every object a crypto user owns, keeping the user and password (crypto officer; PKCS#11 C_InitToken)",
			(*client.Client).WipeToken, "wiped the token of user"),
	)
}

func (c *cli) userCreateCommand() *cobra.Command {
	var role, pwFile string
	cmd := leaf("create NAME --role CO|CU --new-password-file FILE", "Create a user (crypto officer)", []string{"NAME"},
		func(cmd *cobra.Command, pos []string) error { return c.userCreate(cmd.Context(), role, pwFile, pos) })
	cmd.Example = `  printf '%s\n' 'alice-first-password' > pw
  hsm user create alice --role CU --new-password-file pw`
	cmd.Flags().StringVar(&role, "role", "", "CO (crypto officer) or CU (crypto user); required")
	cmd.Flags().StringVar(&pwFile, "new-password-file", "", "`file` holding the new user's password (- for standard input); required")
	fixedValues(cmd, "role", "CO", "CU")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) userCreate(ctx context.Context, role, pwFile string, pos []string) error {
	if role == "" {
		return usagef("user create: --role CO|CU is required")
	}
	r, err := object.ParseRole(role)
	if err != nil {
		return usagef("user create: --role: %v", err)
	}
	return c.withNewPassword(ctx, "user create", pwFile, func(hc *client.Client, _, newPW string) error {
		if err := hc.CreateUser(ctx, pos[0], r.String(), newPW); err != nil {
			return fmt.Errorf("create user %q: %w", pos[0], err)
		}
		return c.say(map[string]any{"user": pos[0], "role": r.String(), "created": true},
			"created user %q (%s)", pos[0], r)
	})
}

type userJSON struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	Locked       bool   `json:"locked"`
	FailedLogins int    `json:"failed_logins"`
	Created      string `json:"created,omitempty"`
}

func (c *cli) userListCommand() *cobra.Command {
	cmd := leaf("list", "List the users (logged in)", nil,
		func(cmd *cobra.Command, _ []string) error { return c.userList(cmd.Context()) })
	setRole(cmd, roleAny)
	return cmd
}

func (c *cli) userList(ctx context.Context) error {
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	users, err := hc.ListUsers(ctx)
	if err != nil {
		return err
	}
	rows := make([]userJSON, 0, len(users))
	for _, u := range users {
		j := userJSON{Name: u.Name, Role: u.Role, Locked: u.Locked, FailedLogins: u.FailedLogins}
		if !u.Created.IsZero() {
			j.Created = u.Created.UTC().Format(time.RFC3339)
		}
		rows = append(rows, j)
	}
	if c.g.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tLOCKED\tFAILED LOGINS\tCREATED")
	for _, r := range rows {
		created := r.Created
		if created == "" {
			created = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", clean(r.Name), clean(r.Role), yesNo(r.Locked), r.FailedLogins, created)
	}
	return tw.Flush()
}

// userSimpleCommand makes a command that takes a user name and nothing
// else.
func (c *cli) userSimpleCommand(use, short string, do func(*client.Client, context.Context, string) error, done string) *cobra.Command {
	cmd := leaf(use+" NAME", short, []string{"NAME"}, func(cmd *cobra.Command, pos []string) error {
		return c.userSimple(cmd.Context(), name(cmd), pos, do, done)
	})
	setRole(cmd, roleOfficer)
	return cmd
}

// userSimple runs a command that takes a user name and nothing else.
func (c *cli) userSimple(ctx context.Context, name string, pos []string,
	do func(*client.Client, context.Context, string) error, done string) error {
	hc, closeFn, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := do(hc, ctx, pos[0]); err != nil {
		return fmt.Errorf("%s %q: %w", name, pos[0], err)
	}
	return c.say(map[string]any{"user": pos[0], "ok": true}, "%s %q", done, pos[0])
}

func (c *cli) userResetCommand() *cobra.Command {
	var pwFile string
	cmd := leaf("reset NAME --new-password-file FILE", "Set another user's password (crypto officer)", []string{"NAME"},
		func(cmd *cobra.Command, pos []string) error { return c.userReset(cmd.Context(), pwFile, pos) })
	cmd.Flags().StringVar(&pwFile, "new-password-file", "", "`file` holding the new password (- for standard input); required")
	setRole(cmd, roleOfficer)
	return cmd
}

func (c *cli) userReset(ctx context.Context, pwFile string, pos []string) error {
	return c.withNewPassword(ctx, "user reset", pwFile, func(hc *client.Client, _, newPW string) error {
		if err := hc.SetPassword(ctx, pos[0], newPW); err != nil {
			return fmt.Errorf("reset the password of %q: %w", pos[0], err)
		}
		return c.say(map[string]any{"user": pos[0], "ok": true}, "reset the password of %q", pos[0])
	})
}

func (c *cli) userPasswdCommand() *cobra.Command {
	var pwFile string
	cmd := leaf("passwd --new-password-file FILE", "Change your own password", nil,
		func(cmd *cobra.Command, _ []string) error { return c.userPasswd(cmd.Context(), pwFile) })
	cmd.Long = `Change the password of the user who logs in (--user or $HSM_USER), who gives
the current one as usual (--password-file or $HSM_PASSWORD).`
	cmd.Flags().StringVar(&pwFile, "new-password-file", "", "`file` holding your new password (- for standard input); required")
	setRole(cmd, roleAny)
	return cmd
}

func (c *cli) userPasswd(ctx context.Context, pwFile string) error {
	return c.withNewPassword(ctx, "user passwd", pwFile, func(hc *client.Client, user, newPW string) error {
		if err := hc.SetPassword(ctx, user, newPW); err != nil {
			return fmt.Errorf("change your password: %w", err)
		}
		return c.say(map[string]any{"user": user, "ok": true}, "changed the password of %q", user)
	})
}
