package pgstore

import (
	"context"
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/postgres"
)

// Store is an auth.Store in Postgres, shared by every replica on the
// database: keys, their usage and the audit trail, read and written by any
// of them. Each key write notifies Channel, which Watch listens to.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool after applying its migrations (under an
// advisory lock, so replicas starting together apply each once), its
// tables being the auth_* ones of pool's search path.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, migrations, "migrations", "chatgate_auth_migrations"); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Store{pool: pool}, nil
}

var _ auth.Store = (*Store)(nil)

// migrations are the versions of the auth_* tables, which New applies.
//
//go:embed migrations/*.sql
var migrations embed.FS

// execer is what runs a statement: the pool, or a transaction on it.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// fail wraps an error of operation op, marking connection failures as
// storage_unavailable.
func fail(op string, err error) error {
	return fmt.Errorf("auth: %s: %w", op, postgres.Unavailable(err))
}

// never is t for a column where NULL means "never": nil for the zero time.
func never(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// instant is the time a nullable column holds, in UTC, or the zero time
// for NULL.
func instant(t pgtype.Timestamptz) time.Time {
	if t.Valid {
		return t.Time.UTC()
	}
	return time.Time{}
}

// where is the WHERE clause (with a leading space) that matches each
// column of pairs (column, value, column, value...) to its value, leaving
// out those whose value is empty, and its arguments. A query asks only
// for what it filters on, so that Postgres plans each kind on its index.
func where(pairs ...string) (string, []any) {
	var (
		conds []string
		args  []any
	)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			args = append(args, pairs[i+1])
			conds = append(conds, fmt.Sprintf("%s = $%d", pairs[i], len(args)))
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}
