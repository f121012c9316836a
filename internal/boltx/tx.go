package boltx

import (
	"context"

	"go.etcd.io/bbolt"
)

// View runs fn in a read-only transaction of db, unless ctx is already
// done. A bbolt transaction cannot be cancelled once begun, so a store
// checks the context before it starts one rather than never.
func View(ctx context.Context, db *bbolt.DB, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.View(fn)
}

// Update is View for a read-write transaction.
func Update(ctx context.Context, db *bbolt.DB, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.Update(fn)
}
