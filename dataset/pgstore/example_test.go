package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// A replica keeps its knowledge bases in Postgres by giving dataset's
// Service a pgstore: training is shared out among the replicas, and each
// one's search indexes follow the change feed. The example runs against
// the database CHATGATE_TEST_POSTGRES names, in its default schema, and
// does nothing without one.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("CHATGATE_TEST_POSTGRES")
	if dsn == "" {
		return
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool) // applies the migrations
	if err != nil {
		log.Fatal(err)
	}
	svc, err := dataset.New(ctx, dataset.Options{Store: store}) // loads its indexes, follows the feed
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close(ctx)
	ds, err := svc.CreateDataset(ctx, "team-1", "handbook", "")
	if err != nil {
		log.Fatal(err)
	}
	defer svc.DeleteDataset(ctx, "team-1", ds.ID)
	c, err := svc.CreateCollection(ctx, "team-1", ds.ID, "faq")
	if err != nil {
		log.Fatal(err)
	}
	res, err := svc.Push(ctx, dataset.PushRequest{TeamID: "team-1", CollectionID: c.ID,
		Data: []dataset.PushItem{{Q: "How long is the refund window?", A: "30 days"}}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("queued", res.InsertLen) // trained by whichever replica claims it first
}

// The Example, which has no Output to be run by go test, runs here on a
// schema of its own.
func TestExample(t *testing.T) {
	t.Setenv(pgtest.Env, pgtest.DSN(t))
	Example()
}
