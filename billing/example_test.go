package billing_test

import (
	"context"
	"fmt"

	"github.com/chatgate/chatgate/billing"
)

// An Accountant prices usage by the table, records it durably, and sums it
// on the bill it names.
func Example() {
	ctx := context.Background()
	ledger := billing.NewMemoryLedger() // billing.NewBoltLedger in production
	acct := billing.NewAccountant(billing.AccountantOptions{Ledger: ledger,
		Prices: &billing.Prices{Models: map[string]billing.Price{"gpt-4o": {Input: 2.5, Output: 10}}}})
	bill := &billing.Bill{TeamID: "default", Name: "import"}
	_ = ledger.CreateBill(ctx, bill)
	_ = acct.Record(ctx, &billing.Record{TeamID: "default", BillID: bill.ID, Module: "qa", Model: "gpt-4o",
		InputTokens: 2000, OutputTokens: 500})
	_ = acct.Record(ctx, &billing.Record{TeamID: "default", BillID: bill.ID, Module: "embedding", Model: "local",
		InputTokens: 1000})
	b, _ := ledger.Bill(ctx, bill.ID)
	fmt.Printf("%d tokens, %.1f points\n", b.TotalTokens, b.TotalPoints)
	for _, it := range b.Items {
		fmt.Printf("%s %s: %.1f points, price %.0f\n", it.Module, it.Model, it.Points, it.Points*billing.PriceScale)
	}
	// Output:
	// 3500 tokens, 11.0 points
	// qa gpt-4o: 10.0 points, price 1000000
	// embedding local: 1.0 points, price 100000
}
