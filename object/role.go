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
)

func (r Role) String() string {
	switch r {
	case RoleCO:
		return "CO"
	case RoleCU:
		return "CU"
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
