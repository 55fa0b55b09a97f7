package hsmd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/object"
	"google.golang.org/protobuf/proto"
)

func TestSessionToken(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	now := time.Unix(1_700_000_000, 0)
	c := &claims{User: "alice", Role: object.RoleCU, Number: 5, Generation: 3, Session: 77, Expires: now.Add(time.Minute).Unix(),
		MaxExpires: now.Add(time.Hour).Unix(), Cert: [32]byte{1, 2, 3}}
	tok := mintToken(key, c)
	if strings.Contains(tok, "alice") {
		t.Fatal("the user name is readable in the token")
	}
	got, err := parseToken(key, tok, now)
	if err != nil || *got != *c {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if _, err := parseToken(key, tok, now.Add(2*time.Minute)); err == nil {
		t.Fatal("expired token accepted")
	}
	if _, err := parseToken(bytes.Repeat([]byte{8}, 32), tok, now); err == nil {
		t.Fatal("token accepted under another key")
	}
	// No token outlives its session's absolute end, whatever its own expiry.
	past := *c
	past.Expires = now.Add(2 * time.Hour).Unix()
	if _, err := parseToken(key, mintToken(key, &past), now); err == nil {
		t.Fatal("a token that expires after its session's absolute end was accepted")
	}
	if _, err := parseToken(key, tok, now.Add(time.Hour)); err == nil {
		t.Fatal("a token was accepted after its session's absolute end")
	}
	for i := len(tokenPrefix); i < len(tok); i++ {
		b := []byte(tok)
		b[i] ^= 1
		if got, err := parseToken(key, string(b), now); err == nil && *got != *c {
			t.Fatalf("edited token accepted with other claims (byte %d)", i)
		}
	}
	for _, bad := range []string{"", "v1.", "v1.a.b.c", "v1." + tok[3:], strings.Repeat("v", 2000)} {
		if _, err := parseToken(key, bad, now); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	key := bytes.Repeat([]byte{9}, 32)
	f.Add(mintToken(key, &claims{User: "alice", Role: object.RoleCU, Session: 1, Expires: 1 << 40, MaxExpires: 1 << 41}))
	f.Add("v1.AAAA.BBBB")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := parseToken(key, tok, time.Unix(0, 0))
		if err != nil {
			return
		}
		// Whatever is accepted must be exactly what we would mint.
		if mintToken(key, c) != tok {
			t.Fatalf("accepted a token we did not mint: %q", tok)
		}
	})
}

// requestDecoders runs every request decoder the server has on a message;
// FuzzDecodeRequest feeds them arbitrary bytes.
func decodeAll(b []byte) {
	var g hsmpb.GenerateKeyPairRequest
	if proto.Unmarshal(b, &g) == nil {
		api.MechFromPB("mechanism", g.Mechanism)
		api.TemplateFromPB("public_template", g.PublicTemplate)
		api.TemplateFromPB("private_template", g.PrivateTemplate)
	}
	var c hsmpb.CryptoRequest
	if proto.Unmarshal(b, &c) == nil {
		cryptoArgs(&c)
	}
	var u hsmpb.UnwrapKeyRequest
	if proto.Unmarshal(b, &u) == nil {
		api.MechFromPB("mechanism", u.Mechanism)
		api.TemplateFromPB("template", u.Template)
	}
	var f hsmpb.FindObjectsRequest
	if proto.Unmarshal(b, &f) == nil {
		findArgs(&f)
	}
	var l hsmpb.CreateUserRequest
	if proto.Unmarshal(b, &l) == nil {
		userName("user", l.User)
		password("password", l.Password)
		parseRole("role", l.Role)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	seeds := []proto.Message{
		&hsmpb.GenerateKeyPairRequest{Mechanism: &hsmpb.Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
			PublicTemplate: []*hsmpb.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: object.EncodeUlong(2048)}}},
		&hsmpb.CryptoRequest{Mechanism: &hsmpb.Mechanism{Type: ck.CKM_AES_GCM, Param: &hsmpb.Mechanism_Gcm{Gcm: &hsmpb.GcmParams{Iv: make([]byte, 12), TagBits: 128}}}, Key: 5, Data: []byte("x")},
		&hsmpb.CryptoRequest{Mechanism: &hsmpb.Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &hsmpb.Mechanism_Oaep{Oaep: &hsmpb.OaepParams{Hash: ck.CKM_SHA256, Mgf: ck.CKG_MGF1_SHA256, Label: []byte("l")}}}, Key: 5},
		&hsmpb.CryptoRequest{Mechanism: &hsmpb.Mechanism{Type: ck.CKM_AES_CTR, Param: &hsmpb.Mechanism_Ctr{Ctr: &hsmpb.CtrParams{CounterBits: 32, Cb: make([]byte, 16)}}}, Key: 5},
		&hsmpb.UnwrapKeyRequest{Mechanism: &hsmpb.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}, UnwrappingKey: 1, WrappedKey: []byte{1, 2}},
		&hsmpb.FindObjectsRequest{Template: []*hsmpb.Attribute{{Type: ck.CKA_LABEL, Value: []byte("k")}}, Max: 10},
		&hsmpb.CreateUserRequest{User: "bob", Role: "CU", Password: "password1"},
	}
	for _, m := range seeds {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { decodeAll(b) })
}

func TestDecodeNamesTheField(t *testing.T) {
	cases := []struct {
		err   error
		field string
	}{
		{func() error { _, err := api.MechFromPB("mechanism", nil); return err }(), "mechanism"},
		{func() error {
			_, err := api.MechFromPB("mechanism", &hsmpb.Mechanism{Param: &hsmpb.Mechanism_Ctr{Ctr: &hsmpb.CtrParams{CounterBits: 8, Cb: []byte{1}}}})
			return err
		}(), "mechanism.ctr.cb"},
		{func() error {
			_, err := api.MechFromPB("mechanism", &hsmpb.Mechanism{Param: &hsmpb.Mechanism_Gcm{Gcm: &hsmpb.GcmParams{Iv: nil, TagBits: 128}}})
			return err
		}(), "mechanism.gcm.iv"},
		{func() error {
			_, err := api.TemplateFromPB("template", []*hsmpb.Attribute{{Type: 3, Value: make([]byte, object.MaxAttrValue+1)}})
			return err
		}(), "template[0].value"},
		{func() error { _, err := api.TemplateFromPB("template", make([]*hsmpb.Attribute, 65)); return err }(), "template"},
		{objectID("key", 0), "key"},
		{userName("user", "no:colons"), "user"},
		{password("password", ""), "password"},
		{func() error { _, err := parseRole("role", "root"); return err }(), "role"},
		{func() error { _, _, err := findArgs(&hsmpb.FindObjectsRequest{Max: 1 << 30}); return err }(), "max"},
	}
	for _, c := range cases {
		var fe *api.FieldError
		if !errors.As(c.err, &fe) || fe.Field != c.field {
			t.Errorf("want a bad %q field, got %v", c.field, c.err)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "n.pem", "n-key.pem", "pass"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
	}
	good := "node = \"n1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"pass\"\n"
	write := func(s string) string {
		p := filepath.Join(dir, "node.toml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	c, err := LoadConfig(write(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "d") || !c.SyncWrites() || c.TTL() != DefaultSessionTTL {
		t.Fatalf("defaults and relative paths: %+v", c)
	}
	for name, bad := range map[string]string{
		"unknown key":   good + "colour = \"red\"\n",
		"bad listen":    strings.Replace(good, "127.0.0.1:0", "nowhere", 1),
		"missing cert":  strings.Replace(good, "n.pem", "missing.pem", 1),
		"two kek":       good + "key_file = \"pass\"\n",
		"bad level":     good + "log_level = \"loud\"\n",
		"bad ttl":       good + "session_ttl = \"1s\"\n",
		"bad node name": strings.Replace(good, "n1", "n 1", 1),
		"not toml":      "node = ",
	} {
		if _, err := LoadConfig(write(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
