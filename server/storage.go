package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/boltx"
	"github.com/chatgate/chatgate/shareauth"
)

// chatRecords is what chat keeps: apps and their history.
type chatRecords interface {
	chat.AppStore
	chat.HistoryStore
}

// backend is every domain's store on one storage.
type backend struct {
	keys     auth.Store
	chat     chatRecords
	datasets dataset.Store
	ledger   billing.Ledger
	links    shareauth.Store
	// shared says several processes may use the storage at once, so that
	// what one process keeps in memory must follow the others' changes.
	shared bool
	// ping reports whether the storage answers, for /healthz.
	ping func(ctx context.Context) error
	// watchKeys, when set, calls changed with the id of each key another
	// process changed, and with "" when changes may have been missed, until
	// ctx ends.
	watchKeys func(ctx context.Context, changed func(keyID string)) error
	// watchApps, when set, keeps the chat store's apps in step with the
	// other processes' changes until ctx ends (chat/pgstore's Watch).
	watchApps func(ctx context.Context) error
	close     func() error
}

// openBackend opens the configured storage and every domain's store on it.
func openBackend(ctx context.Context, cfg Config) (*backend, error) {
	switch cfg.Storage.Driver {
	case "", "bbolt":
		return openBolt(cfg)
	case "postgres":
		return openPostgres(ctx, cfg)
	default:
		return nil, fmt.Errorf("config: storage.driver must be bbolt or postgres, not %q", cfg.Storage.Driver)
	}
}

// openBolt opens the data directory's bbolt file. It fails fast, with
// boltx.ErrLocked in the chain, when another process holds it.
func openBolt(cfg Config) (_ *backend, err error) {
	if err := os.MkdirAll(cfg.Server.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	db, err := boltx.Open(filepath.Join(cfg.Server.Data, DBFile), time.Second)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	b := &backend{
		ping:  func(context.Context) error { return db.View(func(*bbolt.Tx) error { return nil }) },
		close: db.Close,
	}
	if b.keys, err = auth.NewBoltStore(db); err != nil {
		return nil, err
	}
	if b.chat, err = chat.NewBoltStore(db); err != nil {
		return nil, err
	}
	if b.datasets, err = dataset.NewBoltStore(db); err != nil {
		return nil, err
	}
	if b.links, err = shareauth.NewBoltStore(db); err != nil {
		return nil, err
	}
	// The journal makes a usage record durable with one write and sync,
	// where a bbolt commit of it costs a page per bucket it touches. It is
	// opened last, so that no later failure leaves it open.
	ledger, err := billing.OpenBoltLedger(db, billing.BoltLedgerOptions{Journal: filepath.Join(cfg.Server.Data, JournalFile)})
	if err != nil {
		return nil, err
	}
	b.ledger = ledger
	b.close = func() error { return errors.Join(ledger.Close(), db.Close()) }
	return b, nil
}
