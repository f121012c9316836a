package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/postgres"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

var migrations = fstest.MapFS{
	"00001_things.sql": {Data: []byte("-- +goose Up\nCREATE TABLE things (id text PRIMARY KEY);\n")},
	"00002_more.sql":   {Data: []byte("-- +goose Up\nALTER TABLE things ADD COLUMN n int NOT NULL DEFAULT 0;\n")},
}

// Replicas starting together apply each migration once.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			pool, err := postgres.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- postgres.Migrate(ctx, pool, migrations, ".", "test_migrations")
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	pool, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM test_migrations WHERE version_id > 0").Scan(&n); err != nil || n != 2 {
		t.Fatalf("versions applied: %d, %v; want 2", n, err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO things (id, n) VALUES ('a', 1)"); err != nil {
		t.Fatalf("the migrated table: %v", err)
	}
}

// A server that does not answer fails the start fast, naming its host
// and port but not the password.
func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://chatgate:s3cret-pw@127.0.0.1:1/db?connect_timeout=1")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error %q: want the host and port, not the password", err)
	}
	if !errors.Is(err, apierror.ErrStorageUnavailable) {
		t.Fatalf("error %q is not storage_unavailable", err)
	}
	if _, err := postgres.Open(context.Background(), "postgres://u:s3cret-pw@[::1"); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("a DSN that does not parse: %v", err)
	}
}

// A pool outlives its server: while it is down every call fails fast as
// storage_unavailable, and the same pool works again once it is back.
func TestServerStoppedAndBack(t *testing.T) {
	srv := pgtest.StartServer(t)
	ctx := context.Background()
	pool, err := postgres.Open(ctx, srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	srv.Stop()
	start := time.Now()
	_, err = pool.Exec(ctx, "SELECT 1")
	if !errors.Is(postgres.Unavailable(err), apierror.ErrStorageUnavailable) {
		t.Fatalf("with the server stopped: %v; want storage_unavailable", err)
	}
	if d := time.Since(start); d > 2*postgres.ConnectTimeout {
		t.Fatalf("the failure took %v", d)
	}
	srv.Start()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err = pool.Exec(ctx, "SELECT 1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not recover once the server was back: %v", err)
		}
	}
}
