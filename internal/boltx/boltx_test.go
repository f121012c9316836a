package boltx

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// TestFreelistRebuiltAfterCrash: with the freelist kept in memory, a file
// left as a crash leaves it (committed, never closed) opens with every
// committed key, a consistent tree, and its free pages found again and
// reused; a file written with bbolt's defaults opens with Options, and one
// written with Options opens with bbolt's defaults.
func TestFreelistRebuiltAfterCrash(t *testing.T) {
	dir := t.TempDir()
	fill := func(db *bbolt.DB, from, to int, del bool) {
		t.Helper()
		for i := from; i < to; i += 100 {
			err := db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				for j := i; j < min(i+100, to); j++ {
					k := Seq(uint64(j))
					if del {
						err = b.Delete(k)
					} else {
						err = b.Put(k, make([]byte, 200))
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(db *bbolt.DB, want int) {
		t.Helper()
		err := db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			if n := tx.Bucket([]byte("b")).Stats().KeyN; n != want {
				return fmt.Errorf("%d keys, want %d", n, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// what a crash leaves: the file as the last commit wrote it
	crashCopy := func(db *bbolt.DB, name string) string {
		t.Helper()
		b, err := os.ReadFile(db.Path())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	db, err := Open(filepath.Join(dir, "a.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !db.NoFreelistSync {
		t.Fatal("Open writes the freelist on every commit")
	}
	fill(db, 0, 4000, false)
	fill(db, 0, 3000, true) // three quarters of the pages free
	crashed, err := Open(crashCopy(db, "crashed.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	check(crashed, 1000)
	if crashed.Stats().FreePageN == 0 {
		t.Fatal("no free page found in a file three quarters deleted")
	}
	size := func(db *bbolt.DB) int64 {
		fi, err := os.Stat(db.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size(crashed)
	fill(crashed, 0, 2000, false) // fits in the pages freed
	check(crashed, 3000)
	if after := size(crashed); after > before {
		t.Fatalf("the file grew from %d to %d bytes: its free pages were not reused", before, after)
	}

	// bbolt's defaults read a file written with Options, and the reverse
	plain, err := bbolt.Open(crashCopy(crashed, "plain.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	check(plain, 3000)
	fill(plain, 2000, 2500, false)
	back, err := Open(crashCopy(plain, "back.db"), time.Second)
	plain.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	check(back, 3500)
}
