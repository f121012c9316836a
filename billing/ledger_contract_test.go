package billing_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/billing"
)

func ledgers(t *testing.T, fn func(t *testing.T, l billing.Ledger, reopen func() billing.Ledger)) {
	t.Run("memory", func(t *testing.T) {
		l := billing.NewMemoryLedger()
		fn(t, l, func() billing.Ledger { return l })
	})
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		var db *bbolt.DB
		open := func() billing.Ledger {
			if db != nil {
				db.Close()
			}
			var err error
			if db, err = bbolt.Open(path, 0o600, nil); err != nil {
				t.Fatal(err)
			}
			l, err := billing.NewBoltLedger(db)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		t.Cleanup(func() { db.Close() })
		fn(t, open(), open)
	})
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestLedgerContract(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ledgers(t, func(t *testing.T, l billing.Ledger, reopen func() billing.Ledger) {
		bill := &billing.Bill{TeamID: "t1", Name: "import"}
		if err := l.CreateBill(ctx, bill); err != nil || bill.ID == "" {
			t.Fatalf("CreateBill: %v %q", err, bill.ID)
		}
		recs := []*billing.Record{
			{TeamID: "t1", KeyID: "k1", AppID: "a1", Source: billing.SourceChat, Module: "AI Chat", Model: "m", InputTokens: 10, OutputTokens: 5, Points: 1, Time: day},
			{TeamID: "t1", KeyID: "k1", AppID: "a1", Source: billing.SourceChat, Module: "AI Chat", Model: "m", InputTokens: 20, OutputTokens: 5, Points: 2, Time: day.Add(time.Hour)},
			{TeamID: "t1", KeyID: "k2", BillID: bill.ID, Source: billing.SourceTraining, Module: "embedding", Model: "local", InputTokens: 100, Points: 0.5, Time: day.Add(24 * time.Hour)},
			{TeamID: "t1", KeyID: "k2", BillID: bill.ID, Source: billing.SourceTraining, Module: "embedding", Model: "local", InputTokens: 50, Points: 0.25, Time: day.Add(25 * time.Hour)},
			{TeamID: "t1", KeyID: "k2", BillID: bill.ID, Source: billing.SourceTraining, Module: "qa", Model: "gpt", InputTokens: 30, OutputTokens: 70, Points: 4, Time: day.Add(26 * time.Hour)},
			{TeamID: "t2", KeyID: "k9", Source: billing.SourceChat, Module: "AI Chat", Model: "m", Points: 7, Time: day},
		}
		for _, r := range recs {
			if err := l.Record(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.ID == "" {
				t.Fatal("Record assigned no id")
			}
		}
		// the same record again is not counted twice
		dup := *recs[0]
		if err := l.Record(ctx, &dup); err != nil {
			t.Fatal(err)
		}
		// errors store nothing
		if err := l.Record(ctx, &billing.Record{TeamID: "t1", KeyID: "k1", BillID: "no-such-bill", Points: 100}); !errors.Is(err, billing.ErrBillNotFound) {
			t.Fatalf("unknown bill: %v", err)
		}
		if err := l.Record(ctx, &billing.Record{TeamID: "t2", KeyID: "k1", BillID: bill.ID, Points: 100}); !errors.Is(err, billing.ErrBillNotFound) {
			t.Fatalf("another team's bill: %v", err)
		}
		if err := l.Record(ctx, &billing.Record{KeyID: "k1", Points: 100}); err == nil {
			t.Fatal("a record without a team was stored")
		}
		l = reopen()

		b, err := l.Bill(ctx, bill.ID)
		if err != nil || b.TotalTokens != 250 || !near(b.TotalPoints, 4.75) || len(b.Items) != 2 ||
			b.Items[0].Module != "embedding" || b.Items[0].Tokens != 150 || !near(b.Items[0].Points, 0.75) ||
			b.Items[1].Module != "qa" || b.Items[1].Tokens != 100 {
			t.Fatalf("bill: %+v %v", b, err)
		}
		if _, err := l.Bill(ctx, "nope"); !errors.Is(err, billing.ErrBillNotFound) {
			t.Fatalf("missing bill: %v", err)
		}
		list, total, err := l.List(ctx, billing.Filter{TeamID: "t1"})
		if err != nil || total != 5 || len(list) != 5 || list[0].Module != "qa" || list[4].InputTokens != 10 {
			t.Fatalf("List: %d %+v %v", total, list, err)
		}
		list, total, _ = l.List(ctx, billing.Filter{TeamID: "t1", KeyID: "k1"})
		if total != 2 || list[0].InputTokens != 20 {
			t.Fatalf("by key: %d %+v", total, list)
		}
		list, total, _ = l.List(ctx, billing.Filter{TeamID: "t1", AppID: "a1", Offset: 1, Limit: 5})
		if total != 2 || len(list) != 1 || list[0].InputTokens != 10 {
			t.Fatalf("by app, offset 1: %d %+v", total, list)
		}
		list, total, _ = l.List(ctx, billing.Filter{TeamID: "t1", From: day.Add(time.Hour), To: day.Add(25 * time.Hour)})
		if total != 2 || list[0].InputTokens != 100 || list[1].InputTokens != 20 {
			t.Fatalf("time range: %d %+v", total, list)
		}
		sum, err := l.Summary(ctx, billing.Filter{TeamID: "t1"})
		if err != nil || sum.Total.Records != 5 || !near(sum.Total.Points, 7.75) || len(sum.ByDay) != 2 ||
			sum.ByDay[0].Day != "2026-03-01" || !near(sum.ByDay[0].Points, 3) || len(sum.ByKey) != 2 ||
			sum.ByKey[0].KeyID != "k2" || !near(sum.ByKey[0].Points, 4.75) {
			t.Fatalf("Summary: %+v %v", sum, err)
		}
		kp, _ := l.KeyPoints(ctx)
		if !near(kp["k1"], 3) || !near(kp["k2"], 4.75) || !near(kp["k9"], 7) {
			t.Fatalf("KeyPoints: %v", kp)
		}
		if ap, _ := l.AppPoints(ctx, "a1"); !near(ap, 3) {
			t.Fatalf("AppPoints: %v", ap)
		}
	})
}

func TestLedgerConcurrentRecords(t *testing.T) {
	ctx := context.Background()
	ledgers(t, func(t *testing.T, l billing.Ledger, _ func() billing.Ledger) {
		bill := &billing.Bill{TeamID: "t"}
		_ = l.CreateBill(ctx, bill)
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 50 {
					r := &billing.Record{TeamID: "t", KeyID: fmt.Sprintf("k%d", g%4), AppID: "a", Module: "AI Chat", Model: "m",
						InputTokens: 1, Points: 0.5}
					if i%5 == 0 {
						r.BillID = bill.ID
					}
					if err := l.Record(ctx, r); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		_, total, _ := l.List(ctx, billing.Filter{TeamID: "t"})
		kp, _ := l.KeyPoints(ctx)
		ap, _ := l.AppPoints(ctx, "a")
		b, _ := l.Bill(ctx, bill.ID)
		if total != 800 || !near(kp["k0"], 100) || !near(ap, 400) || b.TotalTokens != 160 {
			t.Fatalf("total %d, k0 %v, app %v, bill %d tokens", total, kp["k0"], ap, b.TotalTokens)
		}
	})
}

func TestPrices(t *testing.T) {
	p := &billing.Prices{Models: map[string]billing.Price{"gpt": {Input: 2, Output: 6}}}
	if got := p.Points("gpt", 1000, 500); !near(got, 5) {
		t.Fatalf("gpt: %v", got)
	}
	if got := p.Points("extractive", 1000, 1000); !near(got, billing.DefaultInputPrice+billing.DefaultOutputPrice) || got == 0 {
		t.Fatalf("unpriced model: %v", got)
	}
	p.Default = billing.Price{Input: 0.5, Output: 0.5}
	if got := p.Points("other", 2000, 0); !near(got, 1) {
		t.Fatalf("configured default: %v", got)
	}
	if err := (&billing.Prices{Models: map[string]billing.Price{"x": {Input: -1}}}).Validate(); err == nil {
		t.Fatal("negative price accepted")
	}
}
