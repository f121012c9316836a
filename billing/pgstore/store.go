package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a billing.Ledger in Postgres, shared by every replica on the
// database: a record written through one is counted once on all of them,
// and its bill's, key's and app's totals read the same through any.
type Store struct {
	pool *pgxpool.Pool

	mu         sync.Mutex
	queue      []*pending // Record calls waiting for a batch
	committers int        // commitLoops running
}

var (
	_ billing.Ledger       = (*Store)(nil)
	_ billing.BillLister   = (*Store)(nil)
	_ billing.RecordSource = (*Store)(nil)
)

// New returns a ledger on pool after applying its migrations (under an
// advisory lock, so replicas starting together apply each once), its
// tables being the billing_* ones of pool's search path.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, migrations, "migrations", "chatgate_billing_migrations"); err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	return &Store{pool: pool}, nil
}

// fail wraps an error of operation op, marking connection failures as
// storage_unavailable.
func fail(op string, err error) error {
	return fmt.Errorf("billing: %s: %w", op, postgres.Unavailable(err))
}

// The records Record refuses before Postgres sees them, as the other
// ledgers do: totals must stay sums of finite, non-negative figures.
var (
	errNoTeam     = errors.New("billing: record has no team")
	errBadFigures = errors.New("billing: record has negative or non-finite points or tokens")
)

// check refuses what no ledger stores, then gives r its id and time, the
// time at the microsecond Postgres keeps, so that r reads as stored.
func check(r *billing.Record) error {
	switch {
	case r.TeamID == "":
		return errNoTeam
	case math.IsNaN(r.Points) || math.IsInf(r.Points, 0) || r.Points < 0 || r.InputTokens < 0 || r.OutputTokens < 0:
		return errBadFigures
	}
	if r.ID == "" {
		r.ID = id.New()
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	r.Time = r.Time.Truncate(time.Microsecond)
	return nil
}
