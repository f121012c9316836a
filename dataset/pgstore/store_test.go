package pgstore_test

import (
	"context"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/datasettest"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

var ctx = context.Background()

// open is a store on a fresh schema, dropped when t ends.
func open(t testing.TB) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(ctx, pgtest.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	datasettest.TestStore(t, func(t *testing.T) dataset.Store { return open(t) })
}

// The training queue as replicas share it: what Claim returns is kept
// from every other Claim.
func TestTrainingQueue(t *testing.T) {
	datasettest.TestTrainingQueue(t, func(t *testing.T) dataset.Store { return open(t) }, true)
}
