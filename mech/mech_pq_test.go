package mech

import (
	"bytes"
	"crypto"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/object"
)

func init() {
	// Deterministic ML-KEM encapsulation for the known-answer tests.
	mlkemEncapsulate768 = func(ek *mlkem.EncapsulationKey768, m []byte) ([]byte, []byte, error) {
		return mlkemtest.Encapsulate768(ek, m)
	}
	mlkemEncapsulate1024 = func(ek *mlkem.EncapsulationKey1024, m []byte) ([]byte, []byte, error) {
		return mlkemtest.Encapsulate1024(ek, m)
	}
}

// hexBytes decodes the ACVP files' upper-case hex.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type acvpFile struct {
	Source     string `json:"source"`
	TestGroups []struct {
		TgID               int      `json:"tgId"`
		ParameterSet       string   `json:"parameterSet"`
		Function           string   `json:"function"`
		SignatureInterface string   `json:"signatureInterface"`
		PreHash            string   `json:"preHash"`
		DK                 hexBytes `json:"dk"`
		Tests              []struct {
			TcID int      `json:"tcId"`
			D    hexBytes `json:"d"`
			Z    hexBytes `json:"z"`
			Seed hexBytes `json:"seed"`
			EK   hexBytes `json:"ek"`
			DK   hexBytes `json:"dk"`
			PK   hexBytes `json:"pk"`
			SK   hexBytes `json:"sk"`
			M    hexBytes `json:"m"`
			C    hexBytes `json:"c"`
			K    hexBytes `json:"k"`
			// sigVer
			Message    hexBytes `json:"message"`
			Context    hexBytes `json:"context"`
			Signature  hexBytes `json:"signature"`
			TestPassed *bool    `json:"testPassed"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func loadACVP(t *testing.T, name string) acvpFile {
	t.Helper()
	b, err := os.ReadFile("testdata/acvp/" + name + ".json")
	require.NoError(t, err)
	var f acvpFile
	require.NoError(t, json.Unmarshal(b, &f))
	require.NotEmpty(t, f.TestGroups)
	return f
}

// TestPQKeyGenKAT: NIST ACVP keyGen vectors. The key made from the seed
// has the expected public key (CKA_VALUE of the public key) and expanded
// private key (CKA_VALUE of the private key).
func TestPQKeyGenKAT(t *testing.T) {
	for _, name := range []string{"ML-KEM-keyGen-FIPS203", "ML-DSA-keyGen-FIPS204"} {
		f := loadACVP(t, name)
		for _, g := range f.TestGroups {
			s, ok := PQSetByName(g.ParameterSet)
			require.True(t, ok, g.ParameterSet)
			for _, tc := range g.Tests {
				seed, pub, priv := append(append([]byte{}, tc.D...), tc.Z...), tc.EK, tc.DK
				if s.KeyType == ck.CKK_ML_DSA {
					seed, pub, priv = tc.Seed, tc.PK, tc.SK
				}
				k, err := NewPQPrivateKey(s, seed)
				require.NoError(t, err, "tcId %d", tc.TcID)
				kt, pa, err := PublicKeyAttrs(k.Public())
				require.NoError(t, err)
				assert.Equal(t, s.KeyType, kt)
				assert.Equal(t, []byte(pub), pa[ck.CKA_VALUE], "%s tcId %d: public key", s.Name, tc.TcID)
				v, ok := PrivateKeyAttr(k, ck.CKA_VALUE)
				require.True(t, ok)
				assert.Equal(t, []byte(priv), v, "%s tcId %d: private key", s.Name, tc.TcID)
				sd, ok := PrivateKeyAttr(k, ck.CKA_SEED)
				require.True(t, ok)
				assert.Equal(t, seed, sd)
			}
		}
	}
}

// TestMLKEMEncapDecapKAT: NIST ACVP encapDecap vectors. Encapsulation runs
// our code with the vector's m (Go's crypto/mlkem for 768 and 1024, circl
// for 512). Decapsulation vectors give the expanded dk, which this token
// does not load (it keeps seeds), so they check circl's decapsulation,
// the one ML-KEM-512 uses, including the vectors' rejected ciphertexts.
func TestMLKEMEncapDecapKAT(t *testing.T) {
	f := loadACVP(t, "ML-KEM-encapDecap-FIPS203")
	n := 0
	for _, g := range f.TestGroups {
		s, ok := PQSetByName(g.ParameterSet)
		require.True(t, ok)
		for _, tc := range g.Tests {
			n++
			switch g.Function {
			case "encapsulation":
				pubAttrs := object.Attrs{ck.CKA_VALUE: tc.EK}
				pubAttrs.SetUlong(ck.CKA_PARAMETER_SET, s.Param)
				pk, err := PublicKeyFromAttrs(ck.CKK_ML_KEM, pubAttrs)
				require.NoError(t, err)
				ct, k, err := mlKEMEncapsulate(pk.(*MLKEMPublicKey), tc.M)
				require.NoError(t, err)
				assert.Equal(t, []byte(tc.C), ct, "%s tcId %d", s.Name, tc.TcID)
				assert.Equal(t, []byte(tc.K), k, "%s tcId %d", s.Name, tc.TcID)
			case "decapsulation":
				sk, err := s.kem.UnmarshalBinaryPrivateKey(g.DK)
				require.NoError(t, err)
				k, err := s.kem.Decapsulate(sk, tc.C)
				require.NoError(t, err)
				assert.Equal(t, []byte(tc.K), k, "%s tcId %d", s.Name, tc.TcID)
			default:
				t.Fatalf("unknown function %q", g.Function)
			}
		}
	}
	require.Positive(t, n)
}

// TestMLDSASigVerKAT: NIST ACVP sigVer vectors of the external, pure
// interface (FIPS 204 ML-DSA.Verify with a context). The public key is
// made from the raw bytes as a CKA_VALUE gives them, the context travels as
// CK_SIGN_ADDITIONAL_CONTEXT, and the CKM_ML_DSA row verifies: a vector
// that passes verifies, one that fails is CKR_SIGNATURE_INVALID.
func TestMLDSASigVerKAT(t *testing.T) {
	f := loadACVP(t, "ML-DSA-sigVer-FIPS204")
	r := row(t, ck.CKM_ML_DSA)
	n := 0
	for _, g := range f.TestGroups {
		require.Equal(t, "external", g.SignatureInterface)
		require.Equal(t, "pure", g.PreHash)
		s, ok := PQSetByName(g.ParameterSet)
		require.True(t, ok, g.ParameterSet)
		require.Equal(t, uint64(ck.CKK_ML_DSA), s.KeyType)
		for _, tc := range g.Tests {
			n++
			require.NotNil(t, tc.TestPassed, "tcId %d", tc.TcID)
			pubAttrs := object.Attrs{ck.CKA_VALUE: tc.PK}
			pubAttrs.SetUlong(ck.CKA_PARAMETER_SET, s.Param)
			pk, err := PublicKeyFromAttrs(ck.CKK_ML_DSA, pubAttrs)
			require.NoError(t, err, "%s tcId %d", s.Name, tc.TcID)
			key := &Key{Class: ck.CKO_PUBLIC_KEY, KeyType: ck.CKK_ML_DSA, Public: pk}
			m := Mech{Type: ck.CKM_ML_DSA, Param: &SignContextParams{Context: tc.Context}}
			require.NoError(t, CheckParam(r, m))
			err = r.Verify(key, m, tc.Message, tc.Signature)
			if *tc.TestPassed {
				assert.NoError(t, err, "%s tcId %d", s.Name, tc.TcID)
			} else {
				requireRV(t, err, ck.CKR_SIGNATURE_INVALID)
			}
		}
	}
	require.Positive(t, n)
}

func genPQ(t *testing.T, gen uint64, param uint64) (*Key, *Key) {
	t.Helper()
	k, err := row(t, gen).GenerateKeyPair(rand.Reader, KeyPairParams{ParameterSet: param})
	require.NoError(t, err)
	kt := ck.CKK_ML_DSA
	if gen == ck.CKM_ML_KEM_KEY_PAIR_GEN {
		kt = ck.CKK_ML_KEM
	}
	return &Key{Class: ck.CKO_PUBLIC_KEY, KeyType: uint64(kt), Public: k.Public()},
		&Key{Class: ck.CKO_PRIVATE_KEY, KeyType: uint64(kt), Private: k, Public: k.Public()}
}

func TestMLDSASignVerify(t *testing.T) {
	verifiers := map[uint64]func(raw, msg, ctx, sig []byte) bool{
		ck.CKP_ML_DSA_44: func(raw, msg, ctx, sig []byte) bool {
			var pk mldsa44.PublicKey
			return pk.UnmarshalBinary(raw) == nil && mldsa44.Verify(&pk, msg, ctx, sig)
		},
		ck.CKP_ML_DSA_65: func(raw, msg, ctx, sig []byte) bool {
			var pk mldsa65.PublicKey
			return pk.UnmarshalBinary(raw) == nil && mldsa65.Verify(&pk, msg, ctx, sig)
		},
		ck.CKP_ML_DSA_87: func(raw, msg, ctx, sig []byte) bool {
			var pk mldsa87.PublicKey
			return pk.UnmarshalBinary(raw) == nil && mldsa87.Verify(&pk, msg, ctx, sig)
		},
	}
	r := row(t, ck.CKM_ML_DSA)
	msg := []byte("the message")
	for _, param := range []uint64{ck.CKP_ML_DSA_44, ck.CKP_ML_DSA_65, ck.CKP_ML_DSA_87} {
		pub, priv := genPQ(t, ck.CKM_ML_DSA_KEY_PAIR_GEN, param)
		s := pub.Public.(*MLDSAPublicKey).Set
		t.Run(s.Name, func(t *testing.T) {
			sign := func(p any) []byte {
				m := Mech{Type: ck.CKM_ML_DSA, Param: p}
				require.NoError(t, CheckParam(r, m))
				sig, err := r.Sign(priv, m, msg)
				require.NoError(t, err)
				require.Len(t, sig, s.OutLen)
				return sig
			}
			// No parameter: hedged, empty context; two signatures differ.
			a, b := sign(nil), sign(nil)
			assert.NotEqual(t, a, b, "hedged signatures differ")
			require.NoError(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA}, msg, a))
			assert.True(t, verifiers[param](pub.Public.(*MLDSAPublicKey).Bytes(), msg, nil, a), "circl verifies")

			// Deterministic on request: the same signature twice.
			det := &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("ctx")}
			d1, d2 := sign(det), sign(det)
			assert.Equal(t, d1, d2)
			require.NoError(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA, Param: &SignContextParams{Context: []byte("ctx")}}, msg, d1))
			assert.True(t, verifiers[param](pub.Public.(*MLDSAPublicKey).Bytes(), msg, []byte("ctx"), d1))

			// A context of 255 bytes is the longest.
			long := &SignContextParams{Hedge: ck.CKH_HEDGE_REQUIRED, Context: bytes.Repeat([]byte{7}, 255)}
			sig := sign(long)
			require.NoError(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA, Param: long}, msg, sig))

			// Wrong context, message or signature: CKR_SIGNATURE_INVALID.
			requireRV(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA}, msg, d1), ck.CKR_SIGNATURE_INVALID)
			requireRV(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA}, []byte("other"), a), ck.CKR_SIGNATURE_INVALID)
			bad := append([]byte(nil), a...)
			bad[10] ^= 1
			requireRV(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA}, msg, bad), ck.CKR_SIGNATURE_INVALID)
			requireRV(t, r.Verify(pub, Mech{Type: ck.CKM_ML_DSA}, msg, a[:len(a)-1]), ck.CKR_SIGNATURE_LEN_RANGE)
		})
	}
}

func TestMLDSAParams(t *testing.T) {
	r := row(t, ck.CKM_ML_DSA)
	for _, tc := range []struct {
		name string
		p    any
		ok   bool
	}{
		{"none", nil, true},
		{"nil pointer", (*SignContextParams)(nil), true},
		{"preferred", &SignContextParams{Hedge: ck.CKH_HEDGE_PREFERRED}, true},
		{"deterministic", &SignContextParams{Hedge: ck.CKH_DETERMINISTIC_REQUIRED}, true},
		{"unknown hedge", &SignContextParams{Hedge: 3}, false},
		{"context 256", &SignContextParams{Context: make([]byte, 256)}, false},
		{"other type", &EdDSAParams{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckParam(r, Mech{Type: ck.CKM_ML_DSA, Param: tc.p})
			if tc.ok {
				require.NoError(t, err)
			} else {
				requireRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
			}
		})
	}
}

func TestMLKEMRoundTrip(t *testing.T) {
	r := row(t, ck.CKM_ML_KEM)
	m := Mech{Type: ck.CKM_ML_KEM}
	require.NoError(t, CheckParam(r, m))
	for _, param := range []uint64{ck.CKP_ML_KEM_512, ck.CKP_ML_KEM_768, ck.CKP_ML_KEM_1024} {
		pub, priv := genPQ(t, ck.CKM_ML_KEM_KEY_PAIR_GEN, param)
		s := pub.Public.(*MLKEMPublicKey).Set
		t.Run(s.Name, func(t *testing.T) {
			ct, secret, err := r.Encapsulate(pub, m)
			require.NoError(t, err)
			require.Len(t, ct, s.OutLen)
			require.Len(t, secret, SharedSecretLen)
			got, err := r.Decapsulate(priv, m, ct)
			require.NoError(t, err)
			assert.Equal(t, secret, got)

			// circl's decapsulation with the expanded key agrees (for
			// 768 and 1024 the token runs Go's).
			dk, ok := PrivateKeyAttr(priv.Private, ck.CKA_VALUE)
			require.True(t, ok)
			csk, err := s.kem.UnmarshalBinaryPrivateKey(dk)
			require.NoError(t, err)
			cs, err := s.kem.Decapsulate(csk, ct)
			require.NoError(t, err)
			assert.Equal(t, secret, cs)

			// Implicit rejection: a tampered ciphertext gives another
			// secret, not an error.
			bad := append([]byte(nil), ct...)
			bad[3] ^= 0x40
			rej, err := r.Decapsulate(priv, m, bad)
			require.NoError(t, err)
			assert.Len(t, rej, SharedSecretLen)
			assert.NotEqual(t, secret, rej)

			requireRV(t, func() error { _, err := r.Decapsulate(priv, m, ct[1:]); return err }(), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
			// Keys of the wrong kind.
			_, _, err = r.Encapsulate(priv, m)
			requireRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
			_, err = r.Decapsulate(pub, m, ct)
			requireRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
		})
	}
}

func TestPQWrongKeyTypes(t *testing.T) {
	kemPub, kemPriv := genPQ(t, ck.CKM_ML_KEM_KEY_PAIR_GEN, ck.CKP_ML_KEM_768)
	dsaPub, dsaPriv := genPQ(t, ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKP_ML_DSA_44)
	dsa, kem := row(t, ck.CKM_ML_DSA), row(t, ck.CKM_ML_KEM)
	_, err := dsa.Sign(kemPriv, Mech{Type: ck.CKM_ML_DSA}, []byte("x"))
	requireRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	requireRV(t, dsa.Verify(kemPub, Mech{Type: ck.CKM_ML_DSA}, []byte("x"), nil), ck.CKR_KEY_TYPE_INCONSISTENT)
	_, _, err = kem.Encapsulate(dsaPub, Mech{Type: ck.CKM_ML_KEM})
	requireRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, err = kem.Decapsulate(dsaPriv, Mech{Type: ck.CKM_ML_KEM}, make([]byte, 1088))
	requireRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	// An ML-KEM key does not sign as a crypto.Signer either.
	_, err = kemPriv.Private.Sign(rand.Reader, []byte("x"), nil)
	require.Error(t, err)
	// The table's key types keep other keys out before any of this runs.
	assert.Equal(t, []uint64{ck.CKK_ML_DSA}, dsa.KeyTypes)
	assert.Equal(t, []uint64{ck.CKK_ML_KEM}, kem.KeyTypes)
}

func TestPQBadParameterSets(t *testing.T) {
	for _, gen := range []uint64{ck.CKM_ML_KEM_KEY_PAIR_GEN, ck.CKM_ML_DSA_KEY_PAIR_GEN} {
		r := row(t, gen)
		_, err := r.GenerateKeyPair(rand.Reader, KeyPairParams{})
		requireRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
		_, err = r.GenerateKeyPair(rand.Reader, KeyPairParams{ParameterSet: 4})
		requireRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED)
	}
	a := object.Attrs{ck.CKA_VALUE: make([]byte, 1184)}
	a.SetUlong(ck.CKA_PARAMETER_SET, 9)
	_, err := PublicKeyFromAttrs(ck.CKK_ML_KEM, a)
	requireRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED)
	a.SetUlong(ck.CKA_PARAMETER_SET, ck.CKP_ML_KEM_512) // 1184 bytes is ML-KEM-768's length
	_, err = PublicKeyFromAttrs(ck.CKK_ML_KEM, a)
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	// An encapsulation key with a coefficient >= q fails FIPS 203's check.
	a.SetUlong(ck.CKA_PARAMETER_SET, ck.CKP_ML_KEM_768)
	a[ck.CKA_VALUE] = bytes.Repeat([]byte{0xff}, 1184)
	_, err = PublicKeyFromAttrs(ck.CKK_ML_KEM, a)
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// TestPQKeyCodecs: PKCS #8 (sealed and wrapped form), attributes
// (C_CreateObject) and the public attributes.
func TestPQKeyCodecs(t *testing.T) {
	for _, s := range pqSets {
		t.Run(s.Name, func(t *testing.T) {
			gen := ck.CKM_ML_DSA_KEY_PAIR_GEN
			if s.KeyType == ck.CKK_ML_KEM {
				gen = ck.CKM_ML_KEM_KEY_PAIR_GEN
			}
			_, priv := genPQ(t, uint64(gen), s.Param)
			der, err := MarshalPrivateKey(priv.Private)
			require.NoError(t, err)
			kt, back, err := ParsePrivateKey(der)
			require.NoError(t, err)
			assert.Equal(t, s.KeyType, kt)
			assert.True(t, back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public))

			seed, _ := PrivateKeyAttr(priv.Private, ck.CKA_SEED)
			value, _ := PrivateKeyAttr(priv.Private, ck.CKA_VALUE)
			a := object.Attrs{ck.CKA_SEED: seed, ck.CKA_VALUE: value}
			a.SetUlong(ck.CKA_PARAMETER_SET, s.Param)
			k, err := PrivateKeyFromAttrs(s.KeyType, a)
			require.NoError(t, err)
			assert.True(t, k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public))

			delete(a, ck.CKA_SEED)
			_, err = PrivateKeyFromAttrs(s.KeyType, a)
			requireRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
			a[ck.CKA_SEED] = seed
			// The expanded key with its first byte changed (flipped, so
			// that it differs whatever the byte was) no longer matches
			// the seed.
			a[ck.CKA_VALUE] = append([]byte{value[0] ^ 1}, value[1:]...)
			_, err = PrivateKeyFromAttrs(s.KeyType, a)
			requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
			a[ck.CKA_SEED] = seed[1:]
			_, err = PrivateKeyFromAttrs(s.KeyType, a)
			requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)

			kt, pa, err := PublicKeyAttrs(priv.Public)
			require.NoError(t, err)
			assert.Equal(t, s.KeyType, kt)
			assert.Len(t, pa[ck.CKA_VALUE], s.PublicLen)
			assert.NotEmpty(t, pa[ck.CKA_PUBLIC_KEY_INFO])
			pub, err := PublicKeyFromAttrs(s.KeyType, pa)
			require.NoError(t, err)
			assert.True(t, pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public))
			assert.Equal(t, s.PublicLen, KeyBits(priv))

			// A seed form with a bad length, or another PKCS #8 shape, is
			// refused.
			bad := bytes.Replace(der, seed, seed[:len(seed)-1], 1)
			_, _, err = ParsePrivateKey(bad)
			require.Error(t, err)
		})
	}
	assert.True(t, strings.HasPrefix(ck.MechName(ck.CKM_ML_KEM), "CKM_ML_KEM"))
	assert.Equal(t, "CKK_ML_DSA", ck.KeyTypeName(ck.CKK_ML_DSA))
}

func TestPQSPKI(t *testing.T) {
	for _, s := range pqSets {
		gen := uint64(ck.CKM_ML_DSA_KEY_PAIR_GEN)
		if s.KeyType == ck.CKK_ML_KEM {
			gen = ck.CKM_ML_KEM_KEY_PAIR_GEN
		}
		pub, _ := genPQ(t, gen, s.Param)
		der, err := MarshalPKIXPublicKey(pub.Public)
		require.NoError(t, err)
		back, err := ParsePKIXPublicKey(der)
		require.NoError(t, err, s.Name)
		assert.True(t, back.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub.Public), s.Name)
		_, err = ParsePKIXPublicKey(der[:len(der)-1])
		require.Error(t, err)
	}
}
