// Package boltx holds the few bbolt helpers every domain's BoltStore shares.
package boltx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// ErrLocked reports that another process holds the database file.
var ErrLocked = errors.New("database is locked by another process (is a chatgate server running on this data directory?)")

// Options are the options Open opens a file with: at most timeout waiting
// for the file lock, so that a second process fails fast instead of
// hanging, and the freelist kept in memory only, as etcd keeps it. bbolt's
// default writes the list of free pages on every commit, a page or more
// that grows with the file's holes, for the one use of skipping a scan of
// the file when it is opened; a usage record's commit is the write the
// relay waits for, and a server opens its file once. A file is read either
// way: one written with a synced freelist opens with these options, and one
// written with them opens with bbolt's defaults (bbolt rebuilds the list).
func Options(timeout time.Duration) *bbolt.Options {
	return &bbolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}
}

// Open opens the bbolt file at path with Options(timeout).
func Open(path string, timeout time.Duration) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, Options(timeout))
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// EnsureBuckets creates the named top-level buckets if they are missing.
func EnsureBuckets(db *bbolt.DB, names ...[]byte) error {
	return db.Update(func(tx *bbolt.Tx) error {
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return fmt.Errorf("create bucket %s: %w", n, err)
			}
		}
		return nil
	})
}

// PutJSON stores v as JSON under key.
func PutJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// GetJSON decodes the JSON under key into v and reports whether it existed.
func GetJSON(b *bbolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// Seq encodes a sequence number as a key that sorts in numeric order.
func Seq(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}
