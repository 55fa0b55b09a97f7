package object

import "fmt"

// Role is what a user may do, after AWS CloudHSM's user types.
type Role int

const (
	RoleNone Role = iota
	// RoleCO is a crypto officer: manages users, cannot use keys.
	RoleCO
	// RoleCU is a crypto user: owns, uses and shares keys.
	RoleCU
	// RolePublic is a PKCS#11 public session on a crypto user's token: a
	// client certificate alone, no password. It reads the token's public
	// objects (when the cluster's public_objects setting is on) and makes
	// and uses public session objects of its own; nothing else. It is
	// never a user's role, only a session token's (docs/security-model.md).
	RolePublic
)

func (r Role) String() string {
	switch r {
	case RoleCO:
		return "CO"
	case RoleCU:
		return "CU"
	case RolePublic:
		return "public"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole accepts "CO"/"crypto-officer" and "CU"/"crypto-user".
func ParseRole(s string) (Role, error) {
	switch s {
	case "CO", "co", "crypto-officer", "admin":
		return RoleCO, nil
	case "CU", "cu", "crypto-user":
		return RoleCU, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q (want CO or CU)", s)
}
