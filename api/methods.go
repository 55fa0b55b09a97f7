package api

import (
	"strings"

	"github.com/openhsm/openhsm/api/hsmpb"
	"google.golang.org/grpc"
)

// Access is what a caller needs to call a method.
type Access int

const (
	// Certificate: a client certificate of the cluster's CA is enough.
	Certificate Access = iota + 1
	// Session: and a valid session token in HeaderSession.
	Session
)

// Retry says when a client may send a call again, to another node, after a
// try that failed without the daemon's answer.
type Retry int

const (
	// RetryNotRun: only when the call certainly did not run (refused with
	// TrailerRetry, or never sent). Writes without a request ID, and the
	// calls not yet shown to be safe to run twice.
	RetryNotRun Retry = iota + 1
	// RetryIdempotent: also when the outcome is unknown (the connection
	// broke, the node died): it reads, or computes without changing
	// anything, so running it twice does no harm.
	RetryIdempotent
	// RetryWithID: a write the cluster applies at most once per request ID
	// (HeaderRequestID). Every try carries the same ID, so it is retried
	// whatever became of a try.
	RetryWithID
)

// Method is one method of the HSM service.
type Method struct {
	Name   string
	Access Access
	Retry  Retry
	// OutOfLease: a node out of its lease with the leader still serves it
	// (docs/cluster.md, "The lease"): the status calls clients use to find
	// a node that serves. A node refuses every other method then.
	OutOfLease bool
	// Public: a public session's token (no login, object.RolePublic) may
	// call it; every other Session method refuses such a token
	// (publicMethods).
	Public bool
}

// Idempotent reports whether the method may run twice without harm.
func (m Method) Idempotent() bool { return m.Retry == RetryIdempotent }

// Deduped reports whether the method carries a request ID.
func (m Method) Deduped() bool { return m.Retry == RetryWithID }

func method(name string, a Access, r Retry) Method {
	return Method{Name: name, Access: a, Retry: r, Public: publicMethods[name]}
}

// methods is the table: every method of service HSM in hsm.proto, in its
// order. methods_test.go checks it against the generated service.
var methods = []Method{
	method("Login", Certificate, RetryNotRun),
	method("Refresh", Session, RetryIdempotent), // only issues a token
	method("Logout", Session, RetryNotRun),
	method("Bootstrap", Certificate, RetryNotRun),
	{Name: "Info", Access: Certificate, Retry: RetryIdempotent, OutOfLease: true},
	method("ListTokens", Certificate, RetryIdempotent),

	method("CreateUser", Session, RetryWithID),
	method("DeleteUser", Session, RetryWithID),
	method("SetPassword", Session, RetryWithID),
	method("UnlockUser", Session, RetryWithID),
	method("ListUsers", Session, RetryIdempotent),

	method("CreateObject", Session, RetryWithID),
	method("CopyObject", Session, RetryWithID),
	method("DestroyObject", Session, RetryWithID),
	method("FindObjects", Session, RetryIdempotent),
	method("ListObjects", Session, RetryIdempotent),
	method("GetAttributes", Session, RetryIdempotent),
	method("SetAttributes", Session, RetryWithID),
	method("Share", Session, RetryWithID),

	method("GenerateKey", Session, RetryWithID),
	method("GenerateKeyPair", Session, RetryWithID),
	method("WrapKey", Session, RetryNotRun),
	method("UnwrapKey", Session, RetryWithID),
	method("DeriveKey", Session, RetryWithID),

	method("Sign", Session, RetryIdempotent),
	method("Verify", Session, RetryIdempotent),
	method("Encrypt", Session, RetryIdempotent),
	method("Decrypt", Session, RetryIdempotent),
	method("Digest", Session, RetryIdempotent),
	method("GenerateRandom", Session, RetryIdempotent),
	// A repeat could not give back the first ciphertext: not retried.
	method("EncapsulateKey", Session, RetryNotRun),
	method("DecapsulateKey", Session, RetryWithID),

	{Name: "ClusterStatus", Access: Certificate, Retry: RetryIdempotent, OutOfLease: true},
	method("AddNode", Session, RetryNotRun),
	method("RemoveNode", Session, RetryNotRun),
	method("RotatePassphrase", Session, RetryNotRun),

	// Streams are never retried, whatever the table says: their input
	// may have been consumed.
	method("CreateBackup", Session, RetryNotRun),
	method("ListBackups", Session, RetryNotRun),
	method("GetBackup", Session, RetryNotRun),
	method("RestoreBackup", Certificate, RetryNotRun),

	method("QuorumRegisterKey", Session, RetryNotRun),
	method("QuorumSetPolicy", Session, RetryNotRun),
	method("QuorumCreateToken", Session, RetryNotRun),
	method("QuorumApproveToken", Session, RetryNotRun),
	method("QuorumStatus", Session, RetryNotRun),
	method("ListAudit", Session, RetryNotRun),
	method("VerifyAudit", Session, RetryNotRun),
	method("RevokeCert", Session, RetryNotRun),
	method("ListRevokedCerts", Session, RetryNotRun),

	// KMS principals: crypto officers only (the daemon checks the role).
	// Create and rotate-key answer with a secret made for that one try: a
	// retry would make another (and a create would meet its own first
	// try), so a write is retried only when it certainly did not run.
	method("KMSCreatePrincipal", Session, RetryNotRun),
	method("KMSListPrincipals", Session, RetryIdempotent),
	method("KMSDeletePrincipal", Session, RetryNotRun),
	method("KMSRotatePrincipalKey", Session, RetryNotRun),
	// KMS access control: setting or removing an identity policy twice
	// leaves what once does; get and explain only read.
	method("KMSPutPrincipalPolicy", Session, RetryIdempotent),
	method("KMSGetPrincipalPolicy", Session, RetryIdempotent),
	method("KMSDeletePrincipalPolicy", Session, RetryIdempotent),
	method("KMSExplain", Session, RetryIdempotent),
	// HSM clusters of custom key stores: crypto officers only. Add carries
	// a private key: like every write here, it is sent again only when it
	// certainly did not run.
	method("KMSAddHSMCluster", Session, RetryNotRun),
	method("KMSListHSMClusters", Session, RetryIdempotent),
	method("KMSRemoveHSMCluster", Session, RetryNotRun),

	// Public sessions and cluster settings.
	method("OpenPublicSession", Certificate, RetryNotRun),
	method("SetClusterSetting", Session, RetryIdempotent), // setting a value twice leaves what once does
	method("ListClusterSettings", Session, RetryIdempotent),
	// C_InitToken and C_DigestKey. WipeToken destroys objects: deduplicated
	// by request ID like DestroyObject. DigestKey changes nothing: it may
	// run again.
	method("WipeToken", Session, RetryWithID),
	method("DigestKey", Session, RetryIdempotent),
}

// publicMethods are what a public session's token may call: the object and
// crypto calls on its own public session objects, reading the token's
// public objects, and ending or refreshing itself. The engine decides
// object by object; anything else needs a login.
var publicMethods = map[string]bool{
	"Refresh": true, "Logout": true,
	"CreateObject": true, "CopyObject": true, "DestroyObject": true, "FindObjects": true,
	"GetAttributes": true, "SetAttributes": true,
	"GenerateKey": true, "GenerateKeyPair": true, "WrapKey": true, "UnwrapKey": true, "DeriveKey": true,
	"Sign": true, "Verify": true, "Encrypt": true, "Decrypt": true, "Digest": true, "GenerateRandom": true,
}

// ServicePrefix starts the full name of every method of the HSM service:
// "/openhsm.v1.HSM/".
var ServicePrefix = "/" + hsmpb.HSM_ServiceDesc.ServiceName + "/"

var byName = func() map[string]Method {
	m := make(map[string]Method, len(methods))
	for _, x := range methods {
		m[x.Name] = x
	}
	return m
}()

// ServiceMethodNames lists the methods and streams of a generated gRPC
// service: what a method table must name, once each.
func ServiceMethodNames(desc *grpc.ServiceDesc) []string {
	names := make([]string, 0, len(desc.Methods)+len(desc.Streams))
	for _, x := range desc.Methods {
		names = append(names, x.MethodName)
	}
	for _, x := range desc.Streams {
		names = append(names, x.StreamName)
	}
	return names
}

// Methods returns the table, in hsm.proto's order.
func Methods() []Method { return append([]Method(nil), methods...) }

// MethodOf returns the method a full gRPC method name names
// ("/openhsm.v1.HSM/Sign"); ok is false for anything else, a method of
// another service included.
func MethodOf(fullMethod string) (Method, bool) {
	name, ok := strings.CutPrefix(fullMethod, ServicePrefix)
	if !ok {
		return Method{}, false
	}
	m, ok := byName[name]
	return m, ok
}
