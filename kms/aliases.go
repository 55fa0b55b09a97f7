package kms

import (
	"context"
	"strings"

	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/state"
)

// checkAliasName is the service's rule for an alias name beyond the
// model's pattern.
func checkAliasName(name string) error {
	if !strings.HasPrefix(name, "alias/") || name == "alias/" {
		return kmserr.New(kmserr.Validation, "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return &kmserr.Error{Type: "NotAuthorizedException"}
	}
	return nil
}

// aliasTarget resolves TargetKeyId, which must name a key, not an alias.
func (s *Service) aliasTarget(r *call.Request) (*state.KMSKey, error) {
	v, _ := r.Input.String("TargetKeyId")
	if strings.HasPrefix(v, "alias/") || strings.Contains(v, ":alias/") {
		return nil, kmserr.New(kmserr.Validation, "Aliases must refer to keys. Not aliases")
	}
	return s.key(r, "TargetKeyId", false)
}

func (s *Service) aliasChange(ctx context.Context, r *call.Request, change string, target bool) (model.Object, error) {
	name, _ := r.Input.String("AliasName")
	if err := checkAliasName(name); err != nil {
		return nil, err
	}
	// The alias's side is the identity policy's; each key's side (the
	// new target, and the key the alias names now) its key policy's.
	acc, err := s.accessOf(r)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIAM(r, acc, acc.rule.action, s.aliasArn(r.Region, name)); err != nil {
		return nil, err
	}
	kc := &state.KMSCommand{Principal: r.Principal, Region: r.Region, Change: change, Alias: name}
	if target {
		k, err := s.aliasTarget(r)
		if err != nil {
			return nil, err
		}
		kc.KeyID = k.ID
	}
	if change != state.KMSAliasCreate {
		a, err := s.readAlias(r.Region, name)
		if err != nil {
			return nil, err
		}
		if !target {
			r.KeyARN = s.keyArn(r.Region, a.KeyID)
		}
		if old, err := s.readKey(r.Region, a.KeyID); err == nil {
			if err := s.authorizeKey(r, aliasMember, old, ""); err != nil {
				return nil, err
			}
		} else if !kmserr.Is(err, kmserr.NotFound) {
			return nil, err
		}
	}
	return model.Object{}, s.submit(ctx, &state.Command{Op: state.OpKMSAlias, KMS: kc})
}

func (s *Service) createAlias(ctx context.Context, r *call.Request) (model.Object, error) {
	return s.aliasChange(ctx, r, state.KMSAliasCreate, true)
}

func (s *Service) updateAlias(ctx context.Context, r *call.Request) (model.Object, error) {
	return s.aliasChange(ctx, r, state.KMSAliasUpdate, true)
}

func (s *Service) deleteAlias(ctx context.Context, r *call.Request) (model.Object, error) {
	return s.aliasChange(ctx, r, state.KMSAliasDelete, false)
}

func (s *Service) listAliases(_ context.Context, r *call.Request) (model.Object, error) {
	limit, marker := page(r.Input)
	var only string
	if _, ok := r.Input.String("KeyId"); ok {
		k, err := s.key(r, "KeyId", false)
		if err != nil {
			return nil, err
		}
		only = k.ID
	}
	sl, err := s.sealer()
	if err != nil {
		return nil, err
	}
	prefix := state.KMSAliasPrefix + r.Region + "/"
	after := ""
	if marker != "" {
		if !strings.HasPrefix(marker, "alias/") {
			return nil, kmserr.New(kmserr.InvalidMarker, "Invalid marker")
		}
		after = prefix + marker
	}
	var items []any
	var last string
	more := false
	for {
		rows, err := s.store.MetaScan(prefix, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			var a state.KMSAlias
			if err := state.KMSRow(sl, row.Key, row.Value, &a); err != nil {
				return nil, err
			}
			after = row.Key
			if only != "" && a.KeyID != only {
				continue
			}
			if len(items) == limit {
				more = true
				break
			}
			items = append(items, model.Object{"AliasName": a.Name, "AliasArn": s.aliasArn(r.Region, a.Name),
				"TargetKeyId": a.KeyID, "CreationDate": unix(a.Created), "LastUpdatedDate": unix(a.Updated)})
			last = a.Name
		}
		if more || len(rows) < 1000 {
			break
		}
	}
	return listPage("Aliases", items, more, last), nil
}
