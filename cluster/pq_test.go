package cluster_test

import (
	"bytes"
	"crypto/mlkem"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// pqKeys are an ML-DSA-65 and an ML-KEM-768 token key pair and their public
// values as made, to check them after replication or a restore.
type pqKeys struct {
	dsaPriv, kemPub, kemPriv uint64
	dsaPK, kemEK             []byte
}

func newPQKeys(t *testing.T, cl *client.Client) *pqKeys {
	t.Helper()
	tok := attr(ck.CKA_TOKEN, object.EncodeBool(true))
	gen := func(m, set uint64) (uint64, uint64, []byte) {
		pub, priv, err := cl.GenerateKeyPair(ctx, mech.Mech{Type: m},
			object.Template{tok, attr(ck.CKA_PARAMETER_SET, object.EncodeUlong(set))}, object.Template{tok})
		require.NoError(t, err, ck.MechName(m))
		vals, err := cl.GetAttributes(ctx, pub, []uint64{ck.CKA_VALUE})
		require.NoError(t, err)
		return pub, priv, vals[0].Value
	}
	k := &pqKeys{}
	_, k.dsaPriv, k.dsaPK = gen(ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKP_ML_DSA_65)
	k.kemPub, k.kemPriv, k.kemEK = gen(ck.CKM_ML_KEM_KEY_PAIR_GEN, ck.CKP_ML_KEM_768)
	return k
}

// work checks that the keys still sign and decapsulate as the public values
// made at generation say.
func (k *pqKeys) work(t *testing.T, cl *client.Client, where string) {
	t.Helper()
	msg := []byte("post-quantum " + where)
	sig, err := cl.Sign(ctx, k.dsaPriv, mech.Mech{Type: ck.CKM_ML_DSA}, msg)
	require.NoError(t, err, where)
	var pk mldsa65.PublicKey
	require.NoError(t, pk.UnmarshalBinary(k.dsaPK))
	require.True(t, mldsa65.Verify(&pk, msg, nil, sig), "%s: the ML-DSA signature verifies", where)

	ek, err := mlkem.NewEncapsulationKey768(k.kemEK)
	require.NoError(t, err)
	secret, ct := ek.Encapsulate()
	id, err := cl.DecapsulateKey(ctx, mech.Mech{Type: ck.CKM_ML_KEM}, k.kemPriv, ct, object.Template{
		attr(ck.CKA_SENSITIVE, object.EncodeBool(false)), attr(ck.CKA_EXTRACTABLE, object.EncodeBool(true))})
	require.NoError(t, err, where)
	vals, err := cl.GetAttributes(ctx, id, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	require.True(t, bytes.Equal(secret, vals[0].Value), "%s: the decapsulated secret matches", where)
	require.NoError(t, cl.DestroyObject(ctx, id))
}
