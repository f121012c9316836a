package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/chattest"
	"github.com/chatgate/chatgate/chat/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// watching returns a store on its own pool (whose connections, the
// watch's among them, are named app) with its Watch running until t ends.
func watching(t *testing.T, dsn, app string) *pgstore.Store {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := open(t, pool)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
		if pgstore.Listening(s) {
			t.Error("the store still keeps apps after its Watch returned")
		}
	})
	until(t, "the watch to listen", func() bool { return pgstore.Listening(s) })
	return s
}

// until polls cond, which a notification makes true within moments.
func until(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s took over 10 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func appName(t *testing.T, s *pgstore.Store) string {
	t.Helper()
	a, err := s.App(context.Background(), "t", "a")
	if errors.Is(err, chat.ErrAppNotFound) {
		return "(none)"
	}
	if err != nil {
		t.Fatal(err)
	}
	return a.Name
}

// putAndKeep writes app "a" of team "t" as name through writer, waits
// until reader has heard of the write (whose notification would drop what
// a read keeps), and reads it through reader, which then keeps it.
func putAndKeep(t *testing.T, reader, writer *pgstore.Store, name string) {
	t.Helper()
	heard := pgstore.Heard(reader)
	if err := writer.PutApp(context.Background(), &chat.App{ID: "a", TeamID: "t", Name: name, Model: "m"}); err != nil {
		t.Fatal(err)
	}
	until(t, "the write to be heard", func() bool { return pgstore.Heard(reader) != heard })
	if got := appName(t, reader); got != name {
		t.Fatalf("read %q after the write, want %q", got, name)
	}
}

// While Watch listens, a replica reads an app from memory, and every
// change, through another replica's store or in SQL, reaches it within
// moments; its own writes reach it at once.
func TestWatchKeepsAppsAndHearsEveryChange(t *testing.T) {
	dsn := pgtest.DSN(t)
	sqlPool := connect(t, dsn)
	reader := watching(t, dsn, "chatgate-watch-reader")
	writer := open(t, connect(t, dsn))
	ctx := context.Background()
	put := func(s *pgstore.Store, name string) {
		t.Helper()
		if err := s.PutApp(ctx, &chat.App{ID: "a", TeamID: "t", Name: name, Model: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := sqlPool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	putAndKeep(t, reader, writer, "one")

	// Kept: a change nobody is told of is not seen, until the TTL.
	exec(`ALTER TABLE chat_apps DISABLE TRIGGER chat_apps_notify`)
	put(writer, "unheard")
	if got := appName(t, reader); got != "one" {
		t.Fatalf("with notifications off, the reader read %q: it did not keep the app", got)
	}
	pgstore.AgeWatched(reader, pgstore.WatchedAppTTL)
	if got := appName(t, reader); got != "unheard" {
		t.Fatalf("past WatchedAppTTL, the reader read %q, want the row's name", got)
	}
	exec(`ALTER TABLE chat_apps ENABLE TRIGGER chat_apps_notify`)

	put(writer, "two")
	d := until(t, "another replica's write to arrive", func() bool { return appName(t, reader) == "two" })
	t.Logf("another replica's write reached the reader after %v", d)
	exec(`UPDATE chat_apps SET doc = jsonb_set(doc::jsonb, '{name}', '"three"')::json WHERE team_id = 't' AND id = 'a'`)
	until(t, "a write in SQL to arrive", func() bool { return appName(t, reader) == "three" })
	put(reader, "four")
	if got := appName(t, reader); got != "four" {
		t.Fatalf("the reader's own write: read %q at once, want four", got)
	}
	if err := writer.DeleteApp(ctx, "t", "a"); err != nil {
		t.Fatal(err)
	}
	until(t, "another replica's delete to arrive", func() bool { return appName(t, reader) == "(none)" })
}

// When the watch's connection is lost, changes may go unheard: the store
// reads every app from the database until the watch listens again.
func TestWatchLostStopsKeepingApps(t *testing.T) {
	dsn := pgtest.DSN(t)
	sqlPool := connect(t, dsn)
	const name = "chatgate-watch-lost"
	reader := watching(t, dsn, name)
	writer := open(t, connect(t, dsn))
	ctx := context.Background()
	putAndKeep(t, reader, writer, "one")
	if _, err := sqlPool.Exec(ctx, `ALTER TABLE chat_apps DISABLE TRIGGER chat_apps_notify`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := sqlPool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query ILIKE 'listen%'`, name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the watch's connection: %d, %v", n, err)
	}
	until(t, "the store to notice", func() bool { return !pgstore.Listening(reader) })
	if err := writer.PutApp(ctx, &chat.App{ID: "a", TeamID: "t", Name: "two", Model: "m"}); err != nil {
		t.Fatal(err)
	}
	if got := appName(t, reader); got != "two" {
		t.Fatalf("without a watch listening, the reader read %q, want the row's name", got)
	}
	until(t, "the watch to listen again", func() bool { return pgstore.Listening(reader) })
}

// A store whose Watch runs keeps apps, and must still behave as every
// chat store does.
func TestStoreWatching(t *testing.T) {
	chattest.TestStore(t, func(t *testing.T) chattest.Store { return watching(t, pgtest.DSN(t), "chatgate-watch-conformance") })
}

// quotedSchemaDSN returns a DSN whose search path is a new schema whose
// name needs quoting, dropped when t ends.
func quotedSchemaDSN(t *testing.T) string {
	t.Helper()
	base := pgtest.DSN(t) // skips without Postgres; its schema is left unused
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "Tenant-" + hex.EncodeToString(b)
	pool := connect(t, base)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", pgx.Identifier{schema}.Sanitize())
	u.RawQuery = q.Encode()
	return u.String()
}

// A schema named "Tenant-…" is notified under its name unquoted: the
// store must know its own that way, or it would ignore every change.
func TestWatchInASchemaWhoseNameIsQuoted(t *testing.T) {
	dsn := quotedSchemaDSN(t)
	reader := watching(t, dsn, "chatgate-watch-quoted")
	writer := open(t, connect(t, dsn))
	ctx := context.Background()
	putAndKeep(t, reader, writer, "one")
	if err := writer.PutApp(ctx, &chat.App{ID: "a", TeamID: "t", Name: "two", Model: "m"}); err != nil {
		t.Fatal(err)
	}
	if d := until(t, "the write to arrive", func() bool { return appName(t, reader) == "two" }); d > 2*time.Second {
		t.Fatalf("the write arrived after %v: its notification was not heard", d)
	}
}

// A TRUNCATE fires no row trigger; its own notification drops every app.
func TestWatchHearsATruncate(t *testing.T) {
	dsn := pgtest.DSN(t)
	sqlPool := connect(t, dsn)
	reader := watching(t, dsn, "chatgate-watch-truncate")
	ctx := context.Background()
	putAndKeep(t, reader, open(t, sqlPool), "one")
	if _, err := sqlPool.Exec(ctx, `TRUNCATE chat_apps CASCADE`); err != nil {
		t.Fatal(err)
	}
	if d := until(t, "the truncate to arrive", func() bool { return appName(t, reader) == "(none)" }); d > 2*time.Second {
		t.Fatalf("the truncate arrived after %v: its notification was not heard", d)
	}
}
