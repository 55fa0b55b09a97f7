package state_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/require"
)

var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// capture is an Applier that keeps the last command instead of applying
// it: a way to get the exact create_objects the engine makes.
type capture struct{ last *state.Command }

func (c *capture) Submit(_ context.Context, cmd *state.Command) error { c.last = cmd; return nil }

func selfSignedDER(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authz"},
		NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return der
}

// legitCommand makes, through the engine, the create_objects command of
// one kind of token object, as alice.
func legitCommand(t *testing.T, w *authzWorld, kind string) *state.Command {
	t.Helper()
	cp := &capture{}
	e := engine.NewEngine(w.m, cp, engine.Options{})
	alice := engine.Caller{User: "alice", Role: object.RoleCU, Session: 9}
	tok := bo(ck.CKA_TOKEN, true)
	var err error
	switch kind {
	case "aes":
		_, err = e.GenerateKey(t.Context(), alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32), tok})
	case "ec pair":
		_, _, err = e.GenerateKeyPair(t.Context(), alice, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
			object.Template{{Type: ck.CKA_EC_PARAMS, Value: p256Params}, tok}, object.Template{tok})
	case "certificate":
		der := selfSignedDER(t)
		_, err = e.CreateObject(t.Context(), alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_CERTIFICATE),
			ul(ck.CKA_CERTIFICATE_TYPE, ck.CKC_X_509), {Type: ck.CKA_SUBJECT, Value: []byte("s")}, {Type: ck.CKA_VALUE, Value: der}, tok})
	case "data":
		_, err = e.CreateObject(t.Context(), alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_DATA), {Type: ck.CKA_VALUE, Value: []byte("v")}, tok})
	default:
		t.Fatalf("unknown kind %s", kind)
	}
	require.NoError(t, err)
	require.NotNil(t, cp.last)
	return cp.last
}

// TestApplyCreateObjectsTemplateRules forges, from a legitimate
// create_objects, each thing the API's template rules would refuse, and
// applies it directly: apply must refuse it and store nothing.
func TestApplyCreateObjectsTemplateRules(t *testing.T) {
	w := newAuthzWorld(t, true)
	set := func(t uint64, v []byte) func(*testing.T, *object.Object) {
		return func(_ *testing.T, o *object.Object) { o.Attrs[t] = v }
	}
	del := func(t uint64) func(*testing.T, *object.Object) {
		return func(_ *testing.T, o *object.Object) { delete(o.Attrs, t) }
	}
	reseal := func(owner string, material func(t *testing.T) []byte) func(*testing.T, *object.Object) {
		return func(t *testing.T, o *object.Object) {
			var err error
			o.Sealed, err = w.s.Seal(o.ID, owner, material(t))
			require.NoError(t, err)
		}
	}
	otherEC := func(t *testing.T) []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return der
	}
	ed := func(t *testing.T) []byte {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return der
	}
	aes16 := func(*testing.T) []byte { return make([]byte, 16) }
	cases := []struct {
		name  string
		kind  string
		index int // which object of the command
		forge func(*testing.T, *object.Object)
	}{
		{"CKA_TRUSTED by a crypto user", "aes", 0, set(ck.CKA_TRUSTED, []byte{1})},
		{"CKA_TRUSTED certificate", "certificate", 0, set(ck.CKA_TRUSTED, []byte{1})},
		{"secret value in the clear", "aes", 0, set(ck.CKA_VALUE, make([]byte, 32))},
		{"private scalar in the clear", "ec pair", 1, set(ck.CKA_VALUE, []byte{1, 2, 3})},
		{"key type of another class", "aes", 0, set(ck.CKA_KEY_TYPE, object.EncodeUlong(ck.CKK_RSA))},
		{"unsupported class", "data", 0, set(ck.CKA_CLASS, object.EncodeUlong(ck.CKO_HW_FEATURE))},
		{"attribute of another class", "aes", 0, set(ck.CKA_MODULUS, []byte{1})},
		{"unknown attribute", "data", 0, set(0x80001234, []byte{1})},
		{"malformed bool", "aes", 0, set(ck.CKA_SENSITIVE, []byte{2})},
		{"missing CKA_SENSITIVE", "aes", 0, del(ck.CKA_SENSITIVE)},
		{"missing CKA_PRIVATE", "data", 0, del(ck.CKA_PRIVATE)},
		{"not sensitive yet always sensitive", "aes", 0, set(ck.CKA_SENSITIVE, []byte{0})},
		{"extractable yet never extractable", "aes", 0, set(ck.CKA_EXTRACTABLE, []byte{1})},
		{"CKA_LOCAL with another key type's mechanism", "aes", 0, set(ck.CKA_KEY_GEN_MECHANISM, object.EncodeUlong(ck.CKM_RSA_PKCS_KEY_PAIR_GEN))},
		{"CKA_LOCAL false with a generating mechanism", "aes", 0, set(ck.CKA_LOCAL, []byte{0})},
		{"CKA_LOCAL on an import", "data", 0, set(ck.CKA_LOCAL, []byte{1})},
		{"always authenticate", "ec pair", 1, set(ck.CKA_ALWAYS_AUTHENTICATE, []byte{1})},
		{"check value of another key", "aes", 0, set(ck.CKA_CHECK_VALUE, []byte{1, 2, 3})},
		{"value length of another key", "aes", 0, set(ck.CKA_VALUE_LEN, object.EncodeUlong(16))},
		{"no sealed value", "aes", 0, func(_ *testing.T, o *object.Object) { o.Sealed = nil }},
		{"garbage sealed value", "aes", 0, func(_ *testing.T, o *object.Object) { o.Sealed = make([]byte, 60) }},
		{"value sealed for another owner", "aes", 0, reseal("carol", aes16)},
		{"value of another length", "aes", 0, reseal("alice", aes16)},
		{"private key of another key", "ec pair", 1, reseal("alice", otherEC)},
		{"private key of another type", "ec pair", 1, reseal("alice", ed)},
		{"sealed value on a public key", "ec pair", 0, reseal("alice", otherEC)},
		{"public point not on the curve", "ec pair", 0, set(ck.CKA_EC_POINT, append([]byte{0x04, 0x41, 0x04}, make([]byte, 64)...))},
		{"private key's point of another key", "ec pair", 1, set(ck.CKA_EC_POINT, append([]byte{0x04, 0x41, 0x04}, make([]byte, 64)...))},
		{"certificate check value", "certificate", 0, set(ck.CKA_CHECK_VALUE, []byte{1, 2, 3})},
		{"unique id of another object", "data", 0, set(ck.CKA_UNIQUE_ID, []byte("0000000000000001"))},
		{"session object", "data", 0, set(ck.CKA_TOKEN, []byte{0})},
		{"oversized value", "data", 0, set(ck.CKA_VALUE, make([]byte, object.MaxAttrValue+1))},
	}
	for _, kind := range []string{"aes", "ec pair", "certificate", "data"} {
		t.Run("legitimate "+kind, func(t *testing.T) {
			require.NoError(t, w.apply(legitCommand(t, w, kind)))
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := legitCommand(t, w, c.kind)
			c.forge(t, cmd.Objects[c.index])
			before := w.state()
			err := w.apply(cmd)
			require.Error(t, err)
			t.Log(err)
			require.Equal(t, before, w.state())
		})
	}
}

// TestEngineTokenObjectsPassApply: every kind of token object the API makes
// passes apply's checks (none is refused by mistake), and a copy of a
// trusted key starts untrusted.
func TestEngineTokenObjectsPassApply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := bo(ck.CKA_TOKEN, true)
	e, alice := f.e, f.alice
	mustID := func(id uint64, err error) uint64 {
		t.Helper()
		require.NoError(t, err)
		return id
	}
	aes := mustID(e.GenerateKey(ctx, alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32), tok, bo(ck.CKA_EXTRACTABLE, true)}))
	mustID(e.GenerateKey(ctx, alice, mech.Mech{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 48), tok}))
	for _, pair := range []struct {
		mech uint64
		pub  object.Template
	}{
		{ck.CKM_RSA_PKCS_KEY_PAIR_GEN, object.Template{ul(ck.CKA_MODULUS_BITS, 2048)}},
		{ck.CKM_EC_KEY_PAIR_GEN, object.Template{{Type: ck.CKA_EC_PARAMS, Value: p256Params}}},
		{ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, object.Template{{Type: ck.CKA_EC_PARAMS, Value: []byte("\x13\x0cedwards25519")}}},
		{ck.CKM_ML_DSA_KEY_PAIR_GEN, object.Template{ul(ck.CKA_PARAMETER_SET, ck.CKP_ML_DSA_44)}},
		{ck.CKM_ML_KEM_KEY_PAIR_GEN, object.Template{ul(ck.CKA_PARAMETER_SET, ck.CKP_ML_KEM_512)}},
	} {
		_, _, err := e.GenerateKeyPair(ctx, alice, mech.Mech{Type: pair.mech}, append(pair.pub, tok), object.Template{tok, bo(ck.CKA_DERIVE, true)})
		require.NoError(t, err, ck.MechName(pair.mech))
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPoint, err := ecKey.PublicKey.Bytes()
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	for name, tmpl := range map[string]object.Template{
		"data": {ul(ck.CKA_CLASS, ck.CKO_DATA), {Type: ck.CKA_VALUE, Value: []byte("v")}},
		"certificate": {ul(ck.CKA_CLASS, ck.CKO_CERTIFICATE), ul(ck.CKA_CERTIFICATE_TYPE, ck.CKC_X_509),
			{Type: ck.CKA_SUBJECT, Value: []byte("s")}, {Type: ck.CKA_VALUE, Value: selfSignedDER(t)}},
		"aes import": {ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES), {Type: ck.CKA_VALUE, Value: make([]byte, 24)}},
		"ec public, raw point": {ul(ck.CKA_CLASS, ck.CKO_PUBLIC_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_EC),
			{Type: ck.CKA_EC_PARAMS, Value: p256Params}, {Type: ck.CKA_EC_POINT, Value: ecPoint}},
		"ec private": {ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_EC),
			{Type: ck.CKA_EC_PARAMS, Value: p256Params}, {Type: ck.CKA_VALUE, Value: ecKey.D.Bytes()}},
		"ed25519 private": {ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_EC_EDWARDS),
			{Type: ck.CKA_EC_PARAMS, Value: []byte("\x13\x0cedwards25519")}, {Type: ck.CKA_VALUE, Value: edKey.Seed()}},
	} {
		_, err := e.CreateObject(ctx, alice, append(tmpl, tok))
		require.NoError(t, err, name)
	}

	// Post-quantum keys made from outside: an ML-DSA private key from its
	// seed, an ML-KEM public key; and the keys of an encapsulation and a
	// decapsulation.
	_, err = e.CreateObject(ctx, alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_ML_DSA),
		ul(ck.CKA_PARAMETER_SET, ck.CKP_ML_DSA_65), {Type: ck.CKA_SEED, Value: make([]byte, 32)}, tok})
	require.NoError(t, err, "ml-dsa private")
	kemPub, kemPriv, err := e.GenerateKeyPair(ctx, alice, mech.Mech{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_PARAMETER_SET, ck.CKP_ML_KEM_768), tok}, object.Template{tok})
	require.NoError(t, err)
	ekVals, err := e.GetAttributes(alice, kemPub, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	_, err = e.CreateObject(ctx, alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_PUBLIC_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_ML_KEM),
		ul(ck.CKA_PARAMETER_SET, ck.CKP_ML_KEM_768), {Type: ck.CKA_VALUE, Value: ekVals[0].Value}, tok})
	require.NoError(t, err, "ml-kem public")
	ct, _, err := e.EncapsulateKey(ctx, alice, mech.Mech{Type: ck.CKM_ML_KEM}, kemPub, object.Template{tok})
	require.NoError(t, err)
	mustID(e.DecapsulateKey(ctx, alice, mech.Mech{Type: ck.CKM_ML_KEM}, kemPriv, ct,
		object.Template{ul(ck.CKA_KEY_TYPE, ck.CKK_AES), tok}))

	// A derived key (ECDH) and an unwrapped one.
	ecPriv := mustID(e.CreateObject(ctx, alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_EC),
		{Type: ck.CKA_EC_PARAMS, Value: p256Params}, {Type: ck.CKA_VALUE, Value: ecKey.D.Bytes()}, bo(ck.CKA_DERIVE, true), tok}))
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	mustID(e.DeriveKey(ctx, alice, mech.Mech{Type: ck.CKM_ECDH1_DERIVE, Param: &mech.ECDHParams{KDF: ck.CKD_NULL, PublicData: peer.PublicKey().Bytes()}},
		ecPriv, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_GENERIC_SECRET), tok}))
	kek := mustID(e.GenerateKey(ctx, alice, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_WRAP, true), bo(ck.CKA_UNWRAP, true), tok}))
	wrapped, err := e.WrapKey(alice, mech.Mech{Type: ck.CKM_AES_KEY_WRAP}, kek, aes)
	require.NoError(t, err)
	mustID(e.UnwrapKey(ctx, alice, mech.Mech{Type: ck.CKM_AES_KEY_WRAP}, kek, wrapped,
		object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES), tok}))
	// An ML-DSA private key wraps (its PKCS #8 seed form) and unwraps.
	_, dsaPriv, err := e.GenerateKeyPair(ctx, alice, mech.Mech{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_PARAMETER_SET, ck.CKP_ML_DSA_87), tok}, object.Template{bo(ck.CKA_EXTRACTABLE, true), tok})
	require.NoError(t, err)
	wrappedDSA, err := e.WrapKey(alice, mech.Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, kek, dsaPriv)
	require.NoError(t, err)
	unwrappedDSA := mustID(e.UnwrapKey(ctx, alice, mech.Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, kek, wrappedDSA,
		object.Template{ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_ML_DSA), tok}))
	ps, err := e.GetAttributes(alice, unwrappedDSA, []uint64{ck.CKA_PARAMETER_SET})
	require.NoError(t, err)
	require.Equal(t, object.EncodeUlong(ck.CKP_ML_DSA_87), ps[0].Value)

	// A crypto officer trusts the key; alice's copy is a new, untrusted
	// object, and apply takes it.
	require.NoError(t, e.SetAttributes(ctx, f.co, aes, object.Template{bo(ck.CKA_TRUSTED, true)}))
	cp := mustID(e.CopyObject(ctx, alice, aes, object.Template{by(ck.CKA_LABEL, "copy")}))
	vals, err := e.GetAttributes(alice, cp, []uint64{ck.CKA_TRUSTED})
	require.NoError(t, err)
	require.Equal(t, []byte{0}, vals[0].Value)
}

func by(t uint64, v string) object.Attribute { return object.Attribute{Type: t, Value: []byte(v)} }

// TestApplyRefusalsAreTheSameOnEveryNode applies one log, with forged
// commands that break several rules at once, on two stores: each command
// gets the same answer (the same CKR) on both, and both end the same.
func TestApplyRefusalsAreTheSameOnEveryNode(t *testing.T) {
	sealer, rec, err := seal.NewDomainKey("authz", seal.KEKSource{KeyFile: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	a, b := newAuthzWorldKey(t, true, sealer, rec), newAuthzWorldKey(t, true, sealer, rec)
	var log []*state.Command
	for i := 0; i < 20; i++ {
		cmd := legitCommand(t, a, []string{"aes", "ec pair", "certificate", "data"}[i%4])
		if i%5 != 0 { // every fifth stays legitimate
			o := cmd.Objects[len(cmd.Objects)-1]
			o.Attrs[ck.CKA_TRUSTED] = []byte{1}
			o.Attrs[ck.CKA_VALUE] = []byte{1, 2, 3}
			o.Attrs[0x80001234] = []byte{1}
			o.Attrs[ck.CKA_LOCAL] = []byte{2}
			delete(o.Attrs, ck.CKA_PRIVATE)
		}
		log = append(log, cmd)
	}
	log = append(log, &state.Command{Op: state.OpSetAttributes, Actor: "alice", ObjectID: log[0].Objects[0].ID,
		Changes: object.Template{bo(ck.CKA_TRUSTED, true), bo(ck.CKA_SENSITIVE, false), {Type: ck.CKA_MODULUS, Value: []byte{1}}}})
	for i, cmd := range log {
		errA, errB := a.apply(cmd), b.apply(cmd)
		require.Equal(t, hsmerr.RV(errA), hsmerr.RV(errB), "command %d", i)
		require.Equal(t, fmt.Sprint(errA), fmt.Sprint(errB), "command %d", i)
	}
	require.Equal(t, a.state(), b.state())
}

// FuzzApplyForged feeds apply whatever decodes as a command, as a node
// certificate could through Forward: apply must answer (apply or refuse),
// never panic, and never take a bad command for a store failure.
func FuzzApplyForged(f *testing.F) {
	seeds := []*state.Command{
		{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{dataObject(f, 5, "alice")}},
		{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{{ID: 6, Owner: "alice", Attrs: object.Attrs{0: object.EncodeUlong(4), 0x11: nil}, Sealed: []byte{1}}}},
		{Op: state.OpSetAttributes, Actor: "alice", ObjectID: 5, Changes: object.Template{{Type: ck.CKA_TRUSTED, Value: nil}}},
		{Op: state.OpSetPassword, Actor: "alice", Name: "alice", PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$$"},
		{Op: state.OpBootstrap, User: &object.User{Name: "x", Role: object.RoleCO}},
		{Op: state.OpShare, Actor: "alice", ObjectID: 5, Name: "carol"},
		{Op: state.OpLogout, Actor: "alice", Session: 1, Expires: 2},
	}
	for _, c := range seeds {
		raw, err := c.Encode()
		require.NoError(f, err)
		f.Add(raw)
	}
	w := newAuthzWorld(f, true)
	f.Fuzz(func(t *testing.T, raw []byte) {
		w.idx++
		err := w.m.Apply(w.idx, raw)
		var se *state.StoreError
		require.False(t, errors.As(err, &se), "a command was taken for a store failure: %v", err)
	})
}
