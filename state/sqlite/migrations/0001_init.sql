-- 0001: the initial schema of the token store.
--
-- Unsigned 64-bit values that may reach 2^63 (generation, class, key_type,
-- applied.idx) are stored as the int64 with the same bits. Object IDs are
-- stored as is and must be below 2^63.

CREATE TABLE users (
	name          TEXT    PRIMARY KEY NOT NULL,
	role          INTEGER NOT NULL,
	password_hash TEXT    NOT NULL,
	failed_logins INTEGER NOT NULL,
	locked        INTEGER NOT NULL,
	generation    INTEGER NOT NULL,
	created       INTEGER NOT NULL,
	mac           BLOB                 -- User.MAC; NULL when none
);

CREATE TABLE objects (
	id       INTEGER PRIMARY KEY,  -- Object.ID, 0 < id < 2^63
	owner    TEXT    NOT NULL,
	class    INTEGER NOT NULL,     -- CKA_CLASS, as Object.Class()
	key_type INTEGER,              -- CKA_KEY_TYPE; NULL for objects that are not keys
	label    BLOB    NOT NULL,     -- CKA_LABEL; empty when absent
	ckaid    BLOB    NOT NULL,     -- CKA_ID; empty when absent
	attrs    BLOB    NOT NULL,     -- tokens.MarshalAttrs
	sealed   BLOB,                 -- sealed secret material; NULL when none
	mac      BLOB                  -- Object.MAC; NULL when none
);

CREATE INDEX objects_owner_label ON objects (owner, label);
CREATE INDEX objects_owner_ckaid ON objects (owner, ckaid);
CREATE INDEX objects_owner_class ON objects (owner, class, key_type);
CREATE INDEX objects_label       ON objects (label);
CREATE INDEX objects_ckaid       ON objects (ckaid);
CREATE INDEX objects_class       ON objects (class, key_type);

CREATE TABLE shares (
	object_id INTEGER NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
	user      TEXT    NOT NULL,
	PRIMARY KEY (object_id, user)
) WITHOUT ROWID;

CREATE INDEX shares_user ON shares (user, object_id);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY NOT NULL,
	value BLOB NOT NULL
);

CREATE TABLE applied (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	idx INTEGER NOT NULL
);
