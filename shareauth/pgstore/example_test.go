package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/shareauth"
	"github.com/chatgate/chatgate/shareauth/pgstore"
)

// A replica keeps its share links in Postgres by giving shareauth's
// Service a pgstore: every replica on the database then serves the same
// links, and finish callbacks are delivered once across them. The example
// runs against the database CHATGATE_TEST_POSTGRES names, in its default
// schema, and does nothing without one.
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
	svc := shareauth.New(shareauth.Options{Store: store})
	defer svc.Close(ctx)

	link, secret, err := svc.CreateLink(ctx, shareauth.LinkSpec{TeamID: "team-1", AppID: "app-1", Name: "docs bot"})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.DeleteLink(ctx, "team-1", link.ID)
	if err := svc.Charge(ctx, link.ID, 1.5); err != nil {
		log.Fatal(err)
	}
	// any replica reads the link as charged
	got, err := store.Link(ctx, link.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Name, got.UsagePoints, got.Secret == secret, time.Since(got.LastUsedTime) < time.Minute)
}
