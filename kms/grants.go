package kms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/policy"
	"github.com/openhsm/openhsm/state"
)

// Grants (docs/kms-access.md, "Grants"): rows of the replicated state,
// made, retired and revoked through state.OpKMSGrant. A grant token carries
// the grant's terms, MACed under the domain key: any node honours a valid
// token for its grantee at once, before it has applied the grant, and
// never once the grant was retired or revoked (the state keeps a
// tombstone).

// grantTokenPrefix starts every grant token of this service.
const grantTokenPrefix = "ohgt1."

// tokenMACKey is the MAC domain of grant tokens.
const tokenMACKey = "kms grant token"

// grantToken makes a grant's token.
func (s *Service) grantToken(g *state.KMSGrant) (string, error) {
	sl, err := s.sealer()
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return grantTokenPrefix + enc.EncodeToString(raw) + "." + enc.EncodeToString(sl.RowMAC(tokenMACKey, raw)), nil
}

var errGrantToken = kmserr.New(kmserr.InvalidGrantToken, "The grant token is not valid.")

// openGrantToken checks a token's MAC and reads its grant.
func (s *Service) openGrantToken(tok string) (*state.KMSGrant, error) {
	body, ok := strings.CutPrefix(tok, grantTokenPrefix)
	if !ok {
		return nil, errGrantToken
	}
	payload, mac, ok := strings.Cut(body, ".")
	if !ok {
		return nil, errGrantToken
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(payload)
	sum, err2 := base64.RawURLEncoding.DecodeString(mac)
	if err1 != nil || err2 != nil {
		return nil, errGrantToken
	}
	sl, err := s.sealer()
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(sum, sl.RowMAC(tokenMACKey, raw)) {
		return nil, errGrantToken
	}
	var g state.KMSGrant
	if err := json.Unmarshal(raw, &g); err != nil || !state.ValidKMSGrantID(g.ID) {
		return nil, errGrantToken
	}
	return &g, nil
}

// grantTokens reads the request's GrantTokens: one that is not a token of
// this service is InvalidGrantTokenException; the grants of valid tokens
// that were retired or revoked are left out.
func (s *Service) grantTokens(r *call.Request) ([]state.KMSGrant, error) {
	toks, _ := r.Input.Strings("GrantTokens")
	var out []state.KMSGrant
	for _, t := range toks {
		g, err := s.openGrantToken(t)
		if err != nil {
			return nil, err
		}
		gone, err := state.KMSGrantGone(s.store.Meta, g.ID)
		if err != nil {
			return nil, err
		}
		if !gone {
			out = append(out, *g)
		}
	}
	return out, nil
}

// tokensFor are the token grants of one key.
func tokensFor(tokens []state.KMSGrant, k *state.KMSKey) []state.KMSGrant {
	var out []state.KMSGrant
	for _, g := range tokens {
		if g.KeyID == k.ID && g.Region == k.Region {
			out = append(out, g)
		}
	}
	return out
}

// keyGrants are a key's grant rows and the same grants as policy.Evaluate
// takes them.
type keyGrants struct {
	rows     []state.KMSGrant
	policies []policy.Grant
}

// keyGrants reads a key's grants (cached until a KMS write applies).
func (s *Service) keyGrants(region, keyID string) (*keyGrants, error) {
	return cached(s.cache, func(c *rowCache) map[string]*keyGrants { return c.grants }, region+"/"+keyID, func() (*keyGrants, error) {
		kg := &keyGrants{}
		err := eachRow(s, state.KMSGrantKeyPrefix(region, keyID), func(_ string, g *state.KMSGrant) error {
			kg.rows = append(kg.rows, *g)
			kg.policies = append(kg.policies, g.Policy())
			return nil
		})
		return kg, err
	})
}

// grantsFor is what policy.Evaluate gets: the key's grants and the
// request's token grants for it that this node has not applied yet.
func (s *Service) grantsFor(k *state.KMSKey, tokens []state.KMSGrant) ([]policy.Grant, error) {
	kg, err := s.keyGrants(k.Region, k.ID)
	if err != nil {
		return nil, err
	}
	out := slices.Clip(kg.policies) // shared: an append copies
	for _, g := range tokensFor(tokens, k) {
		if !slices.ContainsFunc(kg.rows, func(r state.KMSGrant) bool { return r.ID == g.ID }) {
			out = append(out, g.Policy())
		}
	}
	return out, nil
}

// granteeArn accepts a principal ARN of IAM (a user, the account root) or
// of a service; anything else is AWS's ValidationException.
func granteeArn(member, v string) error {
	if strings.HasPrefix(v, "arn:aws:iam::") || strings.HasSuffix(v, ".amazonaws.com") {
		return nil
	}
	return kmserr.New(kmserr.Validation, "%s %s is not a valid principal", member, v)
}

// constraintsOf is a CreateGrant's Constraints, nil when it has none.
func constraintsOf(in model.Object) *state.KMSGrantConstraints {
	o, ok := in["Constraints"].(model.Object)
	if !ok {
		return nil
	}
	eq, _ := o.StringMap("EncryptionContextEquals")
	sub, _ := o.StringMap("EncryptionContextSubset")
	if len(eq) == 0 && len(sub) == 0 {
		return nil
	}
	return &state.KMSGrantConstraints{Equals: eq, Subset: sub}
}

func (s *Service) createGrant(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	grantee, _ := r.Input.String("GranteePrincipal")
	if err := granteeArn("GranteePrincipal", grantee); err != nil {
		return nil, err
	}
	retiring, ok := r.Input.String("RetiringPrincipal")
	if ok {
		if err := granteeArn("RetiringPrincipal", retiring); err != nil {
			return nil, err
		}
	}
	ops, _ := r.Input.Strings("Operations")
	slices.Sort(ops)
	ops = slices.Compact(ops)
	if err := grantOpsValid(k, ops); err != nil {
		return nil, err
	}
	cons := constraintsOf(r.Input)
	if cons != nil && k.KeySpec != "SYMMETRIC_DEFAULT" {
		return nil, kmserr.New(kmserr.Validation, "Grant constraints are supported only for symmetric encryption KMS keys")
	}
	name, _ := r.Input.String("Name")
	var id [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	g := &state.KMSGrant{ID: hex.EncodeToString(id[:]), Region: k.Region, Account: k.Account, KeyID: k.ID, Name: name,
		Grantee: grantee, Retiring: retiring, Operations: ops, Constraints: cons, Issuer: s.PrincipalArn(r.Principal)}
	if err := s.submit(ctx, &state.Command{Op: state.OpKMSGrant, KMS: &state.KMSCommand{Principal: r.Principal,
		Region: k.Region, KeyID: k.ID, Change: state.KMSGrantCreate, Grant: g}}); err != nil {
		return nil, err
	}
	if name != "" {
		// The same name and parameters answer the grant that exists.
		kg, err := s.keyGrants(k.Region, k.ID)
		if err != nil {
			return nil, err
		}
		for i := range kg.rows {
			if kg.rows[i].SameTerms(g) {
				g = &kg.rows[i]
				break
			}
		}
	}
	tok, err := s.grantToken(g)
	if err != nil {
		return nil, err
	}
	return model.Object{"GrantId": g.ID, "GrantToken": tok}, nil
}

// grantEntry is a grant as ListGrants answers it.
func (s *Service) grantEntry(g *state.KMSGrant) model.Object {
	ops := make([]any, len(g.Operations))
	for i, o := range g.Operations {
		ops[i] = o
	}
	e := model.Object{"KeyId": g.KeyArn(), "GrantId": g.ID, "CreationDate": unix(g.Created),
		"GranteePrincipal": g.Grantee, "IssuingAccount": "arn:aws:iam::" + g.Account + ":root", "Operations": ops}
	if g.Name != "" {
		e["Name"] = g.Name
	}
	if g.Retiring != "" {
		e["RetiringPrincipal"] = g.Retiring
	}
	if c := g.Constraints; c != nil {
		co := model.Object{}
		conv := func(m map[string]string) model.Object {
			o := model.Object{}
			for k, v := range m {
				o[k] = v
			}
			return o
		}
		if len(c.Equals) > 0 {
			co["EncryptionContextEquals"] = conv(c.Equals)
		}
		if len(c.Subset) > 0 {
			co["EncryptionContextSubset"] = conv(c.Subset)
		}
		e["Constraints"] = co
	}
	return e
}

// grantPage answers a page of grants after the marker (a grant ID).
func (s *Service) grantPage(in model.Object, grants []state.KMSGrant, keep func(*state.KMSGrant) bool) (model.Object, error) {
	limit, marker := page(in)
	if _, ok := in.Int("Limit"); !ok {
		limit = 50
	}
	if marker != "" && !state.ValidKMSGrantID(marker) {
		return nil, kmserr.New(kmserr.InvalidMarker, "Invalid marker")
	}
	slices.SortFunc(grants, func(a, b state.KMSGrant) int { return strings.Compare(a.ID, b.ID) })
	var items []any
	more, last := false, ""
	for i := range grants {
		g := &grants[i]
		if g.ID <= marker || !keep(g) {
			continue
		}
		if len(items) == limit {
			more = true
			break
		}
		items = append(items, s.grantEntry(g))
		last = g.ID
	}
	return listPage("Grants", items, more, last), nil
}

func (s *Service) listGrants(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	id, byID := r.Input.String("GrantId")
	if byID && !state.ValidKMSGrantID(id) {
		return nil, kmserr.New(kmserr.InvalidGrantID, "The grant ID is not valid.")
	}
	grantee, byGrantee := r.Input.String("GranteePrincipal")
	kg, err := s.keyGrants(k.Region, k.ID)
	if err != nil {
		return nil, err
	}
	return s.grantPage(r.Input, slices.Clone(kg.rows), func(g *state.KMSGrant) bool {
		return (!byID || g.ID == id) && (!byGrantee || g.Grantee == grantee)
	})
}

func (s *Service) listRetirableGrants(_ context.Context, r *call.Request) (model.Object, error) {
	who, _ := r.Input.String("RetiringPrincipal")
	var all []state.KMSGrant
	err := eachRow(s, state.KMSGrantPrefix+r.Region+"/", func(_ string, g *state.KMSGrant) error {
		if g.Retiring == who {
			all = append(all, *g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.grantPage(r.Input, all, func(*state.KMSGrant) bool { return true })
}

// retireTarget finds the grant RetireGrant names (by token, or by KeyId
// and GrantId) and decides whether the caller may retire it: its retiring
// principal, its grantee when it allows RetireGrant, or a policy allowing
// kms:RetireGrant on the key.
func (s *Service) retireTarget(r *call.Request) (*state.KMSKey, string, error) {
	var k *state.KMSKey
	var id string
	if tok, ok := r.Input.String("GrantToken"); ok {
		g, err := s.openGrantToken(tok)
		if err != nil {
			return nil, "", err
		}
		if k, err = s.readKey(g.Region, g.KeyID); err != nil {
			return nil, "", err
		}
		r.KeyARN, id = k.Arn(), g.ID
	} else {
		gid, ok1 := r.Input.String("GrantId")
		_, ok2 := r.Input.String("KeyId")
		if !ok1 || !ok2 {
			return nil, "", kmserr.New(kmserr.Validation, "Either GrantToken, or both KeyId and GrantId, must be specified")
		}
		if !state.ValidKMSGrantID(gid) {
			return nil, "", kmserr.New(kmserr.InvalidGrantID, "The grant ID is not valid.")
		}
		ref, err := s.parseKeyID(r, mustString(r.Input, "KeyId"))
		if err != nil {
			return nil, "", err
		}
		if ref.alias != "" {
			return nil, "", kmserr.New(kmserr.NotFound, "Invalid keyId %s", ref.given)
		}
		if k, err = s.readKey(r.Region, ref.id); err != nil {
			return nil, "", err
		}
		r.KeyARN, id = k.Arn(), gid
	}
	kg, err := s.keyGrants(k.Region, k.ID)
	if err != nil {
		return nil, "", err
	}
	var g *state.KMSGrant
	for i := range kg.rows {
		if kg.rows[i].ID == id {
			g = &kg.rows[i]
		}
	}
	if g == nil {
		return nil, "", kmserr.New(kmserr.NotFound, "Grant ID %s not found", id)
	}
	a, err := s.accessOf(r)
	if err != nil {
		return nil, "", err
	}
	if state.KMSMayRetire(g, a.arn) {
		a.record(state.KMSAccess{Action: "kms:RetireGrant", KeyID: k.ID, Resource: k.Arn(), GrantID: id})
		return k, id, nil
	}
	if err := s.authorizeKey(r, "KeyId", k, ""); err != nil {
		return nil, "", err
	}
	return k, id, nil
}

func mustString(in model.Object, member string) string { v, _ := in.String(member); return v }

func (s *Service) retireGrant(ctx context.Context, r *call.Request) (model.Object, error) {
	k, id, err := s.retireTarget(r)
	if err != nil {
		return nil, err
	}
	return model.Object{}, s.submit(ctx, &state.Command{Op: state.OpKMSGrant, KMS: &state.KMSCommand{Principal: r.Principal,
		Region: k.Region, KeyID: k.ID, Change: state.KMSGrantRetire, GrantID: id}})
}

func (s *Service) revokeGrant(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	id, _ := r.Input.String("GrantId")
	if !state.ValidKMSGrantID(id) {
		return nil, kmserr.New(kmserr.InvalidGrantID, "The grant ID is not valid.")
	}
	return model.Object{}, s.submit(ctx, &state.Command{Op: state.OpKMSGrant, KMS: &state.KMSCommand{Principal: r.Principal,
		Region: k.Region, KeyID: k.ID, Change: state.KMSGrantRevoke, GrantID: id}})
}

// grantOps are the grant operations valid on a key, by its kind (AWS's
// grants.html, "Grant operations"): those every key has, and those of its
// key usage (for ENCRYPT_DECRYPT, symmetric and asymmetric keys differ).
var grantOps = map[string][]string{
	"":                    {"CreateGrant", "DescribeKey", "RetireGrant"},
	"SYMMETRIC":           {"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"},
	"ENCRYPT_DECRYPT":     {"Decrypt", "Encrypt", "GetPublicKey", "ReEncryptFrom", "ReEncryptTo"},
	"SIGN_VERIFY":         {"GetPublicKey", "Sign", "Verify"},
	"GENERATE_VERIFY_MAC": {"GenerateMac", "VerifyMac"},
	"KEY_AGREEMENT":       {"DeriveSharedSecret", "GetPublicKey"},
}

// grantOpsValid refuses, with ValidationException, a grant operation that
// is not valid on k.
func grantOpsValid(k *state.KMSKey, ops []string) error {
	kind := k.KeyUsage
	if k.KeySpec == "SYMMETRIC_DEFAULT" {
		kind = "SYMMETRIC"
	}
	for _, op := range ops {
		if !slices.Contains(grantOps[""], op) && !slices.Contains(grantOps[kind], op) {
			return kmserr.New(kmserr.Validation, "The grant operation %s is not valid for a KMS key with KeySpec %s and KeyUsage %s", op, k.KeySpec, k.KeyUsage)
		}
	}
	return nil
}
