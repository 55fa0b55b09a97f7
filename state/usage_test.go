package state_test

import (
	"context"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/require"
)

var (
	aesGen  = mech.Mech{Type: ck.CKM_AES_KEY_GEN}
	aesWrap = mech.Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}
)

func aes(extra ...object.Attribute) object.Template {
	return append(object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true)}, extra...)
}

func usages(t *testing.T, e *engine.Engine, c engine.Caller, id uint64) map[uint64]bool {
	t.Helper()
	types := []uint64{ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_ENCRYPT, ck.CKA_DECRYPT}
	av, err := e.GetAttributes(c, id, types)
	require.NoError(t, err)
	out := map[uint64]bool{}
	for i, a := range av {
		out[types[i]] = a.RV == ck.CKR_OK && len(a.Value) == 1 && a.Value[0] == 1
	}
	return out
}

// TestUsageDefaultsNeverConflict: a template that says nothing about
// wrapping makes a key that encrypts and decrypts; one that asks to wrap
// makes a key that wraps and unwraps only; neither conflicts.
func TestUsageDefaultsNeverConflict(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	plain, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes())
	require.NoError(t, err)
	require.Equal(t, map[uint64]bool{ck.CKA_ENCRYPT: true, ck.CKA_DECRYPT: true, ck.CKA_WRAP: false, ck.CKA_UNWRAP: false}, usages(t, f.e, f.alice, plain))
	for _, a := range []object.Attribute{bo(ck.CKA_WRAP, true), bo(ck.CKA_UNWRAP, true)} {
		kek, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(a))
		require.NoError(t, err)
		u := usages(t, f.e, f.alice, kek)
		require.False(t, u[ck.CKA_ENCRYPT] || u[ck.CKA_DECRYPT], "a key asked to %s also encrypts or decrypts: %v", ck.AttrName(a.Type), u)
	}
	// A key pair made with nothing said wraps nothing; one asked to wrap
	// does not decrypt.
	pub, priv, err := f.e.GenerateKeyPair(ctx, f.alice, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_TOKEN, true)}, object.Template{bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	require.False(t, usages(t, f.e, f.alice, pub)[ck.CKA_WRAP])
	require.False(t, usages(t, f.e, f.alice, priv)[ck.CKA_UNWRAP])
	pub, priv, err = f.e.GenerateKeyPair(ctx, f.alice, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_TOKEN, true), bo(ck.CKA_WRAP, true)},
		object.Template{bo(ck.CKA_TOKEN, true), bo(ck.CKA_UNWRAP, true)})
	require.NoError(t, err)
	require.False(t, usages(t, f.e, f.alice, pub)[ck.CKA_ENCRYPT])
	require.False(t, usages(t, f.e, f.alice, priv)[ck.CKA_DECRYPT])
}

// TestUsagePolicy plays every way to get a key that wraps and decrypts (or
// unwraps and encrypts), and CKA_WRAP_WITH_TRUSTED.
func TestUsagePolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	both := []object.Attribute{bo(ck.CKA_WRAP, true), bo(ck.CKA_DECRYPT, true)}
	_, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(both...))
	wantRV(t, "generate wrap+decrypt", err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_UNWRAP, true), bo(ck.CKA_ENCRYPT, true)))
	wantRV(t, "generate unwrap+encrypt", err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = f.e.CreateObject(ctx, f.alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES),
		{Type: ck.CKA_VALUE, Value: make([]byte, 16)}, bo(ck.CKA_WRAP, true), bo(ck.CKA_DECRYPT, true)})
	wantRV(t, "create wrap+decrypt", err, ck.CKR_TEMPLATE_INCONSISTENT)

	kek, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_WRAP, true), bo(ck.CKA_UNWRAP, true)))
	require.NoError(t, err)
	wantRV(t, "set decrypt on a wrapping key", f.e.SetAttributes(ctx, f.alice, kek, object.Template{bo(ck.CKA_DECRYPT, true)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	require.NoError(t, f.e.SetAttributes(ctx, f.alice, kek, object.Template{bo(ck.CKA_WRAP, false)}), "a usage may be turned off")
	wantRV(t, "decrypt turned on after wrap was turned off", f.e.SetAttributes(ctx, f.alice, kek, object.Template{bo(ck.CKA_DECRYPT, true)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = f.e.CopyObject(ctx, f.alice, kek, object.Template{bo(ck.CKA_ENCRYPT, true)})
	wantRV(t, "copy an unwrapping key with encrypt", err, ck.CKR_TEMPLATE_INCONSISTENT)

	// A key whose value its owner can read gives nothing more by both:
	// allowed, until it is made sensitive or trusted.
	open, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(append(both, bo(ck.CKA_SENSITIVE, false), bo(ck.CKA_EXTRACTABLE, true))...))
	require.NoError(t, err)
	wantRV(t, "make the open key sensitive", f.e.SetAttributes(ctx, f.alice, open, object.Template{bo(ck.CKA_SENSITIVE, true)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	wantRV(t, "an officer trusts the open key", f.e.SetAttributes(ctx, f.co, open, object.Template{bo(ck.CKA_TRUSTED, true)}), ck.CKR_ATTRIBUTE_VALUE_INVALID)

	// Unwrap into a key with both.
	target, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_EXTRACTABLE, true)))
	require.NoError(t, err)
	wrapper, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_WRAP, true), bo(ck.CKA_UNWRAP, true)))
	require.NoError(t, err)
	blob, err := f.e.WrapKey(f.alice, aesWrap, wrapper, target)
	require.NoError(t, err)
	_, err = f.e.UnwrapKey(ctx, f.alice, aesWrap, wrapper, blob, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES),
		bo(ck.CKA_TOKEN, true), bo(ck.CKA_WRAP, true), bo(ck.CKA_DECRYPT, true)})
	wantRV(t, "unwrap into wrap+decrypt", err, ck.CKR_TEMPLATE_INCONSISTENT)
	back, err := f.e.UnwrapKey(ctx, f.alice, aesWrap, wrapper, blob, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES), bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err, "a plain unwrap")
	require.True(t, usages(t, f.e, f.alice, back)[ck.CKA_DECRYPT])

	// The apply function refuses a forged create with both.
	forged := &object.Object{ID: 12345, Owner: "alice", Attrs: object.Attrs{}}
	forged.Attrs.SetUlong(ck.CKA_CLASS, ck.CKO_SECRET_KEY)
	forged.Attrs.SetUlong(ck.CKA_KEY_TYPE, ck.CKK_AES)
	forged.Attrs.SetBool(ck.CKA_SENSITIVE, true)
	forged.Attrs.SetBool(ck.CKA_WRAP, true)
	forged.Attrs.SetBool(ck.CKA_DECRYPT, true)
	wantRV(t, "apply a create with both", f.rec.Submit(ctx, &state.Command{Op: state.OpCreateObjects, Actor: "alice", Objects: []*object.Object{forged}}), ck.CKR_TEMPLATE_INCONSISTENT)
	// ... and a forged set.
	wantRV(t, "apply a set of decrypt on a wrapping key", f.rec.Submit(ctx, &state.Command{Op: state.OpSetAttributes, Actor: "alice", ObjectID: wrapper,
		Changes: object.Template{bo(ck.CKA_DECRYPT, true)}}), ck.CKR_ATTRIBUTE_VALUE_INVALID)

	// A key pair: asked for both across the pair; a public key imported to
	// wrap for a private key that decrypts.
	_, _, err = f.e.GenerateKeyPair(ctx, f.alice, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_WRAP, true)}, object.Template{bo(ck.CKA_DECRYPT, true)})
	wantRV(t, "a pair that wraps and decrypts", err, ck.CKR_TEMPLATE_INCONSISTENT)
	pub, _, err := f.e.GenerateKeyPair(ctx, f.alice, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_MODULUS_BITS, 2048), bo(ck.CKA_TOKEN, true)}, object.Template{bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	pa, err := f.e.GetAttributes(f.alice, pub, []uint64{ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT})
	require.NoError(t, err)
	imported, err := f.e.CreateObject(ctx, f.alice, object.Template{ul(ck.CKA_CLASS, ck.CKO_PUBLIC_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_RSA),
		{Type: ck.CKA_MODULUS, Value: pa[0].Value}, {Type: ck.CKA_PUBLIC_EXPONENT, Value: pa[1].Value}, bo(ck.CKA_WRAP, true), bo(ck.CKA_TOKEN, true)})
	require.NoError(t, err)
	_, err = f.e.WrapKey(f.alice, mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}}, imported, target)
	wantRV(t, "wrap under a public key whose private half decrypts", err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)

	// CKA_WRAP_WITH_TRUSTED: only a key an officer trusts may wrap it.
	guarded, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_EXTRACTABLE, true), bo(ck.CKA_WRAP_WITH_TRUSTED, true)))
	require.NoError(t, err)
	_, err = f.e.WrapKey(f.alice, aesWrap, wrapper, guarded)
	wantRV(t, "wrap a wrap-with-trusted key under an untrusted key", err, ck.CKR_KEY_NOT_WRAPPABLE)
	require.NoError(t, f.e.SetAttributes(ctx, f.co, wrapper, object.Template{bo(ck.CKA_TRUSTED, true)}))
	_, err = f.e.WrapKey(f.alice, aesWrap, wrapper, guarded)
	require.NoError(t, err, "a trusted key wraps it")
}

// TestLegacyConflictingKey: a key made before the policy, when wrap and
// unwrap defaulted on, keeps its other uses and may be relabelled or have a
// usage dropped, but does not wrap or unwrap and is not copied.
func TestLegacyConflictingKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_WRAP, true), bo(ck.CKA_UNWRAP, true), bo(ck.CKA_ENCRYPT, true),
		bo(ck.CKA_DECRYPT, true), bo(ck.CKA_SENSITIVE, false), bo(ck.CKA_EXTRACTABLE, true)))
	require.NoError(t, err)
	// Make it what an old store holds: sensitive, with every usage.
	require.NoError(t, f.m.Store().Update(0, func(tx state.Tx) error {
		o, err := tx.Object(id)
		if err != nil {
			return err
		}
		o.Attrs.SetBool(ck.CKA_SENSITIVE, true)
		o.MAC = f.m.Sealer().AttrMAC(o)
		return tx.PutObject(o)
	}))
	f.e.ObjectChanged(id)
	target, err := f.e.GenerateKey(ctx, f.alice, aesGen, aes(bo(ck.CKA_EXTRACTABLE, true)))
	require.NoError(t, err)

	require.NoError(t, f.e.SetAttributes(ctx, f.alice, id, object.Template{{Type: ck.CKA_LABEL, Value: []byte("old")}}), "relabel")
	_, err = f.e.WrapKey(f.alice, aesWrap, id, target)
	wantRV(t, "wrap with a conflicting key", err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = f.e.UnwrapKey(ctx, f.alice, aesWrap, id, make([]byte, 40), object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES)})
	wantRV(t, "unwrap with a conflicting key", err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = f.e.CopyObject(ctx, f.alice, id, nil)
	wantRV(t, "copy a conflicting key", err, ck.CKR_TEMPLATE_INCONSISTENT)
	require.NoError(t, f.e.SetAttributes(ctx, f.alice, id, object.Template{bo(ck.CKA_DECRYPT, false), bo(ck.CKA_ENCRYPT, false)}), "drop the data usages")
	_, err = f.e.WrapKey(f.alice, aesWrap, id, target)
	require.NoError(t, err, "a key that only wraps now wraps")
}
