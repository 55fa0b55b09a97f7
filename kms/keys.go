package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	kmspolicy "github.com/openhsm/openhsm/kms/policy"
	"github.com/openhsm/openhsm/state"
)

// ---- identifying keys ----

// keyRef is what a KeyId names.
type keyRef struct {
	id    string // a key ID, or "" when alias names the key
	alias string // an alias name (alias/...), or ""
	given string // as the client gave it
}

// parseKeyID reads a KeyId in any of its four forms: a key ID, a key ARN,
// an alias name or an alias ARN. An ARN of another region or account names
// nothing here.
func (s *Service) parseKeyID(r *call.Request, v string) (keyRef, error) {
	ref := keyRef{given: v}
	switch {
	case strings.HasPrefix(v, "arn:"):
		parts := strings.SplitN(v, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" {
			return ref, kmserr.New(kmserr.NotFound, "Invalid arn %s", v)
		}
		if parts[3] != r.Region || parts[4] != s.account {
			return ref, kmserr.New(kmserr.NotFound, "Invalid arn %s", v)
		}
		res := parts[5]
		switch {
		case strings.HasPrefix(res, "key/"):
			ref.id = strings.TrimPrefix(res, "key/")
		case strings.HasPrefix(res, "alias/"):
			ref.alias = res
		default:
			return ref, kmserr.New(kmserr.NotFound, "Invalid arn %s", v)
		}
	case strings.HasPrefix(v, "alias/"):
		ref.alias = v
	default:
		ref.id = v
	}
	if ref.id != "" && !isUUID(ref.id) {
		return ref, kmserr.New(kmserr.NotFound, "Invalid keyId %s", v)
	}
	return ref, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func newKeyID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func (s *Service) keyArn(region, id string) string {
	return state.KMSArn(region, s.account, "key/"+id)
}

func (s *Service) aliasArn(region, name string) string {
	return state.KMSArn(region, s.account, name)
}

// readKey reads a key's row in the request's region.
func (s *Service) readKey(region, id string) (*state.KMSKey, error) {
	id = strings.ToLower(id)
	return cached(s.cache, func(c *rowCache) map[string]*state.KMSKey { return c.keys }, region+"/"+id, func() (*state.KMSKey, error) {
		sl, err := s.sealer()
		if err != nil {
			return nil, err
		}
		var k state.KMSKey
		err = state.ReadKMSRow(s.store.Meta, sl, state.KMSKeyMeta(region, id), &k)
		if errors.Is(err, state.ErrNotFound) {
			return nil, kmserr.New(kmserr.NotFound, "Key '%s' does not exist", s.keyArn(region, id))
		}
		if err != nil {
			return nil, err
		}
		return &k, nil
	})
}

func (s *Service) readAlias(region, name string) (*state.KMSAlias, error) {
	return cached(s.cache, func(c *rowCache) map[string]*state.KMSAlias { return c.aliases }, region+"/"+name, func() (*state.KMSAlias, error) {
		sl, err := s.sealer()
		if err != nil {
			return nil, err
		}
		var a state.KMSAlias
		err = state.ReadKMSRow(s.store.Meta, sl, state.KMSAliasMeta(region, name), &a)
		if errors.Is(err, state.ErrNotFound) {
			return nil, kmserr.New(kmserr.NotFound, "Alias %s is not found.", s.aliasArn(region, name))
		}
		if err != nil {
			return nil, err
		}
		return &a, nil
	})
}

// key resolves the request's member (KeyId unless named) to a key. Where
// AWS takes only a key ID or key ARN, aliases is false and an alias is
// refused as AWS refuses it.
func (s *Service) key(r *call.Request, member string, aliases bool) (*state.KMSKey, error) {
	v, ok := r.Input.String(member)
	if !ok {
		return nil, kmserr.New(kmserr.Validation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(member))
	}
	ref, err := s.parseKeyID(r, v)
	if err != nil {
		return nil, err
	}
	id := ref.id
	if ref.alias != "" {
		if !aliases {
			return nil, kmserr.New(kmserr.NotFound, "Invalid keyId %s", v)
		}
		a, err := s.readAlias(r.Region, ref.alias)
		if err != nil {
			return nil, err
		}
		id = a.KeyID
	}
	k, err := s.readKey(r.Region, id)
	if err != nil {
		return nil, err
	}
	r.KeyARN = k.Arn()
	if err := s.authorizeKey(r, member, k, ref.alias); err != nil {
		return nil, err
	}
	return k, refuseStoreOp(r, k)
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// usable is AWS's key-state rule for using a key in a cryptographic
// operation: enabled, or the exception its state gives.
func usable(k *state.KMSKey) error {
	switch k.State {
	case state.KMSEnabled:
		return nil
	case state.KMSDisabled:
		return kmserr.New(kmserr.Disabled, "%s is disabled.", k.Arn())
	case state.KMSPendingDeletion:
		return kmserr.New(kmserr.InvalidState, "%s is pending deletion.", k.Arn())
	case state.KMSPendingImport:
		return kmserr.New(kmserr.InvalidState, "%s is pending import.", k.Arn())
	}
	return kmserr.New(kmserr.InvalidState, "%s is %s.", k.Arn(), k.State)
}

// usage refuses a key of another key usage for the operation.
func usage(k *state.KMSKey, want, op string) error {
	if k.KeyUsage != want {
		return kmserr.New(kmserr.InvalidKeyUsage, "%s key usage is %s which is not valid for %s.", k.Arn(), k.KeyUsage, op)
	}
	return nil
}

// ---- metadata ----

func algorithms(k *state.KMSKey) (enc, sig, mac []any) {
	switch {
	case k.KeySpec == "SYMMETRIC_DEFAULT":
		enc = []any{"SYMMETRIC_DEFAULT"}
	case strings.HasPrefix(k.KeySpec, "RSA_") && k.KeyUsage == "ENCRYPT_DECRYPT":
		enc = []any{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	case strings.HasPrefix(k.KeySpec, "RSA_"):
		sig = []any{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
			"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}
	case k.KeySpec == "ECC_NIST_P256" || k.KeySpec == "ECC_SECG_P256K1":
		sig = []any{"ECDSA_SHA_256"}
	case k.KeySpec == "ECC_NIST_P384":
		sig = []any{"ECDSA_SHA_384"}
	case k.KeySpec == "ECC_NIST_P521":
		sig = []any{"ECDSA_SHA_512"}
	case strings.HasPrefix(k.KeySpec, "HMAC_"):
		mac = []any{"HMAC_SHA_" + strings.TrimPrefix(k.KeySpec, "HMAC_")}
	case strings.HasPrefix(k.KeySpec, "ML_DSA_"):
		sig = []any{"ML_DSA_SHAKE_256"}
	}
	return
}

// asymmetric reports whether a key spec is a key pair (GetPublicKey's
// keys).
func asymmetric(spec string) bool {
	return strings.HasPrefix(spec, "RSA_") || strings.HasPrefix(spec, "ECC_") || strings.HasPrefix(spec, "ML_DSA_")
}

// cmkSpec reports whether a key spec is a value of the deprecated
// CustomerMasterKeySpec, which the model's enum never extended to the
// newer specs (ML_DSA_*): those keys' answers leave that member out.
func cmkSpec(spec string) bool {
	sh, ok := model.LookupShape("CustomerMasterKeySpec")
	return ok && slices.Contains(sh.Enum, spec)
}

func unix(t int64) time.Time { return time.Unix(t, 0).UTC() }

// metadata is a key's KeyMetadata.
func (s *Service) metadata(k *state.KMSKey) model.Object {
	m := model.Object{
		"AWSAccountId": k.Account,
		"KeyId":        k.ID,
		"Arn":          k.Arn(),
		"CreationDate": unix(k.Created),
		"Enabled":      k.State == state.KMSEnabled,
		"Description":  k.Description,
		"KeyUsage":     k.KeyUsage,
		"KeyState":     k.State,
		"Origin":       k.Origin,
		"KeyManager":   "CUSTOMER",
		"KeySpec":      k.KeySpec,
		"MultiRegion":  false,
	}
	if cmkSpec(k.KeySpec) {
		m["CustomerMasterKeySpec"] = k.KeySpec
	}
	s.storeMetadata(k, m)
	if k.State == state.KMSPendingDeletion {
		m["DeletionDate"] = unix(k.DeletionDate)
		m["PendingDeletionWindowInDays"] = int64(k.PendingDays)
	}
	if k.Origin == state.KMSOriginExternal && k.MaterialMAC != nil {
		if k.MaterialExpires != 0 {
			m["ExpirationModel"] = "KEY_MATERIAL_EXPIRES"
			m["ValidTo"] = unix(k.MaterialExpires)
		} else {
			m["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
		}
	}
	if k.CustomKeyStoreID != "" {
		m["CustomKeyStoreId"] = k.CustomKeyStoreID
	}
	if k.XksKeyID != "" {
		m["XksKeyConfiguration"] = model.Object{"Id": k.XksKeyID}
	}
	enc, sig, mac := algorithms(k)
	if enc != nil {
		m["EncryptionAlgorithms"] = enc
	}
	if sig != nil {
		m["SigningAlgorithms"] = sig
	}
	if mac != nil {
		m["MacAlgorithms"] = mac
	}
	return m
}

// DefaultPolicy is AWS's default key policy, key-default-1: the account's
// root (and so, through identity policies, its principals) may do
// everything with the key.
func DefaultPolicy(account string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + account + `:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}

// ---- operations ----

func tagsOf(in model.Object, member string) ([]state.KMSTag, error) {
	list, _ := in.List(member)
	var tags []state.KMSTag
	for _, e := range list {
		o, _ := e.(model.Object)
		key, _ := o.String("TagKey")
		val, _ := o.String("TagValue")
		tags = append(tags, state.KMSTag{Key: key, Value: val})
	}
	return tags, nil
}

func (s *Service) createKey(ctx context.Context, r *call.Request) (model.Object, error) {
	in := r.Input
	spec, ok := in.String("KeySpec")
	if cmk, ok2 := in.String("CustomerMasterKeySpec"); ok2 {
		if ok && cmk != spec {
			return nil, kmserr.New(kmserr.Validation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec instead.")
		}
		spec, ok = cmk, true
	}
	if !ok {
		spec = "SYMMETRIC_DEFAULT"
	}
	usages, known := state.KMSKeySpecs[spec]
	if !known {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "KeySpec %s is not supported by this service", spec)
	}
	use, ok := in.String("KeyUsage")
	if !ok {
		// AWS's default, whatever the spec: a key spec that cannot
		// encrypt needs its usage named.
		use = "ENCRYPT_DECRYPT"
	}
	if !slices.Contains(usages, use) {
		return nil, kmserr.New(kmserr.Validation, "KeyUsage %s is not compatible with KeySpec %s", use, spec)
	}
	origin, ok := in.String("Origin")
	if !ok {
		origin = state.KMSOriginKMS
	}
	var cks *state.KMSKeyStore // an AWS_CLOUDHSM store
	xksStore, inStore := "", false
	xksKeyID, hasXKS := in.String("XksKeyId")
	switch {
	case origin != state.KMSOriginExternalKS && hasXKS:
		return nil, kmserr.New(kmserr.Validation, "XksKeyId is valid only with Origin EXTERNAL_KEY_STORE")
	case origin == state.KMSOriginExternalKS:
		if xksStore, inStore = in.String("CustomKeyStoreId"); !inStore {
			return nil, kmserr.New(kmserr.Validation, "A key of Origin EXTERNAL_KEY_STORE needs a CustomKeyStoreId")
		}
		if !hasXKS {
			return nil, kmserr.New(kmserr.Validation, "A key of Origin EXTERNAL_KEY_STORE needs an XksKeyId")
		}
		if spec != "SYMMETRIC_DEFAULT" || use != "ENCRYPT_DECRYPT" {
			return nil, kmserr.New(kmserr.UnsupportedOperation, "Custom key stores hold only symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)")
		}
	}
	if id, ok := in.String("CustomKeyStoreId"); ok && origin != state.KMSOriginExternalKS {
		var err error
		if cks, err = s.checkStoreForKey(r, id, origin, spec, use); err != nil {
			return nil, err
		}
	} else if origin == state.KMSOriginCloudHSM {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "Origin AWS_CLOUDHSM needs a CustomKeyStoreId: a key of this origin is made in a custom key store")
	}
	if origin != state.KMSOriginKMS && origin != state.KMSOriginExternal && origin != state.KMSOriginExternalKS && cks == nil {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "Origin %s is not supported by this service", origin)
	}
	if origin == state.KMSOriginExternal && spec != "SYMMETRIC_DEFAULT" {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "This service imports key material into SYMMETRIC_DEFAULT keys only")
	}
	if multi, _ := in.Bool("MultiRegion"); multi {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "Multi-Region keys are not supported by this service")
	}
	tags, err := tagsOf(in, "Tags")
	if err != nil {
		return nil, err
	}
	if err := state.CheckKMSTags(tags); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		// Tagging a key as it is made needs kms:TagResource in an identity
		// policy as well (AWS's "Permissions for tagging").
		a, err := s.accessOf(r)
		if err != nil {
			return nil, err
		}
		if err := s.authorizeIAM(r, a, "kms:TagResource", "*"); err != nil {
			return nil, err
		}
	}
	id, err := newKeyID()
	if err != nil {
		return nil, err
	}
	policy, ok := in.String("Policy")
	if !ok {
		policy = DefaultPolicy(s.account)
	} else if err := s.checkKeyPolicy(r, policy, s.keyArn(r.Region, id)); err != nil {
		return nil, err
	}
	desc, _ := in.String("Description")
	k := &state.KMSKey{ID: id, Region: r.Region, Account: s.account, Description: desc, KeySpec: spec, KeyUsage: use,
		Origin: origin, Tags: tags, Policy: policy}
	c := &state.Command{Op: state.OpKMSCreateKey, KMS: &state.KMSCommand{Principal: r.Principal, Region: r.Region, Key: k}}
	if origin == state.KMSOriginExternalKS {
		k.CustomKeyStoreID, k.XksKeyID = xksStore, xksKeyID
		if err := s.prepareXKSKey(ctx, r, k); err != nil {
			return nil, err
		}
	}
	if origin == state.KMSOriginKMS || origin == state.KMSOriginExternalKS {
		if c.Objects, err = s.keys.NewVersion(id, spec, use); err != nil {
			return nil, err
		}
	}
	if cks != nil {
		k.CustomKeyStoreID = cks.ID
		undo, err := s.newStoreKey(ctx, cks, id)
		if err != nil {
			return nil, err
		}
		if err := s.submit(ctx, c); err != nil {
			undo()
			return nil, err
		}
	} else if err := s.submit(ctx, c); err != nil {
		return nil, err
	}
	r.KeyARN = k.Arn()
	nk, err := s.readKey(r.Region, id)
	if err != nil {
		return nil, err
	}
	return model.Object{"KeyMetadata": s.metadata(nk)}, nil
}

func (s *Service) describeKey(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", true)
	if err != nil {
		return nil, err
	}
	return model.Object{"KeyMetadata": s.metadata(k)}, nil
}

// page reads the Limit and Marker of a list request; limit is AWS's
// default of 100 when absent.
func page(in model.Object) (limit int, marker string) {
	limit = 100
	if l, ok := in.Int("Limit"); ok {
		limit = int(l)
	}
	marker, _ = in.String("Marker")
	return limit, marker
}

// listPage answers a page of items with AWS's NextMarker and Truncated.
func listPage(member string, items []any, more bool, next string) model.Object {
	if items == nil {
		items = []any{}
	}
	out := model.Object{member: items, "Truncated": more}
	if more {
		out["NextMarker"] = next
	}
	return out
}

func (s *Service) listKeys(_ context.Context, r *call.Request) (model.Object, error) {
	limit, marker := page(r.Input)
	prefix := state.KMSKeyPrefix + r.Region + "/"
	after := ""
	if marker != "" {
		if !isUUID(marker) {
			return nil, kmserr.New(kmserr.InvalidMarker, "Invalid marker")
		}
		after = prefix + marker
	}
	rows, err := s.store.MetaScan(prefix, after, limit+1)
	if err != nil {
		return nil, err
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	var items []any
	var last string
	for _, row := range rows {
		id := strings.TrimPrefix(row.Key, prefix)
		items = append(items, model.Object{"KeyId": id, "KeyArn": s.keyArn(r.Region, id)})
		last = id
	}
	return listPage("Keys", items, more, last), nil
}

// change submits a kms_update_key and answers with the key's ID, ARN and
// metadata as the operation needs.
func (s *Service) change(ctx context.Context, r *call.Request, k *state.KMSKey, kc *state.KMSCommand) error {
	kc.Principal, kc.Region, kc.KeyID = r.Principal, k.Region, k.ID
	return s.submit(ctx, &state.Command{Op: state.OpKMSUpdateKey, KMS: kc})
}

func (s *Service) simpleChange(ctx context.Context, r *call.Request, change string) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	return model.Object{}, s.change(ctx, r, k, &state.KMSCommand{Change: change})
}

func (s *Service) enableKey(ctx context.Context, r *call.Request) (model.Object, error) {
	return s.simpleChange(ctx, r, state.KMSChangeEnable)
}

func (s *Service) disableKey(ctx context.Context, r *call.Request) (model.Object, error) {
	return s.simpleChange(ctx, r, state.KMSChangeDisable)
}

func (s *Service) updateKeyDescription(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	desc, _ := r.Input.String("Description")
	return model.Object{}, s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangeDescription, Description: desc})
}

func (s *Service) scheduleKeyDeletion(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	days := int64(30)
	if d, ok := r.Input.Int("PendingWindowInDays"); ok {
		days = d
	}
	if days < state.KMSMinPendingDays || days > state.KMSMaxPendingDays {
		return nil, kmserr.New(kmserr.Validation, "1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between %d and %d", days, state.KMSMinPendingDays, state.KMSMaxPendingDays)
	}
	if err := s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangeSchedule, Days: int(days)}); err != nil {
		return nil, err
	}
	nk, err := s.readKey(k.Region, k.ID)
	if err != nil {
		return nil, err
	}
	return model.Object{"KeyId": nk.Arn(), "DeletionDate": unix(nk.DeletionDate), "KeyState": nk.State,
		"PendingWindowInDays": int64(nk.PendingDays)}, nil
}

func (s *Service) cancelKeyDeletion(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if err := s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangeCancel}); err != nil {
		return nil, err
	}
	return model.Object{"KeyId": k.Arn()}, nil
}

func (s *Service) enableKeyRotation(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	days := int64(365)
	if d, ok := r.Input.Int("RotationPeriodInDays"); ok {
		days = d
	}
	return model.Object{}, s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangeEnableRotation, Days: int(days)})
}

func (s *Service) disableKeyRotation(ctx context.Context, r *call.Request) (model.Object, error) {
	return s.simpleChange(ctx, r, state.KMSChangeDisableRotation)
}

func (s *Service) getKeyRotationStatus(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if !k.Rotates() {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s does not support automatic key rotation", k.Arn())
	}
	out := model.Object{"KeyId": k.Arn(), "KeyRotationEnabled": k.RotationDays > 0}
	if k.RotationDays > 0 {
		out["RotationPeriodInDays"] = int64(k.RotationDays)
		out["NextRotationDate"] = unix(k.NextRotation)
	}
	return out, nil
}

func (s *Service) rotateKeyOnDemand(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if err := s.rotate(ctx, k, r.Principal); err != nil {
		return nil, err
	}
	return model.Object{"KeyId": k.ID}, nil
}

// rotate adds a backing key: on demand for a principal, scheduled for "".
func (s *Service) rotate(ctx context.Context, k *state.KMSKey, principal string) error {
	if !k.Rotates() {
		return kmserr.New(kmserr.UnsupportedOperation, "%s does not support key rotation", k.Arn())
	}
	objs, err := s.keys.NewVersion(k.ID, k.KeySpec, k.KeyUsage)
	if err != nil {
		return err
	}
	return s.submit(ctx, &state.Command{Op: state.OpKMSRotateKey, Objects: objs,
		KMS: &state.KMSCommand{Principal: principal, Region: k.Region, KeyID: k.ID}})
}

func (s *Service) listKeyRotations(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if !k.Rotates() {
		return nil, kmserr.New(kmserr.UnsupportedOperation, "%s does not support key rotation", k.Arn())
	}
	limit, marker := page(r.Input)
	start := 0
	if marker != "" {
		if _, err := fmt.Sscanf(marker, "%d", &start); err != nil || start < 0 {
			return nil, kmserr.New(kmserr.InvalidMarker, "Invalid marker")
		}
	}
	var items []any
	rotations := k.Versions[1:]
	for i := start; i < len(rotations) && len(items) < limit; i++ {
		v := rotations[i]
		items = append(items, model.Object{"KeyId": k.ID, "RotationDate": unix(v.Created), "RotationType": v.Rotation})
	}
	end := start + len(items)
	return listPage("Rotations", items, end < len(rotations), fmt.Sprint(end)), nil
}

func (s *Service) policyName(r *call.Request) (string, error) {
	name, ok := r.Input.String("PolicyName")
	if !ok {
		name = "default"
	}
	if name != "default" {
		return "", kmserr.New(kmserr.NotFound, "No such policy exists")
	}
	return name, nil
}

func (s *Service) getKeyPolicy(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	name, err := s.policyName(r)
	if err != nil {
		return nil, err
	}
	return model.Object{"Policy": k.Policy, "PolicyName": name}, nil
}

func (s *Service) putKeyPolicy(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	if _, err := s.policyName(r); err != nil {
		return nil, err
	}
	policy, _ := r.Input.String("Policy")
	if err := s.checkKeyPolicy(r, policy, k.Arn()); err != nil {
		return nil, err
	}
	return model.Object{}, s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangePolicy, Policy: policy})
}

func (s *Service) listKeyPolicies(_ context.Context, r *call.Request) (model.Object, error) {
	if _, err := s.key(r, "KeyId", false); err != nil {
		return nil, err
	}
	return listPage("PolicyNames", []any{"default"}, false, ""), nil
}

func (s *Service) tagResource(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	tags, err := tagsOf(r.Input, "Tags")
	if err != nil {
		return nil, err
	}
	if err := state.CheckKMSTags(tags); err != nil {
		return nil, err
	}
	return model.Object{}, s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangeTag, Tags: tags})
}

func (s *Service) untagResource(ctx context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	keys, _ := r.Input.Strings("TagKeys")
	return model.Object{}, s.change(ctx, r, k, &state.KMSCommand{Change: state.KMSChangeUntag, TagKeys: keys})
}

func (s *Service) listResourceTags(_ context.Context, r *call.Request) (model.Object, error) {
	k, err := s.key(r, "KeyId", false)
	if err != nil {
		return nil, err
	}
	limit, marker := page(r.Input)
	start := 0
	if marker != "" {
		if _, err := fmt.Sscanf(marker, "%d", &start); err != nil || start < 0 {
			return nil, kmserr.New(kmserr.InvalidMarker, "Invalid marker")
		}
	}
	tags := slices.Clone(k.Tags)
	slices.SortFunc(tags, func(a, b state.KMSTag) int { return strings.Compare(a.Key, b.Key) })
	var items []any
	for i := start; i < len(tags) && len(items) < limit; i++ {
		items = append(items, model.Object{"TagKey": tags[i].Key, "TagValue": tags[i].Value})
	}
	end := start + len(items)
	return listPage("Tags", items, end < len(tags), fmt.Sprint(end)), nil
}

// checkKeyPolicy parses a new key policy (MalformedPolicyDocumentException
// naming the problem) and, unless the request sets
// BypassPolicyLockoutSafetyCheck, runs AWS's lockout safety check for the
// caller on the key.
func (s *Service) checkKeyPolicy(r *call.Request, doc, keyArn string) error {
	p, err := kmspolicy.ParseKeyPolicy(doc)
	if err != nil {
		return kmserr.New(kmserr.MalformedPolicy, "%s", err.Error())
	}
	if bypass, _ := r.Input.Bool("BypassPolicyLockoutSafetyCheck"); bypass {
		return nil
	}
	caller := kmspolicy.Request{Principal: s.PrincipalArn(r.Principal), Account: s.account, Resource: keyArn}
	if err := kmspolicy.LockoutCheck(p, caller); err != nil {
		return kmserr.New(kmserr.MalformedPolicy, "%s", err.Error())
	}
	return nil
}
