package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema step; version n takes the schema from
// version n-1 to n.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in order. Their file names start
// with the version number ("0001_init.sql") and must run 1, 2, 3... without
// gaps; a build where they do not is broken, so this panics.
var migrations = loadMigrations()

func loadMigrations() []migration {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		if !ok {
			panic("state/sqlite: migration file name without version prefix: " + base)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			panic("state/sqlite: migration file name without version prefix: " + base)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("state/sqlite: migrations must be numbered 1, 2, 3...; found %s at position %d", m.name, i+1))
		}
	}
	return ms
}

// SchemaVersion is the schema version this build writes and reads.
func SchemaVersion() int { return len(migrations) }

// ErrNewerSchema is returned (wrapped) by Open for a database written by a
// newer version of openhsm.
var ErrNewerSchema = errors.New("database schema is newer than this build supports")

// ErrForeignDatabase is returned (wrapped) by Open for an SQLite file that
// has tables but is not an openhsm token store.
var ErrForeignDatabase = errors.New("not an openhsm token store")

// migrate brings the schema up to date, one migration per transaction. It
// writes nothing when the database is already current, when it is newer than
// this build, or when it is not a token store.
func migrate(ctx context.Context, db *sql.DB) error {
	for {
		done, err := migrateStep(ctx, db)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next migration, if any, in its own transaction.
func migrateStep(ctx context.Context, db *sql.DB) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see writerDSN
	if err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil || done {
			_ = tx.Rollback()
		}
	}()
	cur, fresh, err := readSchemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	latest := len(migrations)
	switch {
	case cur > latest:
		return false, fmt.Errorf("%w: the file has schema version %d, this build knows up to %d; use a newer openhsm", ErrNewerSchema, cur, latest)
	case cur == latest:
		return true, nil
	}
	if fresh {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO schema_version (id, version) VALUES (1, 0);`); err != nil {
			return false, fmt.Errorf("create schema_version: %w", err)
		}
	}
	m := migrations[cur]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ? WHERE id = 1`, m.version); err != nil {
		return false, fmt.Errorf("migration %s: record version: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return false, nil
}

// readSchemaVersion returns the recorded schema version. fresh is true for
// an empty database (no tables at all), whose version is 0. A database with
// tables but no schema_version is refused.
func readSchemaVersion(ctx context.Context, tx *sql.Tx) (version int, fresh bool, err error) {
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("read schema: %w", err)
	}
	if n == 0 {
		var others int
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\'`).Scan(&others); err != nil {
			return 0, false, fmt.Errorf("read schema: %w", err)
		}
		if others > 0 {
			return 0, false, fmt.Errorf("%w: it has %d schema entries but no schema_version table", ErrForeignDatabase, others)
		}
		return 0, true, nil
	}
	if err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&version); err != nil {
		return 0, false, fmt.Errorf("read schema_version: %w", err)
	}
	if version < 0 {
		return 0, false, fmt.Errorf("invalid schema version %d", version)
	}
	return version, false, nil
}
