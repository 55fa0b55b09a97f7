package suite

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/model"
)

// The limits of the AWS model, turned into requests: for every member of
// an operation's input that the model bounds (a string's or blob's
// length, an integer's value, a list's length, and the same for the
// members of list elements and nested structures), the value at each bound
// and one past it. The bounds and the paths come from kms/model's table,
// never from this file; the expected ValidationException message is
// written here from the shape, in AWS's form.

// limitCase is one generated request.
type limitCase struct {
	op    string
	path  string // as AWS writes it: 'grantTokens', 'tags.1.member.tagKey'
	label string // the path, or path.member for a list's scalar element
	shape string // the bounded shape
	bound string // "min" or "max"
	n     int64  // the length or value sent
	past  bool   // past the bound: refused
	input model.Object
	// constraint is the model's text of the bound; want, for a past case,
	// the whole message of the ValidationException.
	constraint string
	want       string
}

func (c limitCase) name() string {
	where := "at"
	if c.past {
		where = "past"
	}
	label := c.label
	if label == "" {
		label = c.path
	}
	return fmt.Sprintf("%s/%s/%s_%s_%d", c.op, label, where, c.bound, c.n)
}

func shapeOf(t *testing.T, name string) *model.Shape {
	t.Helper()
	s, ok := model.LookupShape(name)
	require.True(t, ok, "the model has shape %s", name)
	return s
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

// javaPattern compiles a model pattern (java.util.regex) for the few
// constructs the KMS model uses, anchored as AWS matches the whole value.
func javaPattern(t *testing.T, p string) *regexp.Regexp {
	t.Helper()
	goP := regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(p, `\x{$1}`)
	re, err := regexp.Compile(`^(?:` + goP + `)$`)
	require.NoError(t, err, "pattern %q", p)
	return re
}

// bounded says whether a shape has a length or value bound.
func bounded(s *model.Shape) bool { return s.Min != nil || s.Max != nil }

func scalarType(s *model.Shape) bool {
	switch s.Type {
	case model.TypeString, model.TypeBlob, model.TypeInteger, model.TypeLong:
		return true
	}
	return false
}

// fill is a value of a string or blob shape of length n, or an integer
// of value n, that breaks no other constraint of the shape where it can:
// alias names keep their prefix and policies are JSON when long enough.
func fill(s *model.Shape, n int64) any {
	switch s.Type {
	case model.TypeInteger, model.TypeLong:
		return n
	case model.TypeBlob:
		return bytes.Repeat([]byte{'b'}, int(n))
	}
	switch {
	case s.Name == "AliasNameType" && n > int64(len("alias/")):
		return "alias/" + strings.Repeat("a", int(n)-len("alias/"))
	case s.Name == "PolicyType":
		doc := rootPolicy
		if n >= int64(len(doc)) {
			return doc[:len(doc)-1] + strings.Repeat(" ", int(n)-len(doc)) + "}"
		}
	}
	return strings.Repeat("a", int(n))
}

// lengthOf is the measure a bound applies to.
func lengthOf(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case []byte:
		return int64(len(x))
	case string:
		return int64(len([]rune(x)))
	case []any:
		return int64(len(x))
	}
	panic(fmt.Sprintf("no length of %T", v))
}

func numeric(s *model.Shape) bool { return s.Type == model.TypeInteger || s.Type == model.TypeLong }

// boundTexts are AWS's constraint texts for a shape's bounds.
func boundTexts(s *model.Shape) (min, max string) {
	what := "length"
	if numeric(s) {
		what = "value"
	}
	if s.Min != nil {
		min = fmt.Sprintf("Member must have %s greater than or equal to %d", what, *s.Min)
	}
	if s.Max != nil {
		max = fmt.Sprintf("Member must have %s less than or equal to %d", what, *s.Max)
	}
	return
}

// broken lists the constraints of scalar shape s that v breaks, in the
// order AWS reports them: pattern, then length or value.
func broken(t *testing.T, s *model.Shape, v any) []string {
	var out []string
	if str, ok := v.(string); ok && s.Pattern != "" && !javaPattern(t, s.Pattern).MatchString(str) {
		out = append(out, "Member must satisfy regular expression pattern: "+s.Pattern)
	}
	min, max := boundTexts(s)
	n := lengthOf(v)
	if s.Min != nil && n < *s.Min {
		out = append(out, min)
	}
	if s.Max != nil && n > *s.Max {
		out = append(out, max)
	}
	return out
}

// render is a value as AWS's messages print it.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case []byte:
		return fmt.Sprintf("java.nio.HeapByteBuffer[pos=0 lim=%d cap=%d]", len(x), len(x))
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	panic(fmt.Sprintf("no rendering of %T", v))
}

// message is a ValidationException's message for violations at path.
func message(path string, v any, sensitive bool, constraints []string) string {
	texts := make([]string, len(constraints))
	for i, c := range constraints {
		if sensitive {
			texts[i] = fmt.Sprintf("Value at '%s' failed to satisfy constraint: %s", path, c)
		} else {
			texts[i] = fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", render(v), path, c)
		}
	}
	head := "1 validation error detected: "
	if len(texts) > 1 {
		head = fmt.Sprintf("%d validation errors detected: ", len(texts))
	}
	return head + strings.Join(texts, "; ")
}

// elementConstraints is how AWS lists the constraints of a list's scalar
// element shape: maximum, minimum, pattern, enum.
func elementConstraints(s *model.Shape) string {
	var out []string
	min, max := boundTexts(s)
	if max != "" {
		out = append(out, max)
	}
	if min != "" {
		out = append(out, min)
	}
	if s.Pattern != "" {
		out = append(out, "Member must satisfy regular expression pattern: "+s.Pattern)
	}
	if s.Enum != nil {
		out = append(out, "Member must satisfy enum value set: ["+strings.Join(s.Enum, ", ")+"]")
	}
	return "Member must satisfy constraint: [" + strings.Join(out, ", ") + "]"
}

// bounds are a shape's bounds as (name, at, past, hasPast).
type boundAt struct {
	name     string
	at, past int64
	hasPast  bool
}

func boundsOf(s *model.Shape) []boundAt {
	var out []boundAt
	if s.Min != nil {
		out = append(out, boundAt{"min", *s.Min, *s.Min - 1, numeric(s) || *s.Min > 0})
	}
	if s.Max != nil {
		out = append(out, boundAt{"max", *s.Max, *s.Max + 1, true})
	}
	return out
}

// validElement is a valid value of a list's element shape, the i-th.
func validElement(t *testing.T, s *model.Shape, i int) any {
	t.Helper()
	switch {
	case s.Type == model.TypeStructure:
		o := model.Object{}
		for _, m := range s.Members {
			if m.Required {
				ms := shapeOf(t, m.Shape)
				require.True(t, scalarType(ms), "element member %s.%s is scalar", s.Name, m.Name)
				o[m.Name] = fmt.Sprintf("e%d%s", i, strings.ToLower(m.Name[:1]))
			}
		}
		return o
	case s.Type == model.TypeString && s.Enum == nil:
		min := int64(1)
		if s.Min != nil {
			min = max(*s.Min, 1)
		}
		return fill(s, min)
	}
	t.Fatalf("the generator has no valid element of %s (%s)", s.Name, s.Type)
	return nil
}

func cloneObject(o model.Object) model.Object {
	out := model.Object{}
	maps.Copy(out, o)
	return out
}

// limitCases generates the cases of one operation from its base request.
func limitCases(t *testing.T, op string, base model.Object) []limitCase {
	t.Helper()
	o, ok := model.LookupOperation(op)
	require.True(t, ok, "the model has operation %s", op)
	in := shapeOf(t, o.Input)
	var out []limitCase
	add := func(path string, s *model.Shape, b boundAt, n int64, past bool, set func(model.Object) any) {
		c := limitCase{op: op, path: path, shape: s.Name, bound: b.name, n: n, past: past, input: cloneObject(base)}
		if s.Name != "" && scalarType(s) && !strings.Contains(path, ".") {
			if top := shapeOf(t, memberShape(t, in, path)); top.Type == model.TypeList {
				c.label = path + ".member"
			}
		}
		min, max := boundTexts(s)
		c.constraint = max
		if b.name == "min" {
			c.constraint = min
		}
		v := set(c.input)
		if past {
			c.want = wantFor(t, path, s, v)
		}
		out = append(out, c)
	}
	for _, m := range in.Members {
		s := shapeOf(t, m.Shape)
		p := lowerFirst(m.Name)
		switch {
		case scalarType(s):
			for _, b := range boundsOf(s) {
				for _, past := range []bool{false, true} {
					if past && !b.hasPast {
						continue
					}
					n := b.at
					if past {
						n = b.past
					}
					add(p, s, b, n, past, func(o model.Object) any { v := fill(s, n); o[m.Name] = v; return v })
				}
			}
		case s.Type == model.TypeList:
			elem := shapeOf(t, s.Member)
			for _, b := range boundsOf(s) {
				for _, past := range []bool{false, true} {
					if past && !b.hasPast {
						continue
					}
					n := b.at
					if past {
						n = b.past
					}
					add(p, s, b, n, past, func(o model.Object) any {
						l := make([]any, n)
						for i := range l {
							l[i] = validElement(t, elem, i)
						}
						o[m.Name] = l
						return listCase{list: l}
					})
				}
			}
			switch {
			case scalarType(elem) && bounded(elem):
				for _, b := range boundsOf(elem) {
					for _, past := range []bool{false, true} {
						if past && !b.hasPast {
							continue
						}
						n := b.at
						if past {
							n = b.past
						}
						add(p, elem, b, n, past, func(o model.Object) any {
							l := []any{fill(elem, n)}
							o[m.Name] = l
							return elementCase{list: l, elem: elem}
						})
					}
				}
			case elem.Type == model.TypeStructure:
				for _, em := range elem.Members {
					es := shapeOf(t, em.Shape)
					if !bounded(es) {
						continue
					}
					require.True(t, scalarType(es), "the generator bounds scalar members of list elements only (%s.%s)", elem.Name, em.Name)
					ep := p + ".1.member." + lowerFirst(em.Name)
					for _, b := range boundsOf(es) {
						for _, past := range []bool{false, true} {
							if past && !b.hasPast {
								continue
							}
							n := b.at
							if past {
								n = b.past
							}
							add(ep, es, b, n, past, func(o model.Object) any {
								e := validElement(t, elem, 0).(model.Object)
								v := fill(es, n)
								e[em.Name] = v
								o[m.Name] = []any{e}
								return v
							})
						}
					}
				}
			default:
				require.False(t, bounded(elem), "the generator has no case for the bounded element %s of %s", elem.Name, s.Name)
			}
		case s.Type == model.TypeStructure:
			for _, sm := range s.Members {
				ss := shapeOf(t, sm.Shape)
				if !bounded(ss) {
					continue
				}
				require.True(t, scalarType(ss), "the generator bounds scalar members of structures only (%s.%s)", s.Name, sm.Name)
				sp := p + "." + lowerFirst(sm.Name)
				for _, b := range boundsOf(ss) {
					for _, past := range []bool{false, true} {
						if past && !b.hasPast {
							continue
						}
						n := b.at
						if past {
							n = b.past
						}
						add(sp, ss, b, n, past, func(o model.Object) any {
							// The base request's structure, if it has one,
							// keeps the structure's other (required) members.
							st := model.Object{}
							if cur, ok := o[m.Name].(model.Object); ok {
								st = maps.Clone(cur)
							}
							v := fill(ss, n)
							st[sm.Name] = v
							o[m.Name] = st
							return v
						})
					}
				}
			}
		case s.Type == model.TypeMap:
			require.False(t, bounded(s) || bounded(shapeOf(t, s.Key)) || bounded(shapeOf(t, s.Value)),
				"the generator has no case for the bounded map %s", s.Name)
		}
	}
	return out
}

// memberShape is the shape name of the input member at a top-level path.
func memberShape(t *testing.T, in *model.Shape, path string) string {
	t.Helper()
	for _, m := range in.Members {
		if lowerFirst(m.Name) == path {
			return m.Shape
		}
	}
	t.Fatalf("%s has no member %s", in.Name, path)
	return ""
}

// listCase and elementCase tell wantFor how a list broke its bound.
type listCase struct{ list []any }
type elementCase struct {
	list []any
	elem *model.Shape
}

func wantFor(t *testing.T, path string, s *model.Shape, v any) string {
	switch x := v.(type) {
	case listCase:
		min, max := boundTexts(s)
		c := max
		if s.Min != nil && lengthOf(x.list) < *s.Min {
			c = min
		}
		return message(path, x.list, false, []string{c})
	case elementCase:
		return message(path, x.list, false, []string{elementConstraints(x.elem)})
	}
	return message(path, v, s.Sensitive, broken(t, s, v))
}

// sdkCall calls operation op of the unchanged SDK client with an input
// made from a model object: each member into the SDK input's field of the
// same name (AWS JSON 1.1 uses the model's names), so the SDK frames,
// signs and sends it as any program would.
func sdkCall(t *testing.T, ctx context.Context, c *kms.Client, op string, in model.Object) error {
	t.Helper()
	m := reflect.ValueOf(c).MethodByName(op)
	require.True(t, m.IsValid(), "the SDK client has %s", op)
	input := reflect.New(m.Type().In(1).Elem())
	setStruct(t, input.Elem(), in)
	res := m.Call([]reflect.Value{reflect.ValueOf(ctx), input})
	err, _ := res[1].Interface().(error)
	return err
}

func setStruct(t *testing.T, v reflect.Value, o model.Object) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(o)) {
		f := v.FieldByName(name)
		require.True(t, f.IsValid(), "the SDK's %s has a field %s", v.Type(), name)
		setValue(t, f, o[name])
	}
}

var timeType = reflect.TypeOf(time.Time{})

func setValue(t *testing.T, f reflect.Value, val any) {
	t.Helper()
	switch {
	case f.Kind() == reflect.Pointer:
		p := reflect.New(f.Type().Elem())
		setValue(t, p.Elem(), val)
		f.Set(p)
	case f.Type() == timeType:
		f.Set(reflect.ValueOf(val.(time.Time)))
	case f.Kind() == reflect.String:
		f.SetString(val.(string))
	case f.Kind() == reflect.Int32 || f.Kind() == reflect.Int64:
		f.SetInt(val.(int64))
	case f.Kind() == reflect.Bool:
		f.SetBool(val.(bool))
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
		f.SetBytes(val.([]byte))
	case f.Kind() == reflect.Slice:
		l := val.([]any)
		s := reflect.MakeSlice(f.Type(), len(l), len(l))
		for i, e := range l {
			setValue(t, s.Index(i), e)
		}
		f.Set(s)
	case f.Kind() == reflect.Map:
		src := val.(map[string]any)
		m := reflect.MakeMapWithSize(f.Type(), len(src))
		for k, e := range src {
			ev := reflect.New(f.Type().Elem()).Elem()
			setValue(t, ev, e)
			m.SetMapIndex(reflect.ValueOf(k).Convert(f.Type().Key()), ev)
		}
		f.Set(m)
	case f.Kind() == reflect.Struct:
		setStruct(t, f, val.(model.Object))
	default:
		t.Fatalf("no way to set a %s from %T", f.Type(), val)
	}
}
