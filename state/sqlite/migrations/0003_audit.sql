-- 0003: the audit trail (docs/audit.md). One row per record; the columns
-- are the record's fields, the MAC covers them all (see tokens/audit.go).
-- The chain's head is in meta under 'audit_head'.

CREATE TABLE audit (
	seq     INTEGER PRIMARY KEY,  -- 1, 2, 3...
	prev    BLOB    NOT NULL,     -- MAC of record seq-1
	idx     INTEGER NOT NULL,     -- log index of the command that wrote it
	time    INTEGER NOT NULL,     -- Unix seconds
	kind    TEXT    NOT NULL,
	op      TEXT    NOT NULL,
	user    TEXT    NOT NULL,
	cert    TEXT    NOT NULL,
	node    TEXT    NOT NULL,
	object  INTEGER NOT NULL,     -- 0: none
	subject TEXT    NOT NULL,
	result  INTEGER NOT NULL,     -- CKR code, 0 for applied
	count   INTEGER NOT NULL,
	mac     BLOB    NOT NULL
);

CREATE INDEX audit_user   ON audit (user, seq);
CREATE INDEX audit_object ON audit (object, seq);
CREATE INDEX audit_time   ON audit (time);
