package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ConnectTimeout bounds one connection attempt when the DSN sets none, so
// that a request meeting a Postgres that does not answer fails in bounded
// time rather than hanging.
const ConnectTimeout = 3 * time.Second

// Open connects a pool to dsn and checks that the server answers, so that a
// process starts only on a Postgres it can reach. Its errors name the host
// and port, never the password.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			err = pe.Unwrap() // its text would quote the DSN
		}
		return nil, fmt.Errorf("postgres: the DSN does not parse: %v", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	where := fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres at %s: %w", where, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres at %s is unreachable: %w", where, Unavailable(err))
	}
	return pool, nil
}
