package pgstore

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/internal/postgres"
	"github.com/chatgate/chatgate/shareauth"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultLease is how long a claimed callback is kept from every other
// Claim, on any replica, when Options.Lease is zero: a replica killed while
// it delivers leaves its claims to another once the lease runs out. A
// delivery takes seconds (shareauth.Options.FinishTimeout), so five
// minutes outlast any attempt; a Runner closed mid-batch also leaves its
// claims leased until then.
const DefaultLease = 5 * time.Minute

// Options tune a Store; the zero value is the default.
type Options struct {
	// Lease is how long Claim keeps what it returns from other claims,
	// unless rescheduled or completed first; DefaultLease when zero. It
	// must outlast an attempt, or a callback is given out again while it
	// is delivered; a short one suits a test that kills a replica.
	Lease time.Duration
}

// Store is a shareauth.Store in Postgres, shared by every replica on the
// database: links read and written by any of them, and one finish outbox
// whose Claim leases each callback to one replica at a time.
type Store struct {
	pool  *pgxpool.Pool
	lease time.Duration
}

var (
	_ shareauth.Store          = (*Store)(nil)
	_ shareauth.LinkLister     = (*Store)(nil)
	_ shareauth.DeliveryLister = (*Store)(nil)
)

// New returns a store on pool with the default Options; see
// NewWithOptions.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	return NewWithOptions(ctx, pool, Options{})
}

// NewWithOptions returns a store on pool after applying its migrations
// (under an advisory lock, so replicas starting together apply each
// once), its tables being the shareauth_* ones of pool's search path.
func NewWithOptions(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, migrations, "migrations", "chatgate_shareauth_migrations"); err != nil {
		return nil, fmt.Errorf("shareauth: %w", err)
	}
	return &Store{pool: pool, lease: cmp.Or(max(opts.Lease, 0), DefaultLease)}, nil
}

// fail wraps an error of operation op, marking connection failures as
// storage_unavailable.
func fail(op string, err error) error {
	return fmt.Errorf("shareauth: %s: %w", op, postgres.Unavailable(err))
}

// optionalTime is t for a nullable column: NULL for the zero time, which
// the link fields use for "never".
func optionalTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// fromOptional is the time a nullable column holds, in UTC; zero for NULL.
func fromOptional(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
