package core

import (
	"context"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// Sessions before login (docs/pkcs11-library.md, "Before login").
//
// A token slot that no one has logged in to reaches the cluster through a
// public session: a daemon session opened with the client certificate
// alone (client.OpenPublic), one per slot, shared by the slot's sessions
// as a login is. Through it the slot's sessions find and read the token's
// public objects (when the cluster allows it) and make and use public
// session objects. The daemon decides what it may do; the library only
// chooses which of the slot's two daemon sessions a call goes to:
//
//	a handle of a public session object   -> the public session
//	anything else, while logged in        -> the login
//	anything else, not logged in          -> the public session
//
// Public session objects outlive C_Login and C_Logout (PKCS#11 keeps a
// public session's objects until its session closes) and go when the
// PKCS#11 session that made them closes, or with the slot's last session.
// The cluster slot has no token user, so it has no public session: there,
// as before, nothing is visible and everything needs a login.

// publicClient returns the slot's public session, opening it the first
// time. On the cluster slot it is CKR_USER_NOT_LOGGED_IN.
func (m *Module) publicClient(sl *slot) (*client.Client, error) {
	if sl.user == "" {
		return nil, errorf(ck.CKR_USER_NOT_LOGGED_IN, "log in first")
	}
	sl.mu.Lock()
	c := sl.pub
	sl.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := m.ctx()
	defer cancel()
	c, err := m.dial(ctx, m.cfg)
	if err != nil {
		return nil, errorf(ck.CKR_DEVICE_ERROR, "cannot reach the cluster: %v", err)
	}
	if err := c.OpenPublic(ctx, sl.user); err != nil {
		c.Close()
		return nil, err
	}
	sl.mu.Lock()
	if sl.pub != nil { // another thread opened one first
		won := sl.pub
		sl.mu.Unlock()
		closePublic(c)
		return won, nil
	}
	sl.pub = c
	sl.mu.Unlock()
	return c, nil
}

// clientFor is the daemon session a call about objs (0: none) goes to, by
// the table above: the public session if any of them is its object.
func (m *Module) clientFor(s *session, objs ...uint64) (*client.Client, error) {
	if c := s.slot.openClientFor(objs...); c != nil {
		return c, nil
	}
	return m.publicClient(s.slot)
}

// openClientFor is clientFor's choice among the daemon sessions the slot
// has open: the public session if any of objs is its object, else the
// login; nil if that one is not open.
func (sl *slot) openClientFor(objs ...uint64) *client.Client {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.pub != nil {
		for _, o := range objs {
			if o != 0 && sl.pubObjs[o] {
				return sl.pub
			}
		}
	}
	return sl.login
}

// publicKeyUse: before login a key is used only if it is a public session
// object, or a public key object the token shows (verifying and encrypting
// with it run here); any other key is CKR_USER_NOT_LOGGED_IN, as PKCS#11's
// C_*Init say of a key that needs a login.
func (m *Module) publicKeyUse(s *session, c *client.Client, key uint64) error {
	sl := s.slot
	if !sl.isPublicClient(c) || sl.isPublicObject(key) {
		return nil
	}
	if oi, err := m.objectInfo(sl, c, key); err == nil && oi.class == ck.CKO_PUBLIC_KEY && oi.public != nil {
		return nil
	}
	return errorf(ck.CKR_USER_NOT_LOGGED_IN, "log in to use this key")
}

// isPublicClient says whether c is the slot's public session.
func (sl *slot) isPublicClient(c *client.Client) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return c != nil && c == sl.pub
}

// notePublic records (add) or forgets a public session object's handle.
func (sl *slot) notePublic(id uint64, add bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if !add {
		delete(sl.pubObjs, id)
		return
	}
	if sl.pubObjs == nil {
		sl.pubObjs = map[uint64]bool{}
	}
	sl.pubObjs[id] = true
}

// isPublicObject says whether id is a public session object.
func (sl *slot) isPublicObject(id uint64) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.pubObjs[id]
}

// publicObjects lists the public session objects among ids.
func (sl *slot) publicObjects(ids []uint64) []uint64 {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	var out []uint64
	for _, id := range ids {
		if sl.pubObjs[id] {
			out = append(out, id)
		}
	}
	return out
}

// endPublic ends the slot's public session: the daemon drops its session
// objects with it.
func (sl *slot) endPublic() {
	sl.mu.Lock()
	c := sl.pub
	sl.pub, sl.pubObjs = nil, nil
	sl.mu.Unlock()
	if c != nil {
		closePublic(c)
	}
}

func closePublic(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c.Logout(ctx)
	cancel()
	c.Close()
}

// quietPublic turns the refusals of a public session that mean "nothing
// to show" (the token's user is locked or gone) into an empty answer for
// C_FindObjects*.
func quietPublic(err error) bool {
	rv := hsmerr.RV(err)
	return rv == ck.CKR_PIN_LOCKED || rv == ck.CKR_TOKEN_NOT_PRESENT || rv == ck.CKR_USER_NOT_LOGGED_IN
}

// pinFlags are the CKF_USER_PIN_* flags for a token's lockout counter:
// failed unproven attempts out of maxFailed, and the lock.
const maxFailedLogins = object.MaxFailedLogins

func pinFlags(failed int, locked bool) uint64 {
	var f uint64
	switch {
	case locked || failed >= maxFailedLogins:
		f |= ck.CKF_USER_PIN_LOCKED
	case failed == maxFailedLogins-1:
		f |= ck.CKF_USER_PIN_COUNT_LOW | ck.CKF_USER_PIN_FINAL_TRY
	case failed > 0:
		f |= ck.CKF_USER_PIN_COUNT_LOW
	}
	return f
}
