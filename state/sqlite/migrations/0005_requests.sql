-- 0005: request-ID records (state/request.go) get a table of their own;
-- they were three kinds of meta rows (the record, its place in an expiry
-- queue, and a count), six statements and as many index writes per write.
--
-- seq numbers the records in the order they were made, 1, 2, 3..., and
-- they are dropped oldest first, so the numbers have no gaps: the count is
-- max(seq) - min(seq) + 1, and the oldest is the first row. One row and one
-- index entry per record, and no count to keep.
--
-- The records already kept as meta rows are moved here when the store
-- opens (convertMetaRequests in store.go), in the order of their expiry
-- queue; a snapshot stream from before version 3 is converted the same way.

CREATE TABLE requests (
	seq    INTEGER PRIMARY KEY,   -- order made: 1, 2, 3... without gaps
	actor  TEXT    NOT NULL,      -- the user the ID belongs to
	id     TEXT    NOT NULL,      -- the request ID: 32 lowercase hex digits
	time   INTEGER NOT NULL,      -- Command.Time of the command that made it
	record BLOB    NOT NULL       -- state.RequestRecord, JSON
);

CREATE UNIQUE INDEX requests_key ON requests (actor, id);
