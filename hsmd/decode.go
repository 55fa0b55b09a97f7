package hsmd

import (
	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/state"
)

// Request field bounds. Every field of every request is checked against
// these (and the mechanism and template checks of api/convert.go) before
// anything else happens; a request that fails gets InvalidArgument naming
// the field, and changes nothing.
const (
	maxSigBytes    = 16 << 10
	maxFindResults = 100000
	maxPasswordLen = passwords.MaxPasswordLen
)

// bad is the error of a request field that fails its check
// (CKR_ARGUMENTS_BAD, naming the field).
func bad(field, format string, args ...any) error {
	return api.BadField(field, format, args...)
}

func objectID(field string, id uint64) error {
	if id == 0 || id >= 1<<63 {
		return bad(field, "not a valid object id")
	}
	return nil
}

func userName(field, name string) error {
	if err := state.ValidUserName(name); err != nil {
		return bad(field, "%s", errMsg(err))
	}
	return nil
}

func password(field, pw string) error {
	if len(pw) == 0 || len(pw) > maxPasswordLen {
		return bad(field, "must be 1 to %d bytes", maxPasswordLen)
	}
	return nil
}

func dataField(field string, b []byte) error {
	if len(b) > mech.MaxDataLen {
		return bad(field, "longer than %d bytes", mech.MaxDataLen)
	}
	return nil
}

func parseRole(field, s string) (object.Role, error) {
	r, err := object.ParseRole(s)
	if err != nil {
		return 0, bad(field, "must be CO or CU")
	}
	return r, nil
}
