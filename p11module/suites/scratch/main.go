package main

import (
	"fmt"
	"os"

	"github.com/miekg/pkcs11"
)

func main() {
	p := pkcs11.New(os.Args[1])
	must(p.Initialize())
	slots, _ := p.GetSlotList(true)
	var slot uint
	for _, s := range slots {
		ti, _ := p.GetTokenInfo(s)
		if ti.Label == "cu1" || len(ti.Label) > 3 && ti.Label[:4] == "cu1 " {
			slot = s
		}
	}
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	must(err)
	must(p.Login(sh, pkcs11.CKU_USER, os.Getenv("P11_PIN")))
	a := pkcs11.NewAttribute
	m := func(t uint, x any) []*pkcs11.Mechanism { return []*pkcs11.Mechanism{pkcs11.NewMechanism(t, x)} }
	aes, err := p.GenerateKey(sh, m(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{a(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), a(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), a(pkcs11.CKA_VALUE_LEN, 16), a(pkcs11.CKA_TOKEN, false), a(pkcs11.CKA_ENCRYPT, true), a(pkcs11.CKA_DECRYPT, true), a(pkcs11.CKA_SIGN, true)})
	must(err)
	noenc, err := p.GenerateKey(sh, m(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{a(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), a(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), a(pkcs11.CKA_VALUE_LEN, 16), a(pkcs11.CKA_TOKEN, false), a(pkcs11.CKA_ENCRYPT, false)})
	must(err)
	pub, priv, err := p.GenerateKeyPair(sh, m(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{a(pkcs11.CKA_TOKEN, false), a(pkcs11.CKA_MODULUS_BITS, 2048), a(pkcs11.CKA_ENCRYPT, true), a(pkcs11.CKA_VERIFY, true)},
		[]*pkcs11.Attribute{a(pkcs11.CKA_TOKEN, false), a(pkcs11.CKA_SIGN, true), a(pkcs11.CKA_DECRYPT, true)})
	must(err)
	_ = pub
	try := func(name string, init func() error, op func() error) {
		ie := init()
		var oe error
		if ie == nil {
			oe = op()
		}
		fmt.Printf("%-40s init=%v  op=%v\n", name, ie, oe)
	}
	enc := func() error { _, err := p.Encrypt(sh, make([]byte, 16)); return err }
	sig := func() error { _, err := p.Sign(sh, make([]byte, 16)); return err }
	try("gcm tag 129", func() error { return p.EncryptInit(sh, m(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(make([]byte, 12), nil, 129)), aes) }, enc)
	try("gcm empty iv", func() error { return p.EncryptInit(sh, m(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(nil, nil, 128)), aes) }, enc)
	try("cbc 8-byte iv", func() error { return p.EncryptInit(sh, m(pkcs11.CKM_AES_CBC, make([]byte, 8)), aes) }, enc)
	try("oaep hash 0x1234", func() error {
		return p.EncryptInit(sh, m(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(0x1234, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)), pub)
	}, enc)
	try("oaep hash hmac", func() error {
		return p.EncryptInit(sh, m(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(pkcs11.CKM_SHA256_HMAC, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)), pub)
	}, enc)
	try("oaep mgf 0x99", func() error {
		return p.EncryptInit(sh, m(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, 0x99, pkcs11.CKZ_DATA_SPECIFIED, nil)), pub)
	}, enc)
	try("ecdsa with rsa key", func() error { return p.SignInit(sh, m(pkcs11.CKM_ECDSA_SHA256, nil), priv) }, sig)
	try("rsa with aes key", func() error { return p.SignInit(sh, m(pkcs11.CKM_SHA256_RSA_PKCS, nil), aes) }, sig)
	try("gcm with noenc key", func() error { return p.EncryptInit(sh, m(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(make([]byte, 12), nil, 128)), noenc) }, enc)
	try("gcm made-up key", func() error { return p.EncryptInit(sh, m(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(make([]byte, 12), nil, 128)), 12345) }, enc)
	// after init failure-deferred, is the operation still active?
	p.EncryptInit(sh, m(pkcs11.CKM_AES_GCM, pkcs11.NewGCMParams(make([]byte, 12), nil, 129)), aes)
	_, e1 := p.Encrypt(sh, make([]byte, 16))
	_, e2 := p.Encrypt(sh, make([]byte, 16))
	fmt.Println("after deferred failure:", e1, e2)
	// >256 attributes
	big := make([]*pkcs11.Attribute, 300)
	for i := range big {
		big[i] = a(pkcs11.CKA_CLASS, nil)
	}
	_, err = p.GetAttributeValue(sh, aes, big)
	fmt.Println("GetAttributeValue 300 attrs:", err)
	must(p.Finalize())
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
