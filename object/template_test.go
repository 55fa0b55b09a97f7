package object

import (
	"bytes"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

func ul(t, v uint64) Attribute      { return Attribute{Type: t, Value: EncodeUlong(v)} }
func bo(t uint64, v bool) Attribute { return Attribute{Type: t, Value: EncodeBool(v)} }
func by(t uint64, v string) Attribute {
	return Attribute{Type: t, Value: []byte(v)}
}

func TestBuildAttrs(t *testing.T) {
	secretCreate := Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES), by(ck.CKA_VALUE, "0123456789abcdef")}
	cases := []struct {
		name      string
		op        TemplateOp
		tmpl      Template
		class, kt uint64
		want      uint64
	}{
		{"aes create", OpCreate, secretCreate, 0, ^uint64(0), ck.CKR_OK},
		{"no class", OpCreate, Template{ul(ck.CKA_KEY_TYPE, ck.CKK_AES)}, 0, ^uint64(0), ck.CKR_TEMPLATE_INCOMPLETE},
		{"no key type", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY)}, 0, ^uint64(0), ck.CKR_TEMPLATE_INCOMPLETE},
		{"no value", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES)}, 0, ^uint64(0), ck.CKR_TEMPLATE_INCOMPLETE},
		{"unknown attribute", OpCreate, append(Template{{Type: 0x80001234, Value: []byte{1}}}, secretCreate...), 0, ^uint64(0), ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"bad bool", OpCreate, append(Template{{Type: ck.CKA_TOKEN, Value: []byte{2}}}, secretCreate...), 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"short ulong", OpCreate, Template{{Type: ck.CKA_CLASS, Value: []byte{4}}}, 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"conflicting duplicate", OpCreate, append(Template{by(ck.CKA_LABEL, "a"), by(ck.CKA_LABEL, "b")}, secretCreate...), 0, ^uint64(0), ck.CKR_TEMPLATE_INCONSISTENT},
		{"same duplicate", OpCreate, append(Template{by(ck.CKA_LABEL, "a"), by(ck.CKA_LABEL, "a")}, secretCreate...), 0, ^uint64(0), ck.CKR_OK},
		{"local is read-only", OpCreate, append(Template{bo(ck.CKA_LOCAL, true)}, secretCreate...), 0, ^uint64(0), ck.CKR_ATTRIBUTE_READ_ONLY},
		{"always sensitive is read-only", OpGenerate, Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_ALWAYS_SENSITIVE, true)}, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted needs an officer", OpCreate, append(Template{bo(ck.CKA_TRUSTED, true)}, secretCreate...), 0, ^uint64(0), ck.CKR_ATTRIBUTE_READ_ONLY},
		{"value_len on create", OpCreate, append(Template{ul(ck.CKA_VALUE_LEN, 16)}, secretCreate...), 0, ^uint64(0), ck.CKR_TEMPLATE_INCONSISTENT},
		{"generate needs value_len", OpGenerate, Template{}, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKR_TEMPLATE_INCOMPLETE},
		{"generate refuses value", OpGenerate, Template{ul(ck.CKA_VALUE_LEN, 16), by(ck.CKA_VALUE, "x")}, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKR_TEMPLATE_INCONSISTENT},
		{"generate wrong class", OpGenerate, Template{ul(ck.CKA_CLASS, ck.CKO_PUBLIC_KEY), ul(ck.CKA_VALUE_LEN, 16)}, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKR_TEMPLATE_INCONSISTENT},
		{"rsa public gen", OpGenerate, Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_VERIFY, true)}, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKR_OK},
		{"rsa public gen without bits", OpGenerate, Template{}, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKR_TEMPLATE_INCOMPLETE},
		{"modulus on gen", OpGenerate, Template{ul(ck.CKA_MODULUS_BITS, 2048), by(ck.CKA_MODULUS, "x")}, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKR_TEMPLATE_INCONSISTENT},
		{"ec public gen without params", OpGenerate, Template{}, ck.CKO_PUBLIC_KEY, ck.CKK_EC, ck.CKR_TEMPLATE_INCOMPLETE},
		{"ec private gen with params", OpGenerate, Template{by(ck.CKA_EC_PARAMS, "x")}, ck.CKO_PRIVATE_KEY, ck.CKK_EC, ck.CKR_TEMPLATE_INCONSISTENT},
		{"sign on a public key", OpGenerate, Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_SIGN, true)}, ck.CKO_PUBLIC_KEY, ck.CKK_RSA, ck.CKR_TEMPLATE_INCONSISTENT},
		{"unsupported class", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_HW_FEATURE)}, 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"aes as private key", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES)}, 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"data object", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_DATA), by(ck.CKA_VALUE, "hello"), by(ck.CKA_APPLICATION, "app")}, 0, ^uint64(0), ck.CKR_OK},
		{"key type on data", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_DATA), ul(ck.CKA_KEY_TYPE, ck.CKK_AES)}, 0, ^uint64(0), ck.CKR_TEMPLATE_INCONSISTENT},
		{"certificate", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_CERTIFICATE), ul(ck.CKA_CERTIFICATE_TYPE, ck.CKC_X_509), by(ck.CKA_SUBJECT, "s"), by(ck.CKA_VALUE, "der")}, 0, ^uint64(0), ck.CKR_OK},
		{"certificate without subject", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_CERTIFICATE), ul(ck.CKA_CERTIFICATE_TYPE, ck.CKC_X_509), by(ck.CKA_VALUE, "der")}, 0, ^uint64(0), ck.CKR_TEMPLATE_INCOMPLETE},
		{"wtls certificate", OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_CERTIFICATE), ul(ck.CKA_CERTIFICATE_TYPE, ck.CKC_WTLS)}, 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bad date", OpCreate, append(Template{by(ck.CKA_START_DATE, "2024")}, secretCreate...), 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"always authenticate", OpGenerate, Template{bo(ck.CKA_ALWAYS_AUTHENTICATE, true)}, ck.CKO_PRIVATE_KEY, ck.CKK_RSA, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bad mechanism list", OpCreate, append(Template{{Type: ck.CKA_ALLOWED_MECHANISMS, Value: []byte{1, 2, 3}}}, secretCreate...), 0, ^uint64(0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		_, _, err := BuildAttrs(c.op, c.tmpl, c.class, c.kt)
		if got := hsmerr.RV(err); got != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, ck.RVName(got), err, ck.RVName(c.want))
		}
	}
}

func TestBuildAttrsDefaultsAndSecrets(t *testing.T) {
	a, s, err := BuildAttrs(OpCreate, Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES),
		by(ck.CKA_VALUE, "0123456789abcdef"), by(ck.CKA_LABEL, "k")}, 0, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a[ck.CKA_VALUE]; ok {
		t.Fatal("secret value leaked into the clear attributes")
	}
	if !bytes.Equal(s[ck.CKA_VALUE], []byte("0123456789abcdef")) {
		t.Fatal("secret value not returned apart")
	}
	for attr, want := range map[uint64]bool{ck.CKA_SENSITIVE: true, ck.CKA_EXTRACTABLE: false, ck.CKA_TOKEN: false,
		ck.CKA_PRIVATE: true, ck.CKA_MODIFIABLE: true, ck.CKA_ENCRYPT: true, ck.CKA_DERIVE: false} {
		if _, present := a[attr]; !present || a.Bool(attr) != want {
			t.Errorf("%s default: present=%v value=%v, want %v", ck.AttrName(attr), present, a.Bool(attr), want)
		}
	}
	if string(a[ck.CKA_LABEL]) != "k" {
		t.Error("label lost")
	}
}

type setCase struct {
	name    string
	cur     Attrs
	set     Template
	role    Role
	copying bool
	want    uint64
}

func TestApplySet(t *testing.T) {
	base, _, err := BuildAttrs(OpGenerate, Template{ul(ck.CKA_VALUE_LEN, 16), bo(ck.CKA_EXTRACTABLE, true), bo(ck.CKA_SENSITIVE, false)}, ck.CKO_SECRET_KEY, ck.CKK_AES)
	if err != nil {
		t.Fatal(err)
	}
	cases := []setCase{
		{"label", base, Template{by(ck.CKA_LABEL, "new")}, RoleCU, false, ck.CKR_OK},
		{"sensitive on", base, Template{bo(ck.CKA_SENSITIVE, true)}, RoleCU, false, ck.CKR_OK},
		{"extractable off", base, Template{bo(ck.CKA_EXTRACTABLE, false)}, RoleCU, false, ck.CKR_OK},
		{"class is fixed", base, Template{ul(ck.CKA_CLASS, ck.CKO_DATA)}, RoleCU, false, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"value_len is fixed", base, Template{ul(ck.CKA_VALUE_LEN, 32)}, RoleCU, false, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted by a user", base, Template{bo(ck.CKA_TRUSTED, true)}, RoleCU, false, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted by an officer", base, Template{bo(ck.CKA_TRUSTED, true)}, RoleCO, false, ck.CKR_OK},
		{"label by an officer", base, Template{by(ck.CKA_LABEL, "x")}, RoleCO, false, ck.CKR_USER_NOT_LOGGED_IN},
		{"token only on copy", base, Template{bo(ck.CKA_TOKEN, true)}, RoleCU, false, ck.CKR_ATTRIBUTE_READ_ONLY},
		{"token on copy", base, Template{bo(ck.CKA_TOKEN, true)}, RoleCU, true, ck.CKR_OK},
		{"unknown to the class", base, Template{by(ck.CKA_MODULUS, "x")}, RoleCU, false, ck.CKR_ATTRIBUTE_TYPE_INVALID},
	}
	sensitive := base.Clone()
	sensitive.SetBool(ck.CKA_SENSITIVE, true)
	sensitive.SetBool(ck.CKA_EXTRACTABLE, false)
	frozen := base.Clone()
	frozen.SetBool(ck.CKA_MODIFIABLE, false)
	frozen.SetBool(ck.CKA_COPYABLE, false)
	cases = append(cases,
		setCase{"sensitive stays on", sensitive, Template{bo(ck.CKA_SENSITIVE, false)}, RoleCU, false, ck.CKR_ATTRIBUTE_READ_ONLY},
		setCase{"extractable stays off", sensitive, Template{bo(ck.CKA_EXTRACTABLE, true)}, RoleCU, false, ck.CKR_ATTRIBUTE_READ_ONLY},
		setCase{"not modifiable", frozen, Template{by(ck.CKA_LABEL, "x")}, RoleCU, false, ck.CKR_ACTION_PROHIBITED},
		setCase{"not copyable", frozen, Template{}, RoleCU, true, ck.CKR_ACTION_PROHIBITED},
	)
	for _, c := range cases {
		before := MarshalAttrs(c.cur)
		next, err := ApplySet(c.cur, c.set, c.role, c.copying)
		if got := hsmerr.RV(err); got != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, ck.RVName(got), err, ck.RVName(c.want))
			continue
		}
		if !bytes.Equal(before, MarshalAttrs(c.cur)) {
			t.Errorf("%s: the current attributes were changed in place", c.name)
		}
		if err == nil {
			for _, a := range c.set {
				if !bytes.Equal(next[a.Type], a.Value) {
					t.Errorf("%s: %s not set", c.name, ck.AttrName(a.Type))
				}
			}
		}
	}
}

func TestReadAttrsSensitivity(t *testing.T) {
	a, _, _ := BuildAttrs(OpGenerate, Template{ul(ck.CKA_VALUE_LEN, 16)}, ck.CKO_SECRET_KEY, ck.CKK_AES)
	o := &Object{ID: 1, Owner: "u", Attrs: a}
	called := false
	secret := func(uint64) ([]byte, bool) { called = true; return []byte("k"), true }
	got := ReadAttrs(o, []uint64{ck.CKA_VALUE, ck.CKA_LABEL, ck.CKA_MODULUS}, secret, nil)
	if got[0].RV != ck.CKR_ATTRIBUTE_SENSITIVE || called {
		t.Errorf("sensitive value: %s, secret called=%v", ck.RVName(got[0].RV), called)
	}
	if got[1].RV != ck.CKR_OK {
		t.Errorf("label: %s", ck.RVName(got[1].RV))
	}
	if got[2].RV != ck.CKR_ATTRIBUTE_TYPE_INVALID {
		t.Errorf("modulus of an AES key: %s", ck.RVName(got[2].RV))
	}
	a.SetBool(ck.CKA_SENSITIVE, false)
	a.SetBool(ck.CKA_EXTRACTABLE, true)
	got = ReadAttrs(o, []uint64{ck.CKA_VALUE}, secret, nil)
	if got[0].RV != ck.CKR_OK || string(got[0].Value) != "k" {
		t.Errorf("extractable value: %s", ck.RVName(got[0].RV))
	}
}

func TestMarshalAttrsRoundTrip(t *testing.T) {
	a := Attrs{ck.CKA_LABEL: []byte("x"), ck.CKA_CLASS: EncodeUlong(3), ck.CKA_TOKEN: {1}, 0x999: {}}
	b, err := UnmarshalAttrs(MarshalAttrs(a))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(MarshalAttrs(a), MarshalAttrs(b)) || len(b) != len(a) {
		t.Fatal("round trip changed the attributes")
	}
	for _, bad := range [][]byte{{1, 2, 3}, append(MarshalAttrs(Attrs{5: {1}}), MarshalAttrs(Attrs{4: {1}})...), {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1}} {
		if _, err := UnmarshalAttrs(bad); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}

func FuzzUnmarshalAttrs(f *testing.F) {
	f.Add(MarshalAttrs(Attrs{ck.CKA_LABEL: []byte("x"), ck.CKA_CLASS: EncodeUlong(3)}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := UnmarshalAttrs(b)
		if err != nil {
			return
		}
		if !bytes.Equal(MarshalAttrs(a), b) {
			t.Fatalf("decode then encode changed %x", b)
		}
	})
}

// FuzzBuildAttrs feeds the template parser arbitrary templates: it must
// never panic, and what it accepts must hold no secret in the clear part.
func FuzzBuildAttrs(f *testing.F) {
	enc := func(t Template) []byte {
		a := Attrs{}
		for _, x := range t {
			a[x.Type] = x.Value
		}
		return MarshalAttrs(a)
	}
	f.Add(enc(Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES), by(ck.CKA_VALUE, "0123456789abcdef")}), uint8(0))
	f.Add(enc(Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_VERIFY, true)}), uint8(1))
	f.Add(enc(Template{ul(ck.CKA_CLASS, ck.CKO_CERTIFICATE), ul(ck.CKA_CERTIFICATE_TYPE, 0), by(ck.CKA_SUBJECT, "s"), by(ck.CKA_VALUE, "v")}), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, op uint8) {
		a, err := UnmarshalAttrs(b)
		if err != nil {
			return
		}
		var tmpl Template
		for k, v := range a {
			tmpl = append(tmpl, Attribute{Type: k, Value: v})
		}
		class, kt := uint64(0), ^uint64(0)
		top := TemplateOp(op % 4)
		if top == OpGenerate {
			class, kt = ck.CKO_PUBLIC_KEY, ck.CKK_RSA
		}
		attrs, secrets, err := BuildAttrs(top, tmpl, class, kt)
		if err != nil {
			if hsmerr.RV(err) == ck.CKR_OK || hsmerr.RV(err) == ck.CKR_FUNCTION_FAILED {
				t.Fatalf("error without a proper code: %v", err)
			}
			return
		}
		for typ := range secrets {
			if _, dup := attrs[typ]; dup {
				t.Fatalf("%s in both clear and secret parts", ck.AttrName(typ))
			}
		}
		if _, err := ApplySet(attrs, tmpl, RoleCU, false); err != nil && hsmerr.RV(err) == ck.CKR_FUNCTION_FAILED {
			t.Fatal(err)
		}
	})
}
