package client

import (
	"context"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// session is a login session as the client knows it. Sessions are
// immutable: a refresh or re-login installs a new one, so a pointer
// comparison tells whether another goroutine has already renewed it.
type session struct {
	token string
	user  string
	role  string
	id    uint64
	// refreshAt is when half the token's life has passed; expireAt when it
	// stops working. Both are zero when the server gave no expiry.
	refreshAt time.Time
	expireAt  time.Time
}

// savedCreds are remembered, in memory only, to log in again when a
// session expires. They are never logged.
type savedCreds struct {
	user     string
	password []byte
	public   bool // a public session on user's token (OpenPublic): no password
}

// callState follows one call through refresh and re-login: a call logs in
// again at most once.
type callState struct{ relogged bool }

func (c *Client) newSession(user string, r *hsmpb.LoginResponse) *session {
	now := c.now()
	s := &session{token: r.GetToken(), user: user, role: r.GetRole(), id: r.GetSession()}
	if exp := r.GetExpiresUnix(); exp > 0 {
		// Work from our own clock: the server's expiry only tells the
		// token's life. A skewed clock that makes it look already expired
		// leaves expiry to the server.
		if life := time.Unix(exp, 0).Sub(now); life > 0 {
			s.expireAt = now.Add(life)
			s.refreshAt = now.Add(life / 2)
		}
	}
	return s
}

func (c *Client) forgetCredsLocked() {
	if c.creds != nil {
		clear(c.creds.password)
		c.creds = nil
	}
}

func notLoggedIn() error { return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in") }

// Login logs user in and remembers the session token, which every later
// call carries. The password is kept in memory (never logged) so that the
// client can log in again by itself when the session expires; Logout and
// Close forget it. Logging in again replaces the current session.
func (c *Client) Login(ctx context.Context, user, password string) error {
	s, err := c.startSession(ctx, &savedCreds{user: user, password: []byte(password)}, func(ctx context.Context) (*session, error) {
		return c.loginRPC(ctx, user, password)
	})
	if err != nil {
		return err
	}
	c.log.Debug("hsm client: logged in", "role", s.role, "session", s.id)
	return nil
}

// startSession opens a session with open and makes it the client's, with
// the credentials that open it again on expiry (a password is cleared if
// open fails).
func (c *Client) startSession(ctx context.Context, creds *savedCreds, open func(context.Context) (*session, error)) (*session, error) {
	// A new or ended session has no session objects anywhere.
	defer c.home.Store(nil)
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := acquire(ctx, c.authSem); err != nil {
		clear(creds.password)
		return nil, err
	}
	defer release(c.authSem)
	s, err := open(ctx)
	if err != nil {
		clear(creds.password)
		return nil, err
	}
	c.mu.Lock()
	c.forgetCredsLocked()
	c.sess = s
	c.creds = creds
	c.mu.Unlock()
	return s, nil
}

func (c *Client) loginRPC(ctx context.Context, user, password string) (*session, error) {
	return c.sessionRPC(ctx, user, func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.LoginResponse, error) {
		return hc.Login(ctx, &hsmpb.LoginRequest{User: user, Password: password})
	})
}

// sessionRPC makes the call that opens a session (a login or a public
// session) and checks that its answer holds a session token.
func (c *Client) sessionRPC(ctx context.Context, user string, open func(context.Context, hsmpb.HSMClient) (*hsmpb.LoginResponse, error)) (*session, error) {
	var resp *hsmpb.LoginResponse
	err := c.rpc(ctx, "", func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		resp, err = open(ctx, hc)
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.GetToken() == "" {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the answer holds no session token")
	}
	return c.newSession(user, resp), nil
}

// Logout ends the session on the server and forgets the token and the
// credentials. The client is logged out afterwards even if the call fails;
// a session the server has already ended is not an error.
func (c *Client) Logout(ctx context.Context) error {
	// A new or ended session has no session objects anywhere.
	defer c.home.Store(nil)
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := acquire(ctx, c.authSem); err != nil {
		return err
	}
	defer release(c.authSem)
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.forgetCredsLocked()
	c.mu.Unlock()
	if s == nil {
		return notLoggedIn()
	}
	err := c.rpc(ctx, s.token, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.Logout(ctx, &hsmpb.Empty{})
		return err
	})
	if hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN) {
		return nil
	}
	return err
}

// Refresh renews the session token now. Calls refresh it by themselves once
// half its life has passed, so this is rarely needed.
func (c *Client) Refresh(ctx context.Context) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := acquire(ctx, c.authSem); err != nil {
		return err
	}
	defer release(c.authSem)
	s := c.current()
	if s == nil {
		return notLoggedIn()
	}
	_, err := c.refreshLocked(ctx, s)
	return err
}

// refreshLocked calls Refresh with s's token and installs the new session.
// The caller holds authSem and has checked that s is current.
func (c *Client) refreshLocked(ctx context.Context, s *session) (*session, error) {
	var resp *hsmpb.LoginResponse
	err := c.rpc(ctx, s.token, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		resp, err = hc.Refresh(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.GetToken() == "" {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the refresh answer holds no session token")
	}
	ns := c.newSession(s.user, resp)
	if ns.role == "" {
		ns.role = s.role
	}
	if ns.id == 0 {
		ns.id = s.id
	}
	c.replace(s, ns)
	c.log.Debug("hsm client: session refreshed", "session", ns.id)
	return ns, nil
}

// replace installs ns in place of s, unless another call has already
// replaced s or the client has logged out meanwhile.
func (c *Client) replace(s, ns *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == s {
		c.sess = ns
	}
}

// reloginLocked logs in again with the remembered credentials after s has
// ended. The caller holds authSem and has checked that s is current. If the
// server refuses the credentials they are forgotten, so that a changed
// password cannot lock the account through repeated automatic attempts.
func (c *Client) reloginLocked(ctx context.Context, s *session, st *callState) (*session, error) {
	st.relogged = true
	c.mu.Lock()
	cr := c.creds
	var user, password string
	if cr != nil {
		user, password = cr.user, string(cr.password)
	}
	c.mu.Unlock()
	if cr == nil {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the session has ended; log in again")
	}
	c.log.Info("hsm client: session ended; logging in again")
	var ns *session
	var err error
	if cr.public {
		ns, err = c.publicRPC(ctx, user)
	} else {
		ns, err = c.loginRPC(ctx, user, password)
	}
	if err != nil {
		if hsmerr.IsRV(err, ck.CKR_DEVICE_ERROR) || ctx.Err() != nil {
			return nil, err
		}
		c.log.Warn("hsm client: logging in again failed; the application must log in", "error", err)
		c.mu.Lock()
		if c.creds == cr {
			c.forgetCredsLocked()
		}
		if c.sess == s {
			c.sess = nil
		}
		c.mu.Unlock()
		return nil, &hsmerr.Error{RV: ck.CKR_USER_NOT_LOGGED_IN, Msg: "the session has ended and logging in again failed", Err: err}
	}
	c.replace(s, ns)
	c.log.Debug("hsm client: logged in again", "session", ns.id)
	return ns, nil
}

// sessionFor returns the session a call should use (nil when not logged
// in), first logging in again if the token has expired, or refreshing it if
// half its life has passed.
func (c *Client) sessionFor(ctx context.Context, st *callState) (*session, error) {
	c.mu.Lock()
	s := c.sess
	haveCreds := c.creds != nil
	c.mu.Unlock()
	if s == nil {
		return nil, nil
	}
	now := c.now()
	switch {
	case !s.expireAt.IsZero() && !now.Before(s.expireAt):
		if !haveCreds || st.relogged {
			return s, nil // let the server answer
		}
		if err := acquire(ctx, c.authSem); err != nil {
			return nil, err
		}
		defer release(c.authSem)
		if cur := c.current(); cur != s {
			return cur, nil // renewed (or logged out) meanwhile
		}
		return c.reloginLocked(ctx, s, st)
	case !s.refreshAt.IsZero() && !now.Before(s.refreshAt):
		// The token still works: if another call is already renewing
		// it, go ahead with it rather than wait.
		select {
		case c.authSem <- struct{}{}:
		default:
			return s, nil
		}
		defer release(c.authSem)
		if cur := c.current(); cur != s {
			return cur, nil
		}
		ns, err := c.refreshLocked(ctx, s)
		if err == nil {
			return ns, nil
		}
		if hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN) && haveCreds && !st.relogged {
			return c.reloginLocked(ctx, s, st)
		}
		c.log.Warn("hsm client: session refresh failed", "error", err)
		return s, nil
	}
	return s, nil
}

// recover runs after a call with session s failed with
// CKR_USER_NOT_LOGGED_IN. That answer also means "not allowed" for some
// calls, so it first asks the server whether the session is alive (by
// refreshing it); only if it is not does it log in again. It reports
// whether the call should be retried.
func (c *Client) recover(ctx context.Context, s *session, st *callState) (bool, error) {
	c.mu.Lock()
	haveCreds := c.creds != nil
	c.mu.Unlock()
	if !haveCreds {
		return false, nil
	}
	if err := acquire(ctx, c.authSem); err != nil {
		return false, err
	}
	defer release(c.authSem)
	if cur := c.current(); cur != s {
		// Another call renewed the session meanwhile: retry once with it.
		st.relogged = true
		return cur != nil, nil
	}
	if _, err := c.refreshLocked(ctx, s); err == nil || !hsmerr.IsRV(err, ck.CKR_USER_NOT_LOGGED_IN) {
		return false, nil // alive (or cannot tell): the answer stands
	}
	if _, err := c.reloginLocked(ctx, s, st); err != nil {
		return false, err
	}
	return true, nil
}

// current returns the session the client holds, or nil. Sessions are
// immutable, so its fields may be read without the lock.
func (c *Client) current() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// LoggedIn reports whether the client holds a session.
func (c *Client) LoggedIn() bool {
	return c.current() != nil
}

// Role returns the role of the logged-in user, "CO" or "CU", or "" when
// not logged in.
func (c *Client) Role() string {
	if s := c.current(); s != nil {
		return s.role
	}
	return ""
}

// User returns the name of the logged-in user, or "".
func (c *Client) User() string {
	if s := c.current(); s != nil {
		return s.user
	}
	return ""
}

// Session returns the login session's id, which scopes session objects
// (CKA_TOKEN false), or 0 when not logged in. It changes when the client
// logs in again after a session expired: the old session's objects are
// then gone.
func (c *Client) Session() uint64 {
	if s := c.current(); s != nil {
		return s.id
	}
	return 0
}

// passwordChanged updates the remembered password after a user changed
// their own.
func (c *Client) passwordChanged(user, password string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds != nil && c.creds.user == user {
		clear(c.creds.password)
		c.creds.password = []byte(password)
	}
}
