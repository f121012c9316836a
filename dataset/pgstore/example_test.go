package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// Each replica gives its dataset.Service a pgstore on the one database:
// whichever replica claims a pushed item trains it, and every replica's
// search indexes follow the change feed. Run against the database that
// CHATGATE_TEST_POSTGRES names (the example does nothing without one).
func Example() {
	dsn := os.Getenv(pgtest.Env)
	if dsn == "" {
		return
	}
	ctx := context.Background()
	pool, err := postgres.Open(ctx, dsn) // fails fast, naming the host, when Postgres is not there
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	var svc *dataset.Service
	store, err := pgstore.New(ctx, pool) // migrates under an advisory lock
	if err == nil {
		svc, err = dataset.New(ctx, dataset.Options{Store: store}) // loads the indexes, then follows the feed
	}
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close(ctx)
	ds, err := svc.CreateDataset(ctx, "team-1", "handbook", "")
	var c *dataset.Collection
	if err == nil {
		defer svc.DeleteDataset(ctx, "team-1", ds.ID)
		c, err = svc.CreateCollection(ctx, "team-1", ds.ID, "faq")
	}
	var res *dataset.PushResult
	if err == nil {
		res, err = svc.Push(ctx, dataset.PushRequest{TeamID: "team-1", CollectionID: c.ID,
			Data: []dataset.PushItem{{Q: "How long is the refund window?", A: "30 days"}}})
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("queued", res.InsertLen)
}

// The Example has no Output for go test to run it by; it runs here, on a
// schema of its own.
func TestExample(t *testing.T) {
	t.Setenv(pgtest.Env, pgtest.DSN(t))
	Example()
}
