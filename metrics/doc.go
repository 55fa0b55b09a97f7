// Package metrics is what a node tells Prometheus, and its health
// endpoints. docs/operations.md lists every metric with its type, labels
// and meaning.
//
// The contract:
//
//   - One Metrics per node, with a registry of its own (never Prometheus's
//     global one): the HSM API's calls, the KMS API's requests, the node's
//     commit and fsync timings, and, read at each scrape through the
//     functions of Sources, its sessions, Raft state, apply lag, backup
//     age and readiness. Go runtime and process metrics are included.
//   - Label values come only from fixed tables: HSM methods from the HSM
//     API's method table (api.Methods), mechanisms from the mechanism table
//     (mech.Mechanisms, named by ck.MechName), return values by ck.RVName
//     of a known CKR, KMS operations from AWS's model (kms/model), and
//     exception names of the form AWS gives them, at most MaxExceptions of
//     them. Anything else is counted under "other" (a method or a mechanism
//     outside the tables, an operation the model does not know is
//     "unknown"), so no caller can grow the label set. No label ever holds
//     a user name, key, label, token, PIN or address.
//   - Recording is cheap: a successful HSM call or KMS request finds its
//     series in a map built at New or, for a new mechanism of a method,
//     made once under a lock; it allocates nothing. Errors may allocate.
//   - Every method accepts a nil *Metrics and then records nothing, so
//     parts built without metrics (unit tests) need no checks.
//   - Handler serves GET /metrics (the Prometheus text format), /healthz
//     (200 while the process serves) and /readyz (200 when Sources.Ready
//     answers nil, else 503 with its reason).
package metrics
