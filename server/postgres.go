package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	authpg "github.com/chatgate/chatgate/auth/pgstore"
	billingpg "github.com/chatgate/chatgate/billing/pgstore"
	chatpg "github.com/chatgate/chatgate/chat/pgstore"
	datasetpg "github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/internal/postgres"
	sharepg "github.com/chatgate/chatgate/shareauth/pgstore"
)

// StorageConfig chooses where records live.
type StorageConfig struct {
	// Driver is "bbolt" (the default: one file in server.data, for one
	// process) or "postgres" (any number of replicas on one database).
	Driver string `yaml:"driver"`
	// DSN is the Postgres connection string; CHATGATE_POSTGRES_DSN
	// overrides it. A DSN without a driver chooses postgres.
	DSN string `yaml:"dsn"`
	// ClaimLease is how long a replica's claim on a training item or a
	// finish callback holds: should the replica die mid-batch, another
	// takes the work when it runs out. It must outlast a batch (a QA model
	// is the slow part); 5m when zero. Postgres only.
	ClaimLease Duration `yaml:"claim_lease"`
}

// openPostgres connects to the configured Postgres, applies each domain's
// migrations (under an advisory lock, so replicas starting together do not
// race) and opens every domain's store on the one pool. It fails fast,
// naming the host but never the password, when Postgres does not answer.
func openPostgres(ctx context.Context, cfg Config) (_ *backend, err error) {
	if cfg.Storage.DSN == "" {
		return nil, errors.New("config: storage.driver postgres needs storage.dsn or CHATGATE_POSTGRES_DSN")
	}
	pool, err := postgres.Open(ctx, cfg.Storage.DSN)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	keys, err := authpg.New(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("auth store: %w", err)
	}
	b := &backend{keys: keys, shared: true, watchKeys: keys.Watch,
		ping:  func(ctx context.Context) error { return postgres.Unavailable(pool.Ping(ctx)) },
		close: func() error { pool.Close(); return nil }}
	cs, err := chatpg.New(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("chat store: %w", err)
	}
	b.chat, b.watchApps = cs, cs.Watch
	lease := time.Duration(cfg.Storage.ClaimLease)
	if lease < 0 {
		return nil, errors.New("config: storage.claim_lease must not be negative")
	}
	if b.datasets, err = datasetpg.NewWithOptions(ctx, pool, datasetpg.Options{Lease: lease}); err != nil {
		return nil, fmt.Errorf("dataset store: %w", err)
	}
	if b.ledger, err = billingpg.New(ctx, pool); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if b.links, err = sharepg.NewWithOptions(ctx, pool, sharepg.Options{Lease: lease}); err != nil {
		return nil, fmt.Errorf("share-link store: %w", err)
	}
	return b, nil
}

// follow runs watch, one of the watches that keep what this replica holds
// in memory in step with the other replicas' changes, until ctx ends. A
// watch that returns early (a panic in it) is logged and starts again a
// second later; what it keeps is bounded by a TTL meanwhile.
func (s *Server) follow(ctx context.Context, what string, watch func(context.Context) error) {
	for ctx.Err() == nil {
		err := panics.Catch(func() error { return watch(ctx) })
		if ctx.Err() == nil {
			s.log.Error("following "+what+" changes stopped; it starts again", "err", err)
			if errors.As(err, new(*panics.Error)) {
				s.metrics.onPanic(what)
			}
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// followKeys drops cached keys that another replica changed: "" means
// changes may have gone unheard (a reconnect), so every cached key is
// dropped.
func (s *Server) followKeys(ctx context.Context) error {
	return s.be.watchKeys(ctx, func(id string) {
		if id == "" {
			s.Authn.InvalidateAll()
			return
		}
		s.Authn.Invalidate(id)
	})
}
