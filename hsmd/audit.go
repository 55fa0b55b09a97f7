package hsmd

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// The audit trail's node side (docs/audit.md). Commands are recorded by
// apply; this file stamps them with where they came from, counts key uses
// in memory and sends the counts of each finished second as one OpAudit
// command, so that signing never waits for a write.

// stampApplier fills in the node and the client certificate of every
// command the engine submits, for its audit record.
type stampApplier struct {
	next engine.Applier
	node string
}

func (a *stampApplier) Submit(ctx context.Context, c *state.Command) error {
	c.Node = a.node
	if id := identityFrom(ctx); id.Kind != "" {
		c.Cert = hex.EncodeToString(id.Fingerprint[:])
	}
	return a.next.Submit(ctx, c)
}

// useKey is one counter: the uses of one second by one user (and
// certificate) of one key for one operation with one result.
type useKey struct {
	time   int64
	user   string
	cert   [32]byte // hex-encoded only when sent: signing stays cheap
	object uint64
	op     string
	result uint64
}

// usesPerFlush bounds the counts of one OpAudit command; more go in the
// next ones.
const usesPerFlush = audit.MaxUses

// useCounter counts key uses and sends them through the log.
type useCounter struct {
	node    string
	sealer  func() *seal.Sealer
	applier engine.Applier
	log     *slog.Logger
	now     func() time.Time

	mu     sync.Mutex
	counts map[useKey]uint64

	flushMu   sync.Mutex     // one flush at a time
	pending   *state.Command // sent, outcome unknown: resent as it is
	lastBatch uint64
}

func newUseCounter(node string, sealer func() *seal.Sealer, a engine.Applier, lastBatch uint64, log *slog.Logger) *useCounter {
	return &useCounter{node: node, sealer: sealer, applier: a, log: log, now: time.Now,
		counts: map[useKey]uint64{}, lastBatch: lastBatch}
}

// maxUseCounters bounds the counters held in memory: a caller who names
// many distinct (even nonexistent) keys must not grow them, nor the trail,
// without bound. Past it, new counters fold into object 0.
const maxUseCounters = audit.MaxUses

func (u *useCounter) add(k useKey) {
	u.mu.Lock()
	if _, ok := u.counts[k]; !ok && len(u.counts) >= maxUseCounters {
		k.object = 0
	}
	u.counts[k]++
	u.mu.Unlock()
}

// take removes and returns the counts of seconds before the given one.
func (u *useCounter) take(before int64) []audit.UseCount {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []audit.UseCount
	for k, n := range u.counts {
		if k.time < before {
			out = append(out, audit.UseCount{Time: k.time, User: k.user, Cert: hex.EncodeToString(k.cert[:]), Object: k.object,
				Op: k.op, Result: k.result, Count: n})
			delete(u.counts, k)
		}
	}
	return out
}

// putBack returns counts that could not be sent.
func (u *useCounter) putBack(uses []audit.UseCount) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range uses {
		k := useKey{time: c.Time, user: c.User, object: c.Object, op: c.Op, result: c.Result}
		hex.Decode(k.cert[:], []byte(c.Cert))
		u.counts[k] += c.Count
	}
}

// flush sends the counts of finished seconds (all of them when all is
// set, at shutdown). A batch whose outcome is unknown is kept and resent
// first, with its number, so apply counts it at most once.
func (u *useCounter) flush(ctx context.Context, all bool) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	if u.pending != nil {
		if err := u.send(ctx, u.pending); err != nil {
			return err
		}
	}
	before := u.now().Unix()
	if all {
		before = math.MaxInt64
	}
	uses := u.take(before)
	if len(uses) == 0 {
		return nil
	}
	s := u.sealer()
	if s == nil {
		u.putBack(uses)
		return errors.New("the domain key is not unsealed")
	}
	state.SortAuditUses(uses)
	for len(uses) > 0 {
		n := min(len(uses), usesPerFlush)
		part := uses[:n]
		uses = uses[n:]
		// Batch numbers only grow, also across restarts (lastBatch starts
		// from the store), and follow the clock where it allows.
		batch := max(u.lastBatch+1, uint64(u.now().UnixNano()))
		u.lastBatch = batch
		c := &state.Command{Op: state.OpAudit, Time: u.now().Unix(), Node: u.node, Batch: batch, Uses: part,
			Proof: state.AuditProof(s, u.node, batch, part)}
		if err := u.send(ctx, c); err != nil {
			u.putBack(uses)
			return err
		}
	}
	return nil
}

// send submits a batch. A refusal is final (a duplicate was counted
// already); a failure of the cluster keeps the batch pending.
func (u *useCounter) send(ctx context.Context, c *state.Command) error {
	switch out, err := sendBatch(ctx, u.applier, c); out {
	case batchPending:
		u.pending = c
		return err
	case batchRefused:
		u.pending = nil
		u.log.Error("key-use counts refused; they are lost", "batch", c.Batch, "counts", len(c.Uses), "error", err.Error())
	default:
		u.pending = nil
	}
	return nil
}

// batchOutcome is what became of a node's audit batch.
type batchOutcome int

const (
	batchDone    batchOutcome = iota // applied, or a duplicate of one applied
	batchPending                     // the cluster failed: send it again as it is
	batchRefused                     // refused for good
)

// sendBatch submits an audit batch (OpAudit, OpKMSAudit) and sorts its
// outcome; the error is the cluster's failure or the refusal.
func sendBatch(ctx context.Context, a engine.Applier, c *state.Command) (batchOutcome, error) {
	err := a.Submit(ctx, c)
	switch {
	case err == nil || state.IsAuditDuplicate(err):
		return batchDone, nil
	case hsmerr.IsRV(err, ck.CKR_DEVICE_ERROR) || ctx.Err() != nil:
		return batchPending, err
	}
	return batchRefused, err
}

// run flushes every second until ctx ends.
func (u *useCounter) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := u.flush(fctx, false); err != nil {
				u.log.Warn("key-use counts not sent yet; will retry", "error", err.Error())
			}
			cancel()
		}
	}
}

// keyUseOf says which key a request uses for which operation.
func keyUseOf(method string, req any) (op string, objects []uint64) {
	switch r := req.(type) {
	case *hsmpb.CryptoRequest:
		switch method {
		case "Sign":
			return audit.UseSign, []uint64{r.Key}
		case "Encrypt":
			return audit.UseEncrypt, []uint64{r.Key}
		case "Decrypt":
			return audit.UseDecrypt, []uint64{r.Key}
		}
	case *hsmpb.VerifyRequest:
		return audit.UseVerify, []uint64{r.Key}
	case *hsmpb.WrapKeyRequest:
		// The wrapping key is used; the wrapped one leaves the HSM.
		return audit.UseWrap, []uint64{r.WrappingKey, r.Key}
	case *hsmpb.UnwrapKeyRequest:
		return audit.UseUnwrap, []uint64{r.UnwrappingKey}
	case *hsmpb.DeriveKeyRequest:
		return audit.UseDerive, []uint64{r.BaseKey}
	// Key encapsulation makes a secret key from a key, as derive does; it
	// counts as a derive so the replicated set of operations stays.
	case *hsmpb.EncapsulateKeyRequest:
		return audit.UseDerive, []uint64{r.PublicKey}
	case *hsmpb.DecapsulateKeyRequest:
		return audit.UseDerive, []uint64{r.PrivateKey}
	}
	return "", nil
}

// countUse counts a key use that reached its handler, with its result.
// It is called by the interceptor after the handler ran.
func (s *Server) countUse(ctx context.Context, fullMethod string, req any, err error) {
	if s.uses == nil {
		return
	}
	op, objects := keyUseOf(fullMethod[strings.LastIndex(fullMethod, "/")+1:], req)
	if op == "" {
		return
	}
	c := callerFrom(ctx)
	if c.Role == object.RolePublic {
		// A public session uses only its own ephemeral objects; counting
		// them would let a client certificate alone write to the log.
		return
	}
	id := identityFrom(ctx)
	k := useKey{time: s.now().Unix(), user: c.User, cert: id.Fingerprint, op: op, result: hsmerr.RV(err)}
	for i, o := range objects {
		k.object = o
		if i == 1 {
			k.op = audit.UseWrapped
		}
		s.uses.add(k)
	}
}

// auditPage is the most records one ListAudit answer holds.
const auditPage = 1000

func auditToPB(r *audit.Record) *hsmpb.AuditRecord {
	return &hsmpb.AuditRecord{Seq: r.Seq, Index: r.Index, Time: r.Time, Kind: r.Kind, Op: r.Op, User: r.User,
		Cert: r.Cert, Node: r.Node, Object: r.Object, Subject: r.Subject, Result: r.Result, Count: r.Count, Mac: r.MAC,
		Detail: r.Detail}
}

// hsmKinds are the kinds of record a crypto user may read: what was done
// in its name on the HSM. KMS records name KMS principals, not users.
var hsmKinds = []string{audit.KindCommand, audit.KindUse}

// auditKeyFilter reads ListAudit's key filter: a key ARN (its subject) or
// a key ID.
func auditKeyFilter(key string, q *state.AuditQuery) error {
	switch {
	case key == "":
	case strings.HasPrefix(key, "arn:"):
		if len(key) > audit.MaxKMSKey {
			return bad("key", "an ARN longer than %d characters", audit.MaxKMSKey)
		}
		q.Subject = key
	default:
		if len(key) > 128 || strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return bad("key", "neither a key ARN nor a key ID")
		}
		q.KeyID = key
	}
	return nil
}

// ListAudit reads this node's records: a crypto officer's every record, a
// crypto user's only its own.
func (s *Server) ListAudit(ctx context.Context, r *hsmpb.ListAuditRequest) (*hsmpb.ListAuditResponse, error) {
	c := callerFrom(ctx)
	q := state.AuditQuery{AfterSeq: r.AfterSeq, Since: r.Since, User: r.User, Object: r.Object, Limit: auditPage}
	if r.Limit > 0 && r.Limit < auditPage {
		q.Limit = int(r.Limit)
	}
	if r.AfterSeq >= 1<<63 {
		return nil, bad("after_seq", "out of range")
	}
	if r.Object >= 1<<63 {
		return nil, bad("object", "out of range")
	}
	if len(r.User) > audit.MaxKMSPrincipal {
		return nil, bad("user", "longer than %d characters", audit.MaxKMSPrincipal)
	}
	if r.Kind != "" {
		if !audit.Kinds[r.Kind] {
			return nil, bad("kind", "not command, use or kms")
		}
		q.Kinds = []string{r.Kind}
	}
	if err := auditKeyFilter(r.Key, &q); err != nil {
		return nil, err
	}
	switch c.Role {
	case object.RoleCO:
	case object.RoleCU:
		if r.User != "" && r.User != c.User {
			return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "a crypto user reads only its own audit records")
		}
		if r.Kind == audit.KindKMS || r.Key != "" {
			return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "a crypto user reads no KMS audit records")
		}
		q.User = c.User
		if q.Kinds == nil {
			q.Kinds = hsmKinds
		}
	default:
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "log in first")
	}
	recs, err := s.engine.Store().AuditRecords(q)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the audit trail")
	}
	out := &hsmpb.ListAuditResponse{Records: make([]*hsmpb.AuditRecord, len(recs))}
	for i, rec := range recs {
		out.Records[i] = auditToPB(rec)
	}
	if len(recs) == q.Limit {
		out.NextAfterSeq = recs[len(recs)-1].Seq
	}
	return out, nil
}

// VerifyAudit recomputes this node's chain (crypto officers only).
func (s *Server) VerifyAudit(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.VerifyAuditResponse, error) {
	if callerFrom(ctx).Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer verifies the audit trail")
	}
	sealer, err := s.engine.Sealer()
	if err != nil {
		return nil, err
	}
	rep, err := state.VerifyAudit(s.engine.Store(), sealer)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the audit trail")
	}
	s.log.Info("audit trail verified", "ok", rep.OK, "records", rep.Records, "problem", rep.Problem,
		"user", callerFrom(ctx).User)
	return &hsmpb.VerifyAuditResponse{Ok: rep.OK, Records: rep.Records, HeadSeq: rep.HeadSeq, FirstBad: rep.FirstBad,
		Problem: rep.Problem, Detail: rep.Detail, Node: s.node}, nil
}
