package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/billing/pgstore"
)

// A replica keeps its ledger in Postgres by giving its Accountant a
// pgstore: every replica on the database then counts each record once
// and reads the same bills and spend. The example runs on the database
// CHATGATE_TEST_POSTGRES names (its default schema), and without one does
// nothing.
func Example() {
	dsn, ok := os.LookupEnv("CHATGATE_TEST_POSTGRES")
	if !ok {
		return
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	// New applies the migrations under a lock: replicas may start together.
	ledger, err := pgstore.New(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	acct := billing.NewAccountant(billing.AccountantOptions{Ledger: ledger})

	bill := &billing.Bill{TeamID: "team-1", Name: "import"}
	if err := ledger.CreateBill(ctx, bill); err != nil {
		log.Fatal(err)
	}
	r := &billing.Record{TeamID: "team-1", KeyID: "key-1", AppID: "app-1", BillID: bill.ID, Source: billing.SourceTraining,
		Module: "embedding", Model: "local", InputTokens: 2000}
	if err := acct.Record(ctx, r); err != nil {
		log.Fatal(err)
	}
	// an outbox delivering it again, through any replica, charges nothing more
	if err := ledger.Record(ctx, r); err != billing.ErrDuplicate {
		log.Fatal(err)
	}
	b, err := ledger.Bill(ctx, bill.ID)
	if err != nil {
		log.Fatal(err)
	}
	spent, err := ledger.AppPoints(ctx, "team-1", "app-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bill %s: %d tokens, %.1f points; app-1 spent %.1f\n", b.Name, b.TotalTokens, b.TotalPoints, spent)
}
