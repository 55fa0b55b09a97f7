// Package api is the HSM API as client, daemon and cluster share it: the
// generated service and messages (api/hsmpb, from hsm.proto), and what the
// messages alone do not say, each in one place:
//
//   - metadata.go: the header and trailer names;
//   - methods.go: the method table (what each method needs, whether it may
//     run twice, whether it carries a request ID);
//   - convert.go: the one conversion between the Go types (mech.Mech and
//     its parameters, object.Template, object.AttrValue) and the messages,
//     strict in both directions, with errors that name the field as
//     hsm.proto spells it;
//   - status.go: an error as a gRPC status and back, through the table in
//     hsmerr/table.go, with ErrorDetail{ckr, reason} on the wire.
//   - kms.go: the rule for a KMS principal's name (IAM's for user names),
//     which client and daemon both check.
//
// It holds no policy: the daemon decides, the client retries, the table
// says what a value means. docs/rpc-api.md describes the API.
package api
