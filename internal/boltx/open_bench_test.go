package boltx

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkOpen opens a 256 MiB file, a quarter of it free, with the
// freelist on disk ("synced", bbolt's default) and with Options, which
// rebuild it by walking the file ("rebuilt"): what keeping the freelist
// off the commits costs a server's start. The file is in the test's
// temporary directory (TMPDIR).
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	for _, fl := range []struct {
		name string
		opts *bbolt.Options
	}{{"synced", &bbolt.Options{Timeout: time.Second}}, {"rebuilt", Options(time.Second)}} {
		path := filepath.Join(dir, fl.name+".db")
		writeLargeFile(b, path, fl.opts, 256<<20)
		b.Run("freelist="+fl.name, func(b *testing.B) {
			for b.Loop() {
				db, err := bbolt.Open(path, 0o600, fl.opts)
				if err != nil {
					b.Fatal(err)
				}
				if fl.opts.NoFreelistSync && db.Stats().FreePageN == 0 {
					b.Fatal("no free page found")
				}
				db.Close()
			}
		})
	}
}

// writeLargeFile fills path to about size bytes of 1 KiB values, then
// deletes every fourth.
func writeLargeFile(b *testing.B, path string, opts *bbolt.Options, size int) {
	b.Helper()
	o := *opts
	o.NoSync = true // the file is the benchmark's input; its writing is not measured
	db, err := bbolt.Open(path, 0o600, &o)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 1<<10)
	n := size / len(val)
	for i := 0; i < n; i += 10_000 {
		err := db.Update(func(tx *bbolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for j := i; j < min(i+10_000, n); j++ {
				if err := bk.Put(Seq(uint64(j)), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte("b"))
		for j := 0; j < n; j += 4 {
			if err := bk.Delete(Seq(uint64(j))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(fmt.Errorf("deleting: %w", err))
	}
}
