package mech

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

type wrapVector struct{ Name, Kek, Key, Wrapped string }

func loadWrapVectors(t testing.TB) (kw, kwp []wrapVector) {
	var v struct{ KW, KWP []wrapVector }
	loadJSON(t, "keywrap.json", &v)
	if len(v.KW) != 6 || len(v.KWP) != 2 {
		t.Fatalf("%d KW and %d KWP vectors", len(v.KW), len(v.KWP))
	}
	return v.KW, v.KWP
}

func TestKeyWrapRFCVectors(t *testing.T) {
	kw, kwp := loadWrapVectors(t)
	for _, set := range []struct {
		mech    uint64
		vectors []wrapVector
	}{{ck.CKM_AES_KEY_WRAP, kw}, {ck.CKM_AES_KEY_WRAP_KWP, kwp}} {
		r := row(t, set.mech)
		for _, v := range set.vectors {
			k := secretKey(ck.CKK_AES, unhex(t, v.Kek))
			key, want := unhex(t, v.Key), unhex(t, v.Wrapped)
			m := Mech{Type: set.mech}
			got, err := r.Encrypt(k, m, key)
			noErr(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: wrap gives %x, want %x", v.Name, got, want)
			}
			back, err := r.Decrypt(k, m, want)
			noErr(t, err)
			if !bytes.Equal(back, key) {
				t.Errorf("%s: unwrap gives %x", v.Name, back)
			}
			// The default IV given explicitly gives the same result.
			iv := kwDefaultIV[:]
			if set.mech == ck.CKM_AES_KEY_WRAP_KWP {
				iv = KWPDefaultAIV[:]
			}
			got, err = r.Encrypt(k, Mech{Type: set.mech, Param: &IVParams{IV: iv}}, key)
			noErr(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: explicit default IV differs", v.Name)
			}
			// Every single-bit change is caught.
			for i := range want {
				_, err := r.Decrypt(k, m, flip(want, i))
				wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
			}
		}
	}
}

func TestKeyWrapCustomIV(t *testing.T) {
	k := secretKey(ck.CKK_AES, bytes.Repeat([]byte{9}, 32))
	key := bytes.Repeat([]byte{0x42}, 24)
	r := row(t, ck.CKM_AES_KEY_WRAP)
	m := Mech{Type: r.Type, Param: &IVParams{IV: []byte("8 bytes!")}}
	ct, err := r.Encrypt(k, m, key)
	noErr(t, err)
	// The recovered initial value is the custom IV.
	b, _ := aes.NewCipher(k.Secret)
	a, p := kwDecrypt(b, ct)
	if string(a[:]) != "8 bytes!" || !bytes.Equal(p, key) {
		t.Fatalf("W⁻¹ gives %q, %x", a, p)
	}
	_, err = r.Decrypt(k, Mech{Type: r.Type}, ct)
	wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
	got, err := r.Decrypt(k, m, ct)
	noErr(t, err)
	if !bytes.Equal(got, key) {
		t.Fatal("unwrap with the custom IV differs")
	}

	kwp := row(t, ck.CKM_AES_KEY_WRAP_KWP)
	mp := Mech{Type: kwp.Type, Param: &IVParams{IV: []byte("AIV!")}}
	for _, n := range []int{1, 8, 9} {
		ct, err := kwp.Encrypt(k, mp, key[:n])
		noErr(t, err)
		_, err = kwp.Decrypt(k, Mech{Type: kwp.Type}, ct)
		wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
		got, err := kwp.Decrypt(k, mp, ct)
		noErr(t, err)
		if !bytes.Equal(got, key[:n]) {
			t.Fatalf("KWP custom AIV, %d bytes: got %x", n, got)
		}
	}
}

func TestKeyWrapKWPLengths(t *testing.T) {
	k := secretKey(ck.CKK_AES, bytes.Repeat([]byte{3}, 16))
	r := row(t, ck.CKM_AES_KEY_WRAP_KWP)
	m := Mech{Type: r.Type}
	for n := 1; n <= 72; n++ {
		in := make([]byte, n)
		rand.Read(in)
		ct, err := r.Encrypt(k, m, in)
		noErr(t, err)
		if want := (n+7)/8*8 + 8; len(ct) != want {
			t.Fatalf("%d bytes wrap to %d, want %d", n, len(ct), want)
		}
		got, err := r.Decrypt(k, m, ct)
		noErr(t, err)
		if !bytes.Equal(got, in) {
			t.Fatalf("%d bytes: round trip differs", n)
		}
	}
}

// TestKeyWrapKWPChecks builds ciphertexts whose AIV, MLI or padding is
// wrong and that W⁻¹ decrypts without trouble: each must be refused.
func TestKeyWrapKWPChecks(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	b, _ := aes.NewCipher(key)
	k := secretKey(ck.CKK_AES, key)
	r := row(t, ck.CKM_AES_KEY_WRAP_KWP)
	seal := func(aiv []byte, mli uint32, padded []byte) []byte {
		var a [8]byte
		copy(a[:4], aiv)
		binary.BigEndian.PutUint32(a[4:], mli)
		if len(padded) == 8 {
			out := append(a[:], padded...)
			b.Encrypt(out, out)
			return out
		}
		return kwEncrypt(b, a, padded)
	}
	aiv := KWPDefaultAIV[:]
	good := seal(aiv, 13, append([]byte("thirteen byte"), 0, 0, 0))
	got, err := r.Decrypt(k, Mech{Type: r.Type}, good)
	noErr(t, err)
	if string(got) != "thirteen byte" {
		t.Fatalf("got %q", got)
	}
	cases := map[string][]byte{
		"wrong AIV":               seal([]byte{0xA6, 0x59, 0x59, 0xA7}, 13, append([]byte("thirteen byte"), 0, 0, 0)),
		"RFC 3394 IV":             seal([]byte{0xA6, 0xA6, 0xA6, 0xA6}, 13, append([]byte("thirteen byte"), 0, 0, 0)),
		"MLI 0":                   seal(aiv, 0, make([]byte, 16)),
		"MLI 8 for two blocks":    seal(aiv, 8, make([]byte, 16)),
		"MLI 17 for two blocks":   seal(aiv, 17, make([]byte, 16)),
		"MLI 2^31+13":             seal(aiv, 1<<31+13, append([]byte("thirteen byte"), 0, 0, 0)),
		"MLI 2^32-1":              seal(aiv, 0xFFFFFFFF, make([]byte, 16)),
		"non-zero padding":        seal(aiv, 13, append([]byte("thirteen byte"), 0, 1, 0)),
		"non-zero padding, last":  seal(aiv, 13, append([]byte("thirteen byte"), 0, 0, 0x80)),
		"one block, MLI 9":        seal(aiv, 9, make([]byte, 8)),
		"one block, MLI 0":        seal(aiv, 0, make([]byte, 8)),
		"one block, padding":      seal(aiv, 3, []byte{1, 2, 3, 4, 0, 0, 0, 0}),
		"one block, wrong AIV":    seal([]byte{0, 0, 0, 0}, 8, make([]byte, 8)),
		"three blocks, MLI 16":    seal(aiv, 16, make([]byte, 24)),
		"three blocks, MLI 25":    seal(aiv, 25, make([]byte, 24)),
		"three blocks, pad in 17": seal(aiv, 17, append(make([]byte, 17), 0, 0, 0, 0, 0, 0, 9)),
	}
	for name, ct := range cases {
		_, err := r.Decrypt(k, Mech{Type: r.Type}, ct)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	// The edge values of the MLI that are valid.
	for _, c := range []struct {
		mli    uint32
		padded []byte
	}{{9, make([]byte, 16)}, {16, make([]byte, 16)}, {8, make([]byte, 8)}, {1, make([]byte, 8)}} {
		got, err := r.Decrypt(k, Mech{Type: r.Type}, seal(aiv, c.mli, c.padded))
		noErr(t, err)
		if len(got) != int(c.mli) {
			t.Errorf("MLI %d: %d bytes", c.mli, len(got))
		}
	}
}

func TestKeyWrapOpenSSL(t *testing.T) {
	for _, c := range []struct {
		mech   uint64
		cipher string
		keyLen int
		iv     string
		inLens []int
	}{
		{ck.CKM_AES_KEY_WRAP, "-id-aes128-wrap", 16, "A6A6A6A6A6A6A6A6", []int{16, 32}},
		{ck.CKM_AES_KEY_WRAP, "-id-aes192-wrap", 24, "A6A6A6A6A6A6A6A6", []int{24}},
		{ck.CKM_AES_KEY_WRAP, "-id-aes256-wrap", 32, "A6A6A6A6A6A6A6A6", []int{40}},
		{ck.CKM_AES_KEY_WRAP_KWP, "-id-aes128-wrap-pad", 16, "A65959A6", []int{5, 16}},
		{ck.CKM_AES_KEY_WRAP_KWP, "-id-aes192-wrap-pad", 24, "A65959A6", []int{33}},
		{ck.CKM_AES_KEY_WRAP_KWP, "-id-aes256-wrap-pad", 32, "A65959A6", []int{1, 8, 9, 100}},
	} {
		kek := make([]byte, c.keyLen)
		rand.Read(kek)
		k := secretKey(ck.CKK_AES, kek)
		for _, n := range c.inLens {
			in := make([]byte, n)
			rand.Read(in)
			// OpenSSL's enc tool wants the default IV spelled out.
			want := openssl(t, in, "enc", c.cipher, "-K", hex.EncodeToString(kek), "-iv", c.iv)
			got, err := row(t, c.mech).Encrypt(k, Mech{Type: c.mech}, in)
			noErr(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%s %d bytes: got %x, openssl %x", c.cipher, n, got, want)
			}
			back, err := row(t, c.mech).Decrypt(k, Mech{Type: c.mech}, want)
			noErr(t, err)
			if !bytes.Equal(back, in) {
				t.Errorf("%s %d bytes: unwrap of openssl's output differs", c.cipher, n)
			}
		}
	}
}

// FuzzKeyUnwrap: unwrapping arbitrary bytes never panics, fails only with
// the expected return values, and whatever unwraps wraps back to the same
// bytes.
func FuzzKeyUnwrap(f *testing.F) {
	kw, kwp := loadWrapVectors(f)
	for _, v := range append(kw, kwp...) {
		f.Add(unhex(f, v.Kek), unhex(f, v.Wrapped), false)
		f.Add(unhex(f, v.Kek), unhex(f, v.Wrapped), true)
	}
	f.Add([]byte{}, []byte{}, true)
	f.Add(make([]byte, 16), make([]byte, 16), true)
	f.Fuzz(func(t *testing.T, kek, wrapped []byte, pad bool) {
		// Any kek bytes give an AES key of a valid size.
		key := make([]byte, 16+8*(len(kek)%3))
		copy(key, kek)
		k := secretKey(ck.CKK_AES, key)
		mech := uint64(ck.CKM_AES_KEY_WRAP)
		if pad {
			mech = ck.CKM_AES_KEY_WRAP_KWP
		}
		r, _ := LookupMechanism(mech)
		m := Mech{Type: mech}
		p, err := r.Decrypt(k, m, wrapped)
		if err != nil {
			var e *hsmerr.Error
			if !errors.As(err, &e) || e.RV != ck.CKR_ENCRYPTED_DATA_INVALID && e.RV != ck.CKR_ENCRYPTED_DATA_LEN_RANGE {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := r.Encrypt(k, m, p)
		if err != nil {
			t.Fatalf("re-wrap: %v", err)
		}
		if !bytes.Equal(again, wrapped) {
			t.Fatalf("re-wrap gives %x, not %x", again, wrapped)
		}
	})
}
