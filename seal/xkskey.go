package seal

// XKSMetadataKeyLen is the length of XKSMetadataKey's answer.
const XKSMetadataKeyLen = 32

// XKSMetadataKey is the key that authenticates the ciphertextMetadata of
// the node's XKS proxy (kms/xks, Config.MetadataKey): derived from the
// domain key under a label of its own, so every node of the cluster
// derives the same key, it outlives every ciphertext as long as the domain
// key does, and it is never stored. Each call derives it afresh; the
// caller holds the only copy.
func (s *Sealer) XKSMetadataKey() []byte {
	return hkdfKey(s.dk, nil, "openhsm xks ciphertextMetadata key v1")
}
