package core

import (
	"crypto/rand"
	"encoding/binary"
	"hash"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// opKind names an operation a session can have active; a session may have
// one of each at a time.
type opKind int

const (
	opEncrypt opKind = iota
	opDecrypt
	opDigest
	opSign
	opVerify
	opSignRecover
	opVerifyRecover
)

// opKinds is the operation table: what each kind needs of a mechanism.
var opKinds = map[opKind]struct {
	name  string
	flag  uint64 // CKF_ the mechanism must have
	login bool   // needs a logged-in user
	usage uint64 // CKA_ the key must have set
}{
	opEncrypt: {"encrypt", ck.CKF_ENCRYPT, true, ck.CKA_ENCRYPT},
	opDecrypt: {"decrypt", ck.CKF_DECRYPT, true, ck.CKA_DECRYPT},
	opDigest:  {"digest", ck.CKF_DIGEST, false, 0},
	opSign:    {"sign", ck.CKF_SIGN, true, ck.CKA_SIGN},
	opVerify:  {"verify", ck.CKF_VERIFY, true, ck.CKA_VERIFY},
	// The recover kinds take their mechanisms from recoverMechs, not from
	// the mechanism rows' flags.
	opSignRecover:   {"sign-recover", ck.CKF_SIGN_RECOVER, true, ck.CKA_SIGN_RECOVER},
	opVerifyRecover: {"verify-recover", ck.CKF_VERIFY_RECOVER, true, ck.CKA_VERIFY_RECOVER},
}

// recoverMechs are the mechanisms that sign and verify with recovery.
var recoverMechs = map[uint64]bool{ck.CKM_RSA_PKCS: true, ck.CKM_RSA_X_509: true}

// operation is an active operation. Multi-part input collects in buf and
// is processed in one call at the final step. result keeps an output a
// caller has not fetched yet (the two-call rule), so the crypto runs once;
// resFinal says whether the final call (true) or the single-part call made
// it. multi is set by the first update. The life-cycle rules (lifecycle.go)
// read these three.
type operation struct {
	mech     mech.Mech
	key      uint64
	buf      []byte
	multi    bool
	result   []byte
	haveRes  bool
	resFinal bool
	// hash is a digest's running hash (nil for a digest Go cannot run
	// incrementally: its input collects in buf).
	hash   hash.Hash
	stream *stream // block modes in a multi-part encrypt or decrypt
	// local is a public key to verify or encrypt with in the library: no
	// secret is involved, and it saves a round trip to the daemon.
	local *mech.Key
	row   *mech.Mechanism
	// sealed is set once a digest took a key's value (C_DigestKey): the
	// digest goes on in the HSM, from this state the daemon sealed, and
	// hash is nil (digestkey.go).
	sealed []byte
}

// toMech turns a flattened CK_MECHANISM into the engine's form, checking the
// parameter against the mechanism table.
func toMech(m Mechanism) (mech.Mech, *mech.Mechanism, error) {
	row, ok := mech.LookupMechanism(m.Type)
	if !ok {
		return mech.Mech{}, nil, errorf(ck.CKR_MECHANISM_INVALID, "%s is not supported", ck.MechName(m.Type))
	}
	out := mech.Mech{Type: m.Type}
	bad := func() (mech.Mech, *mech.Mechanism, error) {
		return mech.Mech{}, nil, errorf(ck.CKR_MECHANISM_PARAM_INVALID, "bad parameter for %s", ck.MechName(m.Type))
	}
	raw := m.Raw
	none := m.Kind == 0 || (m.Kind == 1 && len(raw) == 0)
	switch row.Param {
	case mech.ParamNone:
		if !none {
			return bad()
		}
	case mech.ParamIV:
		if m.Kind == 1 {
			out.Param = &mech.IVParams{IV: append([]byte{}, raw...)}
		} else if m.Kind != 0 {
			return bad()
		}
	case mech.ParamCTR:
		if m.Kind != 1 || len(raw) != 24 {
			return bad()
		}
		p := &mech.CTRParams{CounterBits: binary.NativeEndian.Uint64(raw)}
		copy(p.CB[:], raw[8:])
		out.Param = p
	case mech.ParamPSS:
		if m.Kind != 1 || len(raw) != 24 {
			return bad()
		}
		out.Param = &mech.PSSParams{Hash: binary.NativeEndian.Uint64(raw), MGF: binary.NativeEndian.Uint64(raw[8:]),
			SaltLen: binary.NativeEndian.Uint64(raw[16:])}
	case mech.ParamMacLen:
		if m.Kind != 1 || len(raw) != 8 {
			return bad()
		}
		out.Param = &mech.MacLenParams{Len: binary.NativeEndian.Uint64(raw)}
	case mech.ParamGCM:
		if m.Kind != 2 {
			return bad()
		}
		out.Param = &mech.GCMParams{IV: m.IV, AAD: m.AAD, TagBits: m.TagBits}
	case mech.ParamOAEP:
		if m.Kind != 3 {
			return bad()
		}
		out.Param = &mech.OAEPParams{Hash: m.Hash, MGF: m.MGF, Source: m.Source, Label: m.SourceData}
	case mech.ParamECDH:
		if m.Kind != 4 {
			return bad()
		}
		out.Param = &mech.ECDHParams{KDF: m.KDF, SharedData: m.SharedData, PublicData: m.PublicData}
	case mech.ParamEdDSA:
		switch {
		case none:
		case m.Kind == 5:
			out.Param = &mech.EdDSAParams{PHFlag: m.PHFlag, Context: m.Context}
		default:
			return bad()
		}
	case mech.ParamHKDF, mech.ParamKDF108, mech.ParamChaCha:
		p, ok := layoutParam(row.Param, m)
		if !ok {
			return bad()
		}
		out.Param = p
	case mech.ParamSignContext:
		switch {
		case none:
		case m.Kind == mkSignContext:
			out.Param = &mech.SignContextParams{Hedge: m.Hedge, Context: m.Context}
		default:
			return bad()
		}
	}
	if err := mech.CheckParam(row, out); err != nil {
		return mech.Mech{}, nil, err
	}
	return out, row, nil
}

func (m *Module) opInit(h uint64, kind opKind, mm Mechanism, key uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	if mm.Null {
		// PKCS#11 3.0: C_*Init with a NULL mechanism ends the operation.
		s.mu.Lock()
		delete(s.ops, kind)
		s.mu.Unlock()
		return nil
	}
	info := opKinds[kind]
	var c *client.Client
	if info.login {
		if c, err = m.clientFor(s, key); err != nil {
			return err
		}
	}
	tm, row, err := toMech(mm)
	if err != nil {
		return err
	}
	able := row.Flags&info.flag != 0
	if kind == opSignRecover || kind == opVerifyRecover {
		able = recoverMechs[mm.Type]
	}
	if !able {
		return errorf(ck.CKR_MECHANISM_INVALID, "%s cannot %s", ck.MechName(mm.Type), info.name)
	}
	if info.login {
		if _, ut := s.slot.client(); ut == ck.CKU_SO {
			return errorf(ck.CKR_USER_NOT_LOGGED_IN, "crypto officers cannot use keys")
		}
		if key == 0 {
			return errorf(ck.CKR_KEY_HANDLE_INVALID, "no key")
		}
		s.mu.Lock()
		_, active := s.ops[kind]
		s.mu.Unlock()
		if active {
			return errorf(ck.CKR_OPERATION_ACTIVE, "an %s operation is active", info.name)
		}
		if err := m.publicKeyUse(s, c, key); err != nil {
			return err
		}
		if err := m.checkKey(s.slot, c, key, row, mm.Type, info.usage); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, active := s.ops[kind]; active {
		return errorf(ck.CKR_OPERATION_ACTIVE, "an %s operation is active", info.name)
	}
	op := &operation{mech: tm, key: key, row: row}
	switch kind {
	case opVerify, opEncrypt, opVerifyRecover:
		op.local = m.localKey(s.slot, key)
	case opDigest:
		op.hash, _ = mech.RunningHash(tm.Type)
	}
	if kind == opVerifyRecover && op.local == nil {
		return errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "verify-recover needs an RSA public key object")
	}
	s.ops[kind] = op
	return nil
}

// collect adds a part to a multi-part operation's input.
func (op *operation) collect(part []byte) error {
	if len(op.buf)+len(part) > maxOpData {
		return errorf(ck.CKR_DATA_LEN_RANGE, "more than %d bytes in one operation", maxOpData)
	}
	op.multi = true
	op.buf = append(op.buf, part...)
	return nil
}

func (m *Module) EncryptInit(h uint64, mech Mechanism, key uint64) error {
	return m.opInit(h, opEncrypt, mech, key)
}
func (m *Module) DecryptInit(h uint64, mech Mechanism, key uint64) error {
	return m.opInit(h, opDecrypt, mech, key)
}
func (m *Module) DigestInit(h uint64, mech Mechanism) error { return m.opInit(h, opDigest, mech, 0) }
func (m *Module) SignInit(h uint64, mech Mechanism, key uint64) error {
	return m.opInit(h, opSign, mech, key)
}
func (m *Module) VerifyInit(h uint64, mech Mechanism, key uint64) error {
	return m.opInit(h, opVerify, mech, key)
}
func (m *Module) SignRecoverInit(h uint64, mech Mechanism, key uint64) error {
	return m.opInit(h, opSignRecover, mech, key)
}
func (m *Module) VerifyRecoverInit(h uint64, mech Mechanism, key uint64) error {
	return m.opInit(h, opVerifyRecover, mech, key)
}

// SignRecover runs in the HSM: for CKM_RSA_PKCS and CKM_RSA_X_509 a
// signature with recovery is the same computation as a signature, so the
// daemon's Sign does it.
func (m *Module) SignRecover(h uint64, data []byte, out Out) (OutResult, error) {
	return m.run(h, opSignRecover, data, false, out, m.signWork)
}

// VerifyRecover runs here with the public key, as verification does.
func (m *Module) VerifyRecover(h uint64, sig []byte, out Out) (OutResult, error) {
	return m.run(h, opVerifyRecover, sig, false, out, func(_ *client.Client, op *operation, in []byte, _ bool) ([]byte, error) {
		return verifyRecover(op.local, op.mech.Type, in)
	})
}

func (m *Module) encryptWork(c *client.Client, op *operation, in []byte, _ bool) ([]byte, error) {
	if op.stream != nil {
		return m.streamFinal(c, op, true)
	}
	if op.local != nil && op.row.Encrypt != nil {
		return op.row.Encrypt(op.local, op.mech, in)
	}
	return m.crypt(c, true, op.key, op.mech, in)
}

func (m *Module) decryptWork(c *client.Client, op *operation, in []byte, _ bool) ([]byte, error) {
	if op.stream != nil {
		return m.streamFinal(c, op, false)
	}
	return m.crypt(c, false, op.key, op.mech, in)
}

func (m *Module) signWork(c *client.Client, op *operation, in []byte, _ bool) ([]byte, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	return c.Sign(ctx, op.key, op.mech, in)
}

// Digests run here: they need no key. A multi-part digest runs as its
// parts come (op.hash).
func (m *Module) digestWork(c *client.Client, op *operation, in []byte, final bool) ([]byte, error) {
	if final && op.sealed != nil {
		return m.sealedDigest(c, op, nil, true)
	}
	if final && op.hash != nil {
		return op.hash.Sum(nil), nil
	}
	return mech.Digest(op.mech, in)
}

func (m *Module) Encrypt(h uint64, data []byte, out Out) (OutResult, error) {
	return m.run(h, opEncrypt, data, false, out, m.encryptWork)
}
func (m *Module) EncryptUpdate(h uint64, part []byte, out Out) (OutResult, error) {
	return m.cryptUpdate(h, opEncrypt, part, out)
}
func (m *Module) EncryptFinal(h uint64, out Out) (OutResult, error) {
	return m.run(h, opEncrypt, nil, true, out, m.encryptWork)
}
func (m *Module) Decrypt(h uint64, data []byte, out Out) (OutResult, error) {
	return m.run(h, opDecrypt, data, false, out, m.decryptWork)
}
func (m *Module) DecryptUpdate(h uint64, part []byte, out Out) (OutResult, error) {
	return m.cryptUpdate(h, opDecrypt, part, out)
}
func (m *Module) DecryptFinal(h uint64, out Out) (OutResult, error) {
	return m.run(h, opDecrypt, nil, true, out, m.decryptWork)
}
func (m *Module) Digest(h uint64, data []byte, out Out) (OutResult, error) {
	return m.run(h, opDigest, data, false, out, m.digestWork)
}
func (m *Module) DigestUpdate(h uint64, part []byte) error { return m.update(h, opDigest, part) }

// DigestKey is in digestkey.go.
func (m *Module) DigestFinal(h uint64, out Out) (OutResult, error) {
	return m.run(h, opDigest, nil, true, out, m.digestWork)
}
func (m *Module) Sign(h uint64, data []byte, out Out) (OutResult, error) {
	return m.run(h, opSign, data, false, out, m.signWork)
}
func (m *Module) SignUpdate(h uint64, part []byte) error { return m.update(h, opSign, part) }
func (m *Module) SignFinal(h uint64, out Out) (OutResult, error) {
	return m.run(h, opSign, nil, true, out, m.signWork)
}

func (m *Module) verify(h uint64, data, sig []byte, final bool) error {
	_, err := m.run(h, opVerify, data, final, Out{Present: true, Cap: 1}, func(c *client.Client, op *operation, in []byte, _ bool) ([]byte, error) {
		if sig == nil {
			return nil, errorf(ck.CKR_ARGUMENTS_BAD, "no signature")
		}
		if op.local != nil && op.row.Verify != nil {
			return []byte{}, op.row.Verify(op.local, op.mech, in, sig)
		}
		ctx, cancel := m.ctx()
		defer cancel()
		return []byte{}, c.Verify(ctx, op.key, op.mech, in, sig)
	})
	return err
}
func (m *Module) Verify(h uint64, data, sig []byte) error  { return m.verify(h, data, sig, false) }
func (m *Module) VerifyUpdate(h uint64, part []byte) error { return m.update(h, opVerify, part) }
func (m *Module) VerifyFinal(h uint64, sig []byte) error   { return m.verify(h, nil, sig, true) }

// ---- keys ----

func (m *Module) GenerateKey(h uint64, mech Mechanism, t []Attr) (uint64, error) {
	s, c, ct, err := m.forObject(h, t)
	if err != nil {
		return 0, err
	}
	if err := object.CheckSecretKeyType(ct); err != nil {
		return 0, err
	}
	tm, _, err := toMech(mech)
	if err != nil {
		return 0, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	id, err := c.GenerateKey(ctx, tm, ct)
	if err != nil {
		return 0, err
	}
	s.made(id, ct, c)
	return id, nil
}

func (m *Module) GenerateKeyPair(h uint64, mech Mechanism, pub, priv []Attr) (uint64, uint64, error) {
	s, c, pt, err := m.forObject(h, pub)
	if err != nil {
		return 0, 0, err
	}
	_, _, vt, err := m.forObject(h, priv)
	if err != nil {
		return 0, 0, err
	}
	tm, _, err := toMech(mech)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	p, v, err := c.GenerateKeyPair(ctx, tm, pt, vt)
	if err != nil {
		return 0, 0, err
	}
	s.made(p, pt, c)
	s.made(v, vt, c)
	return p, v, nil
}

// WrapKey follows the two-call rule; key wrap is deterministic, so asking
// for the length first simply wraps twice.
func (m *Module) WrapKey(h uint64, mech Mechanism, wrapping, key uint64, out Out) (OutResult, error) {
	s, err := m.session(h)
	if err != nil {
		return OutResult{}, err
	}
	c, err := m.clientFor(s, wrapping, key)
	if err != nil {
		return OutResult{}, err
	}
	tm, _, err := toMech(mech)
	if err != nil {
		return OutResult{}, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	w, err := c.WrapKey(ctx, tm, wrapping, key)
	if err != nil {
		return OutResult{}, m.keyRoleError(s, c, wrapping, ck.CKR_WRAPPING_KEY_HANDLE_INVALID, err)
	}
	n := uint64(len(w))
	switch {
	case !out.Present:
		return OutResult{Len: n}, nil
	case out.Cap < n:
		return OutResult{Len: n}, errorf(ck.CKR_BUFFER_TOO_SMALL, "the wrapped key needs %d bytes", n)
	}
	return OutResult{Len: n, Data: w}, nil
}

func (m *Module) UnwrapKey(h uint64, mech Mechanism, unwrapping uint64, wrapped []byte, t []Attr) (uint64, error) {
	s, c, ct, err := m.forObject(h, t, unwrapping)
	if err != nil {
		return 0, err
	}
	if wrapped == nil {
		return 0, errorf(ck.CKR_ARGUMENTS_BAD, "no wrapped key")
	}
	tm, _, err := toMech(mech)
	if err != nil {
		return 0, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	id, err := c.UnwrapKey(ctx, tm, unwrapping, wrapped, ct)
	if err != nil {
		return 0, m.keyRoleError(s, c, unwrapping, ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID, err)
	}
	s.made(id, ct, c)
	return id, nil
}

func (m *Module) DeriveKey(h uint64, mech Mechanism, base uint64, t []Attr) (uint64, error) {
	s, c, ct, err := m.forObject(h, t, base)
	if err != nil {
		return 0, err
	}
	tm, _, err := toMech(mech)
	if err != nil {
		return 0, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	id, err := c.DeriveKey(ctx, tm, base, ct)
	if err != nil {
		return 0, err
	}
	s.made(id, ct, c)
	return id, nil
}

// SeedRandom: the generator takes no seed from outside.
func (m *Module) SeedRandom(h uint64, _ []byte) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return errorf(ck.CKR_RANDOM_SEED_NOT_SUPPORTED, "the generator cannot be seeded")
}

// GenerateRandom draws from the operating system's generator here: a round
// trip to the daemon would add nothing but latency.
func (m *Module) GenerateRandom(h uint64, n uint64) ([]byte, error) {
	if _, err := m.session(h); err != nil {
		return nil, err
	}
	if n > mech.MaxRandomLen {
		return nil, errorf(ck.CKR_ARGUMENTS_BAD, "at most %d random bytes at a time", mech.MaxRandomLen)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, errorf(ck.CKR_FUNCTION_FAILED, "random: %v", err)
	}
	return b, nil
}
