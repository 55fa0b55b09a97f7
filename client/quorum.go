package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/quorum"
)

// Quorum authentication (docs/quorum.md): an officer's approval is a
// signature by a private key that never leaves the officer's machine; the
// client signs here and sends only the signature.

type quorumCtxKey struct{}

// WithQuorumToken makes the protected calls made with ctx (user
// management, AddNode, RemoveNode, SetQuorumPolicy) name an approved
// quorum token.
func WithQuorumToken(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, quorumCtxKey{}, id)
}

// SetQuorumToken names the approved token every protected call of this
// client uses, unless its context names another.
func (c *Client) SetQuorumToken(id string) { c.quorumToken.Store(&id) }

func (c *Client) quorum(ctx context.Context) string {
	if id, ok := ctx.Value(quorumCtxKey{}).(string); ok {
		return id
	}
	if p := c.quorumToken.Load(); p != nil {
		return *p
	}
	return ""
}

// QuorumToken is a request for approval, as the cluster holds it.
type QuorumToken struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Requester string    `json:"requester"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires"`
	Approvals []string  `json:"approvals"`
	Required  int       `json:"required"`
}

// SigningBytes are the bytes an approver signs (quorum.Token).
func (t *QuorumToken) SigningBytes() []byte {
	tt := quorum.Token{ID: t.ID, Service: t.Service, Requester: t.Requester, Issued: t.Issued.Unix(), Expires: t.Expires.Unix()}
	return tt.SigningBytes()
}

func quorumTokenFromPB(p *hsmpb.QuorumToken) *QuorumToken {
	return &QuorumToken{ID: p.Id, Service: p.Service, Requester: p.Requester, Issued: time.Unix(p.IssuedUnix, 0),
		Expires: time.Unix(p.ExpiresUnix, 0), Approvals: append([]string{}, p.Approvals...), Required: int(p.Required)}
}

// QuorumOfficer is an officer with a registered approval key.
type QuorumOfficer struct {
	Name        string `json:"name"`
	KeyType     string `json:"key_type"`
	Fingerprint string `json:"fingerprint"`
}

// QuorumStatus is the cluster's quorum policy, approvers and live tokens.
type QuorumStatus struct {
	Policy   map[string]int  `json:"policy"`
	Officers []QuorumOfficer `json:"officers"`
	Tokens   []*QuorumToken  `json:"tokens"`
}

// QuorumStatus reads the quorum state (crypto officer).
func (c *Client) QuorumStatus(ctx context.Context) (*QuorumStatus, error) {
	var r *hsmpb.QuorumStatusResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.QuorumStatus(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &QuorumStatus{Policy: map[string]int{}, Officers: []QuorumOfficer{}, Tokens: []*QuorumToken{}}
	for _, p := range r.Policies {
		out.Policy[p.Service] = int(p.M)
	}
	for _, o := range r.Officers {
		out.Officers = append(out.Officers, QuorumOfficer{Name: o.Name, KeyType: o.KeyType, Fingerprint: o.Fingerprint})
	}
	for _, t := range r.Tokens {
		out.Tokens = append(out.Tokens, quorumTokenFromPB(t))
	}
	return out, nil
}

// RegisterQuorumKey registers the logged-in officer's approval key (ECDSA
// P-256 or Ed25519), proving possession of its private half.
func (c *Client) RegisterQuorumKey(ctx context.Context, priv any) error {
	der, err := QuorumPublicDER(priv)
	if err != nil {
		return argErr("%v", err)
	}
	user := c.User()
	if user == "" {
		return argErr("log in first")
	}
	proof, err := quorum.Sign(priv, quorum.RegistrationBytes(user, der))
	if err != nil {
		return argErr("%v", err)
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.QuorumRegisterKey(ctx, &hsmpb.QuorumRegisterKeyRequest{PublicKey: der, Proof: proof})
		return err
	})
}

// SetQuorumPolicy sets how many officers must approve a service ("user-management"
// or "cluster-membership"); once any M is above 1, ctx or the client must
// name an approved "quorum" token.
func (c *Client) SetQuorumPolicy(ctx context.Context, service string, m int) error {
	if m < 1 || m > quorum.MaxM {
		return argErr("M must be 1 to %d", quorum.MaxM)
	}
	return c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.QuorumSetPolicy(ctx, &hsmpb.QuorumSetPolicyRequest{Service: service, M: uint32(m), QuorumToken: c.quorum(ctx)})
		return err
	})
}

// CreateQuorumToken asks for approval of one use of a service.
func (c *Client) CreateQuorumToken(ctx context.Context, service string) (*QuorumToken, error) {
	var r *hsmpb.QuorumToken
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.QuorumCreateToken(ctx, &hsmpb.QuorumCreateTokenRequest{Service: service})
		return err
	})
	if err != nil {
		return nil, err
	}
	return quorumTokenFromPB(r), nil
}

// ApproveQuorumToken signs the live token id with the logged-in officer's
// approval key and returns the token it approved.
func (c *Client) ApproveQuorumToken(ctx context.Context, id string, priv any) (*QuorumToken, error) {
	st, err := c.QuorumStatus(ctx)
	if err != nil {
		return nil, err
	}
	var tok *QuorumToken
	for _, t := range st.Tokens {
		if t.ID == id {
			tok = t
		}
	}
	if tok == nil {
		return nil, argErr("no live quorum token %q (expired, used or never made)", id)
	}
	sig, err := quorum.Sign(priv, tok.SigningBytes())
	if err != nil {
		return nil, argErr("%v", err)
	}
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) error {
		_, err := hc.QuorumApproveToken(ctx, &hsmpb.QuorumApproveTokenRequest{Id: id, Signature: sig})
		return err
	})
	return tok, err
}

// QuorumPublicDER is the PKIX encoding of an approval key's public half.
func QuorumPublicDER(priv any) ([]byte, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an ECDSA approval key must be on P-256")
		}
		return x509.MarshalPKIXPublicKey(&k.PublicKey)
	case ed25519.PrivateKey:
		return x509.MarshalPKIXPublicKey(k.Public())
	}
	return nil, errors.New("an approval key must be ECDSA P-256 or Ed25519")
}

// GenerateQuorumKey makes an approval key ("ecdsa-p256" or "ed25519") and
// returns it with its PKCS#8 PEM encoding.
func GenerateQuorumKey(kind string) (any, []byte, error) {
	var priv any
	var err error
	switch kind {
	case "ecdsa-p256", "p256", "":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("unknown key type %q (want ecdsa-p256 or ed25519)", kind)
	}
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseQuorumKey reads an approval key's private half from PEM (PKCS#8,
// or SEC 1 "EC PRIVATE KEY").
func ParseQuorumKey(b []byte) (any, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var priv any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, errors.New("the PEM block is not a readable private key")
	}
	if _, err := QuorumPublicDER(priv); err != nil {
		return nil, err
	}
	return priv, nil
}
