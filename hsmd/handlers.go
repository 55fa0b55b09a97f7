package hsmd

import (
	"context"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

var empty = &hsmpb.Empty{}

// audit records a change: who did what to which object. Never payloads.
func (s *Server) audit(ctx context.Context, what string, attrs ...any) {
	c := callerFrom(ctx)
	s.log.InfoContext(ctx, what, append([]any{"user", c.User, "role", c.Role.String(), "peer", identityFrom(ctx).CommonName}, attrs...)...)
}

// issue mints a token for a session that ends for good at maxExp: it
// lasts the TTL, but never past that.
func (s *Server) issue(ctx context.Context, u *object.User, role object.Role, session uint64, maxExp int64) (*hsmpb.LoginResponse, error) {
	key, err := s.engine.TokenKey()
	if err != nil {
		return nil, err
	}
	exp := min(s.now().Add(s.ttl).Unix(), maxExp)
	tok := mintToken(key, &claims{User: u.Name, Role: role, Number: u.Number, Generation: u.Generation,
		Session: session, Expires: exp, MaxExpires: maxExp, Cert: identityFrom(ctx).Fingerprint})
	return &hsmpb.LoginResponse{Token: tok, Role: role.String(), ExpiresUnix: exp, Session: session}, nil
}

// Login checks the throttle first (a throttled attempt costs nothing and
// counts for nothing), then the engine's lockout and password.
func (s *Server) Login(ctx context.Context, r *hsmpb.LoginRequest) (*hsmpb.LoginResponse, error) {
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := password("password", r.Password); err != nil {
		return nil, err
	}
	peerName := identityFrom(ctx).CommonName
	certK := certKey(identityFrom(ctx).Fingerprint)
	acctK := accountKey(r.User, s.engine.Generation(r.User))
	if w := s.throttle.wait(s.now(), certK, acctK); w > 0 {
		s.log.InfoContext(ctx, "login throttled", "user", r.User, "peer", peerName, "wait_s", w.Seconds())
		return nil, throttled(w)
	}
	u, err := s.engine.Login(ctx, r.User, r.Password)
	if err != nil {
		rv := hsmerr.RV(err)
		if rv == ck.CKR_PIN_INCORRECT {
			// A wrong password or an unknown user. A locked account's
			// refusal costs nothing and is not a guess; busy is not either.
			s.throttle.failed(s.now(), certK, acctK)
		}
		s.log.InfoContext(ctx, "login failed", "user", r.User, "peer", peerName, "ckr", ck.RVName(rv))
		return nil, err
	}
	s.throttle.succeeded(acctK)
	session := newSessionID()
	if err := s.sessions.admit(session, u.Name); err != nil {
		s.log.InfoContext(ctx, "login refused: session quota", "user", u.Name, "peer", peerName)
		return nil, err
	}
	s.mu.Lock()
	s.lastSeen[session] = s.now() // so an unused session is swept, and uncounted, too
	s.mu.Unlock()
	s.log.InfoContext(ctx, "login", "user", u.Name, "role", u.Role.String(), "peer", peerName)
	return s.issue(ctx, u, u.Role, session, s.now().Add(s.maxLife).Unix())
}

// Refresh gives a later token to the same session, never past its
// absolute end; a logged-out session was refused before it got here.
func (s *Server) Refresh(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.LoginResponse, error) {
	cl := claimsFrom(ctx)
	if cl == nil {
		return nil, unauthenticated("log in first")
	}
	u, err := s.engine.CheckUser(cl.User, cl.Number, cl.Generation)
	if err != nil {
		return nil, err
	}
	// A public session's token stays a public session's (callerOf).
	return s.issue(ctx, u, callerOf(cl, u).Role, cl.Session, cl.MaxExpires)
}

// Logout ends the session on this node at once and, through the log, on
// every node until the session's absolute end. If the log does not take
// it, the caller is told: the session still works on the other nodes.
func (s *Server) Logout(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.Empty, error) {
	cl := claimsFrom(ctx)
	if cl == nil {
		return nil, unauthenticated("log in first")
	}
	s.revoke(cl.Session, cl.MaxExpires)
	if cl.Role == object.RolePublic {
		// A public session ends on this node, which holds its objects,
		// and writes nothing to the log: its token gives no more than
		// the certificate alone gets from OpenPublicSession, and it
		// lapses within the token lifetime.
		return empty, nil
	}
	if err := s.engine.Logout(ctx, callerFrom(ctx), cl.MaxExpires); err != nil {
		s.log.WarnContext(ctx, "the logout could not be replicated", "user", cl.User, "error", err.Error())
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR,
			"logged out on this node only: the cluster did not record it (%s); other nodes accept the session until it expires, so log out again", ck.RVName(hsmerr.RV(err)))
	}
	s.audit(ctx, "logout")
	return empty, nil
}

func (s *Server) Bootstrap(ctx context.Context, r *hsmpb.BootstrapRequest) (*hsmpb.Empty, error) {
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := password("password", r.Password); err != nil {
		return nil, err
	}
	if err := s.engine.Bootstrap(ctx, r.User, r.Password); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "cluster activated: first crypto officer created", "user", r.User, "peer", identityFrom(ctx).CommonName)
	return empty, nil
}

func (s *Server) Info(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.InfoResponse, error) {
	users, err := s.engine.HasUsers()
	if err != nil {
		return nil, err
	}
	out := &hsmpb.InfoResponse{Version: Version, ClusterId: s.cluster(), Node: s.node, Initialized: users}
	if s.replica != nil {
		out.Leader, _ = s.replica.Leader()
		out.AppliedIndex = s.replica.Applied()
		out.State = s.replica.State()
	}
	for _, m := range mech.Mechanisms() {
		out.Mechanisms = append(out.Mechanisms, &hsmpb.MechanismInfo{Type: m.Type, MinKeySize: m.MinKeySize, MaxKeySize: m.MaxKeySize, Flags: m.Flags})
	}
	return out, nil
}

func (s *Server) ListTokens(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ListTokensResponse, error) {
	ts, err := s.engine.ListTokens()
	if err != nil {
		return nil, err
	}
	out := &hsmpb.ListTokensResponse{}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, &hsmpb.Token{Name: t.Name, Number: t.Number, Locked: t.Locked, FailedLogins: uint32(t.FailedLogins)})
	}
	return out, nil
}

// ---- users ----

func (s *Server) CreateUser(ctx context.Context, r *hsmpb.CreateUserRequest) (*hsmpb.Empty, error) {
	ctx, err := quorumCtx(ctx, r.QuorumToken)
	if err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	role, err := parseRole("role", r.Role)
	if err != nil {
		return nil, err
	}
	if err := password("password", r.Password); err != nil {
		return nil, err
	}
	if err := s.engine.CreateUser(ctx, callerFrom(ctx), r.User, role, r.Password); err != nil {
		return nil, err
	}
	s.audit(ctx, "created user", "target", r.User, "target_role", role.String())
	return empty, nil
}

func (s *Server) DeleteUser(ctx context.Context, r *hsmpb.UserRequest) (*hsmpb.Empty, error) {
	ctx, err := quorumCtx(ctx, r.QuorumToken)
	if err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := s.engine.DeleteUser(ctx, callerFrom(ctx), r.User); err != nil {
		return nil, err
	}
	s.audit(ctx, "deleted user", "target", r.User)
	return empty, nil
}

func (s *Server) SetPassword(ctx context.Context, r *hsmpb.SetPasswordRequest) (*hsmpb.Empty, error) {
	ctx, err := quorumCtx(ctx, r.QuorumToken)
	if err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := password("password", r.Password); err != nil {
		return nil, err
	}
	if err := s.engine.SetPassword(ctx, callerFrom(ctx), r.User, r.Password); err != nil {
		return nil, err
	}
	s.audit(ctx, "set password", "target", r.User)
	return empty, nil
}

func (s *Server) UnlockUser(ctx context.Context, r *hsmpb.UserRequest) (*hsmpb.Empty, error) {
	ctx, err := quorumCtx(ctx, r.QuorumToken)
	if err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := s.engine.UnlockUser(ctx, callerFrom(ctx), r.User); err != nil {
		return nil, err
	}
	s.audit(ctx, "unlocked user", "target", r.User)
	return empty, nil
}

// WipeToken is C_InitToken on a crypto user's token slot: a crypto officer
// destroys the user's objects (engine.WipeToken, state/wipe.go).
func (s *Server) WipeToken(ctx context.Context, r *hsmpb.UserRequest) (*hsmpb.Empty, error) {
	ctx, err := quorumCtx(ctx, r.QuorumToken)
	if err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := s.engine.WipeToken(ctx, callerFrom(ctx), r.User); err != nil {
		s.audit(ctx, "wipe token refused", "target", r.User, "ckr", ck.RVName(hsmerr.RV(err)))
		return nil, err
	}
	s.audit(ctx, "wiped token", "target", r.User)
	return empty, nil
}

func (s *Server) ListUsers(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ListUsersResponse, error) {
	us, err := s.engine.ListUsers(callerFrom(ctx))
	if err != nil {
		return nil, err
	}
	out := &hsmpb.ListUsersResponse{}
	for _, u := range us {
		out.Users = append(out.Users, &hsmpb.UserInfo{Name: u.Name, Role: u.Role.String(), Locked: u.Locked,
			FailedLogins: uint32(u.FailedLogins), CreatedUnix: u.Created, Number: u.Number})
	}
	return out, nil
}

// ---- objects ----

func (s *Server) CreateObject(ctx context.Context, r *hsmpb.CreateObjectRequest) (*hsmpb.ObjectResponse, error) {
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	id, err := s.engine.CreateObject(ctx, callerFrom(ctx), t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "created object", "object", id)
	return &hsmpb.ObjectResponse{Object: id}, nil
}

func (s *Server) CopyObject(ctx context.Context, r *hsmpb.CopyObjectRequest) (*hsmpb.ObjectResponse, error) {
	if err := objectID("object", r.Object); err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	id, err := s.engine.CopyObject(ctx, callerFrom(ctx), r.Object, t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "copied object", "from", r.Object, "object", id)
	return &hsmpb.ObjectResponse{Object: id}, nil
}

func (s *Server) DestroyObject(ctx context.Context, r *hsmpb.ObjectRequest) (*hsmpb.Empty, error) {
	if err := objectID("object", r.Object); err != nil {
		return nil, err
	}
	if err := s.engine.DestroyObject(ctx, callerFrom(ctx), r.Object); err != nil {
		return nil, err
	}
	s.audit(ctx, "destroyed object", "object", r.Object)
	return empty, nil
}

func findArgs(r *hsmpb.FindObjectsRequest) (object.Template, int, error) {
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, 0, err
	}
	if r.Max > maxFindResults {
		return nil, 0, bad("max", "larger than %d", maxFindResults)
	}
	max := int(r.Max)
	if max == 0 {
		max = maxFindResults
	}
	return t, max, nil
}

func (s *Server) FindObjects(ctx context.Context, r *hsmpb.FindObjectsRequest) (*hsmpb.FindObjectsResponse, error) {
	t, max, err := findArgs(r)
	if err != nil {
		return nil, err
	}
	ids, err := s.engine.FindObjects(callerFrom(ctx), t, max)
	if err != nil {
		return nil, err
	}
	return &hsmpb.FindObjectsResponse{Objects: ids}, nil
}

func (s *Server) ListObjects(ctx context.Context, r *hsmpb.FindObjectsRequest) (*hsmpb.ListObjectsResponse, error) {
	t, max, err := findArgs(r)
	if err != nil {
		return nil, err
	}
	objs, err := s.engine.ListObjects(callerFrom(ctx), t, max)
	if err != nil {
		return nil, err
	}
	out := &hsmpb.ListObjectsResponse{}
	for _, o := range objs {
		out.Objects = append(out.Objects, &hsmpb.ObjectInfo{Object: o.ID, Owner: o.Owner, SharedWith: o.SharedWith,
			Attributes: api.AttrsToPB(o.Attrs)})
	}
	return out, nil
}

func (s *Server) GetAttributes(ctx context.Context, r *hsmpb.GetAttributesRequest) (*hsmpb.GetAttributesResponse, error) {
	if err := objectID("object", r.Object); err != nil {
		return nil, err
	}
	if len(r.Types) == 0 || len(r.Types) > 4*object.MaxTemplateAttrs {
		return nil, bad("types", "must list 1 to %d attributes", 4*object.MaxTemplateAttrs)
	}
	vals, err := s.engine.GetAttributes(callerFrom(ctx), r.Object, r.Types)
	if err != nil {
		return nil, err
	}
	return &hsmpb.GetAttributesResponse{Values: api.AttrValuesToPB(vals)}, nil
}

func (s *Server) SetAttributes(ctx context.Context, r *hsmpb.SetAttributesRequest) (*hsmpb.Empty, error) {
	if err := objectID("object", r.Object); err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	if err := s.engine.SetAttributes(ctx, callerFrom(ctx), r.Object, t); err != nil {
		return nil, err
	}
	types := make([]string, len(t))
	for i, a := range t {
		types[i] = ck.AttrName(a.Type)
	}
	s.audit(ctx, "set attributes", "object", r.Object, "attributes", types)
	return empty, nil
}

func (s *Server) Share(ctx context.Context, r *hsmpb.ShareRequest) (*hsmpb.Empty, error) {
	if err := objectID("object", r.Object); err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := s.engine.Share(ctx, callerFrom(ctx), r.Object, r.User, !r.Unshare); err != nil {
		return nil, err
	}
	what := "shared key"
	if r.Unshare {
		what = "unshared key"
	}
	s.audit(ctx, what, "object", r.Object, "with", r.User)
	return empty, nil
}

// ---- keys ----

func (s *Server) GenerateKey(ctx context.Context, r *hsmpb.GenerateKeyRequest) (*hsmpb.ObjectResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	id, err := s.engine.GenerateKey(ctx, callerFrom(ctx), m, t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "generated key", "mechanism", ck.MechName(m.Type), "object", id)
	return &hsmpb.ObjectResponse{Object: id}, nil
}

func (s *Server) GenerateKeyPair(ctx context.Context, r *hsmpb.GenerateKeyPairRequest) (*hsmpb.KeyPairResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	pt, err := api.TemplateFromPB("public_template", r.PublicTemplate)
	if err != nil {
		return nil, err
	}
	vt, err := api.TemplateFromPB("private_template", r.PrivateTemplate)
	if err != nil {
		return nil, err
	}
	pub, priv, err := s.engine.GenerateKeyPair(ctx, callerFrom(ctx), m, pt, vt)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "generated key pair", "mechanism", ck.MechName(m.Type), "public", pub, "private", priv)
	return &hsmpb.KeyPairResponse{PublicKey: pub, PrivateKey: priv}, nil
}

func (s *Server) WrapKey(ctx context.Context, r *hsmpb.WrapKeyRequest) (*hsmpb.DataResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if err := objectID("wrapping_key", r.WrappingKey); err != nil {
		return nil, err
	}
	if err := objectID("key", r.Key); err != nil {
		return nil, err
	}
	out, err := s.engine.WrapKey(callerFrom(ctx), m, r.WrappingKey, r.Key)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "wrapped key", "mechanism", ck.MechName(m.Type), "wrapping_key", r.WrappingKey, "object", r.Key)
	return &hsmpb.DataResponse{Data: out}, nil
}

func (s *Server) UnwrapKey(ctx context.Context, r *hsmpb.UnwrapKeyRequest) (*hsmpb.ObjectResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if err := objectID("unwrapping_key", r.UnwrappingKey); err != nil {
		return nil, err
	}
	if err := dataField("wrapped_key", r.WrappedKey); err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	id, err := s.engine.UnwrapKey(ctx, callerFrom(ctx), m, r.UnwrappingKey, r.WrappedKey, t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "unwrapped key", "mechanism", ck.MechName(m.Type), "unwrapping_key", r.UnwrappingKey, "object", id)
	return &hsmpb.ObjectResponse{Object: id}, nil
}

func (s *Server) DeriveKey(ctx context.Context, r *hsmpb.DeriveKeyRequest) (*hsmpb.ObjectResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if err := objectID("base_key", r.BaseKey); err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	id, err := s.engine.DeriveKey(ctx, callerFrom(ctx), m, r.BaseKey, t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "derived key", "mechanism", ck.MechName(m.Type), "base_key", r.BaseKey, "object", id)
	return &hsmpb.ObjectResponse{Object: id}, nil
}

func (s *Server) EncapsulateKey(ctx context.Context, r *hsmpb.EncapsulateKeyRequest) (*hsmpb.EncapsulateKeyResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if err := objectID("public_key", r.PublicKey); err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	ct, id, err := s.engine.EncapsulateKey(ctx, callerFrom(ctx), m, r.PublicKey, t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "encapsulated key", "mechanism", ck.MechName(m.Type), "public_key", r.PublicKey, "object", id)
	return &hsmpb.EncapsulateKeyResponse{Ciphertext: ct, Object: id}, nil
}

func (s *Server) DecapsulateKey(ctx context.Context, r *hsmpb.DecapsulateKeyRequest) (*hsmpb.ObjectResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if err := objectID("private_key", r.PrivateKey); err != nil {
		return nil, err
	}
	if err := dataField("ciphertext", r.Ciphertext); err != nil {
		return nil, err
	}
	t, err := api.TemplateFromPB("template", r.Template)
	if err != nil {
		return nil, err
	}
	id, err := s.engine.DecapsulateKey(ctx, callerFrom(ctx), m, r.PrivateKey, r.Ciphertext, t)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "decapsulated key", "mechanism", ck.MechName(m.Type), "private_key", r.PrivateKey, "object", id)
	return &hsmpb.ObjectResponse{Object: id}, nil
}

// ---- cryptography ----

func cryptoArgs(r *hsmpb.CryptoRequest) (mech.Mech, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return m, err
	}
	if err := objectID("key", r.Key); err != nil {
		return m, err
	}
	return m, dataField("data", r.Data)
}

func (s *Server) Sign(ctx context.Context, r *hsmpb.CryptoRequest) (*hsmpb.DataResponse, error) {
	m, err := cryptoArgs(r)
	if err != nil {
		return nil, err
	}
	out, err := s.engine.Sign(callerFrom(ctx), r.Key, m, r.Data)
	if err != nil {
		return nil, err
	}
	return &hsmpb.DataResponse{Data: out}, nil
}

func (s *Server) Verify(ctx context.Context, r *hsmpb.VerifyRequest) (*hsmpb.Empty, error) {
	m, err := cryptoArgs(&hsmpb.CryptoRequest{Mechanism: r.Mechanism, Key: r.Key, Data: r.Data})
	if err != nil {
		return nil, err
	}
	if len(r.Signature) > maxSigBytes {
		return nil, bad("signature", "longer than %d bytes", maxSigBytes)
	}
	if err := s.engine.Verify(callerFrom(ctx), r.Key, m, r.Data, r.Signature); err != nil {
		return nil, err
	}
	return empty, nil
}

func (s *Server) Encrypt(ctx context.Context, r *hsmpb.CryptoRequest) (*hsmpb.DataResponse, error) {
	m, err := cryptoArgs(r)
	if err != nil {
		return nil, err
	}
	out, err := s.engine.Encrypt(callerFrom(ctx), r.Key, m, r.Data)
	if err != nil {
		return nil, err
	}
	return &hsmpb.DataResponse{Data: out}, nil
}

func (s *Server) Decrypt(ctx context.Context, r *hsmpb.CryptoRequest) (*hsmpb.DataResponse, error) {
	m, err := cryptoArgs(r)
	if err != nil {
		return nil, err
	}
	out, err := s.engine.Decrypt(callerFrom(ctx), r.Key, m, r.Data)
	if err != nil {
		return nil, err
	}
	return &hsmpb.DataResponse{Data: out}, nil
}

func (s *Server) Digest(ctx context.Context, r *hsmpb.DigestRequest) (*hsmpb.DataResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if err := dataField("data", r.Data); err != nil {
		return nil, err
	}
	out, err := mech.Digest(m, r.Data)
	if err != nil {
		return nil, err
	}
	return &hsmpb.DataResponse{Data: out}, nil
}

// DigestKey is one step of a digest that has taken a key's value
// (C_DigestKey; engine.DigestKey). A step that feeds a key is audited,
// refused or not; the steps that only carry data are not.
func (s *Server) DigestKey(ctx context.Context, r *hsmpb.DigestKeyRequest) (*hsmpb.DigestKeyResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if r.Key != 0 {
		if err := objectID("key", r.Key); err != nil {
			return nil, err
		}
	}
	if err := dataField("data", r.Data); err != nil {
		return nil, err
	}
	out, err := s.engine.DigestKey(callerFrom(ctx), engine.DigestKeyRequest{Mech: m, State: r.State,
		Sealed: r.SealedState, Key: r.Key, Data: r.Data, Final: r.Final})
	if r.Key != 0 {
		if err != nil {
			s.audit(ctx, "digest key refused", "mechanism", ck.MechName(m.Type), "object", r.Key, "ckr", ck.RVName(hsmerr.RV(err)))
		} else {
			s.audit(ctx, "digested key", "mechanism", ck.MechName(m.Type), "object", r.Key)
		}
	}
	if err != nil {
		return nil, err
	}
	if r.Final {
		return &hsmpb.DigestKeyResponse{Digest: out}, nil
	}
	return &hsmpb.DigestKeyResponse{SealedState: out}, nil
}

func (s *Server) GenerateRandom(ctx context.Context, r *hsmpb.RandomRequest) (*hsmpb.DataResponse, error) {
	if r.Length > mech.MaxRandomLen {
		return nil, bad("length", "larger than %d", mech.MaxRandomLen)
	}
	out, err := engine.Random(int(r.Length))
	if err != nil {
		return nil, err
	}
	return &hsmpb.DataResponse{Data: out}, nil
}
