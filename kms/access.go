package kms

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/openhsm/openhsm/kms/blob"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/policy"
	"github.com/openhsm/openhsm/state"
)

// Access control (docs/kms-access.md): every request is decided from one
// table, accessRules, before the operation does anything. An operation on
// a key is decided by state.KMSDecide (policy.Evaluate over the key
// policy, the caller's identity policy and the key's grants, with the
// grants of the request's grant tokens); an operation no key policy
// governs (AWS's "IAM policy" operations: CreateKey, ListKeys, ...) by the
// identity policy alone; an alias operation needs both: the alias's side
// by identity policy, the key's side by key policy. What was allowed goes
// into the operation's command (state.KMSAccess), and apply decides it
// again at its log index.

// resourceKind is what an operation's permission is on.
type resourceKind int

const (
	onKey         resourceKind = iota // the key policy decides (and grants)
	onAliasAndKey                     // the alias by identity policy, and the key by key policy
	iamOnly                           // no resource: the identity policy decides
)

// accessRule is one operation's row: its resource kind, the action on
// each member that names a key, and where the condition keys come from.
type accessRule struct {
	kind    resourceKind
	action  string            // the action (on the alias, for onAliasAndKey; or IAM-only)
	members map[string]string // a key-naming member -> its action
	ec      map[string]string // a key-naming member -> its encryption context member
	alg     map[string]string // a key-naming member -> its algorithm member
	algKey  string            // kms:EncryptionAlgorithm or kms:SigningAlgorithm
	grant   bool              // fills kms:GrantOperations and kms:GrantIsForAWSResource
}

func keyRule(op string) accessRule {
	return accessRule{kind: onKey, action: "kms:" + op, members: map[string]string{"KeyId": "kms:" + op}}
}

func iamRule(op string) accessRule { return accessRule{kind: iamOnly, action: "kms:" + op} }

// cryptoRule is a key operation that takes an encryption context (and,
// with alg, an encryption algorithm).
func cryptoRule(op string, alg bool) accessRule {
	r := keyRule(op)
	r.ec = map[string]string{"KeyId": "EncryptionContext"}
	if alg {
		r.alg, r.algKey = map[string]string{"KeyId": "EncryptionAlgorithm"}, "kms:EncryptionAlgorithm"
	}
	return r
}

func signRule(op string) accessRule {
	r := keyRule(op)
	r.alg, r.algKey = map[string]string{"KeyId": "SigningAlgorithm"}, "kms:SigningAlgorithm"
	return r
}

// aliasMember is the pseudo-member of the key an alias names now (UpdateAlias,
// DeleteAlias).
const aliasMember = "(alias target)"

func aliasRule(op string, target bool) accessRule {
	r := accessRule{kind: onAliasAndKey, action: "kms:" + op, members: map[string]string{aliasMember: "kms:" + op}}
	if target {
		r.members["TargetKeyId"] = "kms:" + op
	}
	return r
}

// accessRules is every operation's permission, after AWS's "AWS KMS
// permissions" reference: which action, on what, and which condition keys
// the request fills. An operation the service answers without a row here
// is refused (TestEveryOperationHasAnAccessRule).
var accessRules = map[string]accessRule{
	"CreateKey":            iamRule("CreateKey"),
	"ListKeys":             iamRule("ListKeys"),
	"ListAliases":          iamRule("ListAliases"),
	"GenerateRandom":       iamRule("GenerateRandom"),
	"ListRetirableGrants":  iamRule("ListRetirableGrants"),
	"DescribeKey":          keyRule("DescribeKey"),
	"EnableKey":            keyRule("EnableKey"),
	"DisableKey":           keyRule("DisableKey"),
	"UpdateKeyDescription": keyRule("UpdateKeyDescription"),
	"ScheduleKeyDeletion":  keyRule("ScheduleKeyDeletion"),
	"CancelKeyDeletion":    keyRule("CancelKeyDeletion"),
	"EnableKeyRotation":    keyRule("EnableKeyRotation"),
	"DisableKeyRotation":   keyRule("DisableKeyRotation"),
	"GetKeyRotationStatus": keyRule("GetKeyRotationStatus"),
	"RotateKeyOnDemand":    keyRule("RotateKeyOnDemand"),
	"ListKeyRotations":     keyRule("ListKeyRotations"),
	"GetKeyPolicy":         keyRule("GetKeyPolicy"),
	"PutKeyPolicy":         keyRule("PutKeyPolicy"),
	"ListKeyPolicies":      keyRule("ListKeyPolicies"),
	"TagResource":          keyRule("TagResource"),
	"UntagResource":        keyRule("UntagResource"),
	"ListResourceTags":     keyRule("ListResourceTags"),

	"CreateAlias": aliasRule("CreateAlias", true),
	"UpdateAlias": aliasRule("UpdateAlias", true),
	"DeleteAlias": aliasRule("DeleteAlias", false),

	"Encrypt":                             cryptoRule("Encrypt", true),
	"Decrypt":                             cryptoRule("Decrypt", true),
	"GenerateDataKey":                     cryptoRule("GenerateDataKey", false),
	"GenerateDataKeyWithoutPlaintext":     cryptoRule("GenerateDataKeyWithoutPlaintext", false),
	"GenerateDataKeyPair":                 cryptoRule("GenerateDataKeyPair", false),
	"GenerateDataKeyPairWithoutPlaintext": cryptoRule("GenerateDataKeyPairWithoutPlaintext", false),
	"ReEncrypt": {kind: onKey, action: "kms:ReEncrypt*",
		members: map[string]string{"SourceKeyId": "kms:ReEncryptFrom", "DestinationKeyId": "kms:ReEncryptTo"},
		ec:      map[string]string{"SourceKeyId": "SourceEncryptionContext", "DestinationKeyId": "DestinationEncryptionContext"},
		alg:     map[string]string{"SourceKeyId": "SourceEncryptionAlgorithm", "DestinationKeyId": "DestinationEncryptionAlgorithm"},
		algKey:  "kms:EncryptionAlgorithm"},
	"Sign":         signRule("Sign"),
	"Verify":       signRule("Verify"),
	"GetPublicKey": keyRule("GetPublicKey"),
	"GenerateMac":  keyRule("GenerateMac"),
	"VerifyMac":    keyRule("VerifyMac"),

	"GetParametersForImport":    keyRule("GetParametersForImport"),
	"ImportKeyMaterial":         keyRule("ImportKeyMaterial"),
	"DeleteImportedKeyMaterial": keyRule("DeleteImportedKeyMaterial"),

	"CreateGrant": func() accessRule { r := keyRule("CreateGrant"); r.grant = true; return r }(),
	"ListGrants":  keyRule("ListGrants"),
	"RetireGrant": keyRule("RetireGrant"),
	"RevokeGrant": keyRule("RevokeGrant"),

	// Custom key stores: IAM policy only, as in AWS.
	"CreateCustomKeyStore":     iamRule("CreateCustomKeyStore"),
	"DescribeCustomKeyStores":  iamRule("DescribeCustomKeyStores"),
	"UpdateCustomKeyStore":     iamRule("UpdateCustomKeyStore"),
	"ConnectCustomKeyStore":    iamRule("ConnectCustomKeyStore"),
	"DisconnectCustomKeyStore": iamRule("DisconnectCustomKeyStore"),
	"DeleteCustomKeyStore":     iamRule("DeleteCustomKeyStore"),
}

// identity is a principal's identity policies, parsed.
type identity struct {
	name     string
	policies []*policy.Policy
}

// access is one request's access state: who asks, the rule, the valid
// grant tokens, and what was allowed so far (for the command).
type access struct {
	rule    accessRule
	who     *identity
	arn     string
	tokens  []state.KMSGrant
	mu      sync.Mutex
	entries []state.KMSAccess
}

type accessCtxKey struct{}

// identityOf reads a principal's identity policies (cached until a KMS
// write applies). A principal that does not exist has none.
func (s *Service) identityOf(name string) (*identity, error) {
	return cached(s.cache, func(c *rowCache) map[string]*identity { return c.identities }, name, func() (*identity, error) {
		sl, err := s.sealer()
		if err != nil {
			return nil, err
		}
		var p state.KMSPrincipal
		err = state.ReadKMSRow(s.store.Meta, sl, state.KMSPrincipalPrefix+name, &p)
		if errors.Is(err, state.ErrNotFound) {
			return &identity{name: name}, nil
		}
		if err != nil {
			return nil, err
		}
		return &identity{name: name, policies: state.KMSIdentityPolicies(&p)}, nil
	})
}

// begin starts a request's access state; an operation without an access
// rule is refused, never run.
func (s *Service) begin(ctx context.Context, r *call.Request) (context.Context, *access, error) {
	rule, ok := accessRules[r.Op]
	if !ok {
		return ctx, nil, fmt.Errorf("kms: operation %s has no access rule", r.Op)
	}
	who, err := s.identityOf(r.Principal)
	if err != nil {
		return ctx, nil, err
	}
	a := &access{rule: rule, who: who, arn: s.PrincipalArn(r.Principal)}
	if a.tokens, err = s.grantTokens(r); err != nil {
		return ctx, nil, err
	}
	r.State = a
	return context.WithValue(ctx, accessCtxKey{}, a), a, nil
}

func (s *Service) accessOf(r *call.Request) (*access, error) {
	a, ok := r.State.(*access)
	if !ok {
		return nil, errors.New("kms: a request without its access state")
	}
	return a, nil
}

// baseRequest is the policy request of an action with the values every
// request has.
func (s *Service) baseRequest(r *call.Request, a *access, action, resource string) policy.Request {
	req := policy.Request{Principal: a.arn, Account: s.account, Action: action, Resource: resource, Context: map[string][]string{}}
	if ip, err := netip.ParseAddr(r.Source); err == nil {
		req.Context["aws:SourceIp"] = []string{ip.Unmap().String()}
	}
	return req
}

// denied is AWS's AccessDeniedException for a decision.
func denied(req policy.Request, d policy.Decision) error {
	return kmserr.New(kmserr.AccessDenied, "%s", policy.DeniedMessage(req, d))
}

// authorizeIAM decides an action no key policy governs, on resource (an
// alias ARN, or "*").
func (s *Service) authorizeIAM(r *call.Request, a *access, action, resource string) error {
	req := s.baseRequest(r, a, action, resource)
	if d := state.KMSDecide(req, nil, a.who.policies, nil); !d.Allowed {
		return denied(req, d)
	}
	a.record(state.KMSAccess{Action: action, Resource: resource, Context: req.Context})
	return nil
}

func (a *access) record(e state.KMSAccess) {
	a.mu.Lock()
	a.entries = append(a.entries, e)
	a.mu.Unlock()
}

// authorizeKey decides the request's action on a key that member named
// (alias: the alias it named it by, or "").
func (s *Service) authorizeKey(r *call.Request, member string, k *state.KMSKey, alias string) error {
	a, err := s.accessOf(r)
	if err != nil {
		return err
	}
	if a.rule.kind == iamOnly {
		return nil // a key named only to filter (ListAliases)
	}
	action := a.rule.members[member]
	if action == "" {
		return fmt.Errorf("kms: %s has no access rule for %s", r.Op, member)
	}
	req, err := s.keyRequest(r, a, action, member, k, alias)
	if err != nil {
		return err
	}
	grants, err := s.grantsFor(k, a.tokens)
	if err != nil {
		return err
	}
	if d := state.KMSDecide(req, k, a.who.policies, grants); !d.Allowed {
		return denied(req, d)
	}
	a.record(state.KMSAccess{Action: action, KeyID: k.ID, Resource: k.Arn(), EncryptionContext: req.EncryptionContext,
		Context: req.Context, Tokens: tokensFor(a.tokens, k)})
	return nil
}

// keyRequest fills the condition keys of an action on a key.
func (s *Service) keyRequest(r *call.Request, a *access, action, member string, k *state.KMSKey, alias string) (policy.Request, error) {
	req := s.baseRequest(r, a, action, k.Arn())
	req.Context["kms:KeySpec"] = []string{k.KeySpec}
	req.Context["kms:KeyUsage"] = []string{k.KeyUsage}
	if alias != "" {
		req.Context["kms:RequestAlias"] = []string{alias}
	}
	if m := a.rule.ec[member]; m != "" {
		req.EncryptionContext = ecOf(r.Input, m)
	}
	if m := a.rule.alg[member]; m != "" {
		alg, ok := r.Input.String(m)
		if !ok && a.rule.algKey == "kms:EncryptionAlgorithm" {
			alg = "SYMMETRIC_DEFAULT"
		}
		if alg != "" {
			req.Context[a.rule.algKey] = []string{alg}
		}
	}
	if a.rule.grant {
		ops, _ := r.Input.Strings("Operations")
		req.Context["kms:GrantOperations"] = ops
		req.Context["kms:GrantIsForAWSResource"] = []string{"false"}
		if cons := constraintsOf(r.Input); cons != nil {
			req.NewGrant = &policy.GrantConstraints{EncryptionContextEquals: cons.Equals, EncryptionContextSubset: cons.Subset}
		}
	}
	if mentions(k, a.who, "kms:ResourceAliases") {
		names, err := s.aliasesOf(k)
		if err != nil {
			return req, err
		}
		req.Context["kms:ResourceAliases"] = names
	}
	return req, nil
}

// mentions says whether the key's or the caller's policies have a
// condition on condKey: the aliases of a key are read only when a policy
// asks.
func mentions(k *state.KMSKey, who *identity, condKey string) bool {
	if state.KMSKeyPolicy(k).HasConditionKey(condKey) {
		return true
	}
	for _, p := range who.policies {
		if p.HasConditionKey(condKey) {
			return true
		}
	}
	return false
}

// aliasesOf lists the alias names of a key. The region's aliases are
// read once into an index by key (cached until a KMS write applies), not
// on every request that asks.
func (s *Service) aliasesOf(k *state.KMSKey) ([]string, error) {
	idx, err := cached(s.cache, func(c *rowCache) map[string]map[string][]string { return c.keyAliases }, k.Region, func() (map[string][]string, error) {
		idx := map[string][]string{}
		err := eachRow(s, state.KMSAliasPrefix+k.Region+"/", func(_ string, al *state.KMSAlias) error {
			idx[al.KeyID] = append(idx[al.KeyID], al.Name)
			return nil
		})
		return idx, err
	})
	return idx[k.ID], err
}

// accessEntries are what a request's context says was allowed, for its
// command; nil outside a request (the nodes' upkeep).
func accessEntries(ctx context.Context) []state.KMSAccess {
	a, _ := ctx.Value(accessCtxKey{}).(*access)
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]state.KMSAccess(nil), a.entries...)
}

// ciphertextKey is the key a ciphertext names, decided for member's
// action: Decrypt and ReEncrypt without a key ID.
func (s *Service) ciphertextKey(r *call.Request, member string, ct []byte) (*state.KMSKey, error) {
	h, _, err := blob.Parse(ct)
	if err != nil {
		return nil, &kmserr.Error{Type: kmserr.InvalidCiphertext}
	}
	k, err := s.readKey(r.Region, keyIDString(h.KeyID))
	if kmserr.Is(err, kmserr.NotFound) {
		return nil, errForeignCiphertext
	} else if err != nil {
		return nil, err
	}
	if err := s.authorizeKey(r, member, k, ""); err != nil {
		return nil, err
	}
	return k, nil
}
