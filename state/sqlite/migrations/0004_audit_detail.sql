-- 0004: the detail of a KMS audit record (docs/audit.md, "KMS requests"):
-- a canonical JSON object of the request's context (encryption context
-- keys, source address, request ID, exception). '' for the records of the
-- other kinds, whose MAC does not cover it. KMS records name their key's
-- ARN in subject, which the key filter reads.

ALTER TABLE audit ADD COLUMN detail TEXT NOT NULL DEFAULT '';

CREATE INDEX audit_subject ON audit (subject, seq);
