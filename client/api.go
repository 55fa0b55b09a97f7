package client

import (
	"context"
	"math"

	"google.golang.org/grpc"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/dataplane"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// One method per RPC of hsmd (see api/hsmpb/hsm.proto). Every error is a
// *hsmerr.Error carrying the PKCS#11 return value.

// Bootstrap creates the first crypto officer of a new cluster. It needs no
// session, only the client certificate, and works once per cluster.
func (c *Client) Bootstrap(ctx context.Context, user, password string) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.rpc(ctx, "", func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.Bootstrap(ctx, &hsmpb.BootstrapRequest{User: user, Password: password})
		return err
	})
}

// Info describes the current node and its cluster. It needs no session
// (the token is sent if there is one).
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var r *hsmpb.InfoResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.Info(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return infoFromPB(r), nil
}

// ListTokens lists the crypto users' tokens, ordered by number. It needs no
// login.
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var r *hsmpb.ListTokensResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListTokens(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Token, 0, len(r.GetTokens()))
	for _, t := range r.GetTokens() {
		out = append(out, Token{Name: t.GetName(), Number: t.GetNumber(), Locked: t.GetLocked(), FailedLogins: int(t.GetFailedLogins())})
	}
	return out, nil
}

// ---- users ----

// normRole accepts what object.ParseRole accepts and gives "CO" or "CU".
func normRole(role string) (string, error) {
	r, err := object.ParseRole(role)
	if err != nil {
		return "", argErr("%v", err)
	}
	return r.String(), nil
}

// CreateUser makes a crypto officer ("CO") or crypto user ("CU"). Only a
// crypto officer may.
func (c *Client) CreateUser(ctx context.Context, name, role, password string) error {
	r, err := normRole(role)
	if err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.CreateUser(ctx, &hsmpb.CreateUserRequest{User: name, Role: r, Password: password, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// DeleteUser deletes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.DeleteUser(ctx, &hsmpb.UserRequest{User: name, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// SetPassword sets a user's password: a crypto officer's reset of another
// user's, or a user's own. Changing one's own password ends one's
// sessions; the client then logs in again with the new password.
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.SetPassword(ctx, &hsmpb.SetPasswordRequest{User: name, Password: password, QuorumToken: c.quorum(ctx)})
		return err
	})
	if err == nil {
		c.passwordChanged(name, password)
	}
	return err
}

// UnlockUser clears a user's lockout after too many wrong passwords.
func (c *Client) UnlockUser(ctx context.Context, name string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.UnlockUser(ctx, &hsmpb.UserRequest{User: name, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// WipeToken destroys every object a crypto user owns, keeping the user
// and their password (C_InitToken on the user's token slot). Crypto
// officers only.
func (c *Client) WipeToken(ctx context.Context, name string) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.WipeToken(ctx, &hsmpb.UserRequest{User: name, QuorumToken: c.quorum(ctx)})
		return err
	})
}

// ListUsers lists every user.
func (c *Client) ListUsers(ctx context.Context) ([]UserInfo, error) {
	var r *hsmpb.ListUsersResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListUsers(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return usersFromPB(r.GetUsers()), nil
}

// ---- objects ----

// CreateObject creates an object (C_CreateObject) and returns its handle.
func (c *Client) CreateObject(ctx context.Context, tmpl object.Template) (uint64, error) {
	ctx = makesObjects(ctx, tmpl)
	t, err := api.TemplateToPB("template", tmpl)
	if err != nil {
		return 0, err
	}
	var r *hsmpb.ObjectResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.CreateObject(ctx, &hsmpb.CreateObjectRequest{Template: t})
		return err
	})
	return r.GetObject(), err
}

// CopyObject copies an object with the template's changes (C_CopyObject).
func (c *Client) CopyObject(ctx context.Context, id uint64, tmpl object.Template) (uint64, error) {
	ctx = makesObjects(ctx, tmpl)
	t, err := api.TemplateToPB("template", tmpl)
	if err != nil {
		return 0, err
	}
	var r *hsmpb.ObjectResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.CopyObject(ctx, &hsmpb.CopyObjectRequest{Object: id, Template: t})
		return err
	})
	return r.GetObject(), err
}

// DestroyObject destroys an object.
func (c *Client) DestroyObject(ctx context.Context, id uint64) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.DestroyObject(ctx, &hsmpb.ObjectRequest{Object: id})
		return err
	})
}

func clampMax(max int) uint32 {
	switch {
	case max <= 0:
		return 0
	case max > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(max)
}

// FindObjects returns the handles of the objects the user can see that
// match the template (C_FindObjects), at most max of them (0: the server's
// limit).
func (c *Client) FindObjects(ctx context.Context, tmpl object.Template, max int) ([]uint64, error) {
	t, err := api.TemplateToPB("template", tmpl)
	if err != nil {
		return nil, err
	}
	var r *hsmpb.FindObjectsResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.FindObjects(ctx, &hsmpb.FindObjectsRequest{Template: t, Max: clampMax(max)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return r.GetObjects(), nil
}

// ListObjects is FindObjects with each object's owner, public attributes
// and sharing, for administration.
func (c *Client) ListObjects(ctx context.Context, tmpl object.Template, max int) ([]ObjectInfo, error) {
	t, err := api.TemplateToPB("template", tmpl)
	if err != nil {
		return nil, err
	}
	var r *hsmpb.ListObjectsResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListObjects(ctx, &hsmpb.FindObjectsRequest{Template: t, Max: clampMax(max)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return objectsFromPB(r.GetObjects())
}

// GetAttributes reads attributes (C_GetAttributeValue). Each answer has its
// own RV: CKR_OK, CKR_ATTRIBUTE_SENSITIVE or CKR_ATTRIBUTE_TYPE_INVALID.
func (c *Client) GetAttributes(ctx context.Context, id uint64, types []uint64) ([]object.AttrValue, error) {
	var r *hsmpb.GetAttributesResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.GetAttributes(ctx, &hsmpb.GetAttributesRequest{Object: id, Types: types})
		return err
	})
	if err != nil {
		return nil, err
	}
	vs, err := api.AttrValuesFromPB("values", r.GetValues())
	if err != nil {
		return nil, badAnswer(err)
	}
	return vs, nil
}

// SetAttributes changes attributes (C_SetAttributeValue).
func (c *Client) SetAttributes(ctx context.Context, id uint64, tmpl object.Template) error {
	t, err := api.TemplateToPB("template", tmpl)
	if err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.SetAttributes(ctx, &hsmpb.SetAttributesRequest{Object: id, Template: t})
		return err
	})
}

// Share lets another crypto user use a key the caller owns.
func (c *Client) Share(ctx context.Context, id uint64, user string) error {
	return c.share(ctx, id, user, false)
}

// Unshare takes back a Share.
func (c *Client) Unshare(ctx context.Context, id uint64, user string) error {
	return c.share(ctx, id, user, true)
}

func (c *Client) share(ctx context.Context, id uint64, user string, unshare bool) error {
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.Share(ctx, &hsmpb.ShareRequest{Object: id, User: user, Unshare: unshare})
		return err
	})
}

// ---- keys ----

// GenerateKey generates a secret key (C_GenerateKey).
func (c *Client) GenerateKey(ctx context.Context, m mech.Mech, tmpl object.Template) (uint64, error) {
	r, err := makeKey(c, ctx, m, tmpl, func(ctx context.Context, hc hsmpb.HSMClient, pm *hsmpb.Mechanism, t []*hsmpb.Attribute) (*hsmpb.ObjectResponse, error) {
		return hc.GenerateKey(ctx, &hsmpb.GenerateKeyRequest{Mechanism: pm, Template: t})
	})
	return r.GetObject(), err
}

// makeKey is a call that makes a key with mechanism m from template tmpl
// (C_GenerateKey, C_UnwrapKey, C_DeriveKey, C_EncapsulateKey,
// C_DecapsulateKey): it converts both, marks the call for where it goes
// (makesObjects: a session object's home node, or the leader for token
// objects), and returns the answer.
func makeKey[R any](c *Client, ctx context.Context, m mech.Mech, tmpl object.Template,
	send func(ctx context.Context, hc hsmpb.HSMClient, pm *hsmpb.Mechanism, t []*hsmpb.Attribute) (R, error)) (R, error) {
	var r R
	ctx = makesObjects(ctx, tmpl)
	pm, err := api.MechToPB("mechanism", m)
	if err != nil {
		return r, err
	}
	t, err := api.TemplateToPB("template", tmpl)
	if err != nil {
		return r, err
	}
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = send(ctx, hc, pm, t)
		return err
	})
	return r, err
}

// GenerateKeyPair generates a key pair (C_GenerateKeyPair).
func (c *Client) GenerateKeyPair(ctx context.Context, m mech.Mech, pubT, privT object.Template) (pub, priv uint64, err error) {
	ctx = makesObjects(ctx, pubT, privT)
	pm, err := api.MechToPB("mechanism", m)
	if err != nil {
		return 0, 0, err
	}
	pt, err := api.TemplateToPB("public_template", pubT)
	if err != nil {
		return 0, 0, err
	}
	vt, err := api.TemplateToPB("private_template", privT)
	if err != nil {
		return 0, 0, err
	}
	var r *hsmpb.KeyPairResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.GenerateKeyPair(ctx, &hsmpb.GenerateKeyPairRequest{Mechanism: pm, PublicTemplate: pt, PrivateTemplate: vt})
		return err
	})
	return r.GetPublicKey(), r.GetPrivateKey(), err
}

// WrapKey wraps key with wrappingKey (C_WrapKey).
func (c *Client) WrapKey(ctx context.Context, m mech.Mech, wrappingKey, key uint64) ([]byte, error) {
	pm, err := api.MechToPB("mechanism", m)
	if err != nil {
		return nil, err
	}
	return c.data(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.DataResponse, error) {
		return hc.WrapKey(ctx, &hsmpb.WrapKeyRequest{Mechanism: pm, WrappingKey: wrappingKey, Key: key})
	})
}

// UnwrapKey unwraps a key into a new object (C_UnwrapKey).
func (c *Client) UnwrapKey(ctx context.Context, m mech.Mech, unwrappingKey uint64, wrapped []byte, tmpl object.Template) (uint64, error) {
	r, err := makeKey(c, ctx, m, tmpl, func(ctx context.Context, hc hsmpb.HSMClient, pm *hsmpb.Mechanism, t []*hsmpb.Attribute) (*hsmpb.ObjectResponse, error) {
		return hc.UnwrapKey(ctx, &hsmpb.UnwrapKeyRequest{Mechanism: pm, UnwrappingKey: unwrappingKey, WrappedKey: wrapped, Template: t})
	})
	return r.GetObject(), err
}

// DeriveKey derives a key from baseKey (C_DeriveKey).
func (c *Client) DeriveKey(ctx context.Context, m mech.Mech, baseKey uint64, tmpl object.Template) (uint64, error) {
	r, err := makeKey(c, ctx, m, tmpl, func(ctx context.Context, hc hsmpb.HSMClient, pm *hsmpb.Mechanism, t []*hsmpb.Attribute) (*hsmpb.ObjectResponse, error) {
		return hc.DeriveKey(ctx, &hsmpb.DeriveKeyRequest{Mechanism: pm, BaseKey: baseKey, Template: t})
	})
	return r.GetObject(), err
}

// EncapsulateKey makes a shared secret with publicKey, stores it as a new
// key and returns the ciphertext and the key (C_EncapsulateKey).
func (c *Client) EncapsulateKey(ctx context.Context, m mech.Mech, publicKey uint64, tmpl object.Template) ([]byte, uint64, error) {
	r, err := makeKey(c, ctx, m, tmpl, func(ctx context.Context, hc hsmpb.HSMClient, pm *hsmpb.Mechanism, t []*hsmpb.Attribute) (*hsmpb.EncapsulateKeyResponse, error) {
		return hc.EncapsulateKey(ctx, &hsmpb.EncapsulateKeyRequest{Mechanism: pm, PublicKey: publicKey, Template: t})
	})
	return r.GetCiphertext(), r.GetObject(), err
}

// DecapsulateKey recovers the shared secret of ciphertext with privateKey
// and stores it as a new key (C_DecapsulateKey).
func (c *Client) DecapsulateKey(ctx context.Context, m mech.Mech, privateKey uint64, ciphertext []byte, tmpl object.Template) (uint64, error) {
	r, err := makeKey(c, ctx, m, tmpl, func(ctx context.Context, hc hsmpb.HSMClient, pm *hsmpb.Mechanism, t []*hsmpb.Attribute) (*hsmpb.ObjectResponse, error) {
		return hc.DecapsulateKey(ctx, &hsmpb.DecapsulateKeyRequest{Mechanism: pm, PrivateKey: privateKey, Ciphertext: ciphertext, Template: t})
	})
	return r.GetObject(), err
}

// ---- cryptography ----

func (c *Client) data(ctx context.Context, fn func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.DataResponse, error)) ([]byte, error) {
	var r *hsmpb.DataResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = fn(ctx, hc)
		return err
	})
	if err != nil {
		return nil, err
	}
	d := r.GetData()
	if d == nil {
		d = []byte{}
	}
	return d, nil
}

func (c *Client) crypt(ctx context.Context, op dataplane.Op, m mech.Mech, id uint64, data []byte,
	fn func(hsmpb.HSMClient) func(context.Context, *hsmpb.CryptoRequest, ...grpc.CallOption) (*hsmpb.DataResponse, error)) ([]byte, error) {
	pm, err := api.MechToPB("mechanism", m)
	if err != nil {
		return nil, err
	}
	req := &hsmpb.CryptoRequest{Mechanism: pm, Key: id, Data: data}
	return c.data(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.DataResponse, error) {
		if out, ok, err := c.viaData(ctx, &dataplane.Request{Op: op, Key: id, Mech: pm, Data: data}); ok {
			return &hsmpb.DataResponse{Data: out}, err
		}
		return fn(hc)(ctx, req)
	})
}

// Sign signs (or MACs) data with key id (C_Sign).
func (c *Client) Sign(ctx context.Context, id uint64, m mech.Mech, data []byte) ([]byte, error) {
	return c.crypt(ctx, dataplane.OpSign, m, id, data, func(a hsmpb.HSMClient) func(context.Context, *hsmpb.CryptoRequest, ...grpc.CallOption) (*hsmpb.DataResponse, error) {
		return a.Sign
	})
}

// Verify checks a signature (or MAC) (C_Verify). A bad signature gives
// CKR_SIGNATURE_INVALID (or CKR_SIGNATURE_LEN_RANGE).
func (c *Client) Verify(ctx context.Context, id uint64, m mech.Mech, data, sig []byte) error {
	pm, err := api.MechToPB("mechanism", m)
	if err != nil {
		return err
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		if _, ok, err := c.viaData(ctx, &dataplane.Request{Op: dataplane.OpVerify, Key: id, Mech: pm, Data: data, Sig: sig}); ok {
			return err
		}
		_, err := hc.Verify(ctx, &hsmpb.VerifyRequest{Mechanism: pm, Key: id, Data: data, Signature: sig})
		return err
	})
}

// Encrypt encrypts data with key id (C_Encrypt).
func (c *Client) Encrypt(ctx context.Context, id uint64, m mech.Mech, data []byte) ([]byte, error) {
	return c.crypt(ctx, dataplane.OpEncrypt, m, id, data, func(a hsmpb.HSMClient) func(context.Context, *hsmpb.CryptoRequest, ...grpc.CallOption) (*hsmpb.DataResponse, error) {
		return a.Encrypt
	})
}

// Decrypt decrypts data with key id (C_Decrypt).
func (c *Client) Decrypt(ctx context.Context, id uint64, m mech.Mech, data []byte) ([]byte, error) {
	return c.crypt(ctx, dataplane.OpDecrypt, m, id, data, func(a hsmpb.HSMClient) func(context.Context, *hsmpb.CryptoRequest, ...grpc.CallOption) (*hsmpb.DataResponse, error) {
		return a.Decrypt
	})
}

// Digest hashes data (C_Digest); it needs no key.
func (c *Client) Digest(ctx context.Context, m mech.Mech, data []byte) ([]byte, error) {
	pm, err := api.MechToPB("mechanism", m)
	if err != nil {
		return nil, err
	}
	return c.data(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.DataResponse, error) {
		if out, ok, err := c.viaData(ctx, &dataplane.Request{Op: dataplane.OpDigest, Mech: pm, Data: data}); ok {
			return &hsmpb.DataResponse{Data: out}, err
		}
		return hc.Digest(ctx, &hsmpb.DigestRequest{Mechanism: pm, Data: data})
	})
}

// DigestStep is one step of a digest that runs in the HSM because it has
// taken a key's value (C_DigestKey): from State (the hash's marshaled
// state, for the step that feeds the first key) or Sealed (the previous
// step's answer), it feeds Key's value (0: none), then Data.
type DigestStep struct {
	Mech   mech.Mech
	State  []byte
	Sealed []byte
	Key    uint64
	Data   []byte
	Final  bool
}

// DigestKey runs one step: it answers the new sealed state, or with Final
// the digest.
func (c *Client) DigestKey(ctx context.Context, st DigestStep) ([]byte, error) {
	pm, err := api.MechToPB("mechanism", st.Mech)
	if err != nil {
		return nil, err
	}
	var r *hsmpb.DigestKeyResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.DigestKey(ctx, &hsmpb.DigestKeyRequest{Mechanism: pm, State: st.State, SealedState: st.Sealed,
			Key: st.Key, Data: st.Data, Final: st.Final})
		return err
	})
	if err != nil {
		return nil, err
	}
	if st.Final {
		return r.GetDigest(), nil
	}
	return r.GetSealedState(), nil
}

// GenerateRandom returns n random bytes from the HSM.
func (c *Client) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	if n < 0 || n > math.MaxUint32 {
		return nil, argErr("random length %d out of range", n)
	}
	return c.data(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (*hsmpb.DataResponse, error) {
		return hc.GenerateRandom(ctx, &hsmpb.RandomRequest{Length: uint32(n)})
	})
}
