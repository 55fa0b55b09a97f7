// Package snapshot is the codec of the state stream: the whole replicated
// state (meta rows, users, objects, shares and audit records) as one
// versioned, checksummed byte stream. Raft snapshots, backups and restores
// all read and write it; the encoder and decoder check record order and
// counts so a truncated, reordered or edited stream is refused
// (ErrBad), never half-applied. docs/backups.md describes the format.
package snapshot
