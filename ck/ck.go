// Package ck holds the PKCS#11 constants (CKA_, CKM_, CKR_, ...) as plain Go
// values, shared by the HSM engine, the daemon, the client and the PKCS#11
// library. It has no cgo so that every layer can import it.
//
// Most values are generated from Debian's p11-kit v2.40 header by gen.sh;
// v3.go adds the v3.0 ones that header lacks.
package ck

//go:generate ./gen.sh

import (
	"fmt"
)

type named struct {
	v    uint64
	name string
}

var names = map[string]map[uint64]string{}

func init() {
	lists := map[string][]named{"CKA": CKAList, "CKM": CKMList, "CKR": CKRList, "CKK": CKKList, "CKO": CKOList}
	for p, l := range lists {
		names[p] = map[uint64]string{}
		for _, n := range l {
			if _, dup := names[p][n.v]; !dup {
				names[p][n.v] = n.name
			}
		}
	}
	// The hand-written lists of values Debian's v2.40 header lacks.
	for _, l := range [][]named{v3List, v3KDFList, v32List} {
		for _, n := range l {
			p := n.name[:3]
			if _, dup := names[p][n.v]; !dup {
				names[p][n.v] = n.name
			}
		}
	}
}

func name(prefix string, v uint64) string {
	if n, ok := names[prefix][v]; ok {
		return n
	}
	return fmt.Sprintf("%s_0x%X", prefix, v)
}

// AttrName names an attribute type, e.g. "CKA_LABEL".
func AttrName(v uint64) string { return name("CKA", v) }

// MechName names a mechanism type, e.g. "CKM_AES_GCM".
func MechName(v uint64) string { return name("CKM", v) }

// RVName names a return value, e.g. "CKR_OK".
func RVName(v uint64) string { return name("CKR", v) }

// KeyTypeName names a key type, e.g. "CKK_RSA".
func KeyTypeName(v uint64) string { return name("CKK", v) }

// ClassName names an object class, e.g. "CKO_SECRET_KEY".
func ClassName(v uint64) string { return name("CKO", v) }
