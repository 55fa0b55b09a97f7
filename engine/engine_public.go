package engine

import (
	"context"
	"errors"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// Public sessions (PKCS#11's sessions before C_Login) reach the engine as
// callers of role object.RolePublic: the token's user in User, a session of
// their own, and the client certificate in Cert. What they may do:
//
//   - read the token user's own public token objects (CKA_PRIVATE false),
//     their non-secret attributes only, while the cluster setting
//     public_objects is on (state.SettingPublicObjects);
//   - make public session objects (CKA_TOKEN false, CKA_PRIVATE false) and
//     use, read, change, copy and destroy them, up to the bounds below;
//   - nothing else: no token object is made, changed, used or destroyed.

// The bounds on public sessions' objects on a node. A login session's
// bound (DefaultSessionObjects) is for someone who knows a password; these
// are what a client certificate alone can make a node hold.
const (
	DefaultPublicSessionObjects = 64
	DefaultPublicObjectsPerCert = 1024
)

type publicLimits struct{ perSession, perCert int }

func newPublicLimits(o Options) publicLimits {
	l := publicLimits{perSession: o.PublicSessionObjects, perCert: o.PublicObjectsPerCert}
	if l.perSession < 1 {
		l.perSession = DefaultPublicSessionObjects
	}
	if l.perCert < 1 {
		l.perCert = DefaultPublicObjectsPerCert
	}
	return l
}

// reserve counts n new session objects of c's session, refusing them past
// the session's bound or, for a public session, the certificate's. sessMu
// is held.
func (e *Engine) reserve(c Caller, n int) error {
	if c.Role != object.RolePublic {
		if e.sessCount[c.Session]+n > e.sessLimit {
			return hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "%s (%d per login session)", sessionObjectLimit, e.sessLimit)
		}
		e.sessCount[c.Session] += n
		return nil
	}
	if e.sessCount[c.Session]+n > e.pubLimits.perSession {
		return hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "%s (%d per public session)", sessionObjectLimit, e.pubLimits.perSession)
	}
	if e.pubCount[c.Cert]+n > e.pubLimits.perCert {
		return hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "%s (%d per client certificate in public sessions on a node)", sessionObjectLimit, e.pubLimits.perCert)
	}
	e.sessCount[c.Session] += n
	e.pubCount[c.Cert] += n
	return nil
}

// uncountCert gives back n of a certificate's public object slots; sessMu
// is held.
func (e *Engine) uncountCert(cert [32]byte, n int) {
	if e.pubCount[cert] <= n {
		delete(e.pubCount, cert)
		return
	}
	e.pubCount[cert] -= n
}

// PublicObjectCount is how many public session objects a client
// certificate holds on this node (for tests and metrics).
func (e *Engine) PublicObjectCount(cert [32]byte) int {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	return e.pubCount[cert]
}

// checkPublicObjects refuses, for a public session, any object that would
// be a token object or private: those need a login.
func checkPublicObjects(objs []newObj) error {
	for _, n := range objs {
		switch {
		case n.obj.Attrs.Bool(ck.CKA_TOKEN):
			return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "token objects need a login")
		case n.obj.Attrs.Bool(ck.CKA_PRIVATE):
			return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "private objects need a login (set CKA_PRIVATE false for a public session object)")
		}
	}
	return nil
}

// publicSees says whether a public session may take act on token object o
// (HiddenFrom has already hidden the private ones): only reading, only the
// token user's own objects, only while the setting is on.
func (e *Engine) publicSees(c Caller, o *object.Object, act object.Action) bool {
	return act == object.ActRead && o.Owner == c.User && e.PublicObjects()
}

// PublicObjects says whether public sessions may see the tokens' public
// objects: the cluster setting public_objects, on unless an officer turned
// it off.
func (e *Engine) PublicObjects() bool {
	v, err := state.Setting(e.store.Meta, state.SettingPublicObjects)
	return err == nil && v == "on"
}

// Settings returns every cluster setting with its value (defaults
// included). Any logged-in user may read them.
func (e *Engine) Settings(c Caller) (map[string]string, error) {
	if c.Role != object.RoleCO && c.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	out := map[string]string{}
	for _, name := range state.SettingNames() {
		v, err := state.Setting(e.store.Meta, name)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// SetSetting changes a cluster setting, through the log so every node
// agrees. Only a crypto officer may.
func (e *Engine) SetSetting(ctx context.Context, c Caller, name, value string) error {
	if err := object.Allowed(c.Role, object.ActManageUsers, object.RelNone); err != nil {
		return err
	}
	if err := state.CheckSetting(name, value); err != nil {
		return err
	}
	return e.submit(ctx, &state.Command{Op: state.OpSetSetting, Actor: c.User, Role: c.Role, Name: name, Value: value})
}

// TokenUser returns the crypto user whose token a public session opens:
// CKR_TOKEN_NOT_PRESENT for anyone else (an officer has no token).
func (e *Engine) TokenUser(name string) (*object.User, error) {
	u, err := e.user(name)
	if errors.Is(err, state.ErrNotFound) || err == nil && u.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_TOKEN_NOT_PRESENT, "no token %q", name)
	}
	if err != nil {
		return nil, err
	}
	if u.Locked || u.FailedLogins >= object.MaxFailedLogins {
		return nil, hsmerr.Errorf(ck.CKR_PIN_LOCKED, "the token's user is locked")
	}
	return u, nil
}
