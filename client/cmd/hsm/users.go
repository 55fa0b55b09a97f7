package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

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

func (c *cli) userCreate(ctx context.Context, args []string) error {
	fs := c.newFlags("user create")
	role := fs.String("role", "", "CO (crypto officer) or CU (crypto user)")
	pwFile := fs.String("new-password-file", "", "file holding the new user's password (- for standard input)")
	pos, err := c.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if *role == "" {
		return usagef("user create: --role CO|CU is required")
	}
	r, err := object.ParseRole(*role)
	if err != nil {
		return usagef("user create: --role: %v", err)
	}
	return c.withNewPassword(ctx, "user create", *pwFile, func(hc *client.Client, _, newPW string) error {
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

func (c *cli) userList(ctx context.Context, args []string) error {
	fs := c.newFlags("user list")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
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

// userSimple runs a command that takes a user name and nothing else.
func (c *cli) userSimple(ctx context.Context, name string, args []string,
	do func(*client.Client, context.Context, string) error, done string) error {
	fs := c.newFlags(name)
	pos, err := c.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
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

func (c *cli) userReset(ctx context.Context, args []string) error {
	fs := c.newFlags("user reset")
	pwFile := fs.String("new-password-file", "", "file holding the new password (- for standard input)")
	pos, err := c.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	return c.withNewPassword(ctx, "user reset", *pwFile, func(hc *client.Client, _, newPW string) error {
		if err := hc.SetPassword(ctx, pos[0], newPW); err != nil {
			return fmt.Errorf("reset the password of %q: %w", pos[0], err)
		}
		return c.say(map[string]any{"user": pos[0], "ok": true}, "reset the password of %q", pos[0])
	})
}

func (c *cli) userPasswd(ctx context.Context, args []string) error {
	fs := c.newFlags("user passwd")
	pwFile := fs.String("new-password-file", "", "file holding your new password (- for standard input)")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	return c.withNewPassword(ctx, "user passwd", *pwFile, func(hc *client.Client, user, newPW string) error {
		if err := hc.SetPassword(ctx, user, newPW); err != nil {
			return fmt.Errorf("change your password: %w", err)
		}
		return c.say(map[string]any{"user": user, "ok": true}, "changed the password of %q", user)
	})
}
