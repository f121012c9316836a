package pgstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/chat/chattest"
	"github.com/chatgate/chatgate/chat/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

func open(t testing.TB, pool *pgxpool.Pool) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// connect opens a pool on dsn, closed when t ends.
func connect(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestStore(t *testing.T) {
	chattest.TestStore(t, func(t *testing.T) chattest.Store { return open(t, pgtest.Pool(t)) })
}

// Reopening is a new pool and a new Store on the same schema, as a
// restarted replica, or another one, would have.
func TestReopen(t *testing.T) {
	chattest.TestReopen(t, func(t *testing.T) (chattest.Store, func() chattest.Store) {
		dsn := pgtest.DSN(t)
		var pool *pgxpool.Pool
		reopen := func() chattest.Store {
			if pool != nil {
				pool.Close()
			}
			pool = connect(t, dsn)
			return open(t, pool)
		}
		return reopen(), reopen
	})
}
