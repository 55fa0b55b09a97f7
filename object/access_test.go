package object

import (
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// TestAccessTable walks every role × action × relation and checks the
// answer, so that a change to the rules shows up here.
func TestAccessTable(t *testing.T) {
	ok := uint64(ck.CKR_OK)
	want := map[Role]map[Action]map[Relation]uint64{
		RoleCU: {
			ActCreate:      {RelNone: ok},
			ActUse:         {RelOwner: ok, RelShared: ok, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActRead:        {RelOwner: ok, RelShared: ok, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActModify:      {RelOwner: ok, RelShared: ck.CKR_ACTION_PROHIBITED, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActSetTrusted:  {RelOwner: ck.CKR_ATTRIBUTE_READ_ONLY, RelShared: ck.CKR_ATTRIBUTE_READ_ONLY, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActDestroy:     {RelOwner: ok, RelShared: ck.CKR_ACTION_PROHIBITED, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActExport:      {RelOwner: ok, RelShared: ck.CKR_ACTION_PROHIBITED, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActShare:       {RelOwner: ok, RelShared: ck.CKR_ACTION_PROHIBITED, RelStranger: ck.CKR_OBJECT_HANDLE_INVALID},
			ActManageUsers: {RelNone: ck.CKR_USER_NOT_LOGGED_IN},
		},
		RoleCO: {
			ActCreate:      {RelNone: ck.CKR_USER_NOT_LOGGED_IN},
			ActUse:         {RelOwner: ck.CKR_USER_NOT_LOGGED_IN, RelShared: ck.CKR_USER_NOT_LOGGED_IN, RelStranger: ck.CKR_USER_NOT_LOGGED_IN},
			ActRead:        {RelOwner: ok, RelShared: ok, RelStranger: ok},
			ActModify:      {RelStranger: ck.CKR_USER_NOT_LOGGED_IN},
			ActSetTrusted:  {RelStranger: ok},
			ActDestroy:     {RelStranger: ck.CKR_USER_NOT_LOGGED_IN},
			ActExport:      {RelStranger: ck.CKR_USER_NOT_LOGGED_IN},
			ActShare:       {RelStranger: ck.CKR_USER_NOT_LOGGED_IN},
			ActManageUsers: {RelNone: ok},
		},
	}
	n := 0
	for role, acts := range want {
		for act, rels := range acts {
			for rel, rv := range rels {
				n++
				if got := hsmerr.RV(Allowed(role, act, rel)); got != rv {
					t.Errorf("%v %v rel=%d: got %s, want %s", role, act, rel, ck.RVName(got), ck.RVName(rv))
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d cases", n)
	}
	// No role means not logged in, whatever the action.
	for a := Action(0); a < actCount; a++ {
		if got := hsmerr.RV(Allowed(RoleNone, a, RelOwner)); got != ck.CKR_USER_NOT_LOGGED_IN {
			t.Errorf("no role, %v: got %s", a, ck.RVName(got))
		}
	}
}
