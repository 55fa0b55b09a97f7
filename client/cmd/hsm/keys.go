package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/object"
)

// classes are the --class values and how objects' classes are shown.
var classes = []struct {
	name  string
	class uint64
}{
	{"private", ck.CKO_PRIVATE_KEY},
	{"public", ck.CKO_PUBLIC_KEY},
	{"secret", ck.CKO_SECRET_KEY},
	{"certificate", ck.CKO_CERTIFICATE},
	{"data", ck.CKO_DATA},
}

func className(v uint64) string {
	for _, c := range classes {
		if c.class == v {
			return c.name
		}
	}
	return ck.ClassName(v)
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 0, 64)
	if err != nil || id == 0 {
		return 0, usagef("bad object ID %q: want a positive number", s)
	}
	return id, nil
}

// keyRow is one line of key list; its JSON form is the --json output.
type keyRow struct {
	ID         uint64   `json:"id"`
	Class      string   `json:"class"`
	KeyType    string   `json:"key_type"`
	Label      string   `json:"label"`
	CKAID      string   `json:"cka_id"`
	Owner      string   `json:"owner"`
	SharedWith []string `json:"shared_with"`
}

func rowOf(o *client.ObjectInfo) keyRow {
	r := keyRow{ID: o.ID, Owner: o.Owner, SharedWith: o.SharedWith}
	if r.SharedWith == nil {
		r.SharedWith = []string{}
	}
	if v, ok := o.Ulong(ck.CKA_CLASS); ok {
		r.Class = className(v)
	}
	if v, ok := o.Ulong(ck.CKA_KEY_TYPE); ok {
		r.KeyType = strings.TrimPrefix(ck.KeyTypeName(v), "CKK_")
	}
	if v, ok := o.Attr(ck.CKA_LABEL); ok {
		r.Label = string(v)
	}
	if v, ok := o.Attr(ck.CKA_ID); ok {
		r.CKAID = hex.EncodeToString(v)
	}
	return r
}

func (c *cli) keyCommand() *cobra.Command {
	return group("key", "List, delete and share keys",
		`Keys belong to crypto users. key list shows what the user who logs in may see;
delete, share and unshare are for the key's owner. ID is the object ID that
key list shows.`,
		c.keyListCommand(),
		c.keyGenerateAESCommand(),
		c.keyObjectCommand("delete ID", "Delete a key or object (its owner)", nil, c.keyDelete),
		c.keyObjectCommand("share ID USER", "Let another crypto user use a key (its owner)", []string{"USER"}, c.keyShare(false)),
		c.keyObjectCommand("unshare ID USER", "Stop sharing a key with a user (its owner)", []string{"USER"}, c.keyShare(true)),
	)
}

func (c *cli) keyListCommand() *cobra.Command {
	var label, class string
	cmd := leaf("list [--label L] [--class CLASS]", "List the keys and objects you may see (logged in)", nil,
		func(cmd *cobra.Command, _ []string) error {
			return c.keyList(cmd.Context(), label, cmd.Flags().Changed("label"), class)
		})
	cmd.Example = `  hsm key list --class secret --json`
	cmd.Flags().StringVar(&label, "label", "", "only objects with this label")
	cmd.Flags().StringVar(&class, "class", "", "only objects of this class: private, public, secret, certificate or data")
	names := make([]string, len(classes))
	for i, cl := range classes {
		names[i] = cl.name
	}
	fixedValues(cmd, "class", names...)
	setRole(cmd, roleAny)
	return cmd
}

func (c *cli) keyList(ctx context.Context, label string, byLabel bool, class string) error {
	var tmpl object.Template
	if class != "" {
		found := false
		for _, cl := range classes {
			if cl.name == class {
				tmpl = append(tmpl, object.Attribute{Type: ck.CKA_CLASS, Value: object.EncodeUlong(cl.class)})
				found = true
			}
		}
		if !found {
			return usagef("key list: --class %q: want private, public, secret, certificate or data", class)
		}
	}
	if byLabel {
		tmpl = append(tmpl, object.Attribute{Type: ck.CKA_LABEL, Value: []byte(label)})
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	objs, err := hc.ListObjects(ctx, tmpl, 0)
	if err != nil {
		return err
	}
	rows := make([]keyRow, 0, len(objs))
	for i := range objs {
		rows = append(rows, rowOf(&objs[i]))
	}
	if c.g.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.io.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLASS\tKEY TYPE\tLABEL\tCKA_ID\tOWNER\tSHARED WITH")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, dash(r.Class), dash(r.KeyType),
			dash(clean(r.Label)), dash(r.CKAID), dash(clean(r.Owner)), dash(clean(strings.Join(r.SharedWith, ","))))
	}
	return tw.Flush()
}

// objectFunc is the work of a command on one object, after login.
type objectFunc func(ctx context.Context, hc *client.Client, id uint64, pos []string) error

// keyObjectCommand makes a command on one object: it takes the object's
// ID, then the arguments named by more, logs in and calls do with the
// client, the ID and the positional arguments.
func (c *cli) keyObjectCommand(use, short string, more []string, do objectFunc) *cobra.Command {
	cmd := leaf(use, short, append([]string{"ID"}, more...), func(cmd *cobra.Command, pos []string) error {
		id, err := parseID(pos[0])
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		hc, done, err := c.session(ctx)
		if err != nil {
			return err
		}
		defer done()
		return do(ctx, hc, id, pos)
	})
	setRole(cmd, roleOwner)
	return cmd
}

func (c *cli) keyDelete(ctx context.Context, hc *client.Client, id uint64, _ []string) error {
	if err := hc.DestroyObject(ctx, id); err != nil {
		return fmt.Errorf("delete object %d: %w", id, err)
	}
	return c.say(map[string]any{"id": id, "deleted": true}, "deleted object %d", id)
}

func (c *cli) keyShare(unshare bool) objectFunc {
	return func(ctx context.Context, hc *client.Client, id uint64, pos []string) error {
		if unshare {
			if err := hc.Unshare(ctx, id, pos[1]); err != nil {
				return fmt.Errorf("unshare object %d with %q: %w", id, pos[1], err)
			}
			return c.say(map[string]any{"id": id, "user": pos[1], "shared": false}, "object %d is no longer shared with %q", id, pos[1])
		}
		if err := hc.Share(ctx, id, pos[1]); err != nil {
			return fmt.Errorf("share object %d with %q: %w", id, pos[1], err)
		}
		return c.say(map[string]any{"id": id, "user": pos[1], "shared": true}, "object %d is shared with %q", id, pos[1])
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clean makes a server-supplied string safe to print on a terminal:
// control characters and invalid UTF-8 are escaped, so a label cannot
// rewrite the screen or break the table.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) || r == '\t' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
