// Package policy parses and evaluates AWS KMS key policies, IAM identity
// policies and grants. It is pure: nothing here reads state, the clock or the
// network, so one request with one set of inputs always gets one decision.
//
// # Contract
//
// Parse (or ParseKeyPolicy / ParseIdentityPolicy, which add the rule about
// the Principal element) turns a JSON document into a *Policy or returns a
// *MalformedError whose message names the problem; the service answers that
// error as MalformedPolicyDocumentException. Everything the package does not
// support is refused at parse time, never ignored at evaluation time.
//
// Evaluate decides one Request against the key's policy, the caller's
// identity policies and the key's grants, in AWS's order:
//
//  1. An explicit Deny in any statement that applies (key policy or identity
//     policy) denies. Nothing overrides it, grants included.
//  2. A key policy Allow that names the caller (its user ARN, or "*") allows.
//  3. A key policy Allow whose principal is the caller's account (the account
//     root ARN or the bare account ID) delegates to IAM: it allows only if an
//     identity policy of the caller also allows.
//  4. A grant whose grantee is the caller, whose operations include the
//     action and whose constraints match the encryption context allows.
//  5. Otherwise the request is implicitly denied.
//
// The Decision's Reason names the statement (its Sid, or its index when it
// has none) or grant that decided, or says that nothing allowed. It names
// principals, actions, keys and statements, never condition values.
//
// LockoutCheck is AWS's policy lockout safety check for CreateKey and
// PutKeyPolicy.
//
// # Sources
//
// The rules follow AWS's documentation, read for facts (docs.aws.amazon.com):
//   - kms/latest/developerguide/key-policy-default.html and
//     determining-access-key-policy.html: a key policy is the primary access
//     control; the account principal delegates to IAM policies.
//   - kms/latest/developerguide/grants.html and APIReference
//     API_GrantConstraints.html: grants allow their operations for their
//     grantee; constraints apply only to operations that take an encryption
//     context; in a constraint the context key is case-insensitive and the
//     value case-sensitive; EncryptionContextEquals is an exact match,
//     EncryptionContextSubset a "contains these pairs" match.
//   - kms/latest/developerguide/conditions-kms.html: the kms: condition keys;
//     kms:EncryptionContextKeys is multi-valued and is meant for
//     ForAnyValue/ForAllValues; to require a case-sensitive context key use
//     kms:EncryptionContextKeys, because condition key names, including the
//     <key> part of kms:EncryptionContext:<key>, are not case-sensitive.
//   - IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
//     and reference_policies_condition-single-vs-multi-valued-context-keys.html:
//     operator semantics; an absent key makes a condition false, except for the
//     negated operators (true), ...IfExists (true) and Null; ForAllValues is
//     true when the key is absent or empty, ForAnyValue false.
//   - IAM/latest/UserGuide/reference_policies_evaluation-logic.html: an
//     explicit Deny wins over every Allow.
//
// See docs/kms-access.md for what is and is not supported and where this
// package differs from AWS.
package policy
