package client

import (
	"context"
	"encoding/json"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
)

// AuditRecord is one record of the cluster's audit trail (docs/audit.md).
type AuditRecord struct {
	Seq     uint64    `json:"seq"`
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // "command", "use" or "kms"
	Op      string    `json:"op"`
	User    string    `json:"user,omitempty"` // a user, or a KMS record's principal
	Cert    string    `json:"cert,omitempty"`
	Node    string    `json:"node,omitempty"`
	Object  uint64    `json:"object,omitempty"`
	Subject string    `json:"subject,omitempty"` // a user, or a KMS record's key ARN
	// Result is "applied" / "ok", or the refusal's CKR_ name; for a KMS
	// record "ok" or the exception answered.
	Result string `json:"result"`
	Count  uint64 `json:"count"`
	// Detail is a KMS record's context, a JSON object: context_keys,
	// context_keys_omitted, source, request_id, error (docs/audit.md).
	// A detail that is not JSON (an edited store) is kept as a JSON string.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// AuditQuery selects audit records; zero fields match anything.
type AuditQuery struct {
	AfterSeq uint64
	Since    time.Time
	User     string // a user, or a KMS principal
	Object   uint64
	Kind     string // "command", "use" or "kms"
	Key      string // KMS records of this key: its ARN, or its key ID
	Limit    int    // per page; 0 is the server's page size
}

// ListAudit reads one page of the audit trail from the node that answers:
// a crypto officer reads every record, a crypto user its own. next is the
// AfterSeq of the next page, 0 when there is none.
func (c *Client) ListAudit(ctx context.Context, q AuditQuery) (recs []AuditRecord, next uint64, err error) {
	req := &hsmpb.ListAuditRequest{AfterSeq: q.AfterSeq, User: q.User, Object: q.Object, Kind: q.Kind, Key: q.Key}
	if !q.Since.IsZero() {
		req.Since = q.Since.Unix()
	}
	if q.Limit > 0 {
		req.Limit = uint32(min(q.Limit, 1<<20))
	}
	var r *hsmpb.ListAuditResponse
	err = c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.ListAudit(ctx, req)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	recs = make([]AuditRecord, len(r.Records))
	for i, a := range r.Records {
		res := "ok"
		if a.Kind == audit.KindCommand {
			res = "applied"
		}
		var detail json.RawMessage
		switch {
		case a.Kind == audit.KindKMS:
			res, detail = kmsResult(a.Result, a.Detail)
		case a.Result != 0:
			res = ck.RVName(a.Result)
		}
		recs[i] = AuditRecord{Seq: a.Seq, Index: a.Index, Time: time.Unix(a.Time, 0).UTC(), Kind: a.Kind, Op: a.Op,
			User: a.User, Cert: a.Cert, Node: a.Node, Object: a.Object, Subject: a.Subject, Result: res, Count: a.Count,
			Detail: detail}
	}
	return recs, r.NextAfterSeq, nil
}

// kmsResult is a KMS record's result ("ok", or the exception its detail
// names) and its detail as JSON.
func kmsResult(result uint64, detail string) (string, json.RawMessage) {
	res := "ok"
	if result != 0 {
		res = "refused"
	}
	if detail == "" {
		return res, nil
	}
	var d audit.KMSDetail
	if err := json.Unmarshal([]byte(detail), &d); err != nil {
		q, _ := json.Marshal(detail)
		return res, q
	}
	if result != 0 && d.Error != "" {
		res = d.Error
	}
	return res, json.RawMessage(detail)
}

// AuditReport is what VerifyAudit found on one node.
type AuditReport struct {
	Node     string `json:"node"`
	OK       bool   `json:"ok"`
	Records  uint64 `json:"records"`
	HeadSeq  uint64 `json:"head_seq"`
	FirstBad uint64 `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// VerifyAudit has the node that answers recompute its audit chain from
// the first record (crypto officer).
func (c *Client) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	var r *hsmpb.VerifyAuditResponse
	err := c.call(ctx, func(ctx context.Context, hc hsmpb.HSMClient) (err error) {
		r, err = hc.VerifyAudit(ctx, &hsmpb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &AuditReport{Node: r.Node, OK: r.Ok, Records: r.Records, HeadSeq: r.HeadSeq, FirstBad: r.FirstBad,
		Problem: r.Problem, Detail: r.Detail}, nil
}
