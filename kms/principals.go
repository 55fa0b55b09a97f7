package kms

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/kms/sigv4"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/state"
)

// Principals are the KMS's users (an IAM analogue): a name and one access
// key. A crypto officer manages them; the secret is shown once, when made,
// and stored only sealed under the domain key (SigV4 needs the secret
// itself, so it cannot be a hash).

// PrincipalInfo is a principal as a crypto officer sees it: never its
// secret.
type PrincipalInfo struct {
	Name        string
	ARN         string
	AccessKeyID string
	Created     time.Time
}

// Credentials are a new access key: the secret is shown once.
type Credentials struct {
	PrincipalInfo
	SecretAccessKey string
}

// PrincipalArn is a principal's ARN: an IAM user of the account.
func (s *Service) PrincipalArn(name string) string {
	return "arn:aws:iam::" + s.account + ":user/" + name
}

// Secret implements sigv4.Secrets: the secret of an access key and the
// ARN of the principal it belongs to (so the trail names principals by
// ARN). A key no principal has is sigv4.ErrUnknownAccessKey.
func (s *Service) Secret(accessKeyID string) ([]byte, string, error) {
	p, err := cached(s.cache, func(c *rowCache) map[string]principalEntry { return c.principals }, accessKeyID, func() (principalEntry, error) {
		sl, err := s.e.Sealer()
		if err != nil {
			return principalEntry{}, err
		}
		p, err := state.KMSPrincipalByAccessKey(s.store.Meta, sl, accessKeyID)
		if errors.Is(err, state.ErrNotFound) {
			return principalEntry{}, sigv4.ErrUnknownAccessKey
		}
		if err != nil {
			return principalEntry{}, err
		}
		secret, err := sl.Open(0, state.KMSSecretOwner(p.AccessKeyID), p.Secret)
		if err != nil {
			return principalEntry{}, err
		}
		return principalEntry{secret: secret, arn: s.PrincipalArn(p.Name)}, nil
	})
	if err != nil {
		return nil, "", err
	}
	// The verifier does not keep or change the slice; a copy keeps the
	// cached one whole whatever a caller does.
	return append([]byte(nil), p.secret...), p.arn, nil
}

func officer(c engine.Caller) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer manages KMS principals")
	}
	return nil
}

// newAccessKey makes, for an officer, an access key ID (AKIA and 16 of
// A-Z2-7, as AWS's look) and a 40-character secret for the named
// principal, sealed for its row.
func (s *Service) newAccessKey(c engine.Caller, name string) (*state.KMSPrincipal, string, error) {
	if err := officer(c); err != nil {
		return nil, "", err
	}
	if err := state.ValidKMSPrincipalName(name); err != nil {
		return nil, "", err
	}
	sl, err := s.e.Sealer()
	if err != nil {
		return nil, "", err
	}
	var idb [10]byte
	var sb [30]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, "", err
	}
	if _, err := rand.Read(sb[:]); err != nil {
		return nil, "", err
	}
	akid := "AKIA" + base32.StdEncoding.EncodeToString(idb[:])[:16]
	secret := base64.StdEncoding.EncodeToString(sb[:])
	sealed, err := sl.Seal(0, state.KMSSecretOwner(akid), []byte(secret))
	if err != nil {
		return nil, "", err
	}
	return &state.KMSPrincipal{Name: name, AccessKeyID: akid, Secret: sealed}, secret, nil
}

// CreatePrincipal makes a principal with a new access key and no identity
// policy (as a new IAM user has none); the caller must be a crypto officer.
// The first principal also makes kmsuser, with a random password nobody
// keeps.
func (s *Service) CreatePrincipal(ctx context.Context, c engine.Caller, name string) (*Credentials, error) {
	return s.CreatePrincipalWithPolicy(ctx, c, name, "")
}

// CreatePrincipalWithPolicy is CreatePrincipal with an identity policy
// ("" for none; AdminPolicy for every KMS action on every resource).
func (s *Service) CreatePrincipalWithPolicy(ctx context.Context, c engine.Caller, name, identityPolicy string) (*Credentials, error) {
	if err := officer(c); err != nil {
		return nil, err
	}
	if err := state.CheckKMSIdentityPolicy(identityPolicy); err != nil {
		return nil, err
	}
	p, secret, err := s.newAccessKey(c, name)
	if err != nil {
		return nil, err
	}
	p.Policy = identityPolicy
	cmd := &state.Command{Op: state.OpKMSPrincipalCreate, Actor: c.User, Role: c.Role, KMS: &state.KMSCommand{PrincipalRow: p}}
	if _, err := s.store.User(state.KMSUser); errors.Is(err, state.ErrNotFound) {
		var pw [32]byte
		if _, err := rand.Read(pw[:]); err != nil {
			return nil, err
		}
		hash, err := passwords.HashPassword(base64.StdEncoding.EncodeToString(pw[:]))
		if err != nil {
			return nil, err
		}
		cmd.User = &object.User{Name: state.KMSUser, Role: object.RoleCU, PasswordHash: hash}
	}
	if err := s.submit(ctx, cmd); err != nil {
		return nil, err
	}
	return &Credentials{PrincipalInfo: PrincipalInfo{Name: name, ARN: s.PrincipalArn(name), AccessKeyID: p.AccessKeyID,
		Created: s.clock().UTC().Truncate(time.Second)}, SecretAccessKey: secret}, nil
}

// ListPrincipals lists the principals; the caller must be a crypto officer.
func (s *Service) ListPrincipals(c engine.Caller) ([]PrincipalInfo, error) {
	if err := officer(c); err != nil {
		return nil, err
	}
	var out []PrincipalInfo
	err := eachRow(s, state.KMSPrincipalPrefix, func(_ string, p *state.KMSPrincipal) error {
		out = append(out, PrincipalInfo{Name: p.Name, ARN: s.PrincipalArn(p.Name), AccessKeyID: p.AccessKeyID, Created: unix(p.Created)})
		return nil
	})
	return out, err
}

// DeletePrincipal removes a principal; its access key stops working on
// every node. The caller must be a crypto officer.
func (s *Service) DeletePrincipal(ctx context.Context, c engine.Caller, name string) error {
	if err := officer(c); err != nil {
		return err
	}
	return s.submit(ctx, &state.Command{Op: state.OpKMSPrincipalDelete, Actor: c.User, Role: c.Role, KMS: &state.KMSCommand{Name: name}})
}

// RotatePrincipalKey gives a principal a new access key and ends the old
// one. The caller must be a crypto officer.
func (s *Service) RotatePrincipalKey(ctx context.Context, c engine.Caller, name string) (*Credentials, error) {
	p, secret, err := s.newAccessKey(c, name)
	if err != nil {
		return nil, err
	}
	if err := s.submit(ctx, &state.Command{Op: state.OpKMSPrincipalRotate, Actor: c.User, Role: c.Role, KMS: &state.KMSCommand{PrincipalRow: p}}); err != nil {
		return nil, err
	}
	info := PrincipalInfo{Name: name, ARN: s.PrincipalArn(name), AccessKeyID: p.AccessKeyID}
	sl, err := s.e.Sealer()
	if err == nil {
		var row state.KMSPrincipal
		if state.ReadKMSRow(s.store.Meta, sl, state.KMSPrincipalPrefix+name, &row) == nil {
			info.Created = unix(row.Created)
		}
	}
	return &Credentials{PrincipalInfo: info, SecretAccessKey: strings.Clone(secret)}, nil
}
