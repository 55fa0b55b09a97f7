package model

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// sel selects a value inside an input: a structure member, a list's first
// element, the value or the key of a map's single entry.
type sel struct {
	member         string
	elem, val, key bool
}

// site is one place of an operation's input that carries constraints.
type site struct {
	sels  []sel
	shape *Shape
	path  string // where AWS reports the site's violations
	// bracket is "" for a member or an element of a list of structures,
	// or how the enclosing list or map reports an element, key or value:
	// "Member must satisfy constraint: [", "Map keys must ..." etc.
	bracket  string
	required bool
	parent   string // the structure a member site belongs to
}

// full is a valid value of s with every member present, so that every
// site of an input exists.
func full(s *Shape) any {
	switch s.Type {
	case TypeStructure:
		o := Object{}
		for i, m := range s.Members {
			o[m.Name] = full(s.members[i])
		}
		return o
	case TypeList:
		n := int64(1)
		if s.Min != nil && *s.Min > n {
			n = *s.Min
		}
		if s.Max != nil && *s.Max < n {
			n = *s.Max
		}
		l := make([]any, n)
		for i := range l {
			l[i] = full(s.elem)
		}
		return l
	case TypeMap:
		return map[string]any{validString(s.key): full(s.value)}
	case TypeString:
		return validString(s)
	case TypeBlob:
		return bytes.Repeat([]byte{7}, int(clamp(s, 1)))
	case TypeInteger, TypeLong:
		return clamp(s, 1)
	case TypeBoolean:
		return true
	case TypeTimestamp:
		return time.UnixMilli(1700000000123).UTC()
	}
	panic("shape type " + s.Type)
}

// clamp is n moved into s's bounds.
func clamp(s *Shape, n int64) int64 {
	if s.Min != nil && n < *s.Min {
		n = *s.Min
	}
	if s.Max != nil && n > *s.Max {
		n = *s.Max
	}
	return n
}

func validString(s *Shape) string {
	if s.Enum != nil {
		return s.Enum[0]
	}
	n := clamp(s, 1)
	if s.Pattern == "" {
		return strings.Repeat("a", int(n))
	}
	hi := int64(256)
	if s.Max != nil {
		hi = *s.Max
	}
	for ; n <= hi; n++ {
		if v, ok := matching(s.Pattern, int(n)); ok {
			return v
		}
	}
	panic("no valid value for " + s.Name)
}

// sites lists the constrained places under structure s.
func sites(s *Shape, sels []sel, path string, out []site) []site {
	for i, m := range s.Members {
		ms := s.members[i]
		ss := append(append([]sel{}, sels...), sel{member: m.Name})
		p := join(path, lowerFirst(m.Name))
		out = append(out, site{sels: ss, shape: ms, path: p, required: m.Required, parent: s.Name})
		out = inner(ms, ss, p, out)
	}
	return out
}

// inner lists the places inside container s at sels.
func inner(s *Shape, sels []sel, path string, out []site) []site {
	with := func(x sel) []sel { return append(append([]sel{}, sels...), x) }
	switch s.Type {
	case TypeStructure:
		return sites(s, sels, path, out)
	case TypeList:
		if scalar(s.elem) {
			return append(out, site{sels: with(sel{elem: true}), shape: s.elem, path: path, bracket: "Member must satisfy constraint: ["})
		}
		p := path + ".1.member"
		out = append(out, site{sels: with(sel{elem: true}), shape: s.elem, path: p})
		return inner(s.elem, with(sel{elem: true}), p, out)
	case TypeMap:
		out = append(out, site{sels: with(sel{key: true}), shape: s.key, path: path, bracket: "Map keys must satisfy constraint: ["})
		if scalar(s.value) {
			return append(out, site{sels: with(sel{val: true}), shape: s.value, path: path, bracket: "Map value must satisfy constraint: ["})
		}
		k := validString(s.key)
		out = append(out, site{sels: with(sel{val: true}), shape: s.value, path: path + "." + k})
		return inner(s.value, with(sel{val: true}), path+"."+k, out)
	}
	return out
}

// set puts v at sels in root; a nil v removes a member.
func set(root Object, sels []sel, v any) {
	var cur any = root
	for i, s := range sels {
		last := i == len(sels)-1
		switch {
		case s.member != "":
			o := cur.(Object)
			if last {
				if v == nil {
					delete(o, s.member)
				} else {
					o[s.member] = v
				}
				return
			}
			cur = o[s.member]
		case s.elem:
			l := cur.([]any)
			if last {
				l[0] = v
				return
			}
			cur = l[0]
		case s.val || s.key:
			m := cur.(map[string]any)
			var k string
			for k = range m {
			}
			if s.key {
				old := m[k]
				delete(m, k)
				m[v.(string)] = old
				return
			}
			if last {
				m[k] = v
				return
			}
			cur = m[k]
		}
	}
}

// wantText is a violation's text, as the package doc says AWS prints it.
func wantText(s *Shape, v any, path, constraint string) string {
	if s.Sensitive {
		return fmt.Sprintf("Value at '%s' failed to satisfy constraint: %s", path, constraint)
	}
	var val string
	switch x := v.(type) {
	case string:
		val = x
	case []byte:
		val = fmt.Sprintf("java.nio.HeapByteBuffer[pos=0 lim=%d cap=%d]", len(x), len(x))
	case int64:
		val = strconv.FormatInt(x, 10)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			p, ok := e.(string)
			if !ok {
				return "" // the test checks only the constraint
			}
			parts[i] = p
		}
		val = "[" + strings.Join(parts, ", ") + "]"
	default:
		return ""
	}
	return fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", val, path, constraint)
}

// TestEveryLimit walks every operation's input and every constrained
// place in it, and for each constraint builds a value just inside its
// bound (accepted) and one just outside (refused with AWS's message for
// that constraint at that place). It then checks that nothing reachable
// from an input was left out.
func TestEveryLimit(t *testing.T) {
	tested := map[string]bool{}
	var runs int
	for _, opName := range Operations() {
		op, _ := LookupOperation(opName)
		in := kms.shapes[op.Input]
		valid := func() Object { return full(in).(Object) }
		try := func(sels []sel, v any) (Object, *Error) {
			o := valid()
			set(o, sels, v)
			body, err := Marshal(o)
			require.NoError(t, err)
			runs++
			return kms.validate(opName, body)
		}
		// The input with every member at a valid value passes.
		_, err := try(nil, nil)
		require.Nil(t, err, "%s with every member valid: %v", opName, err)

		for _, st := range sites(in, nil, "", nil) {
			s := st.shape
			name := func(c string) string { return opName + " " + st.path + " (" + s.Name + ") " + c }
			accept := func(c string, v any) {
				_, err := try(st.sels, v)
				require.Nil(t, err, "%s: %v", name(c), err)
			}
			// refuse checks that v breaks constraint at the site, and
			// that the message says so in AWS's form.
			refuse := func(c, constraint string, v any) {
				_, err := try(st.sels, v)
				require.NotNil(t, err, name(c))
				require.Equal(t, ValidationException, err.Exception, "%s: %v", name(c), err)
				for _, vi := range err.Violations {
					if vi.Path != st.path {
						continue
					}
					if st.bracket == "" && vi.Constraint == constraint {
						if want := wantText(s, v, st.path, constraint); want != "" {
							require.Equal(t, want, vi.Text, name(c))
						}
						tested[s.Name+" "+c] = true
						return
					}
					if st.bracket != "" && strings.HasPrefix(vi.Constraint, st.bracket) && strings.Contains(vi.Constraint, constraint) {
						tested[s.Name+" "+c] = true
						return
					}
				}
				t.Fatalf("%s: %q not among %+v", name(c), constraint, err.Violations)
			}
			// at checks a value at a bound: accepted, or refused only for
			// a reason other than that bound (a pattern that cannot be
			// met at that length).
			at := func(c, constraint string, v any) {
				_, err := try(st.sels, v)
				if err == nil {
					return
				}
				for _, vi := range err.Violations {
					require.False(t, vi.Path == st.path && strings.Contains(vi.Constraint, constraint), "%s at the bound: %v", name(c), err)
				}
			}

			if st.required {
				_, err := try(st.sels, nil)
				require.NotNil(t, err, name("required"))
				require.Contains(t, err.Violations, Violation{Path: st.path, Constraint: notNull,
					Text: "Value null at '" + st.path + "' failed to satisfy constraint: Member must not be null"}, name("required"))
				tested[st.parent+"."+st.sels[len(st.sels)-1].member+" required"] = true
			}
			switch s.Type {
			case TypeString:
				if s.Enum != nil {
					require.True(t, s.Min == nil && s.Max == nil && s.Pattern == "", "%s: an enum with other constraints", s.Name)
					for _, e := range s.Enum {
						accept("enum "+e, e)
					}
					refuse("enum", enumText(s.Enum), "NOT_ONE_OF_THEM")
					continue
				}
				str := func(n int64) string {
					if s.Pattern != "" {
						if v, ok := matching(s.Pattern, int(n)); ok {
							return v
						}
					}
					return strings.Repeat("a", int(n))
				}
				if s.Min != nil {
					at("min", lengthMin(*s.Min), str(*s.Min))
					if *s.Min > 0 {
						refuse("min", lengthMin(*s.Min), str(*s.Min-1))
					}
				}
				if s.Max != nil {
					at("max", lengthMax(*s.Max), str(*s.Max))
					refuse("max", lengthMax(*s.Max), str(*s.Max+1))
					// Length counts code points, not bytes.
					wide := strings.Repeat("é", int(*s.Max))
					if s.re == nil || s.re.MatchString(wide) {
						accept("max in code points", wide)
					}
				}
				if s.Pattern != "" {
					good := validString(s)
					accept("pattern", good)
					bad, ok := notMatching(s.Pattern, good)
					require.True(t, ok, name("pattern"))
					require.Equal(t, utf8.RuneCountInString(good), utf8.RuneCountInString(bad))
					refuse("pattern", patternText(s.Pattern), bad)
				}
			case TypeBlob:
				blob := func(n int64) []byte { return bytes.Repeat([]byte{0xA5}, int(n)) }
				if s.Min != nil {
					at("min", lengthMin(*s.Min), blob(*s.Min))
					if *s.Min > 0 {
						refuse("min", lengthMin(*s.Min), blob(*s.Min-1))
					}
				}
				if s.Max != nil {
					at("max", lengthMax(*s.Max), blob(*s.Max))
					refuse("max", lengthMax(*s.Max), blob(*s.Max+1))
				}
			case TypeInteger, TypeLong:
				if s.Min != nil {
					accept("min", *s.Min)
					refuse("min", valueMin(*s.Min), *s.Min-1)
				}
				if s.Max != nil {
					accept("max", *s.Max)
					refuse("max", valueMax(*s.Max), *s.Max+1)
				}
			case TypeList, TypeMap:
				list := func(n int64) any {
					if s.Type == TypeMap {
						m := map[string]any{}
						for i := range n {
							m[fmt.Sprint(i)] = full(s.value)
						}
						return m
					}
					l := make([]any, n)
					for i := range l {
						l[i] = full(s.elem)
					}
					return l
				}
				if s.Min != nil {
					accept("min", list(*s.Min))
					if *s.Min > 0 {
						refuse("min", lengthMin(*s.Min), list(*s.Min-1))
					}
				}
				if s.Max != nil {
					accept("max", list(*s.Max))
					refuse("max", lengthMax(*s.Max), list(*s.Max+1))
				}
			}
		}
	}

	// Every constraint of every shape and every required member reachable
	// from an operation's input was refused past its bound at least once.
	seen := map[*Shape]bool{}
	var visit func(*Shape)
	var missing []string
	need := func(key string) {
		if !tested[key] {
			missing = append(missing, key)
		}
	}
	visit = func(s *Shape) {
		if seen[s] {
			return
		}
		seen[s] = true
		if s.Enum != nil {
			need(s.Name + " enum")
		}
		if s.Pattern != "" {
			need(s.Name + " pattern")
		}
		if s.Min != nil && (*s.Min > 0 || s.Type == TypeInteger || s.Type == TypeLong) {
			need(s.Name + " min")
		}
		if s.Max != nil {
			need(s.Name + " max")
		}
		for i, m := range s.Members {
			if m.Required {
				need(s.Name + "." + m.Name + " required")
			}
			visit(s.members[i])
		}
		for _, c := range []*Shape{s.elem, s.key, s.value} {
			if c != nil {
				visit(c)
			}
		}
	}
	for _, opName := range Operations() {
		op, _ := LookupOperation(opName)
		visit(kms.shapes[op.Input])
	}
	require.Empty(t, missing, "constraints no case refused")
	require.NotEmpty(t, tested)
	t.Logf("%d operations, %d constraints refused past their bounds, %d validations", len(Operations()), len(tested), runs)
}

// A body Validate accepted is an Object Marshal encodes back to an
// equal one; this is what the fuzz target relies on.
func TestMarshalRoundTrip(t *testing.T) {
	for _, opName := range Operations() {
		op, _ := LookupOperation(opName)
		o := full(kms.shapes[op.Input]).(Object)
		body, err := Marshal(o)
		require.NoError(t, err)
		got, err := Validate(opName, body)
		require.NoError(t, err, opName)
		require.Equal(t, o, got, opName)
	}
	_, err := Marshal(Object{"X": 1.5})
	require.Error(t, err)
	var e *Error
	require.False(t, errors.As(err, &e))
	neg, err := Marshal(Object{"T": time.UnixMilli(-1500).UTC()})
	require.NoError(t, err)
	require.Equal(t, `{"T":-1.500}`, string(neg))
}
