package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Object is a decoded structure: its present members by their model
// names. The Go type of each value follows its shape (see the package doc).
type Object map[string]any

// String is the named string member.
func (o Object) String(name string) (string, bool) { v, ok := o[name].(string); return v, ok }

// Bytes is the named blob member, base64-decoded.
func (o Object) Bytes(name string) ([]byte, bool) { v, ok := o[name].([]byte); return v, ok }

// Int is the named integer or long member.
func (o Object) Int(name string) (int64, bool) { v, ok := o[name].(int64); return v, ok }

// Bool is the named boolean member.
func (o Object) Bool(name string) (bool, bool) { v, ok := o[name].(bool); return v, ok }

// Time is the named timestamp member.
func (o Object) Time(name string) (time.Time, bool) { v, ok := o[name].(time.Time); return v, ok }

// Object is the named structure member.
func (o Object) Object(name string) (Object, bool) { v, ok := o[name].(Object); return v, ok }

// List is the named list member.
func (o Object) List(name string) ([]any, bool) { v, ok := o[name].([]any); return v, ok }

// Map is the named map member.
func (o Object) Map(name string) (map[string]any, bool) {
	v, ok := o[name].(map[string]any)
	return v, ok
}

// Strings is the named list-of-strings member.
func (o Object) Strings(name string) ([]string, bool) {
	l, ok := o.List(name)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l))
	for i, e := range l {
		if out[i], ok = e.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

// StringMap is the named map-of-strings member (an encryption context).
func (o Object) StringMap(name string) (map[string]string, bool) {
	m, ok := o.Map(name)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		if out[k], ok = e.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

// Marshal encodes o as an AWS JSON 1.1 body: blobs in standard base64,
// timestamps as epoch seconds with milliseconds. A value of a Go type
// the decoder does not produce is an error.
func Marshal(o Object) ([]byte, error) {
	v, err := toJSON(o)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func toJSON(v any) (any, error) {
	switch x := v.(type) {
	case Object:
		out := make(map[string]any, len(x))
		for k, e := range x {
			j, err := toJSON(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = j
		}
		return out, nil
	case map[string]any:
		return toJSON(Object(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			j, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case time.Time:
		ms := x.UnixMilli()
		sign := ""
		if ms < 0 {
			sign, ms = "-", -ms
		}
		return json.Number(fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)), nil
	case string, []byte, int64, bool:
		return x, nil
	case int:
		return int64(x), nil
	}
	return nil, fmt.Errorf("a %T is not a value of the model", v)
}
