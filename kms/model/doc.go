// Package model validates AWS KMS requests (AWS JSON 1.1) against a table
// generated from the AWS API model, and refuses what AWS refuses with AWS's
// exception names and messages. It has no HTTP layer: the KMS handler
// passes it the X-Amz-Target operation name and the request body.
//
// # The table
//
// model_gen.go is generated from service-2.json.gz, botocore's copy of the
// KMS model (README.md says which), by `go generate ./kms/model`; no line of
// it is typed. It holds every operation's input, output and declared
// errors, and every shape's type, members, required members, length or
// value bounds, pattern, enum values, element, key and value shapes and
// sensitivity. TestGeneratedIsCurrent fails when model_gen.go is not what
// the generator makes of the committed model.
//
// # The contract
//
// Validate(op, body) returns the decoded input, or an *Error whose
// Exception is one of:
//
//   - UnknownOperationException (no message): op is not an operation of
//     the model.
//
//   - SerializationException: the body is not one JSON value (empty,
//     malformed, trailing data, invalid UTF-8, an unpaired surrogate
//     escape, nesting deeper than MaxDepth: no message), or JSON of the
//     wrong kind, with a message in AWS's form: a list or a scalar where
//     the input object belongs, a member whose JSON type does not fit its
//     shape ("NUMBER_VALUE can not be converted to a String", a list for a
//     structure, a blob that is not canonical padded base64, an integer
//     that is fractional or out of range, ...). The first such member in
//     document order is reported, as AWS's streaming decoder does. A body
//     of null is an empty input.
//
//   - ValidationException: the input decoded but breaks constraints of the
//     model. The message lists every violation in AWS's form:
//
//     1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024
//     2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value at 'plaintext' failed to satisfy constraint: ...
//
// Validation is the model's and only the model's: rules AWS enforces in
// the service and not in the model (ScheduleKeyDeletion's 7..30 days where
// the model says 1..365, GenerateDataKey's "KeySpec or NumberOfBytes",
// Decrypt's CiphertextBlob, which this model no longer requires, the
// alias/ prefix, tag key characters and the aws: prefix, ...) belong to the
// operations. A body that validates changes nothing anywhere; neither does
// one that does not.
//
// # Decoding
//
// Members are matched by exact name; a member the model does not have is
// ignored, as AWS ignores it. A null member is an absent member. A
// duplicated member takes its last value. Blobs are standard base64 with
// padding, and a blob's bounds apply to the decoded bytes. A string's
// length is counted in Unicode code points. Timestamps are epoch seconds,
// kept to the millisecond.
//
// The decoded input is an Object: structures are Object, strings string,
// blobs []byte, integers and longs int64, booleans bool, timestamps
// time.Time (UTC), lists []any, maps map[string]any; absent members are
// not in their Object, and an accepted input holds no nil. Marshal encodes
// an Object back into a body that validates to the same Object. The
// handler must read the request only through Validate: a second decoder
// (encoding/json into structs matches names case-insensitively, for one)
// would see a different request than the one validated.
//
// # Messages
//
// Paths name members with a lowercase first letter, joined by dots
// ('recipient.keyEncryptionAlgorithm'); an element of a list of structures
// is 'tags.1.member' (1-based). A constraint on the elements of a list of
// strings, numbers or blobs is reported once, at the list, as "Member must
// satisfy constraint: [...]" listing the element shape's constraints; a
// map's as "Map keys must satisfy constraint: [...]" or "Map value must
// satisfy constraint: [...]". Values appear as AWS's Java service prints
// them: strings as they are, blobs as
// 'java.nio.HeapByteBuffer[pos=0 lim=N cap=N]', lists as '[a, b]'. A
// sensitive value (Plaintext, passwords, XKS credentials) never appears:
// "Value at 'plaintext' failed ...". For one member, a pattern violation
// comes before a length violation, as AWS reports them; members come in the
// model's order (AWS's own order cannot be derived: recorded messages show
// both alphabetical and model order).
//
// Known differences from AWS, none of which an SDK client provokes: AWS
// lists enum values in its service's own order and set, which the model
// does not give, so the message lists the model's values in the model's
// order. AWS's decoder accepts a fractional integer and one beyond 32 bits
// (kinesalite recorded a ShardCount of 100000000000 passing), where
// Validate refuses both. Messages not seen from AWS but written in its
// form: the serialization messages for a timestamp and for an out-of-range
// number, a sensitive blob's base64 message (which drops the value), and
// the violations of a null list element or map value.
package model

//go:generate go run ./internal/gen/kmsmodelgen -model service-2.json.gz -out model_gen.go
