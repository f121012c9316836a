package billing_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/billing"
)

// A BoltLedger acknowledges a record once it is on disk: a ledger opened on
// the same file again has it, with the key's and the app's totals.
func ExampleBoltLedger() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "chatgate.db")

	db, _ := bbolt.Open(path, 0o600, nil)
	ledger, _ := billing.NewBoltLedger(db)
	acct := billing.NewAccountant(billing.AccountantOptions{Ledger: ledger}) // default prices: 1 point per 1,000 input tokens, 2 per 1,000 output
	for range 3 {
		_ = acct.Record(ctx, &billing.Record{TeamID: "default", KeyID: "key1", AppID: "main", Source: billing.SourceChat,
			Module: "AI Chat", Model: "extractive", InputTokens: 300, OutputTokens: 100})
	}
	_ = db.Close()

	db, _ = bbolt.Open(path, 0o600, nil)
	defer db.Close()
	ledger, _ = billing.NewBoltLedger(db)
	recs, total, _ := ledger.List(ctx, billing.Filter{TeamID: "default", KeyID: "key1", Limit: 1})
	keys, _ := ledger.KeyPoints(ctx)
	app, _ := ledger.AppPoints(ctx, "default", "main")
	fmt.Printf("%d records; newest: %s %s, %.1f points, price %.0f\n", total, recs[0].Module, recs[0].Model,
		recs[0].Points, recs[0].Points*billing.PriceScale)
	fmt.Printf("key1 spent %.1f points, app main %.1f\n", keys["key1"], app)
	// Output:
	// 3 records; newest: AI Chat extractive, 0.5 points, price 50000
	// key1 spent 1.5 points, app main 1.5
}

// A journaled ledger acknowledges a record once it is synced in the
// journal, and moves it into the database later, many records a commit:
// totals count it at once, lists move what waits first, Close moves the
// rest, and a ledger opened after a crash applies what the journal holds.
func ExampleOpenBoltLedger() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger")
	defer os.RemoveAll(dir)
	opts := billing.BoltLedgerOptions{Journal: filepath.Join(dir, "usage.journal")}

	db, _ := bbolt.Open(filepath.Join(dir, "chatgate.db"), 0o600, nil)
	ledger, _ := billing.OpenBoltLedger(db, opts)
	_ = ledger.Record(ctx, &billing.Record{TeamID: "default", KeyID: "key1", Points: 0.5})
	spent, _ := ledger.KeyPointsOf(ctx, "key1")
	fmt.Printf("key1 spent %.1f points\n", spent)
	_ = ledger.Close() // applies what waits; the database stays open
	_ = db.Close()

	db, _ = bbolt.Open(filepath.Join(dir, "chatgate.db"), 0o600, nil)
	defer db.Close()
	ledger, _ = billing.OpenBoltLedger(db, opts)
	defer ledger.Close()
	_, total, _ := ledger.List(ctx, billing.Filter{TeamID: "default"})
	fmt.Printf("%d record after reopening\n", total)
	// Output:
	// key1 spent 0.5 points
	// 1 record after reopening
}

// Points price tokens by the table; a model it does not name costs the
// default price, never nothing.
func ExamplePrices_Points() {
	p := &billing.Prices{Models: map[string]billing.Price{"gpt-4o-mini": {Input: 0.15, Output: 0.6}}}
	for _, model := range []string{"gpt-4o-mini", "extractive"} {
		points := p.Points(model, 2000, 1000)
		fmt.Printf("%s: %.2f points, FastGPT price %.0f\n", model, points, points*billing.PriceScale)
	}
	// Output:
	// gpt-4o-mini: 0.90 points, FastGPT price 90000
	// extractive: 4.00 points, FastGPT price 400000
}
