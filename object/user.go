package object

// MaxFailedLogins is how many wrong passwords lock an account.
const MaxFailedLogins = 5

// User is a crypto officer or crypto user.
type User struct {
	Name string
	Role Role
	// PasswordHash is the argon2id hash in PHC string form; it is computed
	// before apply, so apply stays deterministic.
	PasswordHash string
	FailedLogins int
	Locked       bool
	// Generation changes whenever the password is set or the account is
	// unlocked; session tokens carry it, so a reset ends old sessions.
	Generation uint64
	Created    int64 // Unix seconds, from the command
	// Number is assigned once by apply, counting up from 1; the PKCS#11
	// library's slot IDs come from it.
	Number uint64
	// MAC binds the row to the domain key (Sealer.UserMAC); apply sets it.
	MAC []byte
}
