package boltx

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestOpenFailsFastWhenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = Open(path, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v", d)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	db := testDB(t)
	type v struct{ N int }
	err := db.Update(func(tx *bbolt.Tx) error { return PutJSON(tx.Bucket([]byte("b")), []byte("k"), v{7}) })
	if err != nil {
		t.Fatal(err)
	}
	var got v
	var ok, missing bool
	err = db.View(func(tx *bbolt.Tx) error {
		var err error
		if ok, err = GetJSON(tx.Bucket([]byte("b")), []byte("k"), &got); err != nil {
			return err
		}
		missing, err = GetJSON(tx.Bucket([]byte("b")), []byte("nope"), &got)
		return err
	})
	if err != nil || !ok || missing || got.N != 7 {
		t.Fatalf("got %+v ok=%v missing-found=%v err=%v", got, ok, missing, err)
	}
	if a, b := Seq(1), Seq(256); string(a) >= string(b) {
		t.Fatalf("Seq does not sort: %x >= %x", a, b)
	}
}

func TestViewUpdateSkipDoneContext(t *testing.T) {
	db := testDB(t)
	ran := 0
	fn := func(*bbolt.Tx) error { ran++; return nil }
	if err := View(t.Context(), db, fn); err != nil {
		t.Fatal(err)
	}
	if err := Update(t.Context(), db, fn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := View(ctx, db, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("View on a cancelled context: %v", err)
	}
	if err := Update(ctx, db, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update on a cancelled context: %v", err)
	}
	if ran != 2 {
		t.Fatalf("fn ran %d times, want 2 (not on the cancelled context)", ran)
	}
}

// testDB opens a database of the test's own, with bucket "b", closed when
// the test ends.
func testDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := EnsureBuckets(db, []byte("b")); err != nil {
		t.Fatal(err)
	}
	return db
}
