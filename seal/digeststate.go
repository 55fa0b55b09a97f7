package seal

// DigestStateKey is the AES-256-GCM key that seals the state of a digest
// that has taken a key's value (C_DigestKey, engine.DigestKey): derived
// from the domain key under a label of its own, so that every node of the
// cluster opens what another sealed, and never stored. A hash's state holds
// its last partial block as it is; sealed, the key bytes in it never reach
// the caller. Each call derives it afresh; the caller holds the only copy.
func (s *Sealer) DigestStateKey() []byte {
	return hkdfKey(s.dk, nil, "openhsm digest key state v1")
}
