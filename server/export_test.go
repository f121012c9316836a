package server

import (
	"context"
	"regexp"
	"strconv"
	"testing"
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
	cfg := Config{}
	cfg.Storage.DSN = dsn
	b, err := openPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	s := snap(t, b)
	return s, toMicros(t, s.json(t))
}

// Settled is doc with its times cut to the microsecond Postgres keeps and
// its fractional numbers to 12 digits: totals are sums the Postgres ledger
// adds in an order of its own, so they may differ from bbolt's in their
// last bits.
func Settled(t *testing.T, doc string) string {
	t.Helper()
	return fraction.ReplaceAllStringFunc(toMicros(t, doc), func(n string) string {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return n
		}
		return strconv.FormatFloat(settle(f), 'g', -1, 64)
	})
}

// fraction matches a JSON number with a fractional part long enough to
// have been rounded.
var fraction = regexp.MustCompile(`-?\d+\.\d{10,}(e[-+]?\d+)?`)
