package state

import (
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/policy"
	"github.com/openhsm/openhsm/seal"
)

// Grants (docs/kms-access.md, "Grants"): a grant's row lives under its key
// (kms/grant/<region>/<key ID>/<grant ID>) and is MACed as every KMS row
// is. A retired or revoked grant leaves a tombstone (kms/grantgone/<grant
// ID>) so that its grant token, which a node honours before it has applied
// the grant, is never honoured again.

// OpKMSGrant creates, retires or revokes a grant: KMS.Principal,
// KMS.Region, KMS.KeyID, KMS.Change (KMSGrantCreate, KMSGrantRetire,
// KMSGrantRevoke), KMS.Grant (create) or KMS.GrantID (retire, revoke).
const OpKMSGrant Op = "kms_grant"

// kms_grant changes.
const (
	KMSGrantCreate = "create"
	KMSGrantRetire = "retire"
	KMSGrantRevoke = "revoke"
)

// KMSMaxGrantsPerKey is AWS's quota of grants per KMS key.
const KMSMaxGrantsPerKey = 50000

// Meta key prefixes of grants.
const (
	KMSGrantPrefix     = "kms/grant/"     // + region + "/" + key ID + "/" + grant ID
	KMSGrantGonePrefix = "kms/grantgone/" // + grant ID: retired or revoked
)

// KMSGrantKeyPrefix is the prefix of one key's grant rows.
func KMSGrantKeyPrefix(region, keyID string) string {
	return KMSGrantPrefix + region + "/" + keyID + "/"
}

// KMSGrantConstraints are a grant's encryption context constraints.
type KMSGrantConstraints struct {
	Equals map[string]string `json:"equals,omitempty"`
	Subset map[string]string `json:"subset,omitempty"`
}

// KMSGrant is a grant's row (and, MACed, its grant token's terms).
type KMSGrant struct {
	ID          string               `json:"id"` // 64 hex digits
	Region      string               `json:"region"`
	Account     string               `json:"account"`
	KeyID       string               `json:"key_id"`
	Name        string               `json:"name,omitempty"`
	Grantee     string               `json:"grantee"`
	Retiring    string               `json:"retiring,omitempty"`
	Operations  []string             `json:"operations"`
	Constraints *KMSGrantConstraints `json:"constraints,omitempty"`
	Issuer      string               `json:"issuer,omitempty"` // the creating principal's ARN
	Created     int64                `json:"created,omitempty"`
}

// KeyArn is the ARN of the grant's key.
func (g *KMSGrant) KeyArn() string { return KMSArn(g.Region, g.Account, "key/"+g.KeyID) }

// Policy is the grant as policy.Evaluate takes it.
func (g *KMSGrant) Policy() policy.Grant {
	out := policy.Grant{ID: g.ID, KeyARN: g.KeyArn(), GranteePrincipal: g.Grantee, Operations: g.Operations}
	if g.Constraints != nil {
		out.Constraints = &policy.GrantConstraints{EncryptionContextEquals: g.Constraints.Equals, EncryptionContextSubset: g.Constraints.Subset}
	}
	return out
}

// SameTerms says whether two grants have the same key, name and
// parameters: CreateGrant with these answers the existing grant.
func (g *KMSGrant) SameTerms(o *KMSGrant) bool {
	eq := func(a, b *KMSGrantConstraints) bool {
		if a == nil || b == nil {
			return (a == nil || len(a.Equals)+len(a.Subset) == 0) && (b == nil || len(b.Equals)+len(b.Subset) == 0)
		}
		return maps.Equal(a.Equals, b.Equals) && maps.Equal(a.Subset, b.Subset)
	}
	ops := func(x []string) []string { y := slices.Clone(x); slices.Sort(y); return slices.Compact(y) }
	return g.KeyID == o.KeyID && g.Region == o.Region && g.Name == o.Name && g.Grantee == o.Grantee &&
		g.Retiring == o.Retiring && slices.Equal(ops(g.Operations), ops(o.Operations)) && eq(g.Constraints, o.Constraints)
}

// ValidKMSGrantID says whether id has the form of this service's grant
// IDs: 64 lower-case hex digits.
func ValidKMSGrantID(id string) bool {
	if len(id) != 64 || strings.ToLower(id) != id {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// KMSGrantGone says whether a grant was retired or revoked.
func KMSGrantGone(get func(string) ([]byte, error), id string) (bool, error) {
	_, err := get(KMSGrantGonePrefix + id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// kmsGrantsAt is a key's grants at this index and the token grants for it
// that are neither stored yet nor retired or revoked.
func kmsGrantsAt(tx Tx, s *seal.Sealer, k *KMSKey, tokens []KMSGrant) ([]policy.Grant, error) {
	keys, err := tx.MetaKeys(KMSGrantKeyPrefix(k.Region, k.ID), KMSMaxGrantsPerKey)
	if err != nil {
		return nil, err
	}
	var out []policy.Grant
	have := map[string]bool{}
	for _, key := range keys {
		var g KMSGrant
		if err := readRow(tx, s, key, &g); err != nil {
			return nil, err
		}
		have[g.ID] = true
		out = append(out, g.Policy())
	}
	for i := range tokens {
		g := &tokens[i]
		if g.KeyID != k.ID || g.Region != k.Region || have[g.ID] {
			continue
		}
		gone, err := KMSGrantGone(tx.Meta, g.ID)
		if err != nil {
			return nil, err
		}
		if !gone {
			out = append(out, g.Policy())
		}
	}
	return out, nil
}

// retiresOwnGrant says whether arn may retire the key's grant id whatever
// the policies say: it is the grant's retiring principal, or its grantee
// and the grant allows RetireGrant.
func retiresOwnGrant(tx Tx, s *seal.Sealer, k *KMSKey, id, arn string) (bool, error) {
	var g KMSGrant
	err := readRow(tx, s, KMSGrantKeyPrefix(k.Region, k.ID)+id, &g)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return KMSMayRetire(&g, arn), nil
}

// KMSMayRetire is AWS's rule for who may retire a grant without a policy
// allowing kms:RetireGrant.
func KMSMayRetire(g *KMSGrant, arn string) bool {
	return g.Retiring == arn || g.Grantee == arn && slices.Contains(g.Operations, "RetireGrant")
}

func applyKMSGrant(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	k, err := keyFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	prefix := KMSGrantKeyPrefix(k.Region, k.ID)
	switch c.KMS.Change {
	case KMSGrantCreate:
		g := c.KMS.Grant
		if g == nil || !ValidKMSGrantID(g.ID) || g.Grantee == "" || len(g.Operations) == 0 || g.KeyID != k.ID || g.Region != k.Region {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "kms_grant create needs the grant's ID, key, grantee and operations")
		}
		if k.State == KMSPendingDeletion {
			return nil, invalidState(k)
		}
		keys, err := tx.MetaKeys(prefix, KMSMaxGrantsPerKey+1)
		if err != nil {
			return nil, err
		}
		if g.Name != "" {
			for _, key := range keys {
				var old KMSGrant
				if err := readRow(tx, s, key, &old); err != nil {
					return nil, err
				}
				if old.SameTerms(g) {
					return nil, nil // the same grant: CreateGrant answers it
				}
			}
		}
		if len(keys) >= KMSMaxGrantsPerKey {
			return nil, hsmerr.KMSf("LimitExceededException", "The request was rejected because the key %s has reached the limit of %d grants.", k.Arn(), KMSMaxGrantsPerKey)
		}
		if gone, err := KMSGrantGone(tx.Meta, g.ID); err != nil || gone {
			return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "grant ID collision")
		}
		if _, err := tx.Meta(prefix + g.ID); err == nil {
			return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "grant ID collision")
		}
		ng := *g
		ng.Account, ng.Created = k.Account, c.Time
		return nil, putKMSRow(tx, s, prefix+g.ID, ng)
	case KMSGrantRetire, KMSGrantRevoke:
		if !ValidKMSGrantID(c.KMS.GrantID) {
			return nil, hsmerr.KMSf("InvalidGrantIdException", "The grant ID is not valid.")
		}
		key := prefix + c.KMS.GrantID
		var g KMSGrant
		if err := readRow(tx, s, key, &g); errors.Is(err, ErrNotFound) {
			return nil, hsmerr.KMSf("NotFoundException", "Grant ID %s not found", c.KMS.GrantID)
		} else if err != nil {
			return nil, err
		}
		if err := tx.DeleteMeta(key); err != nil {
			return nil, err
		}
		return nil, putKMSRow(tx, s, KMSGrantGonePrefix+g.ID, c.Time)
	}
	return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown grant change %q", c.KMS.Change)
}

// deleteKMSGrants removes a deleted key's grants, leaving tombstones.
func deleteKMSGrants(tx Tx, s *seal.Sealer, k *KMSKey, now int64) error {
	keys, err := tx.MetaKeys(KMSGrantKeyPrefix(k.Region, k.ID), KMSMaxGrantsPerKey+1)
	if err != nil {
		return err
	}
	for _, key := range keys {
		id := key[strings.LastIndexByte(key, '/')+1:]
		if err := tx.DeleteMeta(key); err != nil {
			return err
		}
		if err := putKMSRow(tx, s, KMSGrantGonePrefix+id, now); err != nil {
			return err
		}
	}
	return nil
}
