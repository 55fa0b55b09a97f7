package core

import (
	"bytes"
	"errors"
	"strings"
	"sync"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/passwords"
)

// session is one PKCS#11 session. Its lock covers its operations; it is
// never held across a call that waits on another session.
type session struct {
	h    uint64
	slot *slot
	rw   bool

	mu      sync.Mutex
	ops     map[opKind]*operation
	find    []uint64 // handles left to return; nil when no search is active
	finding bool
	objects map[uint64]bool         // session objects this session made
	msgs    map[msgKind]*msgProcess // message processes (message.go); nil for none
}

// OpenSession opens a session on a slot.
func (m *Module) OpenSession(id, flags uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.slotByID(id)
	if err != nil {
		return 0, err
	}
	if flags&ck.CKF_SERIAL_SESSION == 0 {
		return 0, errorf(ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKF_SERIAL_SESSION must be set")
	}
	rw := flags&ck.CKF_RW_SESSION != 0
	if _, ut := s.client(); ut == ck.CKU_SO && !rw {
		return 0, errorf(ck.CKR_SESSION_READ_WRITE_SO_EXISTS, "a security officer is logged in")
	}
	m.nextSession++
	h := m.nextSession
	m.sessions[h] = &session{h: h, slot: s, rw: rw, ops: map[opKind]*operation{}, objects: map[uint64]bool{}}
	return h, nil
}

func (m *Module) session(h uint64) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkInit(); err != nil {
		return nil, err
	}
	s, ok := m.sessions[h]
	if !ok {
		return nil, errorf(ck.CKR_SESSION_HANDLE_INVALID, "no session %d", h)
	}
	return s, nil
}

// CloseSession closes a session and destroys the session objects it made.
// Closing a slot's last session logs the slot out.
func (m *Module) CloseSession(h uint64) error {
	m.mu.Lock()
	if err := m.checkInit(); err != nil {
		m.mu.Unlock()
		return err
	}
	s, ok := m.sessions[h]
	if !ok {
		m.mu.Unlock()
		return errorf(ck.CKR_SESSION_HANDLE_INVALID, "no session %d", h)
	}
	delete(m.sessions, h)
	last := !m.slotInUse(s.slot.id)
	m.mu.Unlock()
	m.closed(s, last)
	return nil
}

func (m *Module) closed(s *session, last bool) {
	sl := s.slot
	s.mu.Lock()
	objs := s.objects
	s.objects = nil
	s.mu.Unlock()
	if !last {
		ctx, cancel := m.ctx()
		for id := range objs {
			if c := sl.openClientFor(id); c != nil {
				c.DestroyObject(ctx, id)
			}
			sl.notePublic(id, false)
		}
		cancel()
	}
	if last {
		// Logging out ends the daemon sessions, which drop their session
		// objects with them.
		sl.logout()
		sl.endPublic()
	}
}

// CloseAllSessions closes every session on a slot.
func (m *Module) CloseAllSessions(id uint64) error {
	m.mu.Lock()
	sl, err := m.slotByID(id)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	var closing []*session
	for h, s := range m.sessions {
		if s.slot == sl {
			closing = append(closing, s)
			delete(m.sessions, h)
		}
	}
	m.mu.Unlock()
	for _, s := range closing {
		m.closed(s, false)
	}
	sl.logout()
	sl.endPublic()
	return nil
}

// GetSessionInfo describes a session.
func (m *Module) GetSessionInfo(h uint64) (SessionInfo, error) {
	s, err := m.session(h)
	if err != nil {
		return SessionInfo{}, err
	}
	si := SessionInfo{SlotID: s.slot.id, Flags: ck.CKF_SERIAL_SESSION}
	if s.rw {
		si.Flags |= ck.CKF_RW_SESSION
	}
	_, ut := s.slot.client()
	switch {
	case ut == ck.CKU_SO:
		si.State = ck.CKS_RW_SO_FUNCTIONS
	case ut == ck.CKU_USER && s.rw:
		si.State = ck.CKS_RW_USER_FUNCTIONS
	case ut == ck.CKU_USER:
		si.State = ck.CKS_RO_USER_FUNCTIONS
	case s.rw:
		si.State = ck.CKS_RW_PUBLIC_SESSION
	default:
		si.State = ck.CKS_RO_PUBLIC_SESSION
	}
	return si, nil
}

// credentials turns a PIN into a user name and password. On a token slot a
// normal user's PIN is the password of the token's user; everywhere else,
// and for security officers, it is "user:password".
func credentials(s *slot, userType uint64, pin []byte, username []byte) (string, string, error) {
	if username != nil {
		return string(username), string(pin), nil
	}
	if userType == ck.CKU_USER && s.user != "" {
		if u, p, ok := bytes.Cut(pin, []byte(":")); ok && string(u) == s.user {
			return s.user, string(p), nil
		}
		return s.user, string(pin), nil
	}
	u, p, ok := strings.Cut(string(pin), ":")
	if !ok || u == "" {
		return "", "", errorf(ck.CKR_PIN_INCORRECT, "the PIN must be user:password here")
	}
	return u, p, nil
}

// Login logs a slot in: every session on it shares the login.
func (m *Module) Login(h, userType uint64, pin []byte) error {
	return m.login(h, userType, pin, nil)
}

// LoginUser is C_LoginUser: the user name comes apart from the PIN.
func (m *Module) LoginUser(h, userType uint64, pin, username []byte) error {
	if username == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no user name")
	}
	return m.login(h, userType, pin, username)
}

func (m *Module) login(h, userType uint64, pin, username []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	sl := s.slot
	switch userType {
	case ck.CKU_USER, ck.CKU_SO:
	case ck.CKU_CONTEXT_SPECIFIC:
		if c, ut := sl.client(); c != nil && ut == ck.CKU_USER {
			return nil // no key here needs re-authentication
		}
		return errorf(ck.CKR_USER_NOT_LOGGED_IN, "log in first")
	default:
		return errorf(ck.CKR_USER_TYPE_INVALID, "unknown user type %d", userType)
	}
	if pin == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no PIN")
	}
	if c, ut := sl.client(); c != nil {
		if ut == userType {
			return errorf(ck.CKR_USER_ALREADY_LOGGED_IN, "already logged in")
		}
		return errorf(ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "another user type is logged in")
	}
	if userType == ck.CKU_SO {
		m.mu.Lock()
		for _, o := range m.sessions {
			if o.slot == sl && !o.rw {
				m.mu.Unlock()
				return errorf(ck.CKR_SESSION_READ_ONLY_EXISTS, "close the read-only sessions first")
			}
		}
		m.mu.Unlock()
	}
	user, password, err := credentials(sl, userType, pin, username)
	if err != nil {
		return err
	}
	if len(password) == 0 || len(password) > passwords.MaxPasswordLen {
		return errorf(ck.CKR_PIN_INCORRECT, "wrong user name or password")
	}
	if sl.user != "" && userType == ck.CKU_USER && user != sl.user {
		return errorf(ck.CKR_PIN_INCORRECT, "this token belongs to another user")
	}
	c, err := m.connectAs(user, password)
	if err != nil {
		return err
	}
	want := "CU"
	if userType == ck.CKU_SO {
		want = "CO"
	}
	if c.Role() != want {
		m.dropClient(c)
		return errorf(ck.CKR_PIN_INCORRECT, "%s is not a %s", user, map[string]string{"CU": "crypto user", "CO": "crypto officer"}[want])
	}
	sl.mu.Lock()
	if sl.login != nil { // another thread won the race
		sl.mu.Unlock()
		m.dropClient(c)
		return errorf(ck.CKR_USER_ALREADY_LOGGED_IN, "already logged in")
	}
	sl.login, sl.userType = c, userType
	sl.mu.Unlock()
	m.log.Info("C_Login", "slot", sl.id, "user", user, "type", userType)
	return nil
}

// connectAs dials the cluster and logs in.
func (m *Module) connectAs(user, password string) (*client.Client, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	c, err := m.dial(ctx, m.cfg)
	if err != nil {
		return nil, errorf(ck.CKR_DEVICE_ERROR, "cannot reach the cluster: %v", err)
	}
	if err := c.Login(ctx, user, password); err != nil {
		c.Close()
		m.log.Info("login refused", "user", user, "ckr", ck.RVName(hsmerr.RV(err)))
		return nil, err
	}
	return c, nil
}

func (m *Module) dropClient(c *client.Client) {
	ctx, cancel := m.ctx()
	c.Logout(ctx)
	cancel()
	c.Close()
}

// Logout logs the slot out; every session's operations end.
func (m *Module) Logout(h uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	if c, _ := s.slot.client(); c == nil {
		return errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	m.mu.Lock()
	for _, o := range m.sessions {
		if o.slot == s.slot {
			o.mu.Lock()
			o.ops = map[opKind]*operation{}
			o.find, o.finding = nil, false
			// The login's session objects go with it; public session
			// objects stay until their session closes.
			for id := range o.objects {
				if !s.slot.isPublicObject(id) {
					delete(o.objects, id)
				}
			}
			o.msgs = nil
			o.mu.Unlock()
		}
	}
	m.mu.Unlock()
	s.slot.logout()
	return nil
}

// loggedIn returns the session's slot client, or CKR_USER_NOT_LOGGED_IN.
func (s *session) loggedIn() (*client.Client, error) {
	c, _ := s.slot.client()
	if c == nil {
		return nil, errorf(ck.CKR_USER_NOT_LOGGED_IN, "log in first")
	}
	return c, nil
}

// InitPIN, for a security officer: on a token slot it sets the token's
// user's password; on the cluster slot the PIN is "user:password" and makes
// that crypto user (or sets their password if they exist).
func (m *Module) InitPIN(h uint64, pin []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	c, ut := s.slot.client()
	if c == nil || ut != ck.CKU_SO {
		return errorf(ck.CKR_USER_NOT_LOGGED_IN, "a security officer must be logged in")
	}
	if !s.rw {
		return errorf(ck.CKR_SESSION_READ_ONLY, "read-only session")
	}
	if pin == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no PIN")
	}
	ctx, cancel := m.ctx()
	defer cancel()
	if s.slot.user != "" {
		return m.quorumNote("C_InitPIN", c.SetPassword(ctx, s.slot.user, string(pin)))
	}
	user, password, ok := strings.Cut(string(pin), ":")
	if !ok {
		return errorf(ck.CKR_PIN_INVALID, "on the cluster slot the PIN is user:password")
	}
	err = c.CreateUser(ctx, user, "CU", password)
	if errors.Is(err, hsmerr.ErrUserExists) {
		err = c.SetPassword(ctx, user, password)
	}
	return m.quorumNote("C_InitPIN", err)
}

// SetPIN changes the logged-in user's password, or with no one logged in,
// the normal user's. The old PIN is checked by logging in with it.
func (m *Module) SetPIN(h uint64, oldPIN, newPIN []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	if !s.rw {
		return errorf(ck.CKR_SESSION_READ_ONLY, "read-only session")
	}
	if oldPIN == nil || newPIN == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no PIN")
	}
	_, ut := s.slot.client()
	if ut == noUser {
		ut = ck.CKU_USER
	}
	user, oldPW, err := credentials(s.slot, ut, oldPIN, nil)
	if err != nil {
		return err
	}
	newPW := string(newPIN)
	if u, p, ok := strings.Cut(newPW, ":"); ok && u == user {
		newPW = p
	}
	if err := passwords.CheckPassword(newPW); err != nil {
		return err
	}
	c, err := m.connectAs(user, oldPW)
	if err != nil {
		return err
	}
	defer m.dropClient(c)
	ctx, cancel := m.ctx()
	defer cancel()
	return c.SetPassword(ctx, user, newPW)
}

// SessionCancel ends the operations the flags name (CKF_ENCRYPT, ...).
func (m *Module) SessionCancel(h, flags uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for kind, op := range opKinds {
		if flags&op.flag != 0 {
			delete(s.ops, kind)
		}
	}
	s.cancelMessages(flags)
	return nil
}
