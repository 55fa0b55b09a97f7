package model

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate decodes body, the AWS JSON 1.1 request of operation op (the
// X-Amz-Target name without "TrentService."), and checks it against the
// model. It returns the decoded input, or an *Error (see the package doc).
func Validate(op string, body []byte) (Object, error) {
	obj, err := kms.validate(op, body)
	if err != nil {
		return nil, err
	}
	return obj, nil
}

func (t *table) validate(op string, body []byte) (Object, *Error) {
	o, ok := t.ops[op]
	if !ok {
		return nil, &Error{Exception: UnknownOperationException}
	}
	n, ok := parse(body)
	if !ok {
		return nil, &Error{Exception: SerializationException}
	}
	in := t.shapes[o.Input]
	v, err := decode(in, n)
	if err != nil {
		return nil, err
	}
	obj, _ := v.(Object)
	if obj == nil { // a body of null is an empty input
		obj = Object{}
	}
	var c checker
	c.check(in, obj, "")
	if len(c.vs) > 0 {
		return nil, validationError(c.vs)
	}
	return obj, nil
}

// The constraint texts of AWS's validator.
const notNull = "Member must not be null"

func lengthMax(n int64) string {
	return fmt.Sprintf("Member must have length less than or equal to %d", n)
}
func lengthMin(n int64) string {
	return fmt.Sprintf("Member must have length greater than or equal to %d", n)
}
func valueMax(n int64) string {
	return fmt.Sprintf("Member must have value less than or equal to %d", n)
}
func valueMin(n int64) string {
	return fmt.Sprintf("Member must have value greater than or equal to %d", n)
}
func patternText(p string) string {
	return "Member must satisfy regular expression pattern: " + p
}
func enumText(vals []string) string {
	return "Member must satisfy enum value set: [" + strings.Join(vals, ", ") + "]"
}

type checker struct{ vs []Violation }

func (c *checker) add(s *Shape, v any, path, constraint string) {
	var text string
	if s.hidden {
		text = fmt.Sprintf("Value at '%s' failed to satisfy constraint: %s", path, constraint)
	} else {
		text = fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", render(s, v), path, constraint)
	}
	c.vs = append(c.vs, Violation{Path: path, Constraint: constraint, Text: text})
}

func (c *checker) null(path string) {
	c.vs = append(c.vs, Violation{Path: path, Constraint: notNull,
		Text: fmt.Sprintf("Value null at '%s' failed to satisfy constraint: %s", path, notNull)})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// check adds the violations of v (non-nil, of s's Go type) at path.
func (c *checker) check(s *Shape, v any, path string) {
	switch s.Type {
	case TypeStructure:
		obj := v.(Object)
		for i, m := range s.Members {
			p := join(path, lowerFirst(m.Name))
			mv, ok := obj[m.Name]
			if !ok {
				if m.Required {
					c.null(p)
				}
				continue
			}
			c.check(s.members[i], mv, p)
		}
	case TypeList:
		l := v.([]any)
		c.length(s, int64(len(l)), v, path)
		if scalar(s.elem) {
			bad, null := false, false
			for _, e := range l {
				if e == nil {
					null = true
				} else if len(scalarViolations(s.elem, e)) > 0 {
					bad = true
				}
			}
			if bad || null {
				c.add(s, v, path, "Member must satisfy constraint: ["+strings.Join(constraints(s.elem, null), ", ")+"]")
			}
			return
		}
		for i, e := range l {
			p := path + "." + strconv.Itoa(i+1) + ".member"
			if e == nil {
				c.null(p)
				continue
			}
			c.check(s.elem, e, p)
		}
	case TypeMap:
		m := v.(map[string]any)
		c.length(s, int64(len(m)), v, path)
		keys := slices.Sorted(maps.Keys(m))
		for _, k := range keys {
			if len(scalarViolations(s.key, k)) > 0 {
				c.add(s, v, path, "Map keys must satisfy constraint: ["+strings.Join(constraints(s.key, false), ", ")+"]")
				break
			}
		}
		if scalar(s.value) {
			bad, null := false, false
			for _, k := range keys {
				if m[k] == nil {
					null = true
				} else if len(scalarViolations(s.value, m[k])) > 0 {
					bad = true
				}
			}
			if bad || null {
				c.add(s, v, path, "Map value must satisfy constraint: ["+strings.Join(constraints(s.value, null), ", ")+"]")
			}
			return
		}
		for _, k := range keys {
			p := path + "." + k
			if m[k] == nil {
				c.null(p)
				continue
			}
			c.check(s.value, m[k], p)
		}
	default:
		for _, constraint := range scalarViolations(s, v) {
			c.add(s, v, path, constraint)
		}
	}
}

func (c *checker) length(s *Shape, n int64, v any, path string) {
	if s.Min != nil && n < *s.Min {
		c.add(s, v, path, lengthMin(*s.Min))
	}
	if s.Max != nil && n > *s.Max {
		c.add(s, v, path, lengthMax(*s.Max))
	}
}

func scalar(s *Shape) bool {
	return s.Type != TypeStructure && s.Type != TypeList && s.Type != TypeMap
}

// scalarViolations are the constraints of scalar shape s that v breaks:
// enum, then pattern, then length (the order AWS reports them in), or
// value bounds.
func scalarViolations(s *Shape, v any) []string {
	var out []string
	switch s.Type {
	case TypeString:
		str := v.(string)
		if s.enum != nil && !s.enum[str] {
			out = append(out, enumText(s.Enum))
		}
		if s.re != nil && !s.re.MatchString(str) {
			out = append(out, patternText(s.Pattern))
		}
		out = appendBounds(out, s, int64(utf8.RuneCountInString(str)), lengthMin, lengthMax)
	case TypeBlob:
		out = appendBounds(out, s, int64(len(v.([]byte))), lengthMin, lengthMax)
	case TypeInteger, TypeLong:
		out = appendBounds(out, s, v.(int64), valueMin, valueMax)
	}
	return out
}

func appendBounds(out []string, s *Shape, n int64, min, max func(int64) string) []string {
	if s.Min != nil && n < *s.Min {
		out = append(out, min(*s.Min))
	}
	if s.Max != nil && n > *s.Max {
		out = append(out, max(*s.Max))
	}
	return out
}

// constraints lists every constraint of scalar shape s, as AWS lists an
// element shape's constraints: maximum, minimum, pattern, enum, and "not
// null" when an element is null.
func constraints(s *Shape, null bool) []string {
	var out []string
	lmin, lmax := lengthMin, lengthMax
	if s.Type == TypeInteger || s.Type == TypeLong {
		lmin, lmax = valueMin, valueMax
	}
	if s.Max != nil {
		out = append(out, lmax(*s.Max))
	}
	if s.Min != nil {
		out = append(out, lmin(*s.Min))
	}
	if s.Pattern != "" {
		out = append(out, patternText(s.Pattern))
	}
	if s.Enum != nil {
		out = append(out, enumText(s.Enum))
	}
	if null {
		out = append(out, notNull)
	}
	return out
}

// render is v as AWS's Java service prints it in a message.
func render(s *Shape, v any) string {
	if v == nil {
		return "null"
	}
	switch s.Type {
	case TypeString:
		return v.(string)
	case TypeBlob:
		n := len(v.([]byte))
		return fmt.Sprintf("java.nio.HeapByteBuffer[pos=0 lim=%d cap=%d]", n, n)
	case TypeInteger, TypeLong:
		return strconv.FormatInt(v.(int64), 10)
	case TypeBoolean:
		return strconv.FormatBool(v.(bool))
	case TypeTimestamp:
		return v.(time.Time).Format("Mon Jan 02 15:04:05 MST 2006")
	case TypeList:
		l := v.([]any)
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = render(s.elem, e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case TypeMap:
		m := v.(map[string]any)
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, k+"="+render(s.value, m[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case TypeStructure:
		obj := v.(Object)
		parts := make([]string, len(s.Members))
		for i, m := range s.Members {
			parts[i] = lowerFirst(m.Name) + "=" + render(s.members[i], obj[m.Name])
		}
		return s.Name + "(" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprint(v)
}
