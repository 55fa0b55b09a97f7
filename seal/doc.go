// Package seal is the encryption-at-rest scheme (docs/encryption-at-rest.md):
// the cluster's domain key, sealed under a key-encryption key from the
// passphrase (argon2id) or a key file; the Sealer, which holds the unsealed
// domain key and derives from it, once, every purpose key (object blobs,
// attribute and user MACs, session tokens, peer proofs, the audit chain,
// break-glass unlock, backup keys); and the AES-GCM blob format that seals
// each object's secret material under its ID and owner. Nothing outside
// this package sees the domain key's bytes.
package seal
