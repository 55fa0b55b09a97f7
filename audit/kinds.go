// Package audit is the audit trail's record: its kinds, the key operations
// nodes count, the KMS requests nodes submit (kms.go: their field limits,
// the check apply makes of them and the canonical JSON of a KMS record's
// Detail), and the record's canonical encoding (record.go), which the
// chain's MACs and the snapshot stream use. The chain itself (appending, the head,
// verifying) is kept by the state machine (state/audit.go); docs/audit.md
// describes both.
package audit

// Kinds of audit record.
const (
	KindCommand = "command" // one applied or refused command
	KindUse     = "use"     // key uses of one second, counted by a node
)

// Kinds holds every kind of record (KindKMS is in kms.go).
var Kinds = map[string]bool{KindCommand: true, KindUse: true, KindKMS: true}

// Key operations the nodes count.
const (
	UseSign    = "sign"
	UseVerify  = "verify"
	UseEncrypt = "encrypt"
	UseDecrypt = "decrypt"
	UseWrap    = "wrap"
	UseUnwrap  = "unwrap"
	UseDerive  = "derive"
	UseWrapped = "wrapped" // the key a wrap exported
)

// UseOps holds the key operations a node may count.
var UseOps = map[string]bool{UseSign: true, UseVerify: true, UseEncrypt: true, UseDecrypt: true,
	UseWrap: true, UseUnwrap: true, UseDerive: true, UseWrapped: true}
