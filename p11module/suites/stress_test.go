package suites

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// stressWorkers is how many goroutines work at once, each on its own
// session; they share one login.
const stressWorkers = 16

// TestStress: 16 goroutines, each with its own session on the crypto user's
// token and one login between them, run mixed work through the C ABI for
// 30 s (3 s under -short): ECDSA P-256 and RSA-2048 sign and verify, AES-GCM
// round trips, HMAC, digests, random bytes, C_FindObjects by label,
// C_GetAttributeValue, and session AES keys made, used and destroyed. Every
// result is checked, and signatures are checked again in Go against the
// public keys read from the token. It runs in process and then through the
// fork helper, each in a child process (see eachMode).
//
// Whatever the duration, every worker does at least one round of every kind
// of operation, so that each kind is exercised however slow the machine.
func TestStress(t *testing.T) {
	if childMode() != "" {
		stressChild(t)
		return
	}
	build(t)
	cl, env := startCluster(t)
	d := 30 * time.Second
	if testing.Short() {
		d = 3 * time.Second
	}
	env = append(env, envDuration+"="+d.String())
	eachMode(t, cl, env, d+10*time.Minute)
}

// The kinds of operation, in the order a worker cycles through them (each
// worker starts at a different one).
var stressKinds = []string{"ecdsa", "rsa", "aes-gcm", "hmac", "digest", "random", "find", "getattr", "genkey"}

type stressState struct {
	p       *pkcs11.Ctx
	k       keys
	tag     string
	ecPub   *ecdsa.PublicKey
	rsaPub  *rsa.PublicKey
	counts  map[string]*atomic.Int64
	stopped atomic.Bool
}

func stressChild(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		t.Fatalf("%s: %v", envDuration, err)
	}
	p := loadModule(t)
	slot := tokenSlot(t, p, os.Getenv("P11_TOKEN_LABEL"))

	setup, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("C_OpenSession: %v", err)
	}
	if err := p.Login(setup, pkcs11.CKU_USER, os.Getenv("P11_PIN")); err != nil {
		t.Fatalf("C_Login: %v", err)
	}
	st := &stressState{p: p, tag: "stress-" + randomTag(), counts: map[string]*atomic.Int64{}}
	for _, k := range stressKinds {
		st.counts[k] = new(atomic.Int64)
	}
	// Session objects of the setup session: every session of this
	// application may use them while it is open.
	st.k = makeKeys(t, p, setup, false, st.tag)
	st.ecPub = readECPublic(t, p, setup, st.k.ecPub)
	st.rsaPub = readRSAPublic(t, p, setup, st.k.rsaPub)

	sessions := make([]pkcs11.SessionHandle, stressWorkers)
	for i := range sessions {
		if sessions[i], err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			t.Fatalf("C_OpenSession %d: %v", i, err)
		}
		// The login is the application's: a new session is logged in.
		si, err := p.GetSessionInfo(sessions[i])
		if err != nil || si.State != pkcs11.CKS_RW_USER_FUNCTIONS {
			t.Fatalf("session %d: state %d, %v; want CKS_RW_USER_FUNCTIONS", i, si.State, err)
		}
	}

	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for g := 0; g < stressWorkers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			sh := sessions[g]
			for i := 0; (time.Now().Before(deadline) || i < len(stressKinds)) && !st.stopped.Load(); i++ {
				kind := stressKinds[(g+i)%len(stressKinds)]
				if err := st.do(sh, kind, g, i); err != nil {
					t.Errorf("worker %d, operation %d (%s): %v", g, i, kind, err)
					st.stopped.Store(true)
					return
				}
				st.counts[kind].Add(1)
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)

	// Every session key a worker made was destroyed.
	if left := findAll(t, p, setup, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, st.tag+"-tmp")}); len(left) != 0 {
		t.Errorf("%d generated keys are left after C_DestroyObject: %v", len(left), left)
	}
	for i, sh := range sessions {
		if err := p.CloseSession(sh); err != nil {
			t.Errorf("C_CloseSession %d: %v", i, err)
		}
	}
	if err := p.Logout(setup); err != nil {
		t.Errorf("C_Logout: %v", err)
	}
	if err := p.CloseSession(setup); err != nil {
		t.Errorf("C_CloseSession: %v", err)
	}

	var b strings.Builder
	var total int64
	names := append([]string{}, stressKinds...)
	sort.Strings(names)
	fmt.Fprintf(&b, "%d workers, %s transport, %.1f s:\n", stressWorkers, childMode(), elapsed.Seconds())
	for _, k := range names {
		n := st.counts[k].Load()
		total += n
		fmt.Fprintf(&b, "  %-8s %8d\n", k, n)
		if n == 0 && !t.Failed() {
			t.Errorf("no %s operation ran", k)
		}
	}
	fmt.Fprintf(&b, "  %-8s %8d", "total", total)
	t.Log(b.String())
}

// do runs one operation of a kind and checks its result.
func (st *stressState) do(sh pkcs11.SessionHandle, kind string, g, i int) error {
	p, k := st.p, st.k
	mech := func(m uint, param any) []*pkcs11.Mechanism {
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
	}
	switch kind {
	case "ecdsa":
		msg := randomBytes(1 + i%200)
		sig, err := signVerify(p, sh, mech(pkcs11.CKM_ECDSA_SHA256, nil), k.ecPriv, k.ecPub, msg)
		if err != nil {
			return err
		}
		h := sha256.Sum256(msg)
		if len(sig) != 64 || !ecdsa.Verify(st.ecPub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return fmt.Errorf("the ECDSA signature (%d bytes) does not verify in Go", len(sig))
		}
	case "rsa":
		msg := randomBytes(1 + i%300)
		sig, err := signVerify(p, sh, mech(pkcs11.CKM_SHA256_RSA_PKCS, nil), k.rsaPriv, k.rsaPub, msg)
		if err != nil {
			return err
		}
		h := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(st.rsaPub, crypto.SHA256, h[:], sig); err != nil {
			return fmt.Errorf("the RSA signature does not verify in Go: %v", err)
		}
	case "hmac":
		msg := randomBytes(i % 500)
		sig, err := signVerify(p, sh, mech(pkcs11.CKM_SHA256_HMAC, nil), k.hmac, k.hmac, msg)
		if err != nil {
			return err
		}
		if len(sig) != 32 {
			return fmt.Errorf("HMAC-SHA256 gave %d bytes", len(sig))
		}
	case "aes-gcm":
		return gcmRoundTrip(p, sh, k.aes, randomBytes(i%2048))
	case "digest":
		data := randomBytes(i % 3000)
		if i%2 == 0 {
			if err := p.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil)); err != nil {
				return fmt.Errorf("C_DigestInit: %v", err)
			}
			got, err := p.Digest(sh, data)
			if err != nil {
				return fmt.Errorf("C_Digest: %v", err)
			}
			if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
				return fmt.Errorf("SHA-256 digest %x, want %x", got, want)
			}
		} else {
			if err := p.DigestInit(sh, mech(pkcs11.CKM_SHA512, nil)); err != nil {
				return fmt.Errorf("C_DigestInit: %v", err)
			}
			half := len(data) / 2
			if err := p.DigestUpdate(sh, data[:half]); err != nil {
				return fmt.Errorf("C_DigestUpdate: %v", err)
			}
			if err := p.DigestUpdate(sh, data[half:]); err != nil {
				return fmt.Errorf("C_DigestUpdate: %v", err)
			}
			got, err := p.DigestFinal(sh)
			if err != nil {
				return fmt.Errorf("C_DigestFinal: %v", err)
			}
			if want := sha512.Sum512(data); !bytes.Equal(got, want[:]) {
				return fmt.Errorf("multi-part SHA-512 digest %x, want %x", got, want)
			}
		}
	case "random":
		n := 1 + i%256
		a, err := p.GenerateRandom(sh, n)
		if err != nil {
			return fmt.Errorf("C_GenerateRandom: %v", err)
		}
		b, err := p.GenerateRandom(sh, 32)
		if err != nil {
			return fmt.Errorf("C_GenerateRandom: %v", err)
		}
		c, err := p.GenerateRandom(sh, 32)
		if err != nil {
			return fmt.Errorf("C_GenerateRandom: %v", err)
		}
		if len(a) != n || len(b) != 32 || bytes.Equal(b, c) {
			return fmt.Errorf("C_GenerateRandom gave %d bytes for %d, or the same 32 bytes twice", len(a), n)
		}
	case "find":
		which := []struct {
			label string
			class uint
			want  []pkcs11.ObjectHandle
		}{
			{st.tag + "-ec", pkcs11.CKO_PRIVATE_KEY, []pkcs11.ObjectHandle{k.ecPriv}},
			{st.tag + "-ec", pkcs11.CKO_PUBLIC_KEY, []pkcs11.ObjectHandle{k.ecPub}},
			{st.tag + "-rsa", pkcs11.CKO_PRIVATE_KEY, []pkcs11.ObjectHandle{k.rsaPriv}},
			{st.tag + "-aes", pkcs11.CKO_SECRET_KEY, []pkcs11.ObjectHandle{k.aes}},
			{st.tag + "-none", pkcs11.CKO_SECRET_KEY, nil},
		}[i%5]
		got, err := find(p, sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, which.label),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, which.class)})
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(which.want) {
			return fmt.Errorf("C_FindObjects(label %s, class %d) = %v, want %v", which.label, which.class, got, which.want)
		}
		// Both halves of the pair carry the label.
		got, err = find(p, sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, st.tag+"-rsa")})
		if err != nil {
			return err
		}
		if len(got) != 2 {
			return fmt.Errorf("C_FindObjects(label %s) = %v, want the two halves of the pair", st.tag+"-rsa", got)
		}
	case "getattr":
		attrs, err := p.GetAttributeValue(sh, k.rsaPub, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
		if err != nil {
			return fmt.Errorf("C_GetAttributeValue(RSA public key): %v", err)
		}
		if !bytes.Equal(attrs[0].Value, st.rsaPub.N.Bytes()) ||
			new(big.Int).SetBytes(attrs[1].Value).Int64() != int64(st.rsaPub.E) ||
			string(attrs[2].Value) != st.tag+"-rsa" || ulong(attrs[3].Value) != pkcs11.CKK_RSA {
			return fmt.Errorf("C_GetAttributeValue(RSA public key) changed: label %q, key type %d", attrs[2].Value, ulong(attrs[3].Value))
		}
		attrs, err = p.GetAttributeValue(sh, k.aes, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil), pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil)})
		if err != nil {
			return fmt.Errorf("C_GetAttributeValue(AES key): %v", err)
		}
		if ulong(attrs[0].Value) != 32 || ulong(attrs[1].Value) != pkcs11.CKO_SECRET_KEY ||
			!bytes.Equal(attrs[2].Value, []byte{1}) || !bytes.Equal(attrs[3].Value, []byte{0}) {
			return fmt.Errorf("C_GetAttributeValue(AES key) = value len %x, class %x, sensitive %x, token %x",
				attrs[0].Value, attrs[1].Value, attrs[2].Value, attrs[3].Value)
		}
		if _, err := p.GetAttributeValue(sh, k.aes, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			return fmt.Errorf("CKA_VALUE of a sensitive key: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
		}
	case "genkey":
		key, err := p.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, st.tag+"-tmp")})
		if err != nil {
			return fmt.Errorf("C_GenerateKey: %v", err)
		}
		if err := gcmRoundTrip(p, sh, key, []byte(fmt.Sprintf("worker %d, operation %d", g, i))); err != nil {
			p.DestroyObject(sh, key)
			return fmt.Errorf("with a new key: %v", err)
		}
		if err := p.DestroyObject(sh, key); err != nil {
			return fmt.Errorf("C_DestroyObject: %v", err)
		}
		if _, err := p.GetAttributeValue(sh, key, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil)}); !isRV(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			return fmt.Errorf("C_GetAttributeValue of a destroyed key: %v, want CKR_OBJECT_HANDLE_INVALID", err)
		}
	default:
		return fmt.Errorf("unknown kind %s", kind)
	}
	return nil
}

// signVerify signs msg, verifies the signature, and checks that a
// signature with one bit flipped does not verify.
func signVerify(p *pkcs11.Ctx, sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, priv, pub pkcs11.ObjectHandle, msg []byte) ([]byte, error) {
	if err := p.SignInit(sh, m, priv); err != nil {
		return nil, fmt.Errorf("C_SignInit: %v", err)
	}
	sig, err := p.Sign(sh, msg)
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %v", err)
	}
	if err := p.VerifyInit(sh, m, pub); err != nil {
		return nil, fmt.Errorf("C_VerifyInit: %v", err)
	}
	if err := p.Verify(sh, msg, sig); err != nil {
		return nil, fmt.Errorf("C_Verify of a good signature: %v", err)
	}
	bad := append([]byte{}, sig...)
	bad[len(msg)%len(bad)] ^= 0x10
	if err := p.VerifyInit(sh, m, pub); err != nil {
		return nil, fmt.Errorf("C_VerifyInit: %v", err)
	}
	if err := p.Verify(sh, msg, bad); !isRV(err, pkcs11.CKR_SIGNATURE_INVALID) {
		return nil, fmt.Errorf("C_Verify of a bad signature: %v, want CKR_SIGNATURE_INVALID", err)
	}
	return sig, nil
}

// gcmRoundTrip encrypts with AES-GCM and decrypts again.
func gcmRoundTrip(p *pkcs11.Ctx, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle, pt []byte) error {
	iv, aad := randomBytes(12), randomBytes(len(pt)%40)
	gp := pkcs11.NewGCMParams(iv, aad, 128)
	defer gp.Free()
	if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, gp)}, key); err != nil {
		return fmt.Errorf("C_EncryptInit: %v", err)
	}
	ct, err := p.Encrypt(sh, pt)
	if err != nil {
		return fmt.Errorf("C_Encrypt: %v", err)
	}
	if len(ct) != len(pt)+16 {
		return fmt.Errorf("AES-GCM gave %d bytes for %d", len(ct), len(pt))
	}
	gd := pkcs11.NewGCMParams(iv, aad, 128)
	defer gd.Free()
	if err := p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, gd)}, key); err != nil {
		return fmt.Errorf("C_DecryptInit: %v", err)
	}
	back, err := p.Decrypt(sh, ct)
	if err != nil {
		return fmt.Errorf("C_Decrypt: %v", err)
	}
	if !bytes.Equal(back, pt) {
		return fmt.Errorf("AES-GCM decryption gave %d bytes that differ from the %d-byte plaintext", len(back), len(pt))
	}
	return nil
}

// find runs a whole search, fetching the handles a few at a time.
func find(p *pkcs11.Ctx, sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(sh, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %v", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := p.FindObjects(sh, 3)
		if err != nil {
			p.FindObjectsFinal(sh)
			return nil, fmt.Errorf("C_FindObjects: %v", err)
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := p.FindObjectsFinal(sh); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %v", err)
	}
	return all, nil
}

func findAll(t *testing.T, p *pkcs11.Ctx, sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) []pkcs11.ObjectHandle {
	t.Helper()
	hs, err := find(p, sh, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// ulong decodes a CK_ULONG attribute value (host order).
func ulong(b []byte) uint {
	if len(b) != 8 {
		return ^uint(0)
	}
	return uint(binary.NativeEndian.Uint64(b))
}

func readECPublic(t *testing.T, p *pkcs11.Ctx, sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) *ecdsa.PublicKey {
	t.Helper()
	attrs, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		t.Fatalf("C_GetAttributeValue(CKA_EC_POINT): %v", err)
	}
	// CKA_EC_POINT is the DER OCTET STRING of the uncompressed point.
	var point []byte
	if rest, err := asn1.Unmarshal(attrs[0].Value, &point); err != nil || len(rest) != 0 {
		t.Fatalf("CKA_EC_POINT %x is not a DER OCTET STRING: %v", attrs[0].Value, err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatalf("CKA_EC_POINT %x is not a P-256 point: %v", point, err)
	}
	return pub
}

func readRSAPublic(t *testing.T, p *pkcs11.Ctx, sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) *rsa.PublicKey {
	t.Helper()
	attrs, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
	if err != nil {
		t.Fatalf("C_GetAttributeValue(CKA_MODULUS, CKA_PUBLIC_EXPONENT): %v", err)
	}
	n := new(big.Int).SetBytes(attrs[0].Value)
	if n.BitLen() != 2048 {
		t.Fatalf("the modulus has %d bits, want 2048", n.BitLen())
	}
	return &rsa.PublicKey{N: n, E: int(new(big.Int).SetBytes(attrs[1].Value).Int64())}
}
