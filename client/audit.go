package client

import (
	"context"
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
	Kind    string    `json:"kind"` // "command" or "use"
	Op      string    `json:"op"`
	User    string    `json:"user,omitempty"`
	Cert    string    `json:"cert,omitempty"`
	Node    string    `json:"node,omitempty"`
	Object  uint64    `json:"object,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Result  string    `json:"result"` // "applied" / "ok", or the refusal's CKR_ name
	Count   uint64    `json:"count"`
}

// AuditQuery selects audit records; zero fields match anything.
type AuditQuery struct {
	AfterSeq uint64
	Since    time.Time
	User     string
	Object   uint64
	Limit    int // per page; 0 is the server's page size
}

// ListAudit reads one page of the audit trail from the node that answers:
// a crypto officer reads every record, a crypto user its own. next is the
// AfterSeq of the next page, 0 when there is none.
func (c *Client) ListAudit(ctx context.Context, q AuditQuery) (recs []AuditRecord, next uint64, err error) {
	req := &hsmpb.ListAuditRequest{AfterSeq: q.AfterSeq, User: q.User, Object: q.Object}
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
		if a.Result != 0 {
			res = ck.RVName(a.Result)
		}
		recs[i] = AuditRecord{Seq: a.Seq, Index: a.Index, Time: time.Unix(a.Time, 0).UTC(), Kind: a.Kind, Op: a.Op,
			User: a.User, Cert: a.Cert, Node: a.Node, Object: a.Object, Subject: a.Subject, Result: res, Count: a.Count}
	}
	return recs, r.NextAfterSeq, nil
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
