package billingtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
)

// testSource checks BillLister and RecordSource, the capabilities a copy
// of a whole ledger reads through, on a ledger that has them: every
// team's bills and records, exactly as written, in their documented order.
func testSource(t *testing.T, l billing.Ledger) {
	bl, okB := l.(billing.BillLister)
	rs, okR := l.(billing.RecordSource)
	if !okB || !okR {
		t.Skip("the ledger is no BillLister and RecordSource")
	}
	bills := []billing.Bill{
		{ID: "b2", TeamID: "t1", Name: "second", DatasetID: "d1", CreateTime: t0.Add(time.Minute)},
		{ID: "b1", TeamID: "t2", Name: "first", CreateTime: t0},
		{ID: "b0", TeamID: "t1", Name: "tie", CreateTime: t0.Add(time.Minute)},
	}
	for i := range bills {
		b := bills[i]
		if err := l.CreateBill(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(3*time.Second + 7*time.Microsecond)
	recs := []billing.Record{
		{ID: "r3", TeamID: "t1", KeyID: "k1", AppID: "a", ShareID: "s", Source: billing.SourceChat, Module: "AI Chat",
			Model: "m", InputTokens: 3, OutputTokens: 4, Points: 0.75, Time: at},
		{ID: "r1", TeamID: "t2", KeyID: "k2", DatasetID: "d1", BillID: "b1", Source: billing.SourceTraining,
			Module: "embedding", Model: "local", InputTokens: 9, Points: 0.25, Time: t0},
		{ID: "r2", TeamID: "t1", KeyID: "k1", Source: billing.SourceSearch, Module: "search", Model: "local",
			InputTokens: 1, Points: 0.5, Time: at},
	}
	for i := range recs {
		r := recs[i]
		record(t, l, &r)
	}

	got, err := bl.Bills(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []billing.Bill{bills[1], bills[2], bills[0]}
	if !slices.Equal(got, want) {
		t.Fatalf("Bills = %+v\nwant %+v", got, want)
	}

	var seen []billing.Record
	if err := rs.EachRecord(ctx, func(r billing.Record) error { seen = append(seen, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if wantR := []billing.Record{recs[1], recs[2], recs[0]}; !slices.Equal(seen, wantR) {
		t.Fatalf("EachRecord saw %+v\nwant %+v", seen, wantR)
	}
	stop := errors.New("stop")
	n := 0
	if err := rs.EachRecord(ctx, func(billing.Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("EachRecord with fn failing returned %v after %d calls; want fn's error after 1", err, n)
	}
}
