package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// UserInfo describes a user; it never holds a password hash.
type UserInfo struct {
	Name         string
	Role         string // "CO" or "CU"
	Locked       bool
	FailedLogins int
	Created      time.Time
	Number       uint64 // stable; the PKCS#11 library's slot IDs come from it
}

// Token is a crypto user's token as ListTokens gives it.
type Token struct {
	Name   string
	Number uint64
	Locked bool
	// FailedLogins counts the unproven login attempts towards the lockout
	// (five lock the account).
	FailedLogins int
}

// MechanismInfo is one mechanism the cluster supports, as CK_MECHANISM_INFO
// (key sizes in bits or bytes, as PKCS#11 says for the mechanism).
type MechanismInfo struct {
	Type       uint64
	MinKeySize uint64
	MaxKeySize uint64
	Flags      uint64 // CKF_ flags
}

// Info describes the node the client talks to and its cluster.
type Info struct {
	Version     string
	ClusterID   string
	Node        string
	Initialized bool // a crypto officer exists
	Mechanisms  []MechanismInfo
}

// ObjectInfo is one object of a ListObjects answer: its handle, owner,
// public attributes and the users it is shared with.
type ObjectInfo struct {
	ID         uint64
	Owner      string
	Attributes object.Template
	SharedWith []string
}

// Attr returns the value of attribute t, if present.
func (o *ObjectInfo) Attr(t uint64) ([]byte, bool) {
	for _, a := range o.Attributes {
		if a.Type == t {
			return a.Value, true
		}
	}
	return nil, false
}

// Ulong returns the CK_ULONG attribute t (canonical eight bytes big-endian).
func (o *ObjectInfo) Ulong(t uint64) (uint64, bool) {
	v, ok := o.Attr(t)
	if !ok || len(v) != 8 {
		return 0, false
	}
	var n uint64
	for _, b := range v {
		n = n<<8 | uint64(b)
	}
	return n, true
}

func infoFromPB(r *hsmpb.InfoResponse) *Info {
	in := &Info{Version: r.GetVersion(), ClusterID: r.GetClusterId(), Node: r.GetNode(), Initialized: r.GetInitialized()}
	for _, m := range r.GetMechanisms() {
		if m == nil {
			continue
		}
		in.Mechanisms = append(in.Mechanisms, MechanismInfo{Type: m.GetType(), MinKeySize: m.GetMinKeySize(), MaxKeySize: m.GetMaxKeySize(), Flags: m.GetFlags()})
	}
	return in
}

func usersFromPB(us []*hsmpb.UserInfo) []UserInfo {
	out := make([]UserInfo, 0, len(us))
	for _, u := range us {
		if u == nil {
			continue
		}
		ui := UserInfo{Name: u.GetName(), Role: u.GetRole(), Locked: u.GetLocked(), FailedLogins: int(u.GetFailedLogins()), Number: u.GetNumber()}
		if u.GetCreatedUnix() != 0 {
			ui.Created = time.Unix(u.GetCreatedUnix(), 0).UTC()
		}
		out = append(out, ui)
	}
	return out
}

func objectsFromPB(os []*hsmpb.ObjectInfo) ([]ObjectInfo, error) {
	out := make([]ObjectInfo, 0, len(os))
	for i, o := range os {
		if o == nil {
			return nil, badAnswer(api.BadField(fmt.Sprintf("objects[%d]", i), "missing"))
		}
		attrs, err := api.AttributesFromPB(fmt.Sprintf("objects[%d].attributes", i), o.GetAttributes())
		if err != nil {
			return nil, badAnswer(err)
		}
		out = append(out, ObjectInfo{ID: o.GetObject(), Owner: o.GetOwner(), Attributes: attrs, SharedWith: o.GetSharedWith()})
	}
	return out, nil
}

// badAnswer is the error of an answer that fails api's checks: the node,
// not the caller, is at fault.
func badAnswer(err error) error {
	var fe *api.FieldError
	if errors.As(err, &fe) {
		err = fe
	}
	return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "the node's answer is malformed", Err: err}
}
