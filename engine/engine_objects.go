package engine

import (
	"bytes"
	"context"
	"crypto/sha1"
	"sort"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// CreateObject imports an object: data, certificate, or a key given in the
// clear (C_CreateObject).
func (e *Engine) CreateObject(ctx context.Context, c Caller, tmpl object.Template) (uint64, error) {
	// The template's own errors come first, whoever asks (PKCS#11 puts
	// them before the login state: docs/pkcs11-library.md, "Before
	// login"); building the attributes costs nothing to refuse.
	if err := object.CheckTemplate("template", tmpl); err != nil {
		return 0, err
	}
	attrs, secrets, err := object.BuildAttrs(object.OpCreate, tmpl, 0, ^uint64(0))
	if err != nil {
		return 0, err
	}
	if err := object.Allowed(c.Role, object.ActCreate, object.RelNone); err != nil {
		return 0, err
	}
	n := newObj{obj: &object.Object{Attrs: attrs}}
	class, _ := attrs.Ulong(ck.CKA_CLASS)
	kt, _ := attrs.Ulong(ck.CKA_KEY_TYPE)
	switch class {
	case ck.CKO_DATA:
		n.material = secrets[ck.CKA_VALUE] // sealed like key material
	case ck.CKO_CERTIFICATE:
		sum := sha1.Sum(attrs[ck.CKA_VALUE])
		attrs[ck.CKA_CHECK_VALUE] = sum[:3]
	case ck.CKO_PUBLIC_KEY:
		pub, err := mech.PublicKeyFromAttrs(kt, attrs)
		if err != nil {
			return 0, err
		}
		_, pa, err := mech.PublicKeyAttrs(pub)
		if err != nil {
			return 0, err
		}
		if _, ok := attrs[ck.CKA_EC_POINT]; ok {
			delete(pa, ck.CKA_EC_POINT) // keep the caller's encoding
		}
		object.AddPublicAttrs(attrs, pa)
		n.key = &mech.Key{Class: class, KeyType: kt, Public: pub}
	case ck.CKO_PRIVATE_KEY:
		all := attrs.Clone()
		for t, v := range secrets {
			all[t] = v
		}
		priv, err := mech.PrivateKeyFromAttrs(kt, all)
		if err != nil {
			return 0, err
		}
		der, err := mech.MarshalPrivateKey(priv)
		if err != nil {
			return 0, err
		}
		_, pa, err := mech.PublicKeyAttrs(priv.Public())
		if err != nil {
			return 0, err
		}
		object.AddPublicAttrs(attrs, pa)
		n.material, n.key = der, &mech.Key{Class: class, KeyType: kt, Private: priv, Public: priv.Public()}
	case ck.CKO_SECRET_KEY:
		v := secrets[ck.CKA_VALUE]
		if err := mech.SecretKeyAttrs(attrs, v); err != nil {
			return 0, err
		}
		n.material, n.key = v, &mech.Key{Class: class, KeyType: kt, Secret: v}
	}
	ids, err := e.storeObjects(ctx, c, n)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// CopyObject copies an object with some attributes changed (C_CopyObject).
func (e *Engine) CopyObject(ctx context.Context, c Caller, id uint64, tmpl object.Template) (uint64, error) {
	if err := e.canCreate(c, tmpl); err != nil {
		return 0, err
	}
	o, so, err := e.lookup(c, id, object.ActExport)
	if err != nil {
		return 0, err
	}
	next, err := object.ApplySet(o.Attrs, tmpl, c.Role, true)
	if err != nil {
		return 0, err
	}
	m, err := e.material(o, so)
	if err != nil {
		return 0, err
	}
	if o.Class() == ck.CKO_DATA {
		m, err = e.dataValue(o, so)
		if err != nil {
			return 0, err
		}
		if v, given := object.FindAttr(tmpl, ck.CKA_VALUE); given {
			m = append([]byte{}, v...)
		}
		delete(next, ck.CKA_VALUE) // the copy's value is sealed, not kept in Attrs
	}
	delete(next, ck.CKA_UNIQUE_ID)
	// Trust is a crypto officer's word about one object; a crypto user's
	// copy is a new object and starts untrusted.
	if _, ok := next[ck.CKA_TRUSTED]; ok {
		next.SetBool(ck.CKA_TRUSTED, false)
	}
	n := newObj{obj: &object.Object{Attrs: next}, material: m}
	if next.Bool(ck.CKA_LOCAL) {
		n.local = true
		n.genMech, _ = next.Ulong(ck.CKA_KEY_GEN_MECHANISM)
		n.base = o.Attrs // keep ALWAYS_SENSITIVE / NEVER_EXTRACTABLE honest
	}
	ids, err := e.storeObjects(ctx, c, n)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// SetAttributes changes attributes (C_SetAttributeValue). A crypto officer
// may set CKA_TRUSTED on any key; an owner may change what the rules allow.
func (e *Engine) SetAttributes(ctx context.Context, c Caller, id uint64, tmpl object.Template) error {
	if err := object.CheckTemplate("template", tmpl); err != nil {
		return err
	}
	if r, ok := e.replayed(ctx, c, state.OpSetAttributes); ok {
		return r.Err()
	}
	act := object.ActModify
	if len(tmpl) > 0 && object.AllTrusted(tmpl) {
		act = object.ActSetTrusted
	}
	o, so, err := e.lookup(c, id, act)
	if err != nil {
		return err
	}
	next, err := object.ApplySet(o.Attrs, tmpl, c.Role, false)
	if err != nil {
		return err
	}
	// A data object's new value is sealed here, before the command (and so
	// the Raft log) holds it.
	value, newValue := object.FindAttr(tmpl, ck.CKA_VALUE)
	newValue = newValue && o.Class() == ck.CKO_DATA
	if newValue {
		delete(next, ck.CKA_VALUE)
	}
	if so != nil {
		e.sessMu.Lock()
		so.obj.Attrs = next
		if newValue {
			so.material = append([]byte{}, value...)
		}
		e.sessMu.Unlock()
		return nil
	}
	cmd := &state.Command{Op: state.OpSetAttributes, Actor: c.User, ObjectID: id, Changes: tmpl}
	if newValue {
		s, err := e.sealer()
		if err != nil {
			return err
		}
		if cmd.Sealed, err = s.Seal(o.ID, o.Owner, value); err != nil {
			return err
		}
		cmd.Changes = nil
		for _, a := range tmpl {
			if a.Type != ck.CKA_VALUE {
				cmd.Changes = append(cmd.Changes, a)
			}
		}
	}
	return e.submit(ctx, cmd)
}

// dataValue returns a data object's CKA_VALUE: unsealed, or as stored in
// clear by a version that did not seal it.
func (e *Engine) dataValue(o *object.Object, so *sessionObject) ([]byte, error) {
	if so != nil {
		return append([]byte{}, so.material...), nil
	}
	if o.Sealed == nil {
		return append([]byte{}, o.Attrs[ck.CKA_VALUE]...), nil
	}
	return e.material(o, nil)
}

// DestroyObject removes an object the caller owns.
func (e *Engine) DestroyObject(ctx context.Context, c Caller, id uint64) error {
	if r, ok := e.replayed(ctx, c, state.OpDestroyObject); ok {
		return r.Err()
	}
	o, so, err := e.lookup(c, id, object.ActDestroy)
	if err != nil {
		return err
	}
	if !o.Attrs.Bool(ck.CKA_DESTROYABLE) {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "the object is not destroyable")
	}
	if so != nil {
		e.sessMu.Lock()
		if e.sessObjs[id] == so {
			delete(e.sessObjs, id)
			e.uncount(so.session, 1)
			if so.public {
				e.uncountCert(so.cert, 1)
			}
		}
		e.sessMu.Unlock()
		return nil
	}
	return e.submit(ctx, &state.Command{Op: state.OpDestroyObject, Actor: c.User, ObjectID: id})
}

// Share lets another crypto user use a token key (share true) or stops it.
func (e *Engine) Share(ctx context.Context, c Caller, id uint64, user string, share bool) error {
	op := state.OpShare
	if !share {
		op = state.OpUnshare
	}
	if r, ok := e.replayed(ctx, c, op); ok {
		return r.Err()
	}
	_, so, err := e.lookup(c, id, object.ActShare)
	if err != nil {
		return err
	}
	if so != nil {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "session objects cannot be shared")
	}
	if err := state.ValidUserName(user); err != nil {
		return err
	}
	return e.submit(ctx, &state.Command{Op: op, Actor: c.User, ObjectID: id, Name: user})
}

// FindObjects returns the IDs of the objects the caller can see that match
// the template, session objects first, at most max of them (0: no limit).
func (e *Engine) FindObjects(c Caller, tmpl object.Template, max int) ([]uint64, error) {
	if err := object.CheckTemplate("template", tmpl); err != nil {
		return nil, err
	}
	if c.Role != object.RoleCO && c.Role != object.RoleCU && c.Role != object.RolePublic {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	want, ok, err := object.DecodeFindTemplate(tmpl)
	if err != nil || !ok {
		return nil, err
	}
	var ids []uint64
	if tok, given := want[ck.CKA_TOKEN]; !given || tok[0] == 0 {
		e.sessMu.Lock()
		for id, so := range e.sessObjs {
			if so.session == c.Session && so.obj.Owner == c.User && object.Matches(so.obj, want) {
				ids = append(ids, id)
			}
		}
		e.sessMu.Unlock()
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	}
	if tok, given := want[ck.CKA_TOKEN]; given && tok[0] == 0 {
		return limit(ids, max), nil
	}
	if c.Role == object.RolePublic && !e.PublicObjects() {
		return limit(ids, max), nil // the token's objects are not shown
	}
	q := state.Query{}
	if c.Role == object.RoleCU || c.Role == object.RolePublic {
		q.VisibleTo = c.User
	}
	if v, ok := want.Ulong(ck.CKA_CLASS); ok {
		q.Class = &v
	}
	if v, ok := want.Ulong(ck.CKA_KEY_TYPE); ok {
		q.KeyType = &v
	}
	if v, ok := want[ck.CKA_LABEL]; ok {
		q.Label = v
	}
	if v, ok := want[ck.CKA_ID]; ok {
		q.ID = v
	}
	objs, err := e.store.Find(q)
	if err != nil {
		return nil, err
	}
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if object.HiddenFrom(c.Role, object.ActRead, o) || c.Role == object.RolePublic && o.Owner != c.User {
			continue
		}
		if object.Matches(o, want) && s.CheckAttrMAC(o) {
			ids = append(ids, o.ID)
			if max > 0 && len(ids) >= max {
				break
			}
		}
	}
	return limit(ids, max), nil
}

func limit(ids []uint64, max int) []uint64 {
	if max > 0 && len(ids) > max {
		return ids[:max]
	}
	return ids
}

// ObjectInfo is an object as listing shows it.
type ObjectInfo struct {
	ID         uint64
	Owner      string
	Attrs      object.Attrs
	SharedWith []string
	Token      bool
}

// ListObjects returns the visible token objects that match tmpl, with their
// public attributes, for the admin CLI.
func (e *Engine) ListObjects(c Caller, tmpl object.Template, max int) ([]ObjectInfo, error) {
	ids, err := e.FindObjects(c, append(object.Template{{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}}, tmpl...), max)
	if err != nil {
		return nil, err
	}
	out := make([]ObjectInfo, 0, len(ids))
	for _, id := range ids {
		o, _, err := e.lookup(c, id, object.ActRead)
		if err != nil {
			continue // destroyed meanwhile
		}
		out = append(out, ObjectInfo{ID: o.ID, Owner: o.Owner, Attrs: o.Attrs.Clone(), SharedWith: o.SharedWith, Token: true})
	}
	return out, nil
}

// GetAttributes answers C_GetAttributeValue. A sensitive attribute is
// revealed only to the owner of an extractable, non-sensitive key.
func (e *Engine) GetAttributes(c Caller, id uint64, types []uint64) ([]object.AttrValue, error) {
	if len(types) > object.MaxTemplateAttrs*4 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "too many attributes asked for")
	}
	o, so, err := e.lookup(c, id, object.ActRead)
	if err != nil {
		return nil, err
	}
	var secretErr error
	secret := func(t uint64) ([]byte, bool) {
		if object.Allowed(c.Role, object.ActExport, relationFor(c, o, so)) != nil {
			return nil, false
		}
		k, err := e.keyOf(o, so)
		if err != nil {
			secretErr = err
			return nil, false
		}
		if k.Class == ck.CKO_SECRET_KEY {
			return k.Secret, t == ck.CKA_VALUE
		}
		return mech.PrivateKeyAttr(k.Private, t)
	}
	sealed := func(t uint64) ([]byte, bool) {
		if o.Class() != ck.CKO_DATA || t != ck.CKA_VALUE {
			return nil, false
		}
		v, err := e.dataValue(o, so)
		if err != nil {
			secretErr = err
			return nil, false
		}
		return v, true
	}
	out := object.ReadAttrs(o, types, secret, sealed)
	if secretErr != nil {
		return nil, secretErr
	}
	return out, nil
}

func relationFor(c Caller, o *object.Object, so *sessionObject) object.Relation {
	if so != nil {
		return object.RelOwner
	}
	if c.Role == object.RolePublic {
		// A public session reads a token object's public attributes,
		// never its secrets, whoever owns it.
		return object.RelStranger
	}
	return object.RelationOf(c.User, o)
}

// WrapKey encrypts a key under a wrapping key: a secret key's value, or a
// private key as PKCS#8.
func (e *Engine) WrapKey(c Caller, m mech.Mech, wrappingID, keyID uint64) ([]byte, error) {
	row, wk, wkey, err := e.useKey(c, wrappingID, m, opWrap)
	if err != nil {
		return nil, err
	}
	o, so, err := e.lookup(c, keyID, object.ActExport)
	if err != nil {
		if hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID) {
			err = hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "no such key")
		}
		return nil, err
	}
	if cl := o.Class(); cl != ck.CKO_SECRET_KEY && cl != ck.CKO_PRIVATE_KEY {
		return nil, hsmerr.Errorf(ck.CKR_KEY_NOT_WRAPPABLE, "only secret and private keys can be wrapped")
	}
	if !o.Attrs.Bool(ck.CKA_EXTRACTABLE) {
		return nil, hsmerr.Errorf(ck.CKR_KEY_UNEXTRACTABLE, "the key is not extractable")
	}
	if o.Attrs.Bool(ck.CKA_WRAP_WITH_TRUSTED) && !wk.Attrs.Bool(ck.CKA_TRUSTED) {
		return nil, hsmerr.Errorf(ck.CKR_KEY_NOT_WRAPPABLE, "the key may only be wrapped with a trusted key")
	}
	if err := object.CheckWrapUse(wk); err != nil {
		return nil, err
	}
	if err := checkWrapTemplate(wk, o); err != nil {
		return nil, err
	}
	if wk.Class() == ck.CKO_PUBLIC_KEY {
		if err := e.checkPublicWrap(c, wk); err != nil {
			return nil, err
		}
	}
	mat, err := e.material(o, so)
	if err != nil {
		return nil, err
	}
	return row.Encrypt(wkey, m, mat)
}

// UnwrapKey decrypts a wrapped key into a new object.
func (e *Engine) UnwrapKey(ctx context.Context, c Caller, m mech.Mech, unwrappingID uint64, wrapped []byte, tmpl object.Template) (uint64, error) {
	if err := e.canCreate(c, tmpl); err != nil {
		return 0, err
	}
	if err := mech.CheckData("wrapped key", wrapped); err != nil {
		return 0, err
	}
	row, uk, ukey, err := e.useKey(c, unwrappingID, m, opUnwrap)
	if err != nil {
		return 0, err
	}
	if err := object.CheckWrapUse(uk); err != nil {
		return 0, err
	}
	if tmpl, err = e.keyTemplate(c, uk, ck.CKA_UNWRAP_TEMPLATE, tmpl); err != nil {
		return 0, err
	}
	attrs, _, err := object.BuildAttrs(object.OpUnwrap, tmpl, 0, ^uint64(0))
	if err != nil {
		return 0, err
	}
	pt, err := row.Decrypt(ukey, m, wrapped)
	if err != nil {
		if hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_INVALID) || hsmerr.IsRV(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE) {
			return 0, hsmerr.Errorf(ck.CKR_WRAPPED_KEY_INVALID, "the wrapped key does not decrypt")
		}
		return 0, err
	}
	return e.importKey(ctx, c, attrs, pt, nil)
}

// importKey makes a secret or private key object from clear material that
// came from unwrap or derive.
func (e *Engine) importKey(ctx context.Context, c Caller, attrs object.Attrs, mat []byte, base object.Attrs) (uint64, error) {
	class, _ := attrs.Ulong(ck.CKA_CLASS)
	kt, _ := attrs.Ulong(ck.CKA_KEY_TYPE)
	n := newObj{obj: &object.Object{Attrs: attrs}, base: base}
	switch class {
	case ck.CKO_SECRET_KEY:
		if l, ok := attrs.Ulong(ck.CKA_VALUE_LEN); ok {
			if l == 0 || l > uint64(len(mat)) {
				return 0, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN does not fit the key material")
			}
			mat = mat[:l]
		}
		if err := mech.SecretKeyAttrs(attrs, mat); err != nil {
			return 0, hsmerr.Errorf(ck.CKR_WRAPPED_KEY_INVALID, "%v", err)
		}
		n.material, n.key = mat, &mech.Key{Class: class, KeyType: kt, Secret: mat}
	case ck.CKO_PRIVATE_KEY:
		got, priv, err := mech.ParsePrivateKey(mat)
		if err != nil {
			return 0, hsmerr.Errorf(ck.CKR_WRAPPED_KEY_INVALID, "the unwrapped data is not a PKCS#8 private key")
		}
		if got != kt {
			return 0, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "the unwrapped key is %s, the template says %s", ck.KeyTypeName(got), ck.KeyTypeName(kt))
		}
		_, pa, err := mech.PublicKeyAttrs(priv.Public())
		if err != nil {
			return 0, err
		}
		object.AddPublicAttrs(attrs, pa)
		n.material, n.key = mat, &mech.Key{Class: class, KeyType: kt, Private: priv, Public: priv.Public()}
	default:
		return 0, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "only secret and private keys can be unwrapped")
	}
	ids, err := e.storeObjects(ctx, c, n)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// secretKeyAttrs completes and checks the template of a key that a
// derivation or a key encapsulation makes: a secret key (CKO_SECRET_KEY
// and CKK_GENERIC_SECRET unless the template says otherwise); what names
// the maker in the error.
func secretKeyAttrs(tmpl object.Template, what string) (object.Attrs, error) {
	full := tmpl
	if _, ok := object.FindAttr(tmpl, ck.CKA_CLASS); !ok {
		full = append(object.Template{{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)}}, full...)
	}
	if _, ok := object.FindAttr(tmpl, ck.CKA_KEY_TYPE); !ok {
		full = append(object.Template{{Type: ck.CKA_KEY_TYPE, Value: object.EncodeUlong(ck.CKK_GENERIC_SECRET)}}, full...)
	}
	attrs, _, err := object.BuildAttrs(object.OpDerive, full, 0, ^uint64(0))
	if err != nil {
		return nil, err
	}
	if cl, _ := attrs.Ulong(ck.CKA_CLASS); cl != ck.CKO_SECRET_KEY {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s makes secret keys", what)
	}
	return attrs, nil
}

// DeriveKey derives a secret key from a base key (ECDH).
func (e *Engine) DeriveKey(ctx context.Context, c Caller, m mech.Mech, baseID uint64, tmpl object.Template) (uint64, error) {
	if err := e.canCreate(c, tmpl); err != nil {
		return 0, err
	}
	row, base, bkey, err := e.useKey(c, baseID, m, opDerive)
	if err != nil {
		return 0, err
	}
	if tmpl, err = e.keyTemplate(c, base, ck.CKA_DERIVE_TEMPLATE, tmpl); err != nil {
		return 0, err
	}
	if row.DeriveKDF != nil {
		return e.deriveKDF(ctx, c, row, m, base, bkey, tmpl)
	}
	attrs, err := secretKeyAttrs(tmpl, "derive")
	if err != nil {
		return 0, err
	}
	secret, err := row.Derive(bkey, m)
	if err != nil {
		return 0, err
	}
	return e.importKey(ctx, c, attrs, secret, base.Attrs)
}

// checkPublicWrap refuses to wrap under a public key whose private half the
// caller may use to decrypt: it would decrypt the wrapped key in clear (the
// Clulow attack across a key pair, which an imported copy of the public key
// could otherwise play; see usage.go).
func (e *Engine) checkPublicWrap(c Caller, pub *object.Object) error {
	info := pub.Attrs[ck.CKA_PUBLIC_KEY_INFO]
	if len(info) == 0 {
		return nil
	}
	decrypts := func(o *object.Object) bool {
		return o.Class() == ck.CKO_PRIVATE_KEY && o.Attrs.Bool(ck.CKA_DECRYPT) && !object.ValueKnown(o.Attrs) &&
			bytes.Equal(o.Attrs[ck.CKA_PUBLIC_KEY_INFO], info)
	}
	refuse := hsmerr.Errorf(ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "the wrapping key's private half may decrypt (CKA_DECRYPT): it could decrypt what it wraps")
	e.sessMu.Lock()
	for _, so := range e.sessObjs {
		if so.session == c.Session && so.obj.Owner == c.User && decrypts(so.obj) {
			e.sessMu.Unlock()
			return refuse
		}
	}
	e.sessMu.Unlock()
	class, kt := uint64(ck.CKO_PRIVATE_KEY), pub.KeyType()
	objs, err := e.store.Find(state.Query{VisibleTo: c.User, Class: &class, KeyType: &kt})
	if err != nil {
		return err
	}
	for _, o := range objs {
		if decrypts(o) {
			return refuse
		}
	}
	return nil
}

// Owned says whether the caller owns object id itself. A key shared with
// the caller is visible and usable, but another user's: a service that
// finds its keys by label (the XKS proxy, a custom key store) takes only
// its own, so that no other user can plant a key under its label.
func (e *Engine) Owned(c Caller, id uint64) (bool, error) {
	o, _, err := e.lookup(c, id, object.ActUse)
	if err != nil {
		return false, err
	}
	return o.Owner == c.User, nil
}
