package object

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Kind is how an attribute's value is encoded. On the wire and in the store
// values are canonical: CK_BBOOL is one byte 0 or 1, CK_ULONG is eight bytes
// big-endian (the PKCS#11 library converts from host order), a mechanism list
// is a run of such ulongs, a CK_DATE is empty or eight ASCII digits, and
// everything else is raw bytes.
type Kind int

const (
	KindBytes Kind = iota
	KindBool
	KindUlong
	KindDate
	KindMechs
)

// Rule flags, after the footnotes of the PKCS#11 attribute tables.
const (
	fReqCreate   = 1 << iota // must be given to C_CreateObject (footnote 1)
	fNoCreate                // must not be given to C_CreateObject (2)
	fReqGen                  // must be given to C_GenerateKey[Pair] (3)
	fNoGen                   // must not be given to C_GenerateKey[Pair] (4)
	fReqUnwrap               // must be given to C_UnwrapKey (5)
	fNoUnwrap                // must not be given to C_UnwrapKey or C_DeriveKey (6)
	fSensitive               // secret material: never in Attrs, never read while sensitive (7)
	fModifiable              // may change after creation (8)
	fSOOnly                  // only a crypto officer may set it to true (10)
	fStickyTrue              // once true, stays true (11)
	fStickyFalse             // once false, stays false (12)
	fTokenSet                // set only by the HSM: ATTRIBUTE_READ_ONLY if given
	// fSealed: kept sealed in Object.Sealed like key material, never in
	// Attrs (nor in the Raft log, the database or its WAL), but readable
	// by whoever may read the object: a data object's CKA_VALUE.
	fSealed
)

// scope says which objects a rule applies to.
type scope struct {
	classes  []uint64 // empty: every class
	keyTypes []uint64 // empty: every key type of those classes
	certType bool     // applies only to X.509 certificates
}

type attrRule struct {
	t     uint64
	kind  Kind
	scope scope
	flags int
	// def is the default value, canonical; nil means the attribute has no
	// default and is absent unless given (or set by the HSM).
	def []byte
}

var (
	allKeys     = []uint64{ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY}
	pubPriv     = []uint64{ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY}
	privSecret  = []uint64{ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY}
	pubSecret   = []uint64{ck.CKO_PUBLIC_KEY, ck.CKO_SECRET_KEY}
	public      = []uint64{ck.CKO_PUBLIC_KEY}
	private     = []uint64{ck.CKO_PRIVATE_KEY}
	secret      = []uint64{ck.CKO_SECRET_KEY}
	data        = []uint64{ck.CKO_DATA}
	certificate = []uint64{ck.CKO_CERTIFICATE}
	ecTypes     = []uint64{ck.CKK_EC, ck.CKK_EC_EDWARDS}
	rsaType     = []uint64{ck.CKK_RSA}
	secretTypes = []uint64{ck.CKK_AES, ck.CKK_GENERIC_SECRET, ck.CKK_CHACHA20}

	yes  = []byte{1}
	no   = []byte{0}
	none = []byte{}
)

// attrRules is the attribute table: one row per attribute and scope. The
// first row whose scope matches an object wins, so narrower rows come first.
var attrRules = []attrRule{
	// Common to every object.
	{t: ck.CKA_CLASS, kind: KindUlong, flags: fReqCreate},
	{t: ck.CKA_TOKEN, kind: KindBool, def: no},
	{t: ck.CKA_PRIVATE, kind: KindBool, scope: scope{classes: privSecret}, def: yes},
	{t: ck.CKA_PRIVATE, kind: KindBool, def: no},
	{t: ck.CKA_MODIFIABLE, kind: KindBool, def: yes},
	{t: ck.CKA_LABEL, kind: KindBytes, flags: fModifiable, def: none},
	{t: ck.CKA_COPYABLE, kind: KindBool, flags: fStickyFalse, def: yes},
	{t: ck.CKA_DESTROYABLE, kind: KindBool, def: yes},
	{t: ck.CKA_UNIQUE_ID, kind: KindBytes, flags: fTokenSet},

	// Data objects.
	{t: ck.CKA_APPLICATION, kind: KindBytes, scope: scope{classes: data}, flags: fModifiable, def: none},
	{t: ck.CKA_OBJECT_ID, kind: KindBytes, scope: scope{classes: data}, flags: fModifiable, def: none},
	{t: ck.CKA_VALUE, kind: KindBytes, scope: scope{classes: data}, flags: fModifiable | fSealed, def: none},

	// Certificates (X.509 public key certificates only).
	{t: ck.CKA_CERTIFICATE_TYPE, kind: KindUlong, scope: scope{classes: certificate}, flags: fReqCreate},
	{t: ck.CKA_TRUSTED, kind: KindBool, scope: scope{classes: certificate}, flags: fSOOnly | fModifiable, def: no},
	{t: ck.CKA_CERTIFICATE_CATEGORY, kind: KindUlong, scope: scope{classes: certificate}, def: EncodeUlong(0)},
	{t: ck.CKA_CHECK_VALUE, kind: KindBytes, scope: scope{classes: certificate}, flags: fTokenSet},
	{t: ck.CKA_START_DATE, kind: KindDate, scope: scope{classes: certificate}, flags: fModifiable, def: none},
	{t: ck.CKA_END_DATE, kind: KindDate, scope: scope{classes: certificate}, flags: fModifiable, def: none},
	{t: ck.CKA_PUBLIC_KEY_INFO, kind: KindBytes, scope: scope{classes: certificate}, def: none},
	{t: ck.CKA_SUBJECT, kind: KindBytes, scope: scope{classes: certificate, certType: true}, flags: fReqCreate},
	{t: ck.CKA_ID, kind: KindBytes, scope: scope{classes: certificate, certType: true}, flags: fModifiable, def: none},
	{t: ck.CKA_ISSUER, kind: KindBytes, scope: scope{classes: certificate, certType: true}, flags: fModifiable, def: none},
	{t: ck.CKA_SERIAL_NUMBER, kind: KindBytes, scope: scope{classes: certificate, certType: true}, flags: fModifiable, def: none},
	{t: ck.CKA_VALUE, kind: KindBytes, scope: scope{classes: certificate, certType: true}, flags: fReqCreate},
	{t: ck.CKA_URL, kind: KindBytes, scope: scope{classes: certificate, certType: true}, def: none},
	{t: ck.CKA_HASH_OF_SUBJECT_PUBLIC_KEY, kind: KindBytes, scope: scope{classes: certificate, certType: true}, def: none},
	{t: ck.CKA_HASH_OF_ISSUER_PUBLIC_KEY, kind: KindBytes, scope: scope{classes: certificate, certType: true}, def: none},
	{t: ck.CKA_JAVA_MIDP_SECURITY_DOMAIN, kind: KindUlong, scope: scope{classes: certificate, certType: true}, def: EncodeUlong(0)},
	{t: ck.CKA_NAME_HASH_ALGORITHM, kind: KindUlong, scope: scope{classes: certificate, certType: true}, def: EncodeUlong(ck.CKM_SHA_1)},

	// Every key.
	{t: ck.CKA_KEY_TYPE, kind: KindUlong, scope: scope{classes: allKeys}, flags: fReqCreate},
	{t: ck.CKA_ID, kind: KindBytes, scope: scope{classes: allKeys}, flags: fModifiable, def: none},
	{t: ck.CKA_START_DATE, kind: KindDate, scope: scope{classes: allKeys}, flags: fModifiable, def: none},
	{t: ck.CKA_END_DATE, kind: KindDate, scope: scope{classes: allKeys}, flags: fModifiable, def: none},
	{t: ck.CKA_DERIVE, kind: KindBool, scope: scope{classes: allKeys}, flags: fModifiable, def: no},
	{t: ck.CKA_LOCAL, kind: KindBool, scope: scope{classes: allKeys}, flags: fTokenSet},
	{t: ck.CKA_KEY_GEN_MECHANISM, kind: KindUlong, scope: scope{classes: allKeys}, flags: fTokenSet},
	{t: ck.CKA_ALLOWED_MECHANISMS, kind: KindMechs, scope: scope{classes: allKeys}, def: none},
	// Array attributes (arrayattr.go): absent unless given, and
	// fixed once the key exists.
	{t: ck.CKA_WRAP_TEMPLATE, kind: KindTemplate, scope: scope{classes: pubSecret}},
	{t: ck.CKA_UNWRAP_TEMPLATE, kind: KindTemplate, scope: scope{classes: privSecret}},
	{t: ck.CKA_DERIVE_TEMPLATE, kind: KindTemplate, scope: scope{classes: privSecret}},

	// Public and private keys.
	{t: ck.CKA_SUBJECT, kind: KindBytes, scope: scope{classes: pubPriv}, flags: fModifiable, def: none},
	{t: ck.CKA_PUBLIC_KEY_INFO, kind: KindBytes, scope: scope{classes: pubPriv}, flags: fTokenSet},

	// Usage flags. The defaults let a key do what its class can do, as most
	// tokens do, except wrap and unwrap, which a template asks for: a key
	// that wraps must not also decrypt (usage.go). A crypto user may turn
	// usages off, and on only as usage.go allows.
	{t: ck.CKA_ENCRYPT, kind: KindBool, scope: scope{classes: pubSecret}, flags: fModifiable, def: yes},
	{t: ck.CKA_VERIFY, kind: KindBool, scope: scope{classes: pubSecret}, flags: fModifiable, def: yes},
	{t: ck.CKA_VERIFY_RECOVER, kind: KindBool, scope: scope{classes: public}, flags: fModifiable, def: no},
	{t: ck.CKA_WRAP, kind: KindBool, scope: scope{classes: pubSecret}, flags: fModifiable, def: no},
	{t: ck.CKA_TRUSTED, kind: KindBool, scope: scope{classes: pubSecret}, flags: fSOOnly | fModifiable, def: no},
	{t: ck.CKA_DECRYPT, kind: KindBool, scope: scope{classes: privSecret}, flags: fModifiable, def: yes},
	{t: ck.CKA_SIGN, kind: KindBool, scope: scope{classes: privSecret}, flags: fModifiable, def: yes},
	{t: ck.CKA_SIGN_RECOVER, kind: KindBool, scope: scope{classes: private}, flags: fModifiable, def: no},
	{t: ck.CKA_UNWRAP, kind: KindBool, scope: scope{classes: privSecret}, flags: fModifiable, def: no},

	// Protection of private and secret keys. Secure by default: sensitive
	// and not extractable unless the template says otherwise.
	{t: ck.CKA_SENSITIVE, kind: KindBool, scope: scope{classes: privSecret}, flags: fModifiable | fStickyTrue, def: yes},
	{t: ck.CKA_EXTRACTABLE, kind: KindBool, scope: scope{classes: privSecret}, flags: fModifiable | fStickyFalse, def: no},
	{t: ck.CKA_ALWAYS_SENSITIVE, kind: KindBool, scope: scope{classes: privSecret}, flags: fTokenSet},
	{t: ck.CKA_NEVER_EXTRACTABLE, kind: KindBool, scope: scope{classes: privSecret}, flags: fTokenSet},
	{t: ck.CKA_WRAP_WITH_TRUSTED, kind: KindBool, scope: scope{classes: privSecret}, flags: fModifiable | fStickyTrue, def: no},
	{t: ck.CKA_ALWAYS_AUTHENTICATE, kind: KindBool, scope: scope{classes: private}, def: no},
	{t: ck.CKA_CHECK_VALUE, kind: KindBytes, scope: scope{classes: secret}, flags: fTokenSet},

	// RSA.
	{t: ck.CKA_MODULUS, kind: KindBytes, scope: scope{classes: pubPriv, keyTypes: rsaType}, flags: fReqCreate | fNoGen | fNoUnwrap},
	{t: ck.CKA_MODULUS_BITS, kind: KindUlong, scope: scope{classes: public, keyTypes: rsaType}, flags: fNoCreate | fReqGen},
	{t: ck.CKA_PUBLIC_EXPONENT, kind: KindBytes, scope: scope{classes: public, keyTypes: rsaType}, flags: fReqCreate},
	{t: ck.CKA_PUBLIC_EXPONENT, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fReqCreate | fNoGen | fNoUnwrap},
	{t: ck.CKA_PRIVATE_EXPONENT, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fReqCreate | fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_PRIME_1, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_PRIME_2, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_EXPONENT_1, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_EXPONENT_2, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_COEFFICIENT, kind: KindBytes, scope: scope{classes: private, keyTypes: rsaType}, flags: fNoGen | fNoUnwrap | fSensitive},

	// EC and Edwards curves.
	{t: ck.CKA_EC_PARAMS, kind: KindBytes, scope: scope{classes: public, keyTypes: ecTypes}, flags: fReqCreate | fReqGen},
	{t: ck.CKA_EC_POINT, kind: KindBytes, scope: scope{classes: public, keyTypes: ecTypes}, flags: fReqCreate | fNoGen},
	{t: ck.CKA_EC_PARAMS, kind: KindBytes, scope: scope{classes: private, keyTypes: ecTypes}, flags: fReqCreate | fNoGen | fNoUnwrap},
	// The private key's point is not in the standard, but applications look
	// for it there; the HSM fills it in.
	{t: ck.CKA_EC_POINT, kind: KindBytes, scope: scope{classes: private, keyTypes: ecTypes}, flags: fTokenSet},
	{t: ck.CKA_VALUE, kind: KindBytes, scope: scope{classes: private, keyTypes: ecTypes}, flags: fReqCreate | fNoGen | fNoUnwrap | fSensitive},

	// AES and generic secrets.
	{t: ck.CKA_VALUE, kind: KindBytes, scope: scope{classes: secret, keyTypes: secretTypes}, flags: fReqCreate | fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_VALUE_LEN, kind: KindUlong, scope: scope{classes: secret, keyTypes: secretTypes}, flags: fNoCreate | fReqGen},

	// ML-KEM and ML-DSA (PKCS#11 v3.2, the key object tables of "ML-KEM"
	// and "ML-DSA"; the footnotes as the flags). The private key's
	// CKA_PARAMETER_SET comes from the public template on generation. The
	// token keeps private keys as seeds: C_CreateObject needs CKA_SEED
	// (mech checks that), and CKA_VALUE is the expanded key.
	{t: ck.CKA_PARAMETER_SET, kind: KindUlong, scope: scope{classes: public, keyTypes: pqTypes}, flags: fReqCreate | fReqGen},
	{t: ck.CKA_VALUE, kind: KindBytes, scope: scope{classes: public, keyTypes: pqTypes}, flags: fReqCreate | fNoGen},
	{t: ck.CKA_PARAMETER_SET, kind: KindUlong, scope: scope{classes: private, keyTypes: pqTypes}, flags: fReqCreate | fNoGen | fNoUnwrap},
	{t: ck.CKA_SEED, kind: KindBytes, scope: scope{classes: private, keyTypes: pqTypes}, flags: fNoGen | fNoUnwrap | fSensitive},
	{t: ck.CKA_VALUE, kind: KindBytes, scope: scope{classes: private, keyTypes: pqTypes}, flags: fNoGen | fNoUnwrap | fSensitive},
	// CKA_ENCAPSULATE and CKA_DECAPSULATE, on ML-KEM keys only; on by
	// default like the other usages of a key's class.
	{t: ck.CKA_ENCAPSULATE, kind: KindBool, scope: scope{classes: public, keyTypes: kemTypes}, flags: fModifiable, def: yes},
	{t: ck.CKA_DECAPSULATE, kind: KindBool, scope: scope{classes: private, keyTypes: kemTypes}, flags: fModifiable, def: yes},
}

var (
	pqTypes  = []uint64{ck.CKK_ML_KEM, ck.CKK_ML_DSA}
	kemTypes = []uint64{ck.CKK_ML_KEM}
)

// knownAttrs is every attribute type any rule names.
var knownAttrs = func() map[uint64]Kind {
	m := map[uint64]Kind{}
	for _, r := range attrRules {
		m[r.t] = r.kind
	}
	return m
}()

// AttrKind returns how an attribute is encoded, and whether the HSM knows it.
// The PKCS#11 library uses it to convert host-order CK_ULONGs.
func AttrKind(t uint64) (Kind, bool) {
	k, ok := knownAttrs[t]
	return k, ok
}

func (s scope) matches(class, keyType, certType uint64) bool {
	if len(s.classes) > 0 && !contains(s.classes, class) {
		return false
	}
	if len(s.keyTypes) > 0 && !contains(s.keyTypes, keyType) {
		return false
	}
	if s.certType && certType != ck.CKC_X_509 {
		return false
	}
	return true
}

func contains(list []uint64, v uint64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// rulesFor returns the rules that apply to an object of the given class, key
// type and certificate type, one per attribute.
func rulesFor(class, keyType, certType uint64) map[uint64]*attrRule {
	m := map[uint64]*attrRule{}
	for i := range attrRules {
		r := &attrRules[i]
		if _, seen := m[r.t]; seen {
			continue
		}
		if r.scope.matches(class, keyType, certType) {
			m[r.t] = r
		}
	}
	return m
}

// checkValue validates a canonical value against its kind.
func checkValue(t uint64, k Kind, v []byte) error {
	switch k {
	case KindBool:
		if len(v) != 1 || v[0] > 1 {
			return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be a CK_BBOOL", ck.AttrName(t))
		}
	case KindUlong:
		if len(v) != 8 {
			return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be a CK_ULONG", ck.AttrName(t))
		}
	case KindMechs:
		if len(v)%8 != 0 {
			return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be a CK_MECHANISM_TYPE array", ck.AttrName(t))
		}
	case KindTemplate:
		if _, err := DecodeTemplateValue(t, v); err != nil {
			return err
		}
	case KindDate:
		if len(v) != 0 && len(v) != 8 {
			return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be empty or a CK_DATE", ck.AttrName(t))
		}
		for _, c := range v {
			if c < '0' || c > '9' {
				return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be digits YYYYMMDD", ck.AttrName(t))
			}
		}
	}
	return nil
}

// IsKeyClass reports whether class is a key class (secret, public or
// private key).
func IsKeyClass(class uint64) bool { return contains(allKeys, class) }

// AttrSecret reports whether attribute t of a key of this class and key
// type is secret (sensitive or sealed, never in Attrs): an ML-KEM or ML-DSA
// private key's CKA_VALUE, unlike its public key's.
func AttrSecret(class, keyType, t uint64) bool {
	r, ok := rulesFor(class, keyType, ^uint64(0))[t]
	return ok && r.flags&(fSensitive|fSealed) != 0
}

// AttrApplies reports whether attribute t belongs on a key of this class
// and key type.
func AttrApplies(class, keyType, t uint64) bool {
	_, ok := rulesFor(class, keyType, ^uint64(0))[t]
	return ok
}
