// Package state is the replicated state machine: the command set (Command,
// Op), the one deterministic apply function (Machine.Apply, ApplyCommand,
// and ApplyBatch for group commit) and the store interface it writes
// through (Store, Tx, BatchStore; state/sqlite is the store). Every change
// to the cluster's state, users, objects, quorum, revoked certificates, the
// domain key record and the audit trail, is a command that every node
// applies at the same log index with the same result.
//
// Apply trusts nothing about where a command came from: it re-checks each
// command's authority from one table (authority.go, docs/command-authority.md),
// re-checks new objects against the attribute rules and their material
// (objectcheck.go), deduplicates client request IDs (request.go), and writes
// an audit record for every command, applied or refused (audit.go), and
// one for each key use and KMS request a node's proven batch reports
// (audit.go, kmsaudit.go). A
// refusal is a *hsmerr.Error and changes nothing; a store failure is a
// StoreError that stops the node (applytx.go).
package state
