package state

// Internals the external tests (package tokens_test, which may import
// state/sqlite) look at.

// AuthorityOps returns every op apply knows and every op with an authority
// rule.
func AuthorityOps() (applied, ruled []Op) {
	for op := range applyTable {
		applied = append(applied, op)
	}
	for op := range commandAuthority {
		ruled = append(ruled, op)
	}
	return applied, ruled
}

// WithoutAuthority runs fn with op's authority rule removed.
func WithoutAuthority(op Op, fn func()) {
	a, ok := commandAuthority[op]
	delete(commandAuthority, op)
	defer func() {
		if ok {
			commandAuthority[op] = a
		}
	}()
	fn()
}

// MetaOwnedKey is the meta key of a user's token object count.
func MetaOwnedKey(user string) string { return metaOwnedPrefix + user }

// KMSOpActions is apply's table of the action each principal op (by its
// change) needs an access entry for.
func KMSOpActions() map[Op]map[string]string { return kmsOpActions }

// KMSPrincipalOps are the ops a KMS principal makes.
func KMSPrincipalOps() []Op {
	var out []Op
	for op, a := range commandAuthority {
		if a.actor == actorKMSPrincipal || a.actor == actorKMSPrincipalOrNodes {
			out = append(out, op)
		}
	}
	return out
}

// WithMaxRequests runs fn with MaxRequests lowered to n.
func WithMaxRequests(n uint64, fn func()) {
	old := maxRequests
	maxRequests = n
	defer func() { maxRequests = old }()
	fn()
}
