package mech

import "hash"

// RunningHash is a new running hash for a digest mechanism whose state Go
// can marshal (every digest row: SHA-1, SHA-2, SHA-3), or false.
// C_DigestKey continues such a hash inside the HSM (engine.DigestKey).
func RunningHash(t uint64) (hash.Hash, bool) {
	h, ok := digestHashes[t]
	if !ok || !h.Available() {
		return nil, false
	}
	if row, ok := LookupMechanism(t); !ok || row.Digest == nil {
		return nil, false
	}
	return h.New(), true
}
