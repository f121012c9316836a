package pgstore

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/postgres"
	"github.com/chatgate/chatgate/queue"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultLease is how long a claimed training item is kept from every
// other Claim, on any replica, when Options.Lease is zero. A batch of the
// default 64 items embeds in well under a second; one in QA mode asks the
// model once per item, so a slow model and a large batch need a longer
// lease, or an item may be trained twice (stored once: the second Commit
// finds it gone).
const DefaultLease = 5 * time.Minute

// DefaultFeedRetention is how long the change feed keeps a change when
// Options.FeedRetention is zero. A replica that cannot read the feed for
// longer (cut off from Postgres that long) loads its indexes again.
const DefaultFeedRetention = 24 * time.Hour

// Options tune a Store; the zero value is the default.
type Options struct {
	// Lease is how long Claim keeps what it returns from other claims,
	// unless rescheduled, released or committed first; DefaultLease when
	// zero.
	Lease time.Duration
	// FeedRetention is how long the change feed keeps changes;
	// DefaultFeedRetention when zero.
	FeedRetention time.Duration
}

// Store is a dataset.Store in Postgres, shared by every replica on the
// database, and the dataset.ChangeFeed that keeps their indexes in step.
// It holds no state of its own but the pool, so any number of Stores, in
// any number of processes, may share one database.
type Store struct {
	pool      *pgxpool.Pool
	lease     time.Duration
	retention time.Duration
	pruned    atomic.Int64 // when the feed was last pruned, Unix nanoseconds
}

var (
	_ dataset.Store          = (*Store)(nil)
	_ dataset.ChangeFeed     = (*Store)(nil)
	_ dataset.DataReader     = (*Store)(nil)
	_ dataset.DatasetLister  = (*Store)(nil)
	_ dataset.TrainingLister = (*Store)(nil)
	_ dataset.DataImporter   = (*Store)(nil)
	_ queue.Releaser         = (*Store)(nil)
)

// New returns a store on pool with the default Options; see
// NewWithOptions.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	return NewWithOptions(ctx, pool, Options{})
}

// NewWithOptions returns a store on pool after applying its migrations
// (under an advisory lock, so replicas starting together apply each
// once), its tables being the dataset_* ones of pool's search path. The
// pool stays the caller's to close.
func NewWithOptions(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, migrations, "migrations", "chatgate_dataset_migrations"); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	s := &Store{pool: pool, lease: DefaultLease, retention: DefaultFeedRetention}
	if opts.Lease > 0 {
		s.lease = opts.Lease
	}
	if opts.FeedRetention > 0 {
		s.retention = opts.FeedRetention
	}
	return s, nil
}

// exec runs sql, naming op in its error.
func (s *Store) exec(ctx context.Context, op, sql string, args ...any) error {
	if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
		return fail(op, err)
	}
	return nil
}

// fail says which operation failed, marking a lost connection as
// storage_unavailable.
func fail(op string, err error) error {
	return fmt.Errorf("dataset: %s: %w", op, postgres.Unavailable(err))
}

// pgCode is the SQLSTATE of err, "" for an error Postgres did not send.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Postgres errors the store tells apart.
const (
	codeForeignKey    = "23503" // a row names a collection or dataset that is gone
	codeDeadlock      = "40P01"
	codeSerialization = "40001"
)

// attempts bounds how often a transaction that lost a deadlock is run
// again. Writers lock in one order (dataset, collection, item or data,
// q), so deadlocks take rare interleavings of QA pairs sharing a q.
const attempts = 4

// retry runs fn until it succeeds, fails otherwise than by a deadlock, or
// has been tried attempts times.
func retry(fn func() error) error {
	for i := 1; ; i++ {
		err := fn()
		if c := pgCode(err); i == attempts || (c != codeDeadlock && c != codeSerialization) {
			return err
		}
	}
}

// inTx runs fn in a transaction, again if it lost a deadlock.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retry(func() error { return pgx.BeginFunc(ctx, s.pool, fn) })
}

// one reads the row sql returns with scan, answering missing when there is
// none; op names the read in errors.
func one[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), missing error, op, sql string, args ...any) (T, error) {
	v, err := scan(s.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		err = missing
	} else if err != nil {
		err = fail(op, err)
	}
	return v, err
}

// all reads every row sql returns with scan.
func all[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), op, sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// collect reads rows with scan.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// qhash identifies q within a collection, as dataset's stores compare qs:
// the text trimmed of surrounding space.
func qhash(q string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(q)))
	return sum[:16]
}

// split returns the part of t a timestamptz keeps and the nanoseconds
// beyond it, which joined adds back.
func split(t time.Time) (time.Time, int16) {
	ns := t.Nanosecond() % 1000
	return t.Add(-time.Duration(ns)), int16(ns)
}

func joined(t time.Time, ns int16) time.Time { return t.Add(time.Duration(ns)).UTC() }

// splitOrNull is split for a time that may be unset: the zero time is
// NULL.
func splitOrNull(t time.Time) (*time.Time, int16) {
	if t.IsZero() {
		return nil, 0
	}
	at, ns := split(t)
	return &at, ns
}

// joinedOrZero is joined for a time splitOrNull wrote.
func joinedOrZero(t *time.Time, ns int16) time.Time {
	if t == nil {
		return time.Time{}
	}
	return joined(*t, ns)
}
