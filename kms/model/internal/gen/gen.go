// Package gen turns the AWS KMS API model (botocore's service-2.json) into
// model_gen.go, the table package model validates requests with. The table
// is data only: every operation's input, output and declared errors, and
// every shape's type, members, required members, bounds, pattern, enum
// values, element, key and value shapes and sensitivity.
//
// Generate is strict. A key it does not know on a shape, a member or an
// operation, a type it does not know, a constraint on a type that cannot
// carry it, a dangling shape reference or a pattern package javare cannot
// translate is an error, not something to skip: a newer model that adds a
// kind of constraint must make the generator fail until the validator
// enforces it.
package gen

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/format"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/openhsm/openhsm/kms/model/internal/javare"
)

type rawModel struct {
	Version    string                     `json:"version"`
	Metadata   map[string]any             `json:"metadata"`
	Operations map[string]json.RawMessage `json:"operations"`
	Shapes     map[string]json.RawMessage `json:"shapes"`
}

type operation struct {
	Name   string
	Input  string
	Output string
	Errors []string
}

type member struct {
	Name       string
	Shape      string
	Required   bool
	Deprecated bool
}

type shape struct {
	Name               string
	Type               string
	Members            []member
	Min, Max           *int64
	Pattern            string
	Enum               []string
	Member, Key, Value string
	Sensitive          bool
	Exception          bool
}

// Keys the generator knows. Keys that only document (documentation,
// deprecatedMessage) or classify exceptions (exception, fault, error) do
// not constrain a request.
var (
	shapeKeys = set("type", "members", "required", "min", "max", "pattern", "enum", "member", "key", "value",
		"sensitive", "documentation", "exception", "fault", "error", "deprecated", "deprecatedMessage")
	memberKeys    = set("shape", "documentation", "deprecated", "deprecatedMessage")
	operationKeys = set("name", "http", "input", "output", "errors", "documentation", "documentationUrl",
		"deprecated", "deprecatedMessage")
	refKeys = set("shape", "documentation")
	// Which constraint keys each type may carry.
	allowed = map[string]map[string]bool{
		"structure": set("members", "required"),
		"string":    set("min", "max", "pattern", "enum"),
		"blob":      set("min", "max"),
		"integer":   set("min", "max"),
		"long":      set("min", "max"),
		"boolean":   set(),
		"timestamp": set(),
		"list":      set("member", "min", "max"),
		"map":       set("key", "value", "min", "max"),
	}
	constraintKeys = set("members", "required", "min", "max", "pattern", "enum", "member", "key", "value")
)

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// Generate returns the gofmt'ed source of model_gen.go for the gzipped
// model modelGz.
func Generate(modelGz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(modelGz))
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var m rawModel
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	meta := map[string]string{}
	for _, k := range []string{"apiVersion", "protocol", "jsonVersion", "targetPrefix", "uid", "serviceId"} {
		s, _ := m.Metadata[k].(string)
		if s == "" {
			return nil, fmt.Errorf("model metadata has no %s", k)
		}
		meta[k] = s
	}
	if meta["protocol"] != "json" || meta["jsonVersion"] != "1.1" {
		return nil, fmt.Errorf("model protocol is %s %s; the validator speaks AWS JSON 1.1", meta["protocol"], meta["jsonVersion"])
	}
	shapes := map[string]*shape{}
	for name, body := range m.Shapes {
		s, err := parseShape(name, body)
		if err != nil {
			return nil, err
		}
		shapes[name] = s
	}
	for _, s := range shapes {
		for _, ref := range refs(s) {
			if shapes[ref] == nil {
				return nil, fmt.Errorf("shape %s refers to %s, which the model does not define", s.Name, ref)
			}
		}
	}
	var ops []*operation
	for name, body := range m.Operations {
		op, err := parseOperation(name, body)
		if err != nil {
			return nil, err
		}
		for _, ref := range append([]string{op.Input, op.Output}, op.Errors...) {
			if ref != "" && shapes[ref] == nil {
				return nil, fmt.Errorf("operation %s refers to %s, which the model does not define", name, ref)
			}
		}
		if op.Input == "" || shapes[op.Input].Type != "structure" {
			return nil, fmt.Errorf("operation %s has no structure input", name)
		}
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b *operation) int { return strings.Compare(a.Name, b.Name) })
	sum := sha256.Sum256(raw)
	src := render(meta, hex.EncodeToString(sum[:]), ops, shapes)
	out, err := format.Source(src)
	if err != nil {
		return nil, fmt.Errorf("generated source does not parse: %w", err)
	}
	return out, nil
}

func keysOf(name, what string, body json.RawMessage, known map[string]bool) (map[string]json.RawMessage, error) {
	var kv map[string]json.RawMessage
	if err := json.Unmarshal(body, &kv); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, name, err)
	}
	for k := range kv {
		if !known[k] {
			return nil, fmt.Errorf("%s %s has key %q, which the generator does not know", what, name, k)
		}
	}
	return kv, nil
}

func parseShape(name string, body json.RawMessage) (*shape, error) {
	kv, err := keysOf(name, "shape", body, shapeKeys)
	if err != nil {
		return nil, err
	}
	s := &shape{Name: name}
	if err := json.Unmarshal(kv["type"], &s.Type); err != nil {
		return nil, fmt.Errorf("shape %s: type: %w", name, err)
	}
	can, ok := allowed[s.Type]
	if !ok {
		return nil, fmt.Errorf("shape %s has type %q, which the validator does not know", name, s.Type)
	}
	for k := range kv {
		if constraintKeys[k] && !can[k] {
			return nil, fmt.Errorf("shape %s: a %s cannot carry %q", name, s.Type, k)
		}
	}
	flag := func(k string) (bool, error) {
		if kv[k] == nil {
			return false, nil
		}
		var b bool
		err := json.Unmarshal(kv[k], &b)
		return b, err
	}
	if s.Sensitive, err = flag("sensitive"); err != nil {
		return nil, fmt.Errorf("shape %s: sensitive: %w", name, err)
	}
	if s.Exception, err = flag("exception"); err != nil {
		return nil, fmt.Errorf("shape %s: exception: %w", name, err)
	}
	for _, b := range []struct {
		key string
		dst **int64
	}{{"min", &s.Min}, {"max", &s.Max}} {
		if kv[b.key] == nil {
			continue
		}
		n, err := strconv.ParseInt(string(kv[b.key]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("shape %s: %s is not an integer: %s", name, b.key, kv[b.key])
		}
		*b.dst = &n
	}
	if s.Min != nil && s.Max != nil && *s.Min > *s.Max {
		return nil, fmt.Errorf("shape %s: min %d > max %d", name, *s.Min, *s.Max)
	}
	if kv["pattern"] != nil {
		if err := json.Unmarshal(kv["pattern"], &s.Pattern); err != nil {
			return nil, fmt.Errorf("shape %s: pattern: %w", name, err)
		}
		if _, err := javare.Compile(s.Pattern); err != nil {
			return nil, fmt.Errorf("shape %s: %w", name, err)
		}
	}
	if kv["enum"] != nil {
		if err := json.Unmarshal(kv["enum"], &s.Enum); err != nil {
			return nil, fmt.Errorf("shape %s: enum: %w", name, err)
		}
	}
	for _, r := range []struct {
		key string
		dst *string
	}{{"member", &s.Member}, {"key", &s.Key}, {"value", &s.Value}} {
		if kv[r.key] == nil {
			continue
		}
		ref, err := keysOf(name+"."+r.key, "reference", kv[r.key], refKeys)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(ref["shape"], r.dst); err != nil || *r.dst == "" {
			return nil, fmt.Errorf("shape %s: %s names no shape", name, r.key)
		}
	}
	if s.Type == "list" && s.Member == "" || s.Type == "map" && (s.Key == "" || s.Value == "") {
		return nil, fmt.Errorf("shape %s: a %s without its element shapes", name, s.Type)
	}
	if s.Type == "structure" {
		if err := parseMembers(s, kv); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseMembers reads a structure's members in the model's order.
func parseMembers(s *shape, kv map[string]json.RawMessage) error {
	var required []string
	if kv["required"] != nil {
		if err := json.Unmarshal(kv["required"], &required); err != nil {
			return fmt.Errorf("shape %s: required: %w", s.Name, err)
		}
	}
	if kv["members"] == nil {
		return fmt.Errorf("shape %s: a structure without members", s.Name)
	}
	dec := json.NewDecoder(bytes.NewReader(kv["members"]))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("shape %s: members is not an object", s.Name)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("shape %s: members: %w", s.Name, err)
		}
		name := t.(string)
		var body json.RawMessage
		if err := dec.Decode(&body); err != nil {
			return fmt.Errorf("shape %s: member %s: %w", s.Name, name, err)
		}
		mkv, err := keysOf(s.Name+"."+name, "member", body, memberKeys)
		if err != nil {
			return err
		}
		m := member{Name: name, Required: slices.Contains(required, name)}
		if err := json.Unmarshal(mkv["shape"], &m.Shape); err != nil || m.Shape == "" {
			return fmt.Errorf("member %s.%s names no shape", s.Name, name)
		}
		if mkv["deprecated"] != nil {
			if err := json.Unmarshal(mkv["deprecated"], &m.Deprecated); err != nil {
				return fmt.Errorf("member %s.%s: deprecated: %w", s.Name, name, err)
			}
		}
		if seen[name] {
			return fmt.Errorf("shape %s: member %s twice", s.Name, name)
		}
		seen[name] = true
		s.Members = append(s.Members, m)
	}
	for _, r := range required {
		if !seen[r] {
			return fmt.Errorf("shape %s requires %s, which is not a member", s.Name, r)
		}
	}
	return nil
}

func parseOperation(name string, body json.RawMessage) (*operation, error) {
	kv, err := keysOf(name, "operation", body, operationKeys)
	if err != nil {
		return nil, err
	}
	op := &operation{Name: name}
	var n string
	if err := json.Unmarshal(kv["name"], &n); err != nil || n != name {
		return nil, fmt.Errorf("operation %s is named %q inside", name, n)
	}
	for _, r := range []struct {
		key string
		dst *string
	}{{"input", &op.Input}, {"output", &op.Output}} {
		if kv[r.key] == nil {
			continue
		}
		ref, err := keysOf(name+"."+r.key, "reference", kv[r.key], refKeys)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(ref["shape"], r.dst); err != nil {
			return nil, fmt.Errorf("operation %s: %s: %w", name, r.key, err)
		}
	}
	if kv["errors"] != nil {
		var errs []json.RawMessage
		if err := json.Unmarshal(kv["errors"], &errs); err != nil {
			return nil, fmt.Errorf("operation %s: errors: %w", name, err)
		}
		for _, e := range errs {
			ref, err := keysOf(name+".errors", "reference", e, refKeys)
			if err != nil {
				return nil, err
			}
			var s string
			if err := json.Unmarshal(ref["shape"], &s); err != nil {
				return nil, fmt.Errorf("operation %s: errors: %w", name, err)
			}
			op.Errors = append(op.Errors, s)
		}
	}
	return op, nil
}

func refs(s *shape) []string {
	var r []string
	for _, m := range s.Members {
		r = append(r, m.Shape)
	}
	for _, x := range []string{s.Member, s.Key, s.Value} {
		if x != "" {
			r = append(r, x)
		}
	}
	return r
}

// goString quotes s as a Go literal, raw when that reads better.
func goString(s string) string {
	if strings.ContainsAny(s, "`\r") || !strconv.CanBackquote(s) {
		return strconv.Quote(s)
	}
	return "`" + s + "`"
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

var typeConst = map[string]string{
	"structure": "TypeStructure", "string": "TypeString", "blob": "TypeBlob", "integer": "TypeInteger",
	"long": "TypeLong", "boolean": "TypeBoolean", "timestamp": "TypeTimestamp", "list": "TypeList", "map": "TypeMap",
}

func render(meta map[string]string, sum string, ops []*operation, shapes map[string]*shape) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("// Code generated by kms/model/internal/gen from service-2.json.gz. DO NOT EDIT.\n\n")
	p("package model\n\n")
	p("// service is the model's metadata; ModelSHA256 is the SHA-256 of the uncompressed JSON.\n")
	p("var service = Service{APIVersion: %q, TargetPrefix: %q, JSONVersion: %q, Protocol: %q, UID: %q, ServiceID: %q, ModelSHA256: %q}\n\n",
		meta["apiVersion"], meta["targetPrefix"], meta["jsonVersion"], meta["protocol"], meta["uid"], meta["serviceId"], sum)
	p("// operations has every operation of the model, by name.\n")
	p("var operations = map[string]*Operation{\n")
	for _, op := range ops {
		p("%q: {Name: %q, Input: %q, Output: %q, Errors: []string{%s}},\n", op.Name, op.Name, op.Input, op.Output, quoteAll(op.Errors))
	}
	p("}\n\n")
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	slices.Sort(names)
	p("// shapes has every shape of the model, by name.\n")
	p("var shapes = map[string]*Shape{\n")
	for _, n := range names {
		s := shapes[n]
		var f []string
		f = append(f, fmt.Sprintf("Name: %q", s.Name), "Type: "+typeConst[s.Type])
		if s.Min != nil {
			f = append(f, fmt.Sprintf("Min: bound(%d)", *s.Min))
		}
		if s.Max != nil {
			f = append(f, fmt.Sprintf("Max: bound(%d)", *s.Max))
		}
		if s.Pattern != "" {
			f = append(f, "Pattern: "+goString(s.Pattern))
		}
		if s.Enum != nil {
			f = append(f, "Enum: []string{"+quoteAll(s.Enum)+"}")
		}
		if s.Member != "" {
			f = append(f, fmt.Sprintf("Member: %q", s.Member))
		}
		if s.Key != "" {
			f = append(f, fmt.Sprintf("Key: %q, Value: %q", s.Key, s.Value))
		}
		if s.Sensitive {
			f = append(f, "Sensitive: true")
		}
		if s.Exception {
			f = append(f, "Exception: true")
		}
		if s.Type != "structure" {
			p("%q: {%s},\n", n, strings.Join(f, ", "))
			continue
		}
		p("%q: {%s, Members: []Member{\n", n, strings.Join(f, ", "))
		for _, m := range s.Members {
			extra := ""
			if m.Required {
				extra += ", Required: true"
			}
			if m.Deprecated {
				extra += ", Deprecated: true"
			}
			p("{Name: %q, Shape: %q%s},\n", m.Name, m.Shape, extra)
		}
		p("}},\n")
	}
	p("}\n")
	return b.Bytes()
}
