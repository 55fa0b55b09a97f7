package core

import (
	"bytes"
	"golang.org/x/crypto/chacha20poly1305"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// ---- IVs made by the token (no cluster) ----

func TestFixedMask(t *testing.T) {
	for _, c := range []struct {
		n     int
		fixed uint64
		want  []byte
	}{
		{4, 0, []byte{0xff, 0xff, 0xff, 0xff}},
		{4, 8, []byte{0, 0xff, 0xff, 0xff}},
		{4, 12, []byte{0, 0x0f, 0xff, 0xff}},
		{4, 31, []byte{0, 0, 0, 0x01}},
		{2, 3, []byte{0x1f, 0xff}},
	} {
		assert.Equal(t, c.want, fixedMask(c.n, c.fixed), "%d bytes, %d fixed", c.n, c.fixed)
	}
}

// A counter never repeats an IV for a key and fixed field, from any number
// of goroutines, keeps the fixed bits, and refuses once it is used up.
func TestIVCounter(t *testing.T) {
	cs := &counters{m: map[counterKey]*ivCounter{}}
	iv := []byte{0xab, 0xcd, 0xef, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}
	const workers, each = 8, 500
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				got, err := cs.next(7, iv, 28)
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, iv[:3], got[:3], "fixed bytes")
				assert.Equal(t, iv[3]&0xf0, got[3]&0xf0, "fixed half byte")
				mu.Lock()
				assert.False(t, seen[string(got)], "IV repeated")
				seen[string(got)] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, workers*each)

	// Another key, or another fixed field, has a counter of its own.
	_, err := cs.next(8, iv, 28)
	require.NoError(t, err)
	require.Len(t, cs.m, 2)

	// Three generated bits: eight IVs, then CKR_TOKEN_RESOURCE_EXCEEDED.
	small := []byte{0xa0}
	got := map[byte]bool{}
	for range 8 {
		v, err := cs.next(9, small, 5)
		require.NoError(t, err)
		require.Equal(t, byte(0xa0), v[0]&0xf8)
		got[v[0]] = true
	}
	require.Len(t, got, 8)
	_, err = cs.next(9, small, 5)
	require.Equal(t, uint64(ck.CKR_TOKEN_RESOURCE_EXCEEDED), hsmerr.RV(err))
}

func TestMessageIV(t *testing.T) {
	gcm := msgAEADs[ck.CKM_AES_GCM]
	p := &msgProcess{key: 99, aead: &gcm}
	base := MsgParam{Kind: msgParamGCM, IV: []byte("0123456789ab"), FixedBits: 32, TagBits: 128, HasTag: true}
	for _, c := range []struct {
		name      string
		gen       uint64
		fixed     uint64
		rv        uint64
		generated bool
	}{
		{"caller", ck.CKG_NO_GENERATE, 32, ck.CKR_OK, false},
		{"generate", ck.CKG_GENERATE, 32, ck.CKR_OK, true},
		{"counter", ck.CKG_GENERATE_COUNTER, 32, ck.CKR_OK, true},
		{"random", ck.CKG_GENERATE_RANDOM, 32, ck.CKR_OK, true},
		{"random, no fixed bits", ck.CKG_GENERATE_RANDOM, 0, ck.CKR_OK, true},
		{"all bits fixed", ck.CKG_GENERATE_COUNTER, 96, ck.CKR_MECHANISM_PARAM_INVALID, false},
		{"more bits fixed than the IV has", ck.CKG_GENERATE_RANDOM, 200, ck.CKR_MECHANISM_PARAM_INVALID, false},
		{"unknown generator", 0x99, 32, ck.CKR_MECHANISM_PARAM_INVALID, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			mp := base
			mp.Generator, mp.FixedBits = c.gen, c.fixed
			iv, generated, err := p.messageIV(mp)
			require.Equal(t, c.rv, rvOf(err), "%v", err)
			require.Equal(t, c.generated, generated)
			if err == nil {
				require.Len(t, iv, 12)
				require.Equal(t, mp.IV[:c.fixed/8], iv[:c.fixed/8])
			}
		})
	}
}

// ---- the life cycle, against a real cluster ----

// msgFixture is a logged-in session with an AES key and an EC key pair.
type msgFixture struct {
	m             *Module
	h             uint64
	aes, pub, prv uint64
}

func newMsgFixture(t *testing.T) *msgFixture {
	e := newEnv(t)
	m := e.m
	h := e.login(t)
	aesKey, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, []Attr{ulAttr(ck.CKA_VALUE_LEN, 32),
		boAttr(ck.CKA_ENCRYPT, true), boAttr(ck.CKA_DECRYPT, true)})
	require.NoError(t, err)
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	pub, prv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]Attr{{Type: ck.CKA_EC_PARAMS, Value: p256}, boAttr(ck.CKA_VERIFY, true)}, []Attr{boAttr(ck.CKA_SIGN, true)})
	require.NoError(t, err)
	return &msgFixture{m: m, h: h, aes: aesKey, pub: pub, prv: prv}
}

func gcmMsg(iv []byte, gen, fixed uint64) MsgParam {
	return MsgParam{Kind: msgParamGCM, IV: bytes.Clone(iv), Generator: gen, FixedBits: fixed, TagBits: 128, HasTag: true}
}

func buf(n uint64) Out { return Out{Present: true, Cap: n} }

func TestMessageLifeCycle(t *testing.T) {
	f := newMsgFixture(t)
	m, h := f.m, f.h
	iv := []byte("0123456789ab")
	pt := []byte("a message of some length")
	aad := []byte("header")
	ecdsa := Mechanism{Type: ck.CKM_ECDSA_SHA256}
	rv := func(err error) uint64 { return rvOf(err) }

	// Each row runs in order on the one session: the process state carries
	// from row to row, as an application's calls do.
	rows := []struct {
		name string
		call func() error
		want uint64
	}{
		{"encrypt message before init", func() error {
			_, _, err := m.EncryptMessage(h, gcmMsg(iv, 0, 0), nil, pt, buf(64))
			return err
		}, ck.CKR_OPERATION_NOT_INITIALIZED},
		{"final before init", func() error { return m.MessageEncryptFinal(h) }, ck.CKR_OPERATION_NOT_INITIALIZED},
		{"init with an unknown mechanism", func() error { return m.MessageEncryptInit(h, 0x80000001, MsgParam{}, f.aes) }, ck.CKR_MECHANISM_INVALID},
		{"init with a block mode", func() error { return m.MessageEncryptInit(h, ck.CKM_AES_CBC, MsgParam{}, f.aes) }, ck.CKR_MECHANISM_INVALID},
		{"init with a wrong parameter", func() error {
			return m.MessageEncryptInit(h, ck.CKM_AES_GCM, MsgParam{Kind: msgParamRaw, Raw: []byte{1}}, f.aes)
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"init with an EC key", func() error { return m.MessageEncryptInit(h, ck.CKM_AES_GCM, MsgParam{}, f.prv) }, ck.CKR_KEY_TYPE_INCONSISTENT},
		{"init with no key", func() error { return m.MessageEncryptInit(h, ck.CKM_AES_GCM, MsgParam{}, 0) }, ck.CKR_KEY_HANDLE_INVALID},
		{"init", func() error { return m.MessageEncryptInit(h, ck.CKM_AES_GCM, MsgParam{}, f.aes) }, ck.CKR_OK},
		{"init again", func() error { return m.MessageEncryptInit(h, ck.CKM_AES_GCM, MsgParam{}, f.aes) }, ck.CKR_OPERATION_ACTIVE},
		// The classic encrypt operation is apart from the message process.
		{"classic encrypt init beside it", func() error {
			return m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Kind: 2, IV: iv, TagBits: 128}, f.aes)
		}, ck.CKR_OK},
		{"no parameter", func() error {
			_, _, err := m.EncryptMessage(h, MsgParam{}, nil, pt, buf(64))
			return err
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"ChaCha parameter for GCM", func() error {
			_, _, err := m.EncryptMessage(h, MsgParam{Kind: msgParamChaCha, IV: iv, NonceBits: 96, HasTag: true}, nil, pt, buf(64))
			return err
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"bad tag length", func() error {
			p := gcmMsg(iv, 0, 0)
			p.TagBits = 64
			_, _, err := m.EncryptMessage(h, p, nil, pt, buf(64))
			return err
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"no pTag", func() error {
			p := gcmMsg(iv, 0, 0)
			p.HasTag = false
			_, _, err := m.EncryptMessage(h, p, nil, pt, buf(64))
			return err
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"length query", func() error {
			r, y, err := m.EncryptMessage(h, gcmMsg(iv, ck.CKG_GENERATE_COUNTER, 32), nil, pt, Out{})
			require.Equal(t, uint64(len(pt)), r.Len)
			require.Nil(t, y.IV, "no IV for a length query")
			return err
		}, ck.CKR_OK},
		{"short buffer", func() error {
			r, _, err := m.EncryptMessage(h, gcmMsg(iv, 0, 0), nil, pt, buf(3))
			require.Equal(t, uint64(len(pt)), r.Len)
			return err
		}, ck.CKR_BUFFER_TOO_SMALL},
		{"next before begin", func() error {
			_, _, err := m.EncryptMessageNext(h, gcmMsg(iv, 0, 0), pt, buf(64), ck.CKF_END_OF_MESSAGE)
			return err
		}, ck.CKR_OPERATION_NOT_INITIALIZED},
		{"begin", func() error {
			_, err := m.EncryptMessageBegin(h, gcmMsg(iv, 0, 0), aad)
			return err
		}, ck.CKR_OK},
		{"one-shot while a message is under way", func() error {
			_, _, err := m.EncryptMessage(h, gcmMsg(iv, 0, 0), nil, pt, buf(64))
			return err
		}, ck.CKR_OPERATION_ACTIVE},
		{"begin twice", func() error {
			_, err := m.EncryptMessageBegin(h, gcmMsg(iv, 0, 0), aad)
			return err
		}, ck.CKR_OPERATION_ACTIVE},
		{"next with bad flags ends the message", func() error {
			_, _, err := m.EncryptMessageNext(h, gcmMsg(iv, 0, 0), pt, buf(64), 0x80)
			return err
		}, ck.CKR_ARGUMENTS_BAD},
		{"next after the message ended", func() error {
			_, _, err := m.EncryptMessageNext(h, gcmMsg(iv, 0, 0), pt, buf(64), 0)
			return err
		}, ck.CKR_OPERATION_NOT_INITIALIZED},
		{"the process outlives the failed message", func() error {
			_, _, err := m.EncryptMessage(h, gcmMsg(iv, 0, 0), aad, pt, buf(64))
			return err
		}, ck.CKR_OK},
		{"final", func() error { return m.MessageEncryptFinal(h) }, ck.CKR_OK},
		{"final again", func() error { return m.MessageEncryptFinal(h) }, ck.CKR_OPERATION_NOT_INITIALIZED},
		{"the classic operation is still there", func() error {
			_, err := m.Encrypt(h, pt, buf(64))
			return err
		}, ck.CKR_OK},

		{"decrypt init", func() error { return m.MessageDecryptInit(h, ck.CKM_AES_GCM, MsgParam{}, f.aes) }, ck.CKR_OK},
		{"decrypt without a tag", func() error {
			_, err := m.DecryptMessage(h, gcmMsg(iv, 0, 0), nil, pt, buf(64))
			return err
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"decrypt a forgery", func() error {
			p := gcmMsg(iv, 0, 0)
			p.Tag = make([]byte, 16)
			_, err := m.DecryptMessage(h, p, nil, pt, buf(64))
			return err
		}, ck.CKR_ENCRYPTED_DATA_INVALID},
		{"decrypt final", func() error { return m.MessageDecryptFinal(h) }, ck.CKR_OK},

		{"sign init with an AES key", func() error { return m.MessageSignInit(h, ecdsa, f.aes) }, ck.CKR_KEY_TYPE_INCONSISTENT},
		{"sign init with a public key", func() error { return m.MessageSignInit(h, ecdsa, f.pub) }, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
		{"sign init", func() error { return m.MessageSignInit(h, ecdsa, f.prv) }, ck.CKR_OK},
		{"sign with a parameter", func() error {
			_, err := m.SignMessage(h, MsgParam{Kind: msgParamRaw, Raw: []byte{1}}, pt, buf(64))
			return err
		}, ck.CKR_MECHANISM_PARAM_INVALID},
		{"sign length", func() error {
			r, err := m.SignMessage(h, MsgParam{}, pt, Out{})
			require.Equal(t, uint64(64), r.Len)
			return err
		}, ck.CKR_OK},
		{"sign next before begin", func() error {
			_, err := m.SignMessageNext(h, MsgParam{}, pt, buf(64), true)
			return err
		}, ck.CKR_OPERATION_NOT_INITIALIZED},
		{"sign final", func() error { return m.MessageSignFinal(h) }, ck.CKR_OK},
		{"verify init", func() error { return m.MessageVerifyInit(h, ecdsa, f.pub) }, ck.CKR_OK},
		{"verify a bad signature", func() error { return m.VerifyMessage(h, MsgParam{}, pt, make([]byte, 64)) }, ck.CKR_SIGNATURE_INVALID},
		{"verify without a signature", func() error { return m.VerifyMessage(h, MsgParam{}, pt, nil) }, ck.CKR_ARGUMENTS_BAD},
		{"verify final", func() error { return m.MessageVerifyFinal(h) }, ck.CKR_OK},

		// C_SessionCancel and logout end message processes.
		{"cancel", func() error {
			require.NoError(t, m.MessageSignInit(h, ecdsa, f.prv))
			return m.SessionCancel(h, ck.CKF_MESSAGE_SIGN)
		}, ck.CKR_OK},
		{"sign after cancel", func() error {
			_, err := m.SignMessage(h, MsgParam{}, pt, buf(64))
			return err
		}, ck.CKR_OPERATION_NOT_INITIALIZED},
	}
	for _, r := range rows {
		require.Equal(t, ck.RVName(r.want), ck.RVName(rv(r.call())), r.name)
	}
}

// Messages encrypted with token and caller IVs decrypt, Begin/Next equals
// the one-shot call, counter IVs do not repeat, and signatures verify.
func TestMessageRoundTrips(t *testing.T) {
	f := newMsgFixture(t)
	m, h := f.m, f.h
	aad := []byte("associated")
	pt := bytes.Repeat([]byte("0123456789"), 30)
	require.NoError(t, m.MessageEncryptInit(h, ck.CKM_AES_GCM, MsgParam{}, f.aes))
	require.NoError(t, m.MessageDecryptInit(h, ck.CKM_AES_GCM, MsgParam{}, f.aes))

	decrypt := func(iv, tag, ct []byte) []byte {
		p := gcmMsg(iv, 0, 0)
		p.Tag = tag
		r, err := m.DecryptMessage(h, p, aad, ct, buf(uint64(len(ct))))
		require.NoError(t, err)
		return r.Data
	}
	seen := map[string]bool{}
	fixed := []byte{0xfe, 0xed, 0xfa, 0xce, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, gen := range []uint64{ck.CKG_GENERATE_COUNTER, ck.CKG_GENERATE_RANDOM, ck.CKG_GENERATE} {
		for range 20 {
			r, y, err := m.EncryptMessage(h, gcmMsg(fixed, gen, 32), aad, pt, buf(1000))
			require.NoError(t, err)
			require.Len(t, y.IV, 12)
			require.Equal(t, fixed[:4], y.IV[:4], "the fixed field is kept")
			require.False(t, seen[string(y.IV)], "IV repeated")
			seen[string(y.IV)] = true
			require.Len(t, y.Tag, 16)
			require.Equal(t, pt, decrypt(y.IV, y.Tag, r.Data))
		}
	}

	// A caller IV: Begin/Next gives what the one-shot call gives.
	iv := []byte("caller-iv-12")
	one, y1, err := m.EncryptMessage(h, gcmMsg(iv, 0, 0), aad, pt, buf(1000))
	require.NoError(t, err)
	require.Nil(t, y1.IV, "a caller IV is not written back")
	_, err = m.EncryptMessageBegin(h, gcmMsg(iv, 0, 0), aad)
	require.NoError(t, err)
	var streamed []byte
	for i := 0; i < 200; i += 50 {
		r, _, err := m.EncryptMessageNext(h, gcmMsg(iv, 0, 0), pt[i:i+50], buf(50), 0)
		require.NoError(t, err)
		streamed = append(streamed, r.Data...)
	}
	_, _, err = m.EncryptMessageNext(h, gcmMsg(iv, 0, 0), pt[200:], buf(10), ck.CKF_END_OF_MESSAGE)
	require.Equal(t, uint64(ck.CKR_BUFFER_TOO_SMALL), rvOf(err), "the message stays for a bigger buffer")
	r, y2, err := m.EncryptMessageNext(h, gcmMsg(iv, 0, 0), pt[200:], buf(1000), ck.CKF_END_OF_MESSAGE)
	require.NoError(t, err)
	streamed = append(streamed, r.Data...)
	require.Equal(t, one.Data, streamed)
	require.Equal(t, y1.Tag, y2.Tag)

	// The tag covers the AAD.
	_, y3, err := m.EncryptMessage(h, gcmMsg(iv, 0, 0), []byte("other"), pt, buf(1000))
	require.NoError(t, err)
	require.NotEqual(t, y1.Tag, y3.Tag)

	// Streamed decryption, and a tampered tag.
	_ = decrypt(iv, y1.Tag, one.Data)
	p := gcmMsg(iv, 0, 0)
	p.Tag = y1.Tag
	require.NoError(t, m.DecryptMessageBegin(h, p, aad))
	r, err = m.DecryptMessageNext(h, p, one.Data[:100], buf(100), 0)
	require.NoError(t, err)
	require.Empty(t, r.Data, "no plaintext before the tag is checked")
	r, err = m.DecryptMessageNext(h, p, one.Data[100:], buf(1000), ck.CKF_END_OF_MESSAGE)
	require.NoError(t, err)
	require.Equal(t, pt, r.Data)
	bad := gcmMsg(iv, 0, 0)
	bad.Tag = bytes.Clone(y1.Tag)
	bad.Tag[0] ^= 1
	_, err = m.DecryptMessage(h, bad, aad, one.Data, buf(1000))
	require.Equal(t, uint64(ck.CKR_ENCRYPTED_DATA_INVALID), rvOf(err))

	// Signatures: one-shot and streamed, verified both ways.
	ecdsa := Mechanism{Type: ck.CKM_ECDSA_SHA256}
	require.NoError(t, m.MessageSignInit(h, ecdsa, f.prv))
	require.NoError(t, m.MessageVerifyInit(h, ecdsa, f.pub))
	for i := range 3 {
		msg := append([]byte("message "), byte('0'+i))
		s, err := m.SignMessage(h, MsgParam{}, msg, buf(64))
		require.NoError(t, err)
		require.NoError(t, m.VerifyMessage(h, MsgParam{}, msg, s.Data))
		require.NoError(t, m.SignMessageBegin(h, MsgParam{}))
		_, err = m.SignMessageNext(h, MsgParam{}, msg[:4], Out{}, false)
		require.NoError(t, err)
		s2, err := m.SignMessageNext(h, MsgParam{}, msg[4:], buf(64), true)
		require.NoError(t, err)
		require.NoError(t, m.VerifyMessageBegin(h, MsgParam{}))
		require.NoError(t, m.VerifyMessageNext(h, MsgParam{}, msg[:2], nil))
		require.NoError(t, m.VerifyMessageNext(h, MsgParam{}, msg[2:], s2.Data))
		require.NoError(t, m.VerifyMessage(h, MsgParam{}, msg, s2.Data))
	}
	require.NoError(t, m.MessageSignFinal(h))
	require.NoError(t, m.MessageVerifyFinal(h))
	require.NoError(t, m.MessageEncryptFinal(h))
	require.NoError(t, m.MessageDecryptFinal(h))
}

// TestMessageChaCha20Poly1305 encrypts messages with a ChaCha20 key of a
// known value and checks them against golang.org/x/crypto's AEAD: the
// library's ciphertext and tag are RFC 8439's, and its decryption takes
// what the reference made.
func TestMessageChaCha20Poly1305(t *testing.T) {
	f := newMsgFixture(t)
	m, h := f.m, f.h
	key := bytes.Repeat([]byte{0x5a}, chacha20poly1305.KeySize)
	k, err := m.CreateObject(h, []Attr{ulAttr(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ulAttr(ck.CKA_KEY_TYPE, ck.CKK_CHACHA20),
		{Type: ck.CKA_VALUE, Value: key}, boAttr(ck.CKA_ENCRYPT, true), boAttr(ck.CKA_DECRYPT, true)})
	require.NoError(t, err)
	ref, err := chacha20poly1305.New(key)
	require.NoError(t, err)
	nonce := []byte("twelve-bytes")
	aad, pt := []byte("header"), []byte("a message for ChaCha20-Poly1305")
	want := ref.Seal(nil, nonce, pt, aad)
	param := func(tag []byte) MsgParam {
		return MsgParam{Kind: msgParamChaCha, IV: bytes.Clone(nonce), NonceBits: 96, Tag: tag, HasTag: true}
	}

	require.NoError(t, m.MessageEncryptInit(h, ck.CKM_CHACHA20_POLY1305, MsgParam{}, k))
	r, y, err := m.EncryptMessage(h, param(nil), aad, pt, buf(100))
	require.NoError(t, err)
	require.Equal(t, want, append(r.Data, y.Tag...), "ciphertext and tag as RFC 8439 gives them")

	require.NoError(t, m.MessageDecryptInit(h, ck.CKM_CHACHA20_POLY1305, MsgParam{}, k))
	ct, tag := want[:len(pt)], want[len(pt):]
	d, err := m.DecryptMessage(h, param(tag), aad, ct, buf(100))
	require.NoError(t, err)
	require.Equal(t, pt, d.Data)
	bad := bytes.Clone(tag)
	bad[3] ^= 0x80
	_, err = m.DecryptMessage(h, param(bad), aad, ct, buf(100))
	require.Equal(t, uint64(ck.CKR_ENCRYPTED_DATA_INVALID), rvOf(err), "a tampered tag")
	odd := param(tag)
	odd.NonceBits = 95
	_, err = m.DecryptMessage(h, odd, aad, ct, buf(100))
	require.Equal(t, uint64(ck.CKR_MECHANISM_PARAM_INVALID), rvOf(err), "a nonce of bits that are not whole bytes")
}

func TestMsgFlags(t *testing.T) {
	for _, c := range []struct {
		name      string
		mt, flags uint64
		want      uint64
	}{
		{"AES-GCM", ck.CKM_AES_GCM, ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP, ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT},
		{"ChaCha20-Poly1305", ck.CKM_CHACHA20_POLY1305, ck.CKF_ENCRYPT | ck.CKF_DECRYPT, ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT},
		{"AES-CBC encrypts but not by message", ck.CKM_AES_CBC, ck.CKF_ENCRYPT | ck.CKF_DECRYPT, 0},
		{"ECDSA", ck.CKM_ECDSA, ck.CKF_SIGN | ck.CKF_VERIFY, ck.CKF_MESSAGE_SIGN | ck.CKF_MESSAGE_VERIFY},
		{"a digest", ck.CKM_SHA256, ck.CKF_DIGEST, 0},
	} {
		assert.Equal(t, c.want, msgFlags(c.mt, c.flags), c.name)
	}
}
