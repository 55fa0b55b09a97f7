package model

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/openhsm/openhsm/kms/model/internal/javare"
)

// Type is a shape's type, as the model spells it.
type Type string

// The shape types of AWS JSON 1.1 the validator knows.
const (
	TypeStructure Type = "structure"
	TypeString    Type = "string"
	TypeBlob      Type = "blob"
	TypeInteger   Type = "integer"
	TypeLong      Type = "long"
	TypeBoolean   Type = "boolean"
	TypeTimestamp Type = "timestamp"
	TypeList      Type = "list"
	TypeMap       Type = "map"
)

// Service is the model's metadata.
type Service struct {
	APIVersion, TargetPrefix, JSONVersion, Protocol, UID, ServiceID string
	ModelSHA256                                                     string
}

// Operation is one API operation: its input and output shapes and the
// exceptions the model declares for it.
type Operation struct {
	Name   string
	Input  string
	Output string // "" when the operation returns nothing
	Errors []string
}

// Member is a member of a structure. Its JSON name is Name, as it is: AWS
// JSON 1.1 uses the model's member names unchanged.
type Member struct {
	Name       string
	Shape      string
	Required   bool
	Deprecated bool
}

// Shape is one shape of the model. Min and Max bound a string's length in
// Unicode code points, a blob's length in bytes (after base64 decoding), a
// list's or map's number of entries, and an integer's or long's value; nil
// means no bound. Pattern is the model's java.util.regex pattern, which the
// whole value must match. Member is a list's element shape, Key and Value a
// map's. A Sensitive shape's value never appears in an error message.
type Shape struct {
	Name      string
	Type      Type
	Members   []Member // a structure's, in the model's order
	Min, Max  *int64
	Pattern   string
	Enum      []string
	Member    string
	Key       string
	Value     string
	Sensitive bool
	Exception bool

	// Filled in by resolve.
	members []*Shape // the shapes of Members, in order
	elem    *Shape   // Member
	key     *Shape
	value   *Shape
	re      *regexp.Regexp
	enum    map[string]bool
	hidden  bool // Sensitive, or holds a Sensitive shape
}

func bound(n int64) *int64 { return &n }

// table is a resolved set of operations and shapes. The validator works on
// a table, so tests can build small ones with kinds of shapes the KMS model
// does not use.
type table struct {
	ops    map[string]*Operation
	shapes map[string]*Shape
}

// resolve links the shapes of t to each other and compiles their patterns.
func (t *table) resolve() error {
	get := func(from, name string) (*Shape, error) {
		s := t.shapes[name]
		if s == nil {
			return nil, fmt.Errorf("shape %s refers to %s, which is not in the table", from, name)
		}
		return s, nil
	}
	var err error
	for name, s := range t.shapes {
		if s.Name != name {
			return fmt.Errorf("shape %s is listed as %s", s.Name, name)
		}
		s.members = nil
		for _, m := range s.Members {
			ms, err := get(name, m.Shape)
			if err != nil {
				return err
			}
			s.members = append(s.members, ms)
		}
		switch s.Type {
		case TypeList:
			if s.elem, err = get(name, s.Member); err != nil {
				return err
			}
		case TypeMap:
			if s.key, err = get(name, s.Key); err != nil {
				return err
			}
			if s.value, err = get(name, s.Value); err != nil {
				return err
			}
		case TypeStructure, TypeString, TypeBlob, TypeInteger, TypeLong, TypeBoolean, TypeTimestamp:
		default:
			return fmt.Errorf("shape %s has type %q", name, s.Type)
		}
		if s.Pattern != "" {
			if s.re, err = javare.Compile(s.Pattern); err != nil {
				return fmt.Errorf("shape %s: %w", name, err)
			}
		}
		if s.Enum != nil {
			s.enum = make(map[string]bool, len(s.Enum))
			for _, v := range s.Enum {
				s.enum[v] = true
			}
		}
	}
	for _, s := range t.shapes {
		s.hidden = holdsSensitive(s, map[*Shape]bool{})
	}
	for name, op := range t.ops {
		in := t.shapes[op.Input]
		if in == nil || in.Type != TypeStructure {
			return fmt.Errorf("operation %s: input %q is not a structure of the table", name, op.Input)
		}
	}
	return nil
}

func holdsSensitive(s *Shape, visiting map[*Shape]bool) bool {
	if s.Sensitive {
		return true
	}
	if visiting[s] {
		return false
	}
	visiting[s] = true
	defer delete(visiting, s)
	for _, c := range append(slices.Clone(s.members), s.elem, s.key, s.value) {
		if c != nil && holdsSensitive(c, visiting) {
			return true
		}
	}
	return false
}

// kms is the table of the AWS KMS model (model_gen.go).
// Widened are the model's patterns this service relaxes, each a documented
// step beyond AWS (docs/kms.md): an XKS proxy's endpoint may name a port,
// since a proxy on a machine of one's own rarely listens on 443.
var Widened = map[string]string{
	"XksProxyUriEndpointType": `^https://[a-zA-Z0-9.-]+(:[0-9]{1,5})?$`,
}

var kms = func() *table {
	for name, p := range Widened {
		shapes[name].Pattern = p
	}
	t := &table{ops: operations, shapes: shapes}
	if err := t.resolve(); err != nil {
		panic("kms/model: the generated table does not resolve: " + err.Error())
	}
	return t
}()

// Metadata is the metadata of the model the table was generated from.
func Metadata() Service { return service }

// Operations are the names of every operation, sorted.
func Operations() []string {
	names := make([]string, 0, len(kms.ops))
	for n := range kms.ops {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LookupOperation is the named operation. The result is the table's own:
// do not modify it.
func LookupOperation(name string) (*Operation, bool) {
	op, ok := kms.ops[name]
	return op, ok
}

// LookupShape is the named shape. The result is the table's own: do not
// modify it.
func LookupShape(name string) (*Shape, bool) {
	s, ok := kms.shapes[name]
	return s, ok
}

// lowerFirst is a member name as AWS writes it in an error path.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
