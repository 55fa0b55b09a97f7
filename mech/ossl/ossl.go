//go:build cgo

package ossl

/*
#cgo LDFLAGS: -lcrypto
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>

// The helpers return 1 on success, -1 when the context could not be set
// up (a parameter OpenSSL refused) and -2 when the operation itself failed
// (for decryption: the ciphertext does not decrypt). They leave no entry
// in the thread's error queue.

static EVP_PKEY *ossl_load(int type, const unsigned char *der, long len) {
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PrivateKey(type, NULL, &p, len);
	if (k != NULL && p != der + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (k == NULL)
		ERR_clear_error();
	return k;
}

// ossl_sig_ctx makes a context for k that signs (verify 0) or verifies
// with the padding (0: the key type's own), digest and PSS parameters
// given, or returns NULL when OpenSSL refuses one of them.
static EVP_PKEY_CTX *ossl_sig_ctx(EVP_PKEY *k, int verify, int pad, const EVP_MD *md, const EVP_MD *mgf, int salt) {
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (c == NULL)
		return NULL;
	if ((verify ? EVP_PKEY_verify_init(c) : EVP_PKEY_sign_init(c)) <= 0 ||
	    (pad != 0 && EVP_PKEY_CTX_set_rsa_padding(c, pad) <= 0) ||
	    (md != NULL && EVP_PKEY_CTX_set_signature_md(c, md) <= 0) ||
	    (pad == RSA_PKCS1_PSS_PADDING &&
	     (EVP_PKEY_CTX_set_rsa_mgf1_md(c, mgf) <= 0 || EVP_PKEY_CTX_set_rsa_pss_saltlen(c, salt) <= 0))) {
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c;
}

static int ossl_sign(EVP_PKEY *k, int pad, const EVP_MD *md, const EVP_MD *mgf, int salt,
		const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen) {
	int rc = -1;
	EVP_PKEY_CTX *c = ossl_sig_ctx(k, 0, pad, md, mgf, salt);
	if (c != NULL)
		rc = EVP_PKEY_sign(c, out, outlen, in, inlen) > 0 ? 1 : -2;
	if (rc != 1)
		ERR_clear_error();
	EVP_PKEY_CTX_free(c);
	return rc;
}

// ossl_verify returns 1 when sig verifies, -2 when it does not.
static int ossl_verify(EVP_PKEY *k, int pad, const EVP_MD *md, const EVP_MD *mgf, int salt,
		const unsigned char *in, size_t inlen, const unsigned char *sig, size_t siglen) {
	int rc = -1;
	EVP_PKEY_CTX *c = ossl_sig_ctx(k, 1, pad, md, mgf, salt);
	if (c != NULL)
		rc = EVP_PKEY_verify(c, sig, siglen, in, inlen) == 1 ? 1 : -2;
	if (rc != 1)
		ERR_clear_error();
	EVP_PKEY_CTX_free(c);
	return rc;
}

static int ossl_decrypt(EVP_PKEY *k, int pad, const EVP_MD *md, const EVP_MD *mgf,
		const unsigned char *label, size_t labellen,
		const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen) {
	int rc = -1;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (c == NULL || EVP_PKEY_decrypt_init(c) <= 0 || EVP_PKEY_CTX_set_rsa_padding(c, pad) <= 0)
		goto done;
	if (pad == RSA_PKCS1_PADDING) {
		// OpenSSL 3.2 and later answer a bad PKCS #1 v1.5 padding with a
		// made-up plaintext (implicit rejection); PKCS #11 and Go's
		// crypto/rsa report an error, so turn it off. OpenSSL 3.0 does not
		// know the parameter and ignores it.
		unsigned int off = 0;
		OSSL_PARAM ps[2];
		ps[0] = OSSL_PARAM_construct_uint("implicit-rejection", &off);
		ps[1] = OSSL_PARAM_construct_end();
		if (EVP_PKEY_CTX_set_params(c, ps) <= 0)
			goto done;
	}
	if (pad == RSA_PKCS1_OAEP_PADDING) {
		if (EVP_PKEY_CTX_set_rsa_oaep_md(c, md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(c, mgf) <= 0)
			goto done;
		if (labellen > 0) {
			// set0 takes the label over: give it OpenSSL's own copy.
			void *l = OPENSSL_memdup(label, labellen);
			if (l == NULL)
				goto done;
			if (EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int)labellen) <= 0) {
				OPENSSL_free(l);
				goto done;
			}
		}
	}
	rc = EVP_PKEY_decrypt(c, out, outlen, in, inlen) > 0 ? 1 : -2;
done:
	if (rc != 1)
		ERR_clear_error();
	EVP_PKEY_CTX_free(c);
	return rc;
}

// ossl_load_ec builds an EC key pair of the named group from its private
// scalar (native byte order, as OSSL_PARAM_construct_BN wants it) and its
// uncompressed public point.
static EVP_PKEY *ossl_load_ec(const char *group, unsigned char *priv, size_t privlen,
		unsigned char *pub, size_t publen) {
	EVP_PKEY *k = NULL;
	OSSL_PARAM ps[4];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	ps[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, priv, privlen);
	ps[2] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, publen);
	ps[3] = OSSL_PARAM_construct_end();
	if (c == NULL || EVP_PKEY_fromdata_init(c) <= 0 || EVP_PKEY_fromdata(c, &k, EVP_PKEY_KEYPAIR, ps) <= 0) {
		EVP_PKEY_free(k);
		k = NULL;
		ERR_clear_error();
	}
	EVP_PKEY_CTX_free(c);
	return k;
}

static const EVP_MD *ossl_md(const char *name) {
	const EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
	if (md == NULL)
		ERR_clear_error();
	return md;
}
*/
import "C"

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Available says whether the binding is linked (it needs cgo).
const Available = true

// mds are the digests fetched once; a hash missing here is unsupported.
var mds = func() map[crypto.Hash]*C.EVP_MD {
	names := map[crypto.Hash]string{
		crypto.SHA1: "SHA1", crypto.SHA224: "SHA224", crypto.SHA256: "SHA256",
		crypto.SHA384: "SHA384", crypto.SHA512: "SHA512",
		crypto.SHA3_224: "SHA3-224", crypto.SHA3_256: "SHA3-256",
		crypto.SHA3_384: "SHA3-384", crypto.SHA3_512: "SHA3-512",
	}
	m := map[crypto.Hash]*C.EVP_MD{}
	for h, n := range names {
		cn := C.CString(n)
		if md := C.ossl_md(cn); md != nil {
			m[h] = md
		}
		C.free(unsafe.Pointer(cn))
	}
	return m
}()

func mdOf(h crypto.Hash) (*C.EVP_MD, error) {
	md, ok := mds[h]
	if !ok {
		return nil, fmt.Errorf("ossl: hash %v: %w", h, errors.ErrUnsupported)
	}
	return md, nil
}

// pkey is a loaded key; its EVP_PKEY is freed when the pkey is garbage.
type pkey struct {
	p    *C.EVP_PKEY
	size int // signature (or modulus) length in bytes
}

func load(typ C.int, der []byte, size int) (*pkey, error) {
	if len(der) == 0 {
		return nil, errors.New("ossl: empty key")
	}
	p := C.ossl_load(typ, (*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	if p == nil {
		return nil, errors.New("ossl: libcrypto refused the key")
	}
	return newPkey(p, size), nil
}

// newPkey takes p over: it is freed when the returned pkey is garbage.
func newPkey(p *C.EVP_PKEY, size int) *pkey {
	k := &pkey{p: p, size: size}
	runtime.AddCleanup(k, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, p)
	return k
}

// ptr returns a pointer to b's first byte, or nil for an empty b.
func ptr(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}

var errSetup = errors.New("ossl: libcrypto refused the operation's parameters")

func (k *pkey) sign(pad C.int, md, mgf *C.EVP_MD, salt int, in []byte, outCap int) ([]byte, error) {
	out := make([]byte, outCap)
	n := C.size_t(len(out))
	rc := C.ossl_sign(k.p, pad, md, mgf, C.int(salt), ptr(in), C.size_t(len(in)), ptr(out), &n)
	runtime.KeepAlive(k)
	switch rc {
	case 1:
		return out[:n], nil
	case -1:
		return nil, errSetup
	default:
		return nil, errors.New("ossl: signing failed")
	}
}

// verifyPSS checks a PSS signature in libcrypto: the tests use it to see
// that libcrypto accepts crypto/rsa's signatures.
func (r *RSAKey) verifyPSS(h, mgf crypto.Hash, saltLen int, digest, sig []byte) error {
	md, err := mdOf(h)
	if err != nil {
		return err
	}
	mg, err := mdOf(mgf)
	if err != nil {
		return err
	}
	rc := C.ossl_verify(r.k.p, C.RSA_PKCS1_PSS_PADDING, md, mg, C.int(saltLen), ptr(digest), C.size_t(len(digest)), ptr(sig), C.size_t(len(sig)))
	runtime.KeepAlive(r)
	if rc != 1 {
		return errors.New("ossl: the signature does not verify")
	}
	return nil
}

// RSAKey is an RSA private key in libcrypto. It is safe for concurrent use.
type RSAKey struct{ k *pkey }

// LoadRSA loads an RSA private key into libcrypto (as PKCS #1 DER, which it
// wipes afterwards).
func LoadRSA(priv *rsa.PrivateKey) (*RSAKey, error) {
	der := x509.MarshalPKCS1PrivateKey(priv)
	defer clear(der)
	k, err := load(C.EVP_PKEY_RSA, der, priv.Size())
	if err != nil {
		return nil, err
	}
	if bits := int(C.EVP_PKEY_get_bits(k.p)); bits != priv.N.BitLen() {
		return nil, fmt.Errorf("ossl: libcrypto sees a %d-bit key, not %d bits", bits, priv.N.BitLen())
	}
	return &RSAKey{k: k}, nil
}

// SignPKCS1v15 signs with PKCS #1 v1.5 padding: in is the digest of hash h,
// which gets its DigestInfo, or with h zero the caller's already encoded
// DigestInfo (CKM_RSA_PKCS), signed as it is.
func (r *RSAKey) SignPKCS1v15(h crypto.Hash, in []byte) ([]byte, error) {
	var md *C.EVP_MD
	if h != 0 {
		var err error
		if md, err = mdOf(h); err != nil {
			return nil, err
		}
	}
	return r.k.sign(C.RSA_PKCS1_PADDING, md, nil, 0, in, r.k.size)
}

// SignPSS signs digest (of hash h) with PSS, MGF1 with hash mgf and a salt
// of saltLen bytes.
func (r *RSAKey) SignPSS(h, mgf crypto.Hash, saltLen int, digest []byte) ([]byte, error) {
	md, err := mdOf(h)
	if err != nil {
		return nil, err
	}
	mg, err := mdOf(mgf)
	if err != nil {
		return nil, err
	}
	return r.k.sign(C.RSA_PKCS1_PSS_PADDING, md, mg, saltLen, digest, r.k.size)
}

func (r *RSAKey) decrypt(pad C.int, md, mgf *C.EVP_MD, label, in []byte) ([]byte, error) {
	out := make([]byte, r.k.size)
	n := C.size_t(len(out))
	rc := C.ossl_decrypt(r.k.p, pad, md, mgf, ptr(label), C.size_t(len(label)), ptr(in), C.size_t(len(in)), ptr(out), &n)
	runtime.KeepAlive(r)
	switch rc {
	case 1:
		return out[:n], nil
	case -1:
		return nil, errSetup
	default:
		clear(out)
		return nil, rsa.ErrDecryption
	}
}

// DecryptPKCS1v15 decrypts a PKCS #1 v1.5 ciphertext. A ciphertext that
// does not decrypt is rsa.ErrDecryption, as in crypto/rsa.
func (r *RSAKey) DecryptPKCS1v15(in []byte) ([]byte, error) {
	return r.decrypt(C.RSA_PKCS1_PADDING, nil, nil, nil, in)
}

// DecryptOAEP decrypts an OAEP ciphertext of label hash h, MGF1 with hash
// mgf, and label. A ciphertext that does not decrypt is rsa.ErrDecryption.
func (r *RSAKey) DecryptOAEP(h, mgf crypto.Hash, label, in []byte) ([]byte, error) {
	md, err := mdOf(h)
	if err != nil {
		return nil, err
	}
	mg, err := mdOf(mgf)
	if err != nil {
		return nil, err
	}
	return r.decrypt(C.RSA_PKCS1_OAEP_PADDING, md, mg, label, in)
}

// Raw computes in^d mod n (CKM_RSA_X_509's sign and decrypt). in must be
// exactly the modulus length and less than the modulus; the result has the
// modulus length.
func (r *RSAKey) Raw(in []byte) ([]byte, error) {
	out, err := r.decrypt(C.RSA_NO_PADDING, nil, nil, nil, in)
	if errors.Is(err, rsa.ErrDecryption) {
		return nil, errors.New("ossl: raw RSA failed")
	}
	return out, err
}

// ecGroups are the curves LoadEC takes, by OpenSSL's group names.
var ecGroups = map[elliptic.Curve]*C.char{
	elliptic.P256(): C.CString("prime256v1"),
	elliptic.P384(): C.CString("secp384r1"),
	elliptic.P521(): C.CString("secp521r1"),
}

// nativeLittle says whether the machine is little-endian: libcrypto wants
// a BIGNUM parameter in the machine's byte order.
var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// ECKey is an ECDSA private key (P-256, P-384 or P-521) in libcrypto. It is
// safe for concurrent use.
type ECKey struct {
	k       *pkey
	byteLen int // the length of each of r and s in a signature
}

// LoadEC loads an ECDSA private key into libcrypto, from its private
// scalar and public point. Another curve is errors.ErrUnsupported. The key
// is not checked against its public half here: the caller (mech's
// self-check) verifies a signature with Go.
func LoadEC(priv *ecdsa.PrivateKey) (*ECKey, error) {
	group, ok := ecGroups[priv.Curve]
	if !ok {
		return nil, fmt.Errorf("ossl: EC curve: %w", errors.ErrUnsupported)
	}
	kd, err := priv.Bytes()
	if err != nil {
		return nil, errors.New("ossl: the EC private key is invalid")
	}
	// Bytes returns the key's own cached scalar, not a copy: reverse and
	// wipe a copy.
	d := slices.Clone(kd)
	defer clear(d)
	pub, err := priv.PublicKey.Bytes()
	if err != nil {
		return nil, errors.New("ossl: the EC public key is invalid")
	}
	if nativeLittle {
		slices.Reverse(d)
	}
	p := C.ossl_load_ec(group, ptr(d), C.size_t(len(d)), ptr(pub), C.size_t(len(pub)))
	if p == nil {
		return nil, errors.New("ossl: libcrypto refused the key")
	}
	n := (priv.Curve.Params().BitSize + 7) / 8
	return &ECKey{k: newPkey(p, int(C.EVP_PKEY_get_size(p))), byteLen: n}, nil
}

// Sign signs digest with ECDSA, truncated to the order's bit length as
// crypto/ecdsa does, and returns r||s, each left-padded to the curve's byte
// length (the PKCS #11 form).
func (e *ECKey) Sign(digest []byte) ([]byte, error) {
	if len(digest) == 0 {
		// libcrypto wants an input buffer; an empty digest is the zero
		// hash, as in crypto/ecdsa.
		digest = []byte{0}
	}
	der, err := e.k.sign(0, nil, nil, 0, digest, e.k.size)
	if err != nil {
		return nil, err
	}
	var r, s []byte
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, errors.New("ossl: libcrypto returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*e.byteLen)
	if !fixed(out[:e.byteLen], r) || !fixed(out[e.byteLen:], s) {
		return nil, errors.New("ossl: libcrypto returned a malformed ECDSA signature")
	}
	return out, nil
}

// fixed writes the magnitude v (big-endian, as ReadASN1Integer gives a
// non-negative INTEGER) into dst, left-padded; it is false when v is zero
// or does not fit.
func fixed(dst, v []byte) bool {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > len(dst) {
		return false
	}
	copy(dst[len(dst)-len(v):], v)
	return true
}

// verifyASN1 checks an ASN.1 ECDSA signature of digest in libcrypto: the
// tests use it to see that libcrypto accepts crypto/ecdsa's signatures.
func (e *ECKey) verifyASN1(digest, sig []byte) error {
	if len(digest) == 0 {
		digest = []byte{0}
	}
	rc := C.ossl_verify(e.k.p, 0, nil, nil, 0, ptr(digest), C.size_t(len(digest)), ptr(sig), C.size_t(len(sig)))
	runtime.KeepAlive(e)
	if rc != 1 {
		return errors.New("ossl: the signature does not verify")
	}
	return nil
}
