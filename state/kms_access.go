package state

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/policy"
	"github.com/openhsm/openhsm/seal"
)

// KMS access control in apply (docs/kms-access.md, "Apply decides
// again"). A principal's command carries what the serving node authorized:
// one KMSAccess per action and resource. Apply decides each again with
// policy.Evaluate against the key policy, the principal's identity policy
// and the key's grants as they are at the command's log index, so a policy
// changed between the node's check and the log refuses the command on
// every node alike. The request's condition values (source IP, encryption
// context, algorithms) are the serving node's, as the request gave them.

// OpKMSPrincipalPolicy sets or removes a principal's identity policy:
// Actor (CO), KMS.Name, KMS.Policy ("" removes it).
const OpKMSPrincipalPolicy Op = "kms_principal_policy"

// KMSAccess is one authorized action of a principal's command.
type KMSAccess struct {
	Action string `json:"action"` // e.g. kms:Encrypt
	// KeyID names the key whose policy and grants decide, in the command's
	// region; "" for an action no key policy governs (IAM policy only).
	KeyID string `json:"key_id,omitempty"`
	// Resource is the key's ARN, an alias's ARN, or "*".
	Resource          string              `json:"resource"`
	EncryptionContext map[string]string   `json:"encryption_context,omitempty"`
	Context           map[string][]string `json:"context,omitempty"`
	// Tokens are the grants of the request's valid grant tokens: honoured
	// unless retired or revoked at this index.
	Tokens []KMSGrant `json:"tokens,omitempty"`
	// GrantID is the grant RetireGrant retires: its retiring principal,
	// and its grantee when it may RetireGrant, may retire it whatever the
	// policies say.
	GrantID string `json:"grant_id,omitempty"`
}

// KMSPrincipalArn is a principal's ARN: an IAM user of the account.
func KMSPrincipalArn(account, name string) string {
	return "arn:aws:iam::" + account + ":user/" + name
}

// KMSIdentityPolicies parses a principal's identity policy, nil when it
// has none. A stored document that does not parse (it was checked when
// set) counts as none.
func KMSIdentityPolicies(p *KMSPrincipal) []*policy.Policy {
	if p == nil || p.Policy == "" {
		return nil
	}
	doc, err := policy.ParseIdentityPolicy(p.Policy)
	if err != nil {
		return nil
	}
	doc.Name = p.Name
	return []*policy.Policy{doc}
}

// KMSKeyPolicy is a key's policy, parsed; nil when it does not parse (a
// key made before policies were enforced may hold any JSON object): only
// its grants can then allow. A document is parsed once (keyPolicies), not
// on every decision; the result is shared and must not be changed.
func KMSKeyPolicy(k *KMSKey) *policy.Policy {
	keyPolicies.Lock()
	p, ok := keyPolicies.m[k.Policy]
	keyPolicies.Unlock()
	if ok {
		return p
	}
	if doc, err := policy.ParseKeyPolicy(k.Policy); err == nil {
		p = doc
	}
	keyPolicies.Lock()
	if len(keyPolicies.m) >= maxKeyPolicies {
		clear(keyPolicies.m)
	}
	keyPolicies.m[k.Policy] = p
	keyPolicies.Unlock()
	return p
}

// keyPolicies are parsed key policies by document. Parsing is a pure
// function of the document, so the cache is never stale; most keys of an
// account share one document (the default key policy).
var keyPolicies = struct {
	sync.Mutex
	m map[string]*policy.Policy
}{m: map[string]*policy.Policy{}}

// maxKeyPolicies bounds keyPolicies; past it, the cache starts over.
const maxKeyPolicies = 1024

// KMSDecide is the one access decision of the service and of apply: an
// action on a key (its policy, the identity policies, the grants) or, with
// k nil, an action no key policy governs.
func KMSDecide(req policy.Request, k *KMSKey, identity []*policy.Policy, grants []policy.Grant) policy.Decision {
	if k == nil {
		return policy.EvaluateIdentity(req, identity)
	}
	return policy.Evaluate(req, KMSKeyPolicy(k), identity, grants)
}

// checkKMSAccess decides the command's access entries again at this
// index. A principal's command without them is refused.
func checkKMSAccess(tx Tx, s *seal.Sealer, c *Command, p *KMSPrincipal) error {
	if len(c.KMS.Access) == 0 {
		return hsmerr.KMSf("AccessDeniedException", "%s carries no access decision", c.Op)
	}
	if len(c.KMS.Account) != 12 || !validKMSRegion(c.KMS.Region) {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s needs its account and region", c.Op)
	}
	if err := checkKMSAccessCovers(c); err != nil {
		return err
	}
	arn := KMSPrincipalArn(c.KMS.Account, p.Name)
	ids := KMSIdentityPolicies(p)
	for i := range c.KMS.Access {
		a := &c.KMS.Access[i]
		req := policy.Request{Principal: arn, Account: c.KMS.Account, Action: a.Action, Resource: a.Resource,
			EncryptionContext: a.EncryptionContext, Context: a.Context}
		if g := c.KMS.Grant; c.Op == OpKMSGrant && g != nil && strings.EqualFold(a.Action, "kms:CreateGrant") {
			// The grant being made is the command's own: its operations
			// and constraints, not what the serving node said of them.
			req.Context = maps.Clone(a.Context)
			if req.Context == nil {
				req.Context = map[string][]string{}
			}
			req.Context["kms:GrantOperations"] = g.Operations
			if g.Constraints != nil {
				req.NewGrant = &policy.GrantConstraints{EncryptionContextEquals: g.Constraints.Equals, EncryptionContextSubset: g.Constraints.Subset}
			}
		}
		if a.KeyID == "" {
			if d := KMSDecide(req, nil, ids, nil); !d.Allowed {
				return hsmerr.KMSf("AccessDeniedException", "%s", policy.DeniedMessage(req, d))
			}
			continue
		}
		var k KMSKey
		err := readRow(tx, s, KMSKeyMeta(c.KMS.Region, a.KeyID), &k)
		if errors.Is(err, ErrNotFound) {
			continue // the op answers NotFoundException
		}
		if err != nil {
			return err
		}
		req.Resource = k.Arn()
		if a.GrantID != "" && a.Action == "kms:RetireGrant" {
			if ok, err := retiresOwnGrant(tx, s, &k, a.GrantID, arn); err != nil {
				return err
			} else if ok {
				continue
			}
		}
		grants, err := kmsGrantsAt(tx, s, &k, a.Tokens)
		if err != nil {
			return err
		}
		if d := KMSDecide(req, &k, ids, grants); !d.Allowed {
			return hsmerr.KMSf("AccessDeniedException", "%s", policy.DeniedMessage(req, d))
		}
	}
	return nil
}

// kmsNeed is an access entry a principal's command must carry: the
// action, on the key KeyID ("" for the IAM side: an alias, a custom key
// store, or an action no key policy governs), and on the resource when it
// is set (an alias's ARN: the IAM side of an alias command must be decided
// on that alias, not on "*" or another).
type kmsNeed struct{ action, keyID, resource string }

// kmsOpActions is the action of each principal op, by its change ("" for
// an op without changes), after the KMS's access rules (kms/access.go).
var kmsOpActions = map[Op]map[string]string{
	OpKMSCreateKey: {"": "kms:CreateKey"},
	OpKMSUpdateKey: {
		KMSChangeEnable: "kms:EnableKey", KMSChangeDisable: "kms:DisableKey",
		KMSChangeDescription: "kms:UpdateKeyDescription", KMSChangeSchedule: "kms:ScheduleKeyDeletion",
		KMSChangeCancel: "kms:CancelKeyDeletion", KMSChangeEnableRotation: "kms:EnableKeyRotation",
		KMSChangeDisableRotation: "kms:DisableKeyRotation", KMSChangePolicy: "kms:PutKeyPolicy",
		KMSChangeTag: "kms:TagResource", KMSChangeUntag: "kms:UntagResource",
	},
	OpKMSRotateKey:      {"": "kms:RotateKeyOnDemand"},
	OpKMSImportParams:   {"": "kms:GetParametersForImport"},
	OpKMSImportMaterial: {"": "kms:ImportKeyMaterial"},
	OpKMSDeleteMaterial: {"": "kms:DeleteImportedKeyMaterial"},
	OpKMSAlias:          {KMSAliasCreate: "kms:CreateAlias", KMSAliasUpdate: "kms:UpdateAlias", KMSAliasDelete: "kms:DeleteAlias"},
	OpKMSKeyStore: {
		KMSStoreCreate: "kms:CreateCustomKeyStore", KMSStoreUpdate: "kms:UpdateCustomKeyStore",
		KMSStoreDelete: "kms:DeleteCustomKeyStore", KMSStoreConnect: "kms:ConnectCustomKeyStore",
		KMSStoreDisconnect: "kms:DisconnectCustomKeyStore",
	},
	OpKMSGrant: {KMSGrantCreate: "kms:CreateGrant", KMSGrantRetire: "kms:RetireGrant", KMSGrantRevoke: "kms:RevokeGrant"},
}

// kmsNeeds is what a principal's command must carry entries for: its
// op's action on the key it changes, and for an alias also on the alias.
// A change the op does not know needs nothing here (the op refuses it);
// an op without a row is refused.
func kmsNeeds(c *Command) ([]kmsNeed, error) {
	byChange, ok := kmsOpActions[c.Op]
	if !ok {
		return nil, hsmerr.KMSf("AccessDeniedException", "%s has no access rule in apply", c.Op)
	}
	change := c.KMS.Change
	if _, none := byChange[""]; none {
		change = ""
	}
	action, ok := byChange[change]
	if !ok {
		return nil, nil
	}
	switch c.Op {
	case OpKMSCreateKey, OpKMSKeyStore:
		return []kmsNeed{{action: action}}, nil
	case OpKMSAlias:
		need := []kmsNeed{{action: action, resource: KMSArn(c.KMS.Region, c.KMS.Account, c.KMS.Alias)}}
		if change != KMSAliasDelete {
			need = append(need, kmsNeed{action: action, keyID: c.KMS.KeyID})
		}
		return need, nil
	}
	return []kmsNeed{{action: action, keyID: c.KMS.KeyID}}, nil
}

// checkKMSAccessCovers refuses a command whose entries do not include
// its own action on its own key: entries are decided one by one, so
// without this an entry for another action or another key (or a key
// that does not exist, which is skipped) would let any command through.
func checkKMSAccessCovers(c *Command) error {
	needs, err := kmsNeeds(c)
	if err != nil {
		return err
	}
	for _, n := range needs {
		if !slices.ContainsFunc(c.KMS.Access, func(a KMSAccess) bool {
			return strings.EqualFold(a.Action, n.action) && a.KeyID == n.keyID &&
				(n.resource == "" || a.Resource == n.resource)
		}) {
			on := ""
			switch {
			case n.keyID != "":
				on = " on key " + n.keyID
			case n.resource != "":
				on = " on " + n.resource
			}
			return hsmerr.KMSf("AccessDeniedException", "%s carries no access decision for %s%s", c.Op, n.action, on)
		}
	}
	return nil
}

// applyKMSPrincipalPolicy sets or removes a principal's identity policy.
func applyKMSPrincipalPolicy(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.KMS == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no principal")
	}
	p, err := principalFor(tx, s, c.KMS.Name)
	if err != nil {
		return nil, err
	}
	if err := CheckKMSIdentityPolicy(c.KMS.Policy); err != nil {
		return nil, err
	}
	p.Policy = c.KMS.Policy
	return nil, putKMSRow(tx, s, KMSPrincipalPrefix+p.Name, p)
}

// CheckKMSIdentityPolicy refuses an identity policy that does not parse,
// as AWS's MalformedPolicyDocumentException naming the problem ("" is
// none): the service before it submits one, and apply.
func CheckKMSIdentityPolicy(doc string) error {
	if doc == "" {
		return nil
	}
	if _, err := policy.ParseIdentityPolicy(doc); err != nil {
		return hsmerr.KMSf("MalformedPolicyDocumentException", "%v", err)
	}
	return nil
}
