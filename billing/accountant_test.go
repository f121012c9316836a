package billing_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
)

// The billing routes and the scope each needs; none has a body limit of
// the route's own (creating a bill caps its body itself).
func TestHandlerRoutes(t *testing.T) {
	type row struct {
		Pattern string
		Scope   auth.Scope
	}
	var got []row
	for _, r := range billing.NewHandler(billing.NewAccountant(billing.AccountantOptions{}), billing.HandlerOptions{}).Routes() {
		if r.Public || r.MaxBody != 0 || r.OnError != nil || r.Keyless != nil || r.Handler == nil {
			t.Fatalf("route %s: %+v", r.Pattern, r)
		}
		got = append(got, row{r.Pattern, r.Scope})
	}
	want := []row{
		{"POST /api/common/bill/createTrainingBill", auth.ScopeDatasetWrite},
		{"POST /api/support/wallet/usage/createTrainingUsage", auth.ScopeDatasetWrite},
		{"GET /api/common/bill/detail", auth.ScopeBillingRead},
		{"GET /api/support/usage/list", auth.ScopeBillingRead},
		{"GET /api/support/usage/summary", auth.ScopeBillingRead},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
}

// A program that keeps key counters of its own plugs them in as functions:
// Record charges through a KeyChargerFunc, and Reconcile reads the counters
// through a KeyUsageFunc.
func TestAccountantFuncAdapters(t *testing.T) {
	ctx := context.Background()
	counters := map[string]float64{}
	charge := billing.KeyChargerFunc(func(_ context.Context, keyID string, points float64) error {
		counters[keyID] += points
		return nil
	})
	used := billing.KeyUsageFunc(func(_ context.Context, keyID string) (float64, error) {
		p, ok := counters[keyID]
		if !ok {
			return 0, errors.New("no such key")
		}
		return p, nil
	})
	ledger := billing.NewMemoryLedger()
	a := billing.NewAccountant(billing.AccountantOptions{Ledger: ledger, Keys: charge})
	if err := a.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k1", Module: "AI Chat", Model: "m", InputTokens: 2000}); err != nil {
		t.Fatal(err)
	}
	if counters["k1"] != 2 {
		t.Fatalf("k1 charged %v points, want 2", counters["k1"])
	}
	// The counter lost a charge (a crash before its flush): Reconcile
	// charges the difference, and leaves alone a key it cannot read.
	counters["k1"] = 0.5
	if err := ledger.Record(ctx, &billing.Record{TeamID: "t", KeyID: "gone", Module: "AI Chat", Points: 1}); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Reconcile(ctx, used); err != nil || n != 1 || counters["k1"] != 2 {
		t.Fatalf("Reconcile = %d, %v; k1 at %v, want 1 key caught up to 2", n, err, counters["k1"])
	}
	if _, ok := counters["gone"]; ok {
		t.Fatal("Reconcile charged a key whose counter it could not read")
	}
	// Without Keys there is nothing to charge, nor to reconcile.
	if n, err := billing.NewAccountant(billing.AccountantOptions{Ledger: ledger}).Reconcile(ctx, used); n != 0 || err != nil {
		t.Fatalf("Reconcile without Keys = %d, %v", n, err)
	}
}
