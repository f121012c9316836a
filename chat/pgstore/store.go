package pgstore

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/decodecache"
	"github.com/chatgate/chatgate/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationsTable records which of the package's migrations a database has.
const migrationsTable = "chatgate_chat_migrations"

// Store keeps apps and their history in Postgres. Any number of Stores,
// in any number of processes, may share one database: a Store keeps no
// state that another's writes could make stale, but for the apps it keeps
// while Watch tells it of every change.
type Store struct {
	pool    *pgxpool.Pool
	apps    decodecache.Cache[chat.App] // decoded apps, checked against the row's bytes
	watched watched
	schema  string // where the apps table is, which its notifications name
}

var (
	_ chat.AppStore     = (*Store)(nil)
	_ chat.HistoryStore = (*Store)(nil)
)

// New returns a store on pool, first bringing the database's chat tables
// up to date. The pool stays the caller's to close.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, migrations, "migrations", migrationsTable); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	s := &Store{pool: pool, apps: decodecache.Cache[chat.App]{Clone: (*chat.App).Clone}}
	// The schema of the table the search path finds, unquoted, as the
	// trigger's TG_TABLE_SCHEMA names it (regnamespace::text would quote
	// a name such as "Tenant-A").
	if err := pool.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'chat_apps'::regclass`).Scan(&s.schema); err != nil {
		return nil, fail("find the apps table", err)
	}
	return s, nil
}

// fail says which operation failed, marking a lost connection as
// storage_unavailable.
func fail(op string, err error) error {
	return fmt.Errorf("chat: %s: %w", op, postgres.Unavailable(err))
}

// Postgres keeps times to the microsecond; split returns the time it can
// keep and the nanoseconds beyond, which join adds back, so that a time
// reads back exactly as the caller wrote it (as the bbolt store's does).
func split(t time.Time) (time.Time, int16) {
	us := t.Truncate(time.Microsecond)
	return us, int16(t.Sub(us))
}

func join(t time.Time, ns int16) time.Time {
	return t.Add(time.Duration(ns)).UTC()
}

// limitArg is a LIMIT parameter: NULL, no limit, for n <= 0.
func limitArg(n int) any {
	if n <= 0 {
		return nil
	}
	return n
}
