package core

import (
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// maxAttrsPerCall is how many attributes the daemon answers in one call.
const maxAttrsPerCall = 4 * object.MaxTemplateAttrs

// toCanonical converts a caller's template from host order to the canonical
// encoding (object.Kind): CK_ULONGs become big-endian. Attributes the HSM
// does not know pass as they are, for the daemon to refuse.
func toCanonical(t []Attr) (object.Template, error) {
	out := make(object.Template, 0, len(t))
	for _, a := range t {
		if a.Null {
			if len(a.Value) == 0 {
				out = append(out, object.Attribute{Type: a.Type, Value: nil})
				continue
			}
		}
		k, _ := object.AttrKind(a.Type)
		v := a.Value
		switch k {
		case object.KindTemplate:
			c, err := templateToCanonical(a.Type, v)
			if err != nil {
				return nil, err
			}
			v = c
		case object.KindUlong:
			if len(v) != 8 {
				return nil, errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be a CK_ULONG", ck.AttrName(a.Type))
			}
			v = binary.BigEndian.AppendUint64(nil, binary.NativeEndian.Uint64(v))
		case object.KindMechs:
			if len(v)%8 != 0 {
				return nil, errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s must be a CK_MECHANISM_TYPE array", ck.AttrName(a.Type))
			}
			c := make([]byte, len(v))
			for i := 0; i < len(v); i += 8 {
				binary.BigEndian.PutUint64(c[i:], binary.NativeEndian.Uint64(v[i:]))
			}
			v = c
		case object.KindBool:
			if len(v) == 1 && v[0] > 1 {
				v = []byte{1} // CK_TRUE is any non-zero byte to most callers
			}
		}
		out = append(out, object.Attribute{Type: a.Type, Value: append([]byte{}, v...)})
	}
	return out, nil
}

// toHost converts a canonical value back to host order.
func toHost(t uint64, v []byte) []byte {
	k, _ := object.AttrKind(t)
	switch k {
	case object.KindUlong:
		if len(v) == 8 {
			return binary.NativeEndian.AppendUint64(nil, binary.BigEndian.Uint64(v))
		}
	case object.KindMechs:
		c := make([]byte, len(v)-len(v)%8)
		for i := 0; i+8 <= len(v); i += 8 {
			binary.NativeEndian.PutUint64(c[i:], binary.BigEndian.Uint64(v[i:]))
		}
		return c
	}
	return v
}

func tokenAttr(t object.Template) bool {
	for _, a := range t {
		if a.Type == ck.CKA_TOKEN && len(a.Value) == 1 && a.Value[0] != 0 {
			return true
		}
	}
	return false
}

// forObject checks the session and template before a call that makes an
// object (a token object needs a read-write session), then picks the
// daemon session (clientFor, obj: the object the call starts from, if
// any). A template error comes first, whatever the login state; a public
// session's limits are the daemon's to answer (CKR_USER_NOT_LOGGED_IN for
// a token or private object), after its own template checks.
func (m *Module) forObject(h uint64, t []Attr, obj ...uint64) (*session, *client.Client, object.Template, error) {
	s, err := m.session(h)
	if err != nil {
		return nil, nil, nil, err
	}
	ct, err := toCanonical(t)
	if err != nil {
		return nil, nil, nil, err
	}
	if tokenAttr(ct) && !s.rw {
		return nil, nil, nil, errorf(ck.CKR_SESSION_READ_ONLY, "token objects need a read-write session")
	}
	c, err := m.clientFor(s, obj...)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, c, ct, nil
}

// made records a new session object, to destroy when the session closes;
// c is the daemon session that made it.
func (s *session) made(id uint64, t object.Template, c *client.Client) {
	if !tokenAttr(t) {
		s.mu.Lock()
		if s.objects != nil {
			s.objects[id] = true
		}
		s.mu.Unlock()
		if s.slot.isPublicClient(c) {
			s.slot.notePublic(id, true)
		}
	}
}

// CreateObject is C_CreateObject.
func (m *Module) CreateObject(h uint64, t []Attr) (uint64, error) {
	s, c, ct, err := m.forObject(h, t)
	if hsmerr.RV(err) == ck.CKR_USER_NOT_LOGGED_IN {
		// No daemon session to ask (the cluster slot before login): the
		// template's own errors still come first.
		if ct, cerr := toCanonical(t); cerr == nil {
			if _, _, berr := object.BuildAttrs(object.OpCreate, ct, 0, ^uint64(0)); berr != nil {
				return 0, berr
			}
		}
	}
	if err != nil {
		return 0, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	id, err := c.CreateObject(ctx, ct)
	if err != nil {
		return 0, err
	}
	s.made(id, ct, c)
	return id, nil
}

// CopyObject is C_CopyObject.
func (m *Module) CopyObject(h, obj uint64, t []Attr) (uint64, error) {
	s, c, ct, err := m.forObject(h, t, obj)
	if err != nil {
		return 0, err
	}
	if obj == 0 {
		return 0, errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no object 0")
	}
	ctx, cancel := m.ctx()
	defer cancel()
	id, err := c.CopyObject(ctx, obj, ct)
	if err != nil {
		return 0, err
	}
	s.made(id, ct, c)
	return id, nil
}

// DestroyObject is C_DestroyObject.
func (m *Module) DestroyObject(h, obj uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	c, err := m.clientFor(s, obj)
	if err != nil {
		return err
	}
	if obj == 0 {
		return errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no object 0")
	}
	if err := m.checkWritable(s, c, obj); err != nil {
		return err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	if err := c.DestroyObject(ctx, obj); err != nil {
		return err
	}
	s.slot.info.forget(obj)
	s.slot.notePublic(obj, false)
	s.mu.Lock()
	delete(s.objects, obj)
	s.mu.Unlock()
	return nil
}

// GetObjectSize says the size is not available, once the object is known.
func (m *Module) GetObjectSize(h, obj uint64) (uint64, error) {
	vs, err := m.GetAttributeValue(h, obj, []AttrReq{{Type: ck.CKA_CLASS}})
	if err != nil && len(vs) == 0 {
		return 0, err
	}
	return unavailable, nil
}

// GetAttributeValue is C_GetAttributeValue, with the two-call rule per
// attribute.
func (m *Module) GetAttributeValue(h, obj uint64, req []AttrReq) ([]AttrResp, error) {
	s, err := m.session(h)
	if err != nil {
		return nil, err
	}
	if obj == 0 {
		return nil, errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	}
	c, err := m.clientFor(s, obj)
	if hsmerr.RV(err) == ck.CKR_USER_NOT_LOGGED_IN {
		// The cluster slot before login: nothing is visible.
		return nil, errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	}
	if err != nil {
		return nil, err
	}
	if len(req) == 0 {
		return nil, nil
	}
	types := make([]uint64, len(req))
	for i, r := range req {
		types[i] = r.Type
	}
	ctx, cancel := m.ctx()
	defer cancel()
	// The daemon answers at most maxAttrsPerCall at a time.
	var vals []object.AttrValue
	for len(types) > 0 {
		n := min(len(types), maxAttrsPerCall)
		part, err := c.GetAttributes(ctx, obj, types[:n])
		if err != nil {
			return nil, err
		}
		vals = append(vals, part...)
		types = types[n:]
	}
	if len(vals) != len(req) {
		return nil, errorf(ck.CKR_DEVICE_ERROR, "the daemon answered %d attributes for %d", len(vals), len(req))
	}
	out := make([]AttrResp, len(req))
	var rv uint64 = ck.CKR_OK
	for i, r := range req {
		v := vals[i]
		if v.RV == ck.CKR_OK && object.IsTemplateAttr(r.Type) {
			var arv uint64
			out[i], arv = arrayAttr(r, v.Value)
			if arv != ck.CKR_OK && rv == ck.CKR_OK {
				rv = arv
			}
			continue
		}
		switch {
		case v.RV != ck.CKR_OK:
			out[i].Len = unavailable
			if rv == ck.CKR_OK || v.RV == ck.CKR_ATTRIBUTE_SENSITIVE {
				rv = v.RV
			}
		default:
			hv := toHost(r.Type, v.Value)
			switch {
			case !r.Present:
				out[i].Len = uint64(len(hv))
			case r.Cap < uint64(len(hv)):
				out[i].Len = unavailable
				if rv == ck.CKR_OK {
					rv = ck.CKR_BUFFER_TOO_SMALL
				}
			default:
				out[i].Len = uint64(len(hv))
				out[i].Data = append([]byte{}, hv...)
			}
		}
	}
	if rv != ck.CKR_OK {
		return out, errorf(rv, "")
	}
	return out, nil
}

// SetAttributeValue is C_SetAttributeValue.
func (m *Module) SetAttributeValue(h, obj uint64, t []Attr) error {
	s, c, ct, err := m.forObject(h, t, obj)
	if err != nil {
		return err
	}
	if obj == 0 {
		return errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no object 0")
	}
	if err := m.checkWritable(s, c, obj); err != nil {
		return err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	defer s.slot.info.forget(obj)
	return c.SetAttributes(ctx, obj, ct)
}

// FindObjectsInit runs the search at once and keeps the result.
func (m *Module) FindObjectsInit(h uint64, t []Attr) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	s.mu.Lock()
	active := s.finding
	s.mu.Unlock()
	if active {
		return errorf(ck.CKR_OPERATION_ACTIVE, "a search is active")
	}
	ct, err := toCanonical(t)
	if err != nil {
		return err
	}
	ids, err := m.find(s, ct)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.find, s.finding = ids, true
	s.mu.Unlock()
	return nil
}

// FindObjects returns up to max handles.
func (m *Module) FindObjects(h uint64, max uint64) ([]uint64, error) {
	s, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finding {
		return nil, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no search is active")
	}
	n := uint64(len(s.find))
	if max < n {
		n = max
	}
	out := append([]uint64{}, s.find[:n]...)
	s.find = s.find[n:]
	return out, nil
}

// FindObjectsFinal ends the search.
func (m *Module) FindObjectsFinal(h uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finding {
		return errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no search is active")
	}
	s.find, s.finding = nil, false
	return nil
}

// find runs a search through the slot's daemon sessions: the login's, plus
// the public session objects made before it; or, not logged in, the public
// session's (the token's public objects and its own session objects). The
// cluster slot shows nothing before login; neither does a token whose
// user is locked or gone.
func (m *Module) find(s *session, ct object.Template) ([]uint64, error) {
	sl := s.slot
	sl.mu.Lock()
	login, pub := sl.login, sl.pub
	sl.mu.Unlock()
	search := func(c *client.Client) ([]uint64, error) {
		ctx, cancel := m.ctx()
		defer cancel()
		ids, err := c.FindObjects(ctx, ct, 0)
		if hsmerr.RV(err) == ck.CKR_ATTRIBUTE_VALUE_INVALID || hsmerr.RV(err) == ck.CKR_ARGUMENTS_BAD {
			return nil, errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%v", err)
		}
		return ids, err
	}
	if login != nil {
		ids, err := search(login)
		if err != nil || pub == nil {
			return ids, err
		}
		more, err := search(pub)
		if err != nil {
			return ids, nil // the public session lapsed: its objects are gone
		}
		return append(ids, sl.publicObjects(more)...), nil
	}
	if sl.user == "" {
		return nil, nil
	}
	c, err := m.publicClient(sl)
	if err == nil {
		var ids []uint64
		ids, err = search(c)
		if err == nil {
			return ids, nil
		}
	}
	if quietPublic(err) {
		return nil, nil
	}
	return nil, err
}
