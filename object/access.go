package object

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Action is something a logged-in user asks to do.
type Action int

const (
	ActCreate      Action = iota // make an object (create, generate, unwrap, derive, copy)
	ActUse                       // use a key: sign, verify, encrypt, decrypt, derive from, wrap with, unwrap with
	ActRead                      // see an object and its non-sensitive attributes
	ActModify                    // C_SetAttributeValue of anything but CKA_TRUSTED
	ActSetTrusted                // set CKA_TRUSTED
	ActDestroy                   // C_DestroyObject
	ActExport                    // wrap the key, copy it, or read its secret value
	ActShare                     // share or unshare the key
	ActManageUsers               // create, delete, reset, unlock users
	actCount
)

var actionNames = [...]string{"create", "use", "read", "modify", "set-trusted", "destroy", "export", "share", "manage-users"}

func (a Action) String() string { return actionNames[a] }

// Relation is how the user stands to the object.
type Relation int

const (
	RelNone     Relation = iota // no object involved
	RelOwner                    // the user owns it
	RelShared                   // the owner shared it with the user
	RelStranger                 // neither
	relCount
)

type accessRule struct {
	role Role
	act  Action
	rel  Relation
	rv   uint64 // CKR_OK or the refusal
	why  string
}

// accessRules is the whole access policy, after AWS CloudHSM: crypto
// officers manage users and may mark keys trusted but never use keys; crypto
// users own their keys, and a key shared with them can be used but not
// destroyed, exported, changed or shared again. A stranger's object is
// invisible. Anything not listed is refused.
var accessRules = []accessRule{
	{RoleCU, ActCreate, RelNone, ck.CKR_OK, ""},
	{RoleCU, ActUse, RelOwner, ck.CKR_OK, ""},
	{RoleCU, ActUse, RelShared, ck.CKR_OK, ""},
	{RoleCU, ActRead, RelOwner, ck.CKR_OK, ""},
	{RoleCU, ActRead, RelShared, ck.CKR_OK, ""},
	{RoleCU, ActModify, RelOwner, ck.CKR_OK, ""},
	{RoleCU, ActModify, RelShared, ck.CKR_ACTION_PROHIBITED, "only the owner may change a shared key"},
	{RoleCU, ActSetTrusted, RelOwner, ck.CKR_ATTRIBUTE_READ_ONLY, "only a crypto officer may set CKA_TRUSTED"},
	{RoleCU, ActSetTrusted, RelShared, ck.CKR_ATTRIBUTE_READ_ONLY, "only a crypto officer may set CKA_TRUSTED"},
	{RoleCU, ActDestroy, RelOwner, ck.CKR_OK, ""},
	{RoleCU, ActDestroy, RelShared, ck.CKR_ACTION_PROHIBITED, "only the owner may destroy a shared key"},
	{RoleCU, ActExport, RelOwner, ck.CKR_OK, ""},
	{RoleCU, ActExport, RelShared, ck.CKR_ACTION_PROHIBITED, "only the owner may export a shared key"},
	{RoleCU, ActShare, RelOwner, ck.CKR_OK, ""},
	{RoleCU, ActShare, RelShared, ck.CKR_ACTION_PROHIBITED, "only the owner may share a key"},
	{RoleCU, ActManageUsers, RelNone, ck.CKR_USER_NOT_LOGGED_IN, "crypto users cannot manage users"},

	{RoleCO, ActManageUsers, RelNone, ck.CKR_OK, ""},
	{RoleCO, ActRead, RelOwner, ck.CKR_OK, ""},
	{RoleCO, ActRead, RelShared, ck.CKR_OK, ""},
	{RoleCO, ActRead, RelStranger, ck.CKR_OK, ""},
	{RoleCO, ActSetTrusted, RelStranger, ck.CKR_OK, ""},
	{RoleCO, ActCreate, RelNone, ck.CKR_USER_NOT_LOGGED_IN, "crypto officers cannot create keys"},

	// A public session (no login): it may make objects, which the engine
	// allows only as public session objects (CKA_TOKEN and CKA_PRIVATE
	// false), and act on them; of the token's own objects it reads the
	// public ones (HiddenFrom hides the rest), never their secrets
	// (ActExport on a token object is refused by the engine, which asks
	// with RelStranger there). Sharing, trust and users need a login.
	{RolePublic, ActCreate, RelNone, ck.CKR_OK, ""},
	{RolePublic, ActUse, RelOwner, ck.CKR_OK, ""},
	{RolePublic, ActRead, RelOwner, ck.CKR_OK, ""},
	{RolePublic, ActModify, RelOwner, ck.CKR_OK, ""},
	{RolePublic, ActDestroy, RelOwner, ck.CKR_OK, ""},
	{RolePublic, ActExport, RelOwner, ck.CKR_OK, ""},
}

var accessTable = func() [RolePublic + 1][actCount][relCount]*accessRule {
	var t [RolePublic + 1][actCount][relCount]*accessRule
	for i := range accessRules {
		r := &accessRules[i]
		t[r.role][r.act][r.rel] = r
	}
	return t
}()

// Allowed decides whether a user of the role may take the action on an
// object they stand in the given relation to. The refusal carries the CKR a
// PKCS#11 application sees: a stranger's object is CKR_OBJECT_HANDLE_INVALID
// (it is invisible), a crypto officer using keys is CKR_USER_NOT_LOGGED_IN
// (in PKCS#11 terms no normal user is logged in).
func Allowed(role Role, act Action, rel Relation) error {
	if role != RoleCO && role != RoleCU && role != RolePublic || act < 0 || act >= actCount || rel < 0 || rel >= relCount {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	if r := accessTable[role][act][rel]; r != nil {
		if r.rv == ck.CKR_OK {
			return nil
		}
		return hsmerr.Errorf(r.rv, "%s", r.why)
	}
	switch {
	case rel == RelStranger && role == RoleCU:
		return hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	case role == RoleCO && act != ActRead && act != ActManageUsers:
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "crypto officers cannot %s keys", act)
	case role == RolePublic && rel == RelStranger:
		return hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	case role == RolePublic:
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "%s needs a login", act)
	}
	return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "%s is not allowed", act)
}

// RelationOf tells how a user stands to an object.
func RelationOf(user string, o *Object) Relation {
	if o.Owner == user {
		return RelOwner
	}
	for _, u := range o.SharedWith {
		if u == user {
			return RelShared
		}
	}
	return RelStranger
}

// HiddenFrom tells whether an object is invisible to a user of the role for
// the action. A crypto officer manages users, not their data: a crypto
// user's private objects (CKA_PRIVATE true, as secret and private keys are
// by default, and private data objects) are not there for it, not listed,
// not read. It sees what PKCS#11 lets anyone see, the public objects. It may
// still set CKA_TRUSTED on a key whose handle its owner gave it.
//
// A public session (RolePublic) sees the same: public objects only.
func HiddenFrom(role Role, act Action, o *Object) bool {
	switch role {
	case RoleCO:
		return act != ActSetTrusted && o.Attrs.Bool(ck.CKA_PRIVATE)
	case RolePublic:
		return o.Attrs.Bool(ck.CKA_PRIVATE)
	}
	return false
}
