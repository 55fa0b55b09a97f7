package suites

import (
	"bufio"
	"crypto/mlkem"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
)

// TestPQ: post-quantum keys end to end, through the real library against a
// real cluster, in process and through the fork helper. pkcs11-tool -M
// lists the PKCS#11 v3.2 mechanisms; an ML-DSA signature made through the
// library verifies with circl from the exported public key (CKA_VALUE),
// with and without a context string; and an ML-KEM-768 shared secret is the
// same from C_EncapsulateKey and C_DecapsulateKey, and matches an
// encapsulation done outside with Go's crypto/mlkem against the exported
// public key. The v3.2 calls and CK_SIGN_ADDITIONAL_CONTEXT, which
// github.com/miekg/pkcs11 does not know, are in testdata/pq.c.
func TestPQ(t *testing.T) {
	if childMode() != "" {
		pqChild(t)
		return
	}
	build(t)
	pqDriver := cDriver(t, "pq")
	cl, env := startCluster(t)
	env = append(env, envPQDriver+"="+pqDriver)
	eachMode(t, cl, env, 5*time.Minute)
}

const envPQDriver = "SUITES_PQ_DRIVER"

var pqMechs = map[uint]struct {
	name     string
	flags    uint
	min, max uint
}{
	ck.CKM_ML_KEM_KEY_PAIR_GEN: {"CKM_ML_KEM_KEY_PAIR_GEN", pkcs11.CKF_GENERATE_KEY_PAIR, 800, 1568},
	ck.CKM_ML_KEM:              {"CKM_ML_KEM", ck.CKF_ENCAPSULATE | ck.CKF_DECAPSULATE, 800, 1568},
	ck.CKM_ML_DSA_KEY_PAIR_GEN: {"CKM_ML_DSA_KEY_PAIR_GEN", pkcs11.CKF_GENERATE_KEY_PAIR, 1312, 2592},
	ck.CKM_ML_DSA:              {"CKM_ML_DSA", pkcs11.CKF_SIGN | pkcs11.CKF_VERIFY | ck.CKF_MESSAGE_SIGN | ck.CKF_MESSAGE_VERIFY, 1312, 2592},
}

func pqChild(t *testing.T) {
	p := loadModule(t)
	label, pin := os.Getenv("P11_TOKEN_LABEL"), os.Getenv("P11_PIN")
	slot := tokenSlot(t, p, label)

	t.Run("mechanism list", func(t *testing.T) {
		list, err := p.GetMechanismList(slot)
		require.NoError(t, err)
		have := map[uint]bool{}
		for _, m := range list {
			have[m.Mechanism] = true
		}
		for m, want := range pqMechs {
			require.True(t, have[m], "%s is listed", want.name)
			info, err := p.GetMechanismInfo(slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(m, nil)})
			require.NoError(t, err)
			assert.Equal(t, want.flags, info.Flags&^pkcs11.CKF_HW, want.name)
			assert.Equal(t, want.min, info.MinKeySize, want.name)
			assert.Equal(t, want.max, info.MaxKeySize, want.name)
		}
	})

	t.Run("pkcs11-tool -M", func(t *testing.T) {
		if _, err := exec.LookPath("pkcs11-tool"); err != nil {
			t.Skip("no pkcs11-tool")
		}
		out, err := exec.Command("pkcs11-tool", "--module", os.Getenv(envLib), "--token-label", label, "-M").CombinedOutput()
		require.NoError(t, err, "%s", out)
		t.Logf("pkcs11-tool -M:\n%s", out)
		// OpenSC 0.23 has no names for the v3.2 mechanisms: it prints
		// "mechtype-0x1C, keySize={1312,2592}, ..."; a newer one its name
		// ("ML-DSA-KEY-PAIR-GEN").
		for m, want := range pqMechs {
			byNumber := fmt.Sprintf("mechtype-0x%X, keySize={%d,%d}", m, want.min, want.max)
			byName := strings.ReplaceAll(strings.TrimPrefix(want.name, "CKM_"), "_", "-") + ","
			assert.True(t, strings.Contains(string(out), byNumber) || strings.Contains(string(out), byName),
				"pkcs11-tool -M lists %s", want.name)
		}
	})

	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	defer p.CloseSession(s)
	require.NoError(t, p.Login(s, pkcs11.CKU_USER, pin))
	defer p.Logout(s)

	t.Run("ML-DSA-44 through miekg", func(t *testing.T) {
		pub, priv, err := p.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(ck.CKM_ML_DSA_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{pkcs11.NewAttribute(ck.CKA_PARAMETER_SET, uint(ck.CKP_ML_DSA_44))},
			[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)})
		require.NoError(t, err)
		defer p.DestroyObject(s, pub)
		defer p.DestroyObject(s, priv)
		attrs, err := p.GetAttributeValue(s, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil),
			pkcs11.NewAttribute(ck.CKA_PARAMETER_SET, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
		require.NoError(t, err)
		require.Len(t, attrs[0].Value, mldsa44.PublicKeySize)
		// The private key is sensitive: its value and seed stay in.
		_, err = p.GetAttributeValue(s, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(ck.CKA_SEED, nil)})
		require.True(t, isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE), "CKA_SEED: %v", err)

		msg := []byte("signed through the library")
		m := []*pkcs11.Mechanism{pkcs11.NewMechanism(ck.CKM_ML_DSA, nil)}
		require.NoError(t, p.SignInit(s, m, priv))
		sig, err := p.Sign(s, msg)
		require.NoError(t, err)
		require.Len(t, sig, mldsa44.SignatureSize)
		var pk mldsa44.PublicKey
		require.NoError(t, pk.UnmarshalBinary(attrs[0].Value))
		assert.True(t, mldsa44.Verify(&pk, msg, nil, sig), "circl verifies the library's signature")
		require.NoError(t, p.VerifyInit(s, m, pub))
		require.NoError(t, p.Verify(s, msg, sig))
		require.NoError(t, p.VerifyInit(s, m, pub))
		require.True(t, isRV(p.Verify(s, []byte("another message"), sig), pkcs11.CKR_SIGNATURE_INVALID))

		// A parameter set the token does not know, a missing one.
		_, _, err = p.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(ck.CKM_ML_DSA_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{pkcs11.NewAttribute(ck.CKA_PARAMETER_SET, uint(9))}, nil)
		require.True(t, isRV(err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED), "%v", err)
		_, _, err = p.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(ck.CKM_ML_KEM_KEY_PAIR_GEN, nil)}, nil, nil)
		require.True(t, isRV(err, pkcs11.CKR_TEMPLATE_INCOMPLETE), "%v", err)
	})

	t.Run("v3.2 driver", func(t *testing.T) {
		cmd := exec.Command(os.Getenv(envPQDriver), os.Getenv(envLib))
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		lines.Buffer(make([]byte, 64<<10), 64<<10)
		got := map[string][]byte{}
		next := func(tag string) []byte {
			t.Helper()
			require.True(t, lines.Scan(), "the driver ended before %s; stderr:\n%s", tag, &stderr)
			f := strings.Fields(lines.Text())
			require.Equal(t, tag, f[0], "stderr:\n%s", &stderr)
			if len(f) < 2 {
				return nil
			}
			b, err := hex.DecodeString(f[1])
			require.NoError(t, err)
			got[tag] = b
			return b
		}
		ek, err := mlkem.NewEncapsulationKey768(next("EK"))
		require.NoError(t, err, "the exported ML-KEM public key is an encapsulation key")
		k1, k2 := next("K1"), next("K2")
		require.Len(t, k1, 32)
		assert.Equal(t, k1, k2, "C_DecapsulateKey's secret is C_EncapsulateKey's")

		secret, ct := ek.Encapsulate()
		_, err = fmt.Fprintf(stdin, "CT %x\n", ct)
		require.NoError(t, err)
		assert.Equal(t, secret, next("K3"), "C_DecapsulateKey's secret is the one Go encapsulated")
		k4 := next("K4")
		assert.Len(t, k4, 32)
		assert.NotEqual(t, secret, k4, "a tampered ciphertext gives another secret")

		var pk mldsa65.PublicKey
		require.NoError(t, pk.UnmarshalBinary(next("PK")))
		assert.True(t, mldsa65.Verify(&pk, []byte("message"), []byte("ctx"), next("SIG")), "circl verifies the signature with context \"ctx\"")
		assert.True(t, mldsa65.Verify(&pk, []byte("message"), nil, next("HSIG")), "circl verifies the hedged signature")
		next("END")
		stdin.Close()
		err = cmd.Wait()
		assert.NoError(t, err, "the driver's checks:\n%s", &stderr)
	})
}
