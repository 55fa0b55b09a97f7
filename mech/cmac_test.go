package mech

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/ck"
)

func TestCMACRFC4493(t *testing.T) {
	var v struct {
		Key   string
		Cases []struct{ Name, Msg, Mac string }
	}
	loadJSON(t, "cmac.json", &v)
	if len(v.Cases) != 4 {
		t.Fatalf("%d CMAC vectors", len(v.Cases))
	}
	k := secretKey(ck.CKK_AES, unhex(t, v.Key))
	full := row(t, ck.CKM_AES_CMAC)
	general := row(t, ck.CKM_AES_CMAC_GENERAL)
	for _, c := range v.Cases {
		msg, mac := unhex(t, c.Msg), unhex(t, c.Mac)
		got, err := full.Sign(k, Mech{Type: full.Type}, msg)
		noErr(t, err)
		if !bytes.Equal(got, mac) {
			t.Errorf("%s: got %x, want %x", c.Name, got, mac)
		}
		noErr(t, full.Verify(k, Mech{Type: full.Type}, msg, mac))
		wantRV(t, full.Verify(k, Mech{Type: full.Type}, msg, flip(mac, 5)), ck.CKR_SIGNATURE_INVALID)
		if len(msg) > 0 {
			wantRV(t, full.Verify(k, Mech{Type: full.Type}, flip(msg, 0), mac), ck.CKR_SIGNATURE_INVALID)
		}
		// The general form is the MAC's prefix.
		for _, n := range []int{1, 4, 8, 16} {
			m := Mech{Type: general.Type, Param: &MacLenParams{Len: uint64(n)}}
			got, err := general.Sign(k, m, msg)
			noErr(t, err)
			if !bytes.Equal(got, mac[:n]) {
				t.Errorf("%s, %d bytes: got %x", c.Name, n, got)
			}
			noErr(t, general.Verify(k, m, msg, mac[:n]))
			wantRV(t, general.Verify(k, m, msg, flip(mac[:n], 0)), ck.CKR_SIGNATURE_INVALID)
			if n < 16 {
				wantRV(t, general.Verify(k, m, msg, mac), ck.CKR_SIGNATURE_LEN_RANGE)
			}
		}
	}
}

// RFC 4493 §4 gives the subkeys of its example key.
func TestCMACSubkeys(t *testing.T) {
	b, _ := aes.NewCipher(unhex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	var l [16]byte
	b.Encrypt(l[:], l[:])
	if hex.EncodeToString(l[:]) != "7df76b0c1ab899b33e42f047b91b546f" {
		t.Fatalf("L = %x", l)
	}
	k1 := cmacDouble(l)
	k2 := cmacDouble(k1)
	if hex.EncodeToString(k1[:]) != "fbeed618357133667c85e08f7236a8de" || hex.EncodeToString(k2[:]) != "f7ddac306ae266ccf90bc11ee46d513b" {
		t.Fatalf("K1 = %x, K2 = %x", k1, k2)
	}
	// Doubling without a carry is a plain shift.
	var one [16]byte
	one[15] = 1
	if d := cmacDouble(one); d[15] != 2 {
		t.Fatalf("double(1) = %x", d)
	}
}

func TestCMACOpenSSL(t *testing.T) {
	for _, c := range []struct {
		keyLen, msgLen int
		cipher         string
	}{
		{16, 0, "AES-128-CBC"}, {16, 15, "AES-128-CBC"}, {16, 16, "AES-128-CBC"}, {16, 17, "AES-128-CBC"},
		{24, 32, "AES-192-CBC"}, {24, 33, "AES-192-CBC"},
		{32, 47, "AES-256-CBC"}, {32, 48, "AES-256-CBC"}, {32, 1000, "AES-256-CBC"},
	} {
		key := make([]byte, c.keyLen)
		rand.Read(key)
		msg := make([]byte, c.msgLen)
		rand.Read(msg)
		out := openssl(t, msg, "mac", "-cipher", c.cipher, "-macopt", "hexkey:"+hex.EncodeToString(key), "CMAC")
		want := unhex(t, strings.ToLower(strings.TrimSpace(string(out))))
		got, err := row(t, ck.CKM_AES_CMAC).Sign(secretKey(ck.CKK_AES, key), Mech{Type: ck.CKM_AES_CMAC}, msg)
		noErr(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%s, %d bytes: got %x, openssl %x", c.cipher, c.msgLen, got, want)
		}
	}
}
