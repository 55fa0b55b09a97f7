package kms

import (
	"context"
	"errors"
	"strings"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/policy"
	"github.com/openhsm/openhsm/state"
)

// Identity policies and explain (docs/kms-access.md): a crypto officer
// gives a principal its identity policy, reads it, removes it, and asks
// what the one access decision says for a principal, key and action.

// AdminPolicy is the identity policy of `hsm kms principal create --admin`:
// every KMS action on every resource. Where a key policy delegates to the
// account (the default key policy does), it may do everything.
const AdminPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

// SetPrincipalPolicy sets a principal's identity policy ("" removes it);
// the caller must be a crypto officer.
func (s *Service) SetPrincipalPolicy(ctx context.Context, c engine.Caller, name, doc string) error {
	if err := officer(c); err != nil {
		return err
	}
	if err := state.ValidKMSPrincipalName(name); err != nil {
		return err
	}
	if err := state.CheckKMSIdentityPolicy(doc); err != nil {
		return err
	}
	return s.submit(ctx, &state.Command{Op: state.OpKMSPrincipalPolicy, Actor: c.User, Role: c.Role,
		KMS: &state.KMSCommand{Name: name, Policy: doc}})
}

// PrincipalPolicy is a principal's identity policy, "" when it has none;
// the caller must be a crypto officer.
func (s *Service) PrincipalPolicy(c engine.Caller, name string) (string, error) {
	if err := officer(c); err != nil {
		return "", err
	}
	if err := state.ValidKMSPrincipalName(name); err != nil {
		return "", err
	}
	sl, err := s.sealer()
	if err != nil {
		return "", err
	}
	var p state.KMSPrincipal
	err = state.ReadKMSRow(s.store.Meta, sl, state.KMSPrincipalPrefix+name, &p)
	if errors.Is(err, state.ErrNotFound) {
		return "", hsmerr.KMSf(kmserr.NotFound, "The principal %s does not exist", name)
	}
	return p.Policy, err
}

// ExplainRequest is what `hsm kms explain` asks.
type ExplainRequest struct {
	Principal string            // a principal's name
	Key       string            // key ID, key ARN, alias name or alias ARN
	Region    string            // the region of a key ID or alias name
	Action    string            // e.g. kms:Encrypt
	Context   map[string]string // the encryption context
	SourceIP  string            // aws:SourceIp, "" for none
}

// Explain is the access decision for a principal, key and action, and its
// reason, as a request would get it (without grant tokens); the caller
// must be a crypto officer.
func (s *Service) Explain(c engine.Caller, q ExplainRequest) (policy.Decision, error) {
	if err := officer(c); err != nil {
		return policy.Decision{}, err
	}
	if err := state.ValidKMSPrincipalName(q.Principal); err != nil {
		return policy.Decision{}, err
	}
	if !strings.HasPrefix(q.Action, "kms:") || len(q.Action) == len("kms:") || strings.ContainsAny(q.Action, "*? ") {
		return policy.Decision{}, kmserr.New(kmserr.Validation, "The action must be one KMS action, such as kms:Encrypt")
	}
	r := &call.Request{Op: "Explain", Region: q.Region, Principal: q.Principal, Source: q.SourceIP, Input: model.Object{}}
	if strings.HasPrefix(q.Key, "arn:") {
		if parts := strings.SplitN(q.Key, ":", 6); len(parts) == 6 {
			r.Region = parts[3]
		}
	}
	if r.Region == "" {
		r.Region = "us-east-1"
	}
	ec := map[string]any{}
	for k, v := range q.Context {
		ec[k] = v
	}
	r.Input["EncryptionContext"] = ec
	ref, err := s.parseKeyID(r, q.Key)
	if err != nil {
		return policy.Decision{}, err
	}
	id := ref.id
	if ref.alias != "" {
		al, err := s.readAlias(r.Region, ref.alias)
		if err != nil {
			return policy.Decision{}, err
		}
		id = al.KeyID
	}
	k, err := s.readKey(r.Region, id)
	if err != nil {
		return policy.Decision{}, err
	}
	who, err := s.identityOf(q.Principal)
	if err != nil {
		return policy.Decision{}, err
	}
	a := &access{who: who, arn: s.PrincipalArn(q.Principal), rule: accessRule{kind: onKey,
		members: map[string]string{"KeyId": q.Action}, ec: map[string]string{"KeyId": "EncryptionContext"}}}
	req, err := s.keyRequest(r, a, q.Action, "KeyId", k, ref.alias)
	if err != nil {
		return policy.Decision{}, err
	}
	grants, err := s.grantsFor(k, nil)
	if err != nil {
		return policy.Decision{}, err
	}
	return state.KMSDecide(req, k, who.policies, grants), nil
}
