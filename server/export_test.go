package server

import (
	"context"
	"testing"

	"github.com/chatgate/chatgate/internal/postgres"
)

// Snapshot is everything a backend holds, for the migration tests.
type Snapshot = snapshot

// SameText fails t, showing the first difference, unless a and b are equal.
var SameText = sameText

// BoltSnapshot reads the data directory dir whole, and as JSON with its
// times cut to the microsecond Postgres keeps.
func BoltSnapshot(t *testing.T, dir string) (*Snapshot, string) {
	t.Helper()
	cfg := Config{}
	cfg.Server.Data = dir
	b, err := openBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	s := snap(t, b)
	return s, toMicros(t, s.json(t))
}

// PostgresSnapshot reads the database dsn whole, and as JSON with its
// times cut to the microsecond (the chat store keeps nanoseconds).
func PostgresSnapshot(t *testing.T, dsn string) (*Snapshot, string) {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	b, err := openPostgresStores(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	s := snap(t, b)
	return s, toMicros(t, s.json(t))
}
