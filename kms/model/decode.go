package model

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxDepth is how deeply a body may nest arrays and objects; the KMS model
// needs 4.
const MaxDepth = 32

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

// jnode is a parsed JSON value; an object keeps its members in document
// order, duplicates included.
type jnode struct {
	kind  jkind
	b     bool
	s     string // a string's value, a number's text
	elems []*jnode
	keys  []string
	vals  []*jnode
}

// parse reads body as exactly one JSON value.
func parse(body []byte) (*jnode, bool) {
	if len(bytes.TrimSpace(body)) == 0 || !utf8.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	n, ok := parseValue(dec, 0)
	if !ok {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	if loneSurrogate(body) {
		return nil, false
	}
	return n, true
}

func parseValue(dec *json.Decoder, depth int) (*jnode, bool) {
	t, err := dec.Token()
	if err != nil {
		return nil, false
	}
	return parseToken(dec, t, depth)
}

func parseToken(dec *json.Decoder, t json.Token, depth int) (*jnode, bool) {
	switch v := t.(type) {
	case nil:
		return &jnode{kind: jNull}, true
	case bool:
		return &jnode{kind: jBool, b: v}, true
	case json.Number:
		return &jnode{kind: jNumber, s: string(v)}, true
	case string:
		return &jnode{kind: jString, s: v}, true
	case json.Delim:
		if depth >= MaxDepth {
			return nil, false
		}
		n := &jnode{kind: jArray}
		if v == '{' {
			n.kind = jObject
		}
		for {
			t, err := dec.Token()
			if err != nil {
				return nil, false
			}
			if d, end := t.(json.Delim); end && (d == ']' || d == '}') {
				return n, true
			}
			if n.kind == jObject {
				k, ok := t.(string)
				if !ok {
					return nil, false
				}
				val, ok := parseValue(dec, depth+1)
				if !ok {
					return nil, false
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, val)
				continue
			}
			e, ok := parseToken(dec, t, depth+1)
			if !ok {
				return nil, false
			}
			n.elems = append(n.elems, e)
		}
	}
	return nil, false
}

// loneSurrogate reports whether the JSON text body (already known to be
// well formed) escapes half of a UTF-16 surrogate pair without the other
// half. Go's decoder would turn it into U+FFFD, so two different strings
// would decode alike; AWS's Java service keeps them apart. Refusing is the
// only way to stay unambiguous.
func loneSurrogate(body []byte) bool {
	in := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !in {
			in = c == '"'
			continue
		}
		switch c {
		case '"':
			in = false
		case '\\':
			if body[i+1] != 'u' {
				i++
				continue
			}
			r := hex4(body[i+2 : i+6])
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return true
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
					return true
				}
				lo := hex4(body[i+3 : i+7])
				if lo < 0xDC00 || lo > 0xDFFF {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

func hex4(b []byte) rune {
	v, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(v)
}

// Messages of AWS's JSON decoder.
const (
	msgStartList   = "Start of list found where not expected"
	msgStartStruct = "Start of structure or map found where not expected."
)

// tokenName is how AWS's decoder names the JSON value it could not convert.
func tokenName(n *jnode) string {
	switch n.kind {
	case jNumber:
		return "NUMBER_VALUE"
	case jString:
		return "STRING_VALUE"
	case jBool:
		if n.b {
			return "TRUE_VALUE"
		}
		return "FALSE_VALUE"
	}
	return "NULL_VALUE"
}

// notConvertible is the refusal of scalar n for a shape whose Java type is
// javaType ("a String", "an Integer", ...); containers get the decoder's
// "Start of ..." messages.
func notConvertible(n *jnode, javaType string) *Error {
	switch n.kind {
	case jArray:
		return serialization(msgStartList)
	case jObject:
		return serialization(msgStartStruct)
	}
	return serialization("%s can not be converted to %s", tokenName(n), javaType)
}

// decode converts n to shape s. A null is (nil, nil): absent.
func decode(s *Shape, n *jnode) (any, *Error) {
	if n.kind == jNull {
		return nil, nil
	}
	switch s.Type {
	case TypeStructure:
		switch n.kind {
		case jObject:
		case jArray:
			return nil, serialization(msgStartList)
		default:
			return nil, serialization("Expected null")
		}
		obj := Object{}
		for i, k := range n.keys {
			mi := memberIndex(s, k)
			if mi < 0 {
				continue // AWS ignores members it does not know
			}
			v, err := decode(s.members[mi], n.vals[i])
			if err != nil {
				return nil, err
			}
			if v == nil {
				delete(obj, k)
			} else {
				obj[k] = v
			}
		}
		return obj, nil
	case TypeList:
		switch n.kind {
		case jArray:
		case jObject:
			return nil, serialization(msgStartStruct)
		default:
			return nil, serialization("Expected list or null")
		}
		l := make([]any, len(n.elems))
		for i, e := range n.elems {
			v, err := decode(s.elem, e)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case TypeMap:
		switch n.kind {
		case jObject:
		case jArray:
			return nil, serialization(msgStartList)
		default:
			return nil, serialization("Expected map or null")
		}
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			v, err := decode(s.value, n.vals[i])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case TypeString:
		if n.kind != jString {
			return nil, notConvertible(n, "a String")
		}
		return n.s, nil
	case TypeBoolean:
		if n.kind != jBool {
			return nil, notConvertible(n, "a Boolean")
		}
		return n.b, nil
	case TypeInteger, TypeLong:
		javaType, lo, hi := "an Integer", int64(-1<<31), int64(1<<31-1)
		if s.Type == TypeLong {
			javaType, lo, hi = "a Long", -1<<63, 1<<63-1
		}
		if n.kind != jNumber {
			return nil, notConvertible(n, javaType)
		}
		v, exact, ok := decimalInt(n.s, 0)
		if !exact || !ok || v < lo || v > hi {
			return nil, serialization("NUMBER_VALUE can not be converted to %s", javaType)
		}
		return v, nil
	case TypeTimestamp:
		if n.kind != jNumber {
			return nil, notConvertible(n, "a Timestamp")
		}
		ms, _, ok := decimalInt(n.s, 3)
		if !ok || ms < minTimeMillis || ms > maxTimeMillis {
			return nil, serialization("NUMBER_VALUE can not be converted to a Timestamp")
		}
		return time.UnixMilli(ms).UTC(), nil
	case TypeBlob:
		if n.kind != jString {
			return nil, notConvertible(n, "a Blob")
		}
		b, why := decodeBase64(n.s)
		if why != "" {
			if s.hidden {
				return nil, serialization("Value can not be converted to a Blob: %s", why)
			}
			return nil, serialization("'%s' can not be converted to a Blob: %s", n.s, why)
		}
		return b, nil
	}
	return nil, serialization("Unexpected shape")
}

// The timestamps time.Time and Java both hold: years 1 to 9999.
const (
	minTimeMillis = -62135596800000
	maxTimeMillis = 253402300799999
)

func memberIndex(s *Shape, name string) int {
	for i, m := range s.Members {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// decodeBase64 decodes canonical standard base64 with padding, or says,
// in the words of AWS's decoder, why s is not that.
func decodeBase64(s string) ([]byte, string) {
	if len(s)%4 != 0 {
		return nil, "Base64 encoded length is expected a multiple of 4 bytes but found: " + strconv.Itoa(len(s))
	}
	pad := len(s) - len(strings.TrimRight(s, "="))
	for i, r := range s {
		ok := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' ||
			r == '=' && pad <= 2 && i >= len(s)-pad
		if !ok {
			return nil, "Invalid Base64 character: '" + string(r) + "'"
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		// Every character is in place: only the bits the last
		// character carries beyond the data can be wrong.
		return nil, "Invalid last non-pad Base64 character dectected"
	}
	return b, ""
}

// decimalInt is the JSON number num times 10^scale, truncated toward zero:
// exact tells whether nothing was truncated, ok whether it fits an int64.
// It never builds a number larger than 19 digits, whatever the exponent.
func decimalInt(num string, scale int) (v int64, exact, ok bool) {
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimPrefix(num, "-")
	mant, exp := num, 0
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		mant = num[:i]
		e := strings.TrimPrefix(num[i+1:], "+")
		en := strings.TrimLeft(strings.TrimPrefix(e, "-"), "0")
		if len(en) > 7 {
			en = "9999999" // far beyond anything an int64 holds, either way
		}
		exp, _ = strconv.Atoi(en)
		if strings.HasPrefix(e, "-") {
			exp = -exp
		}
	}
	digits, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits, frac = mant[:i], mant[i+1:]
	}
	digits = strings.TrimLeft(digits+frac, "0")
	exp += scale - len(frac)
	if digits == "" {
		return 0, true, true
	}
	exact = true
	if exp < 0 {
		k := -exp
		if k >= len(digits) {
			return 0, false, true
		}
		exact = strings.Trim(digits[len(digits)-k:], "0") == ""
		digits, exp = digits[:len(digits)-k], 0
	}
	if len(digits)+exp > 19 {
		return 0, exact, false
	}
	sign := ""
	if neg {
		sign = "-"
	}
	v, err := strconv.ParseInt(sign+digits+strings.Repeat("0", exp), 10, 64)
	if err != nil {
		return 0, exact, false
	}
	return v, exact, true
}
