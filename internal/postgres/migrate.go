// Package postgres holds what chatgate's Postgres stores share: migrations
// applied under an advisory lock, the mapping of connection failures to
// storage_unavailable, and notifications. Each domain's pgstore owns its
// tables and its migrations; this package owns none.
package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate applies the versioned SQL migrations in directory dir of fsys
// (goose files such as 00001_keys.sql; a store embeds its migrations/
// directory) to pool's database, recording them in the version
// table named table (one per domain, so that domains move on their own).
// It holds a session advisory lock for the table while it works, so that
// replicas starting together apply each migration once and a replica
// never serves an older schema than the one it was built for.
func Migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, dir, table string) error {
	fsys, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrations %s: %w", table, err)
	}
	h := fnv.New64a()
	h.Write([]byte("chatgate:" + table))
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithTableName(table),
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fmt.Errorf("migrations %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations %s: %w", table, Unavailable(err))
	}
	return nil
}
