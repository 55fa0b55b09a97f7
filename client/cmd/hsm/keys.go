package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

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

func (c *cli) keyList(ctx context.Context, args []string) error {
	fs := c.newFlags("key list")
	label := fs.String("label", "", "only objects with this label")
	class := fs.String("class", "", "only objects of this class: private, public, secret, certificate or data")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	var tmpl object.Template
	if *class != "" {
		found := false
		for _, cl := range classes {
			if cl.name == *class {
				tmpl = append(tmpl, object.Attribute{Type: ck.CKA_CLASS, Value: object.EncodeUlong(cl.class)})
				found = true
			}
		}
		if !found {
			return usagef("key list: --class %q: want private, public, secret, certificate or data", *class)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "label" {
			tmpl = append(tmpl, object.Attribute{Type: ck.CKA_LABEL, Value: []byte(*label)})
		}
	})
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

// withObject runs a command on one object: it parses the arguments (the
// object's ID, then those named by more), logs in and calls do with the
// client, the ID and the positional arguments.
func (c *cli) withObject(ctx context.Context, name string, args []string, more []string,
	do func(hc *client.Client, id uint64, pos []string) error) error {
	fs := c.newFlags(name)
	pos, err := c.parse(fs, args, append([]string{"ID"}, more...)...)
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	return do(hc, id, pos)
}

func (c *cli) keyDelete(ctx context.Context, args []string) error {
	return c.withObject(ctx, "key delete", args, nil, func(hc *client.Client, id uint64, _ []string) error {
		if err := hc.DestroyObject(ctx, id); err != nil {
			return fmt.Errorf("delete object %d: %w", id, err)
		}
		return c.say(map[string]any{"id": id, "deleted": true}, "deleted object %d", id)
	})
}

func (c *cli) keyShare(ctx context.Context, args []string, unshare bool) error {
	name := "key share"
	if unshare {
		name = "key unshare"
	}
	return c.withObject(ctx, name, args, []string{"USER"}, func(hc *client.Client, id uint64, pos []string) error {
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
	})
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
