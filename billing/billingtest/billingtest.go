// Package billingtest holds a conformance test for implementations of
// billing.Ledger: its RecordWriter, BillStore, UsageReader and SpendReader,
// checked together because each reads what Record writes. The suite knows
// nothing of the backend. A ledger passes when it behaves as the interfaces
// document: records get an id and a time, a record id is counted once, a
// record naming an unknown bill (or another team's) fails and stores
// nothing, bills aggregate their records by module and model, List and
// Summary select one team's records by key, app and time range, newest
// first, app totals are kept per team, totals stay exact under concurrent
// writers, a record that fails (or that the backend refuses) beside others
// written at once fails alone, and, on a ledger that is a billing.BillLister and
// billing.RecordSource, every team's bills and records come out as written.
package billingtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
)

// TestLedger runs the conformance suite against the ledgers open returns.
// It calls open once per subtest, which must return a new, empty ledger;
// open should register any cleanup with t.Cleanup.
//
// Points in the suite are multiples of 1/4, which float64 adds exactly, so
// totals are compared for equality.
func TestLedger(t *testing.T, open func(t *testing.T) billing.Ledger) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l billing.Ledger)
	}{
		{"RecordAssignsIDAndTime", testRecordAssigns},
		{"RecordInvalid", testRecordInvalid},
		{"Bill", testBill},
		{"BillNotFound", testBillNotFound},
		{"UnknownBillStoresNothing", testUnknownBillStoresNothing},
		{"DuplicateCountedOnce", testDuplicate},
		{"ListNewestFirst", testListOrder},
		{"ListFilters", testListFilters},
		{"ListTimeRange", testListTimeRange},
		{"ListPagination", testListPagination},
		{"Summary", testSummary},
		{"Empty", testEmpty},
		{"AppPointsPerTeam", testAppPointsPerTeam},
		{"ConcurrentRecords", testConcurrent},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"ConcurrentFailuresIsolated", testConcurrentFailures},
		{"ConcurrentDuplicateOfFailure", testConcurrentDuplicateOfFailure},
		{"ConcurrentRefusedIsolated", testConcurrentRefused},
		{"Source", testSource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ctx = context.Background()

// t0 is a fixed time, far from a UTC day boundary.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func record(t *testing.T, l billing.Ledger, r *billing.Record) *billing.Record {
	t.Helper()
	if err := l.Record(ctx, r); err != nil {
		t.Fatalf("Record(%+v): %v", r, err)
	}
	return r
}

func chat(team, key, app string, points float64, at time.Time) *billing.Record {
	return &billing.Record{TeamID: team, KeyID: key, AppID: app, Source: billing.SourceChat, Module: "AI Chat",
		Model: "m", InputTokens: 10, OutputTokens: 5, Points: points, Time: at}
}

func list(t *testing.T, l billing.Ledger, f billing.Filter) ([]billing.Record, int) {
	t.Helper()
	recs, total, err := l.List(ctx, f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return recs, total
}

func ids(recs []billing.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func keyPoints(t *testing.T, l billing.Ledger) map[string]float64 {
	t.Helper()
	kp, err := l.KeyPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func appPoints(t *testing.T, l billing.Ledger, team, app string) float64 {
	t.Helper()
	p, err := l.AppPoints(ctx, team, app)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func createBill(t *testing.T, l billing.Ledger, team, name string) string {
	t.Helper()
	b := &billing.Bill{TeamID: team, Name: name, CreateTime: t0}
	if err := l.CreateBill(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.ID == "" {
		t.Fatal("CreateBill assigned no id")
	}
	return b.ID
}

func testRecordAssigns(t *testing.T, l billing.Ledger) {
	before := time.Now()
	r := record(t, l, &billing.Record{TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", InputTokens: 1, Points: 0.25})
	if r.ID == "" || r.Time.IsZero() || r.Time.Before(before.Add(-time.Second)) || r.Time.After(time.Now().Add(time.Second)) {
		t.Fatalf("Record left id %q, time %v", r.ID, r.Time)
	}
	given := record(t, l, &billing.Record{ID: "mine", TeamID: "t", KeyID: "k", Module: "AI Chat", Model: "m", Points: 0.5, Time: t0})
	if given.ID != "mine" || !given.Time.Equal(t0) {
		t.Fatalf("Record replaced a given id or time: %q %v", given.ID, given.Time)
	}
	recs, total := list(t, l, billing.Filter{TeamID: "t"})
	if total != 2 || len(recs) != 2 || recs[0].ID != r.ID || recs[1].ID != "mine" || !recs[1].Time.Equal(t0) {
		t.Fatalf("List = %d %+v", total, recs)
	}
	got := recs[1]
	if got.TeamID != "t" || got.KeyID != "k" || got.Module != "AI Chat" || got.Model != "m" || got.Points != 0.5 {
		t.Fatalf("stored record = %+v", got)
	}
}

func testRecordInvalid(t *testing.T, l billing.Ledger) {
	bill := createBill(t, l, "t", "b")
	for _, r := range []*billing.Record{
		{KeyID: "k", AppID: "a", BillID: bill, Module: "AI Chat", Points: 1}, // no team
		{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill, Module: "AI Chat", Points: math.NaN()},
		{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill, Module: "AI Chat", Points: math.Inf(1)},
		{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill, Module: "AI Chat", Points: -1},
		{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill, Module: "AI Chat", InputTokens: -5},
		{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill, Module: "AI Chat", OutputTokens: -5},
	} {
		if err := l.Record(ctx, r); err == nil {
			t.Errorf("an invalid record was stored: %+v", r)
		}
	}
	for _, team := range []string{"", "t"} {
		if _, total := list(t, l, billing.Filter{TeamID: team}); total != 0 {
			t.Fatalf("team %q lists %d invalid records", team, total)
		}
	}
	if kp := keyPoints(t, l); kp["k"] != 0 {
		t.Fatalf("invalid records were counted on their key: %v", kp)
	}
	if p := appPoints(t, l, "t", "a"); p != 0 {
		t.Fatalf("invalid records were counted on their app: %v", p)
	}
	if b, _ := l.Bill(ctx, bill); b.TotalPoints != 0 || b.TotalTokens != 0 || len(b.Items) != 0 {
		t.Fatalf("invalid records were added to their bill: %+v", b)
	}
	// the ledger still works
	record(t, l, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "AI Chat", Points: 0.5})
	if kp := keyPoints(t, l); kp["k"] != 0.5 {
		t.Fatalf("key points = %v; want 0.5", kp["k"])
	}
}

func testBill(t *testing.T, l billing.Ledger) {
	id := createBill(t, l, "t", "import")
	other := createBill(t, l, "t", "other")
	b, err := l.Bill(ctx, id)
	if err != nil || b.ID != id || b.TeamID != "t" || b.Name != "import" || b.TotalTokens != 0 || b.TotalPoints != 0 ||
		b.Items == nil || len(b.Items) != 0 {
		t.Fatalf("new bill = %+v, %v", b, err)
	}
	for _, r := range []*billing.Record{
		{TeamID: "t", KeyID: "k", BillID: id, Source: billing.SourceTraining, Module: "embedding", Model: "local", InputTokens: 100, Points: 0.25},
		{TeamID: "t", KeyID: "k", BillID: id, Source: billing.SourceTraining, Module: "qa", Model: "gpt", InputTokens: 30, OutputTokens: 70, Points: 2},
		{TeamID: "t", KeyID: "k", BillID: id, Source: billing.SourceTraining, Module: "embedding", Model: "local", InputTokens: 50, Points: 0.5},
		{TeamID: "t", KeyID: "k", BillID: id, Source: billing.SourceTraining, Module: "embedding", Model: "remote", InputTokens: 8, Points: 1},
		{TeamID: "t", KeyID: "k", BillID: other, Source: billing.SourceTraining, Module: "embedding", Model: "local", InputTokens: 999, Points: 4},
		{TeamID: "t", KeyID: "k", Source: billing.SourceChat, Module: "AI Chat", Model: "m", InputTokens: 999, Points: 4},
	} {
		record(t, l, r)
	}
	b, err = l.Bill(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b.TotalTokens != 258 || b.TotalPoints != 3.75 || b.Name != "import" {
		t.Fatalf("bill totals = %d tokens, %v points; want 258, 3.75: %+v", b.TotalTokens, b.TotalPoints, b)
	}
	want := map[[2]string]billing.BillItem{
		{"embedding", "local"}:  {Module: "embedding", Model: "local", Tokens: 150, Points: 0.75},
		{"qa", "gpt"}:           {Module: "qa", Model: "gpt", Tokens: 100, Points: 2},
		{"embedding", "remote"}: {Module: "embedding", Model: "remote", Tokens: 8, Points: 1},
	}
	if len(b.Items) != len(want) {
		t.Fatalf("bill items = %+v; want one per module and model", b.Items)
	}
	for _, it := range b.Items {
		if w, ok := want[[2]string{it.Module, it.Model}]; !ok || it != w {
			t.Errorf("bill item %+v; want %+v", it, w)
		}
	}
	if ob, err := l.Bill(ctx, other); err != nil || ob.TotalTokens != 999 || ob.TotalPoints != 4 || len(ob.Items) != 1 {
		t.Fatalf("the other bill = %+v, %v", ob, err)
	}
	// the bill's records are ordinary usage records too
	if kp := keyPoints(t, l); kp["k"] != 11.75 {
		t.Fatalf("key points = %v; want 11.75", kp["k"])
	}
}

func testBillNotFound(t *testing.T, l billing.Ledger) {
	if _, err := l.Bill(ctx, "no-such-bill"); !errors.Is(err, billing.ErrBillNotFound) {
		t.Fatalf("Bill(missing) = %v; want ErrBillNotFound", err)
	}
}

func testUnknownBillStoresNothing(t *testing.T, l billing.Ledger) {
	id := createBill(t, l, "t1", "mine")
	record(t, l, &billing.Record{TeamID: "t1", KeyID: "k", AppID: "a", BillID: id, Module: "embedding", Model: "local", InputTokens: 4, Points: 1})
	for _, r := range []*billing.Record{
		{TeamID: "t1", KeyID: "k", AppID: "a", BillID: "no-such-bill", Module: "embedding", Model: "local", InputTokens: 7, Points: 8},
		// another team's bill is as missing as a missing one
		{TeamID: "t2", KeyID: "k", AppID: "a", BillID: id, Module: "embedding", Model: "local", InputTokens: 7, Points: 8},
	} {
		if err := l.Record(ctx, r); !errors.Is(err, billing.ErrBillNotFound) {
			t.Fatalf("Record with bill %q of team %q = %v; want ErrBillNotFound", r.BillID, r.TeamID, err)
		}
	}
	for _, team := range []string{"t1", "t2"} {
		if _, total := list(t, l, billing.Filter{TeamID: team}); total != map[string]int{"t1": 1, "t2": 0}[team] {
			t.Fatalf("team %s lists %d records after the failures", team, total)
		}
	}
	if kp := keyPoints(t, l); kp["k"] != 1 {
		t.Fatalf("key points = %v; want 1", kp["k"])
	}
	if p := appPoints(t, l, "t1", "a"); p != 1 {
		t.Fatalf("app points = %v; want 1", p)
	}
	if p := appPoints(t, l, "t2", "a"); p != 0 {
		t.Fatalf("team t2's app points = %v after its record failed; want 0", p)
	}
	if b, err := l.Bill(ctx, id); err != nil || b.TotalTokens != 4 || b.TotalPoints != 1 {
		t.Fatalf("bill after the failures = %+v, %v", b, err)
	}
}

func testDuplicate(t *testing.T, l billing.Ledger) {
	id := createBill(t, l, "t", "b")
	first := record(t, l, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", BillID: id, Module: "embedding", Model: "local",
		InputTokens: 10, Points: 1.5, Time: t0})
	// the same id again, even with other figures or another time, is the
	// same record: ErrDuplicate, nothing changed
	again := *first
	if err := l.Record(ctx, &again); !errors.Is(err, billing.ErrDuplicate) {
		t.Fatalf("the same record again: %v; want ErrDuplicate", err)
	}
	again.Points, again.InputTokens, again.Time = 100, 1000, t0.Add(time.Hour)
	if err := l.Record(ctx, &again); !errors.Is(err, billing.ErrDuplicate) {
		t.Fatalf("the same id with other figures: %v; want ErrDuplicate", err)
	}
	recs, total := list(t, l, billing.Filter{TeamID: "t"})
	if total != 1 || len(recs) != 1 || recs[0].Points != 1.5 || !recs[0].Time.Equal(t0) {
		t.Fatalf("after duplicates List = %d %+v", total, recs)
	}
	if kp := keyPoints(t, l); kp["k"] != 1.5 {
		t.Fatalf("key points = %v; want 1.5", kp["k"])
	}
	if p := appPoints(t, l, "t", "a"); p != 1.5 {
		t.Fatalf("app points = %v; want 1.5", p)
	}
	if b, _ := l.Bill(ctx, id); b.TotalTokens != 10 || b.TotalPoints != 1.5 {
		t.Fatalf("bill = %+v; the duplicate was added to it", b)
	}
	if s, _ := l.Summary(ctx, billing.Filter{TeamID: "t"}); s.Total.Records != 1 || s.Total.Points != 1.5 {
		t.Fatalf("summary = %+v", s.Total)
	}
}

func testListOrder(t *testing.T, l billing.Ledger) {
	// recorded out of time order
	var want []string
	for _, h := range []int{5, 1, 9, 3, 7} {
		r := record(t, l, chat("t", "k", "a", 0.25, t0.Add(time.Duration(h)*time.Hour)))
		want = append(want, fmt.Sprintf("%d:%s", h, r.ID))
	}
	slices.SortFunc(want, func(a, b string) int { return int(b[0]) - int(a[0]) })
	recs, total := list(t, l, billing.Filter{TeamID: "t"})
	if total != 5 || len(recs) != 5 {
		t.Fatalf("List = %d, %d records", total, len(recs))
	}
	for i, r := range recs {
		if h := int(r.Time.Sub(t0) / time.Hour); fmt.Sprintf("%d:%s", h, r.ID) != want[i] {
			t.Fatalf("List order %v; want newest first %v", ids(recs), want)
		}
	}
}

func testListFilters(t *testing.T, l billing.Ledger) {
	rs := []*billing.Record{
		chat("t1", "k1", "a1", 0.25, t0),
		chat("t1", "k1", "a2", 0.25, t0.Add(time.Minute)),
		chat("t1", "k2", "a1", 0.25, t0.Add(2*time.Minute)),
		chat("t1", "", "a1", 0.25, t0.Add(3*time.Minute)), // e.g. a share link's chat
		chat("t2", "k1", "a1", 0.25, t0.Add(4*time.Minute)),
		chat("t2", "k3", "a3", 0.25, t0.Add(5*time.Minute)),
	}
	for _, r := range rs {
		record(t, l, r)
	}
	for _, tc := range []struct {
		f    billing.Filter
		want []*billing.Record // newest first
	}{
		{billing.Filter{TeamID: "t1"}, []*billing.Record{rs[3], rs[2], rs[1], rs[0]}},
		{billing.Filter{TeamID: "t2"}, []*billing.Record{rs[5], rs[4]}},
		{billing.Filter{TeamID: "t3"}, nil},
		{billing.Filter{TeamID: "t1", KeyID: "k1"}, []*billing.Record{rs[1], rs[0]}},
		{billing.Filter{TeamID: "t1", AppID: "a1"}, []*billing.Record{rs[3], rs[2], rs[0]}},
		{billing.Filter{TeamID: "t1", KeyID: "k1", AppID: "a1"}, []*billing.Record{rs[0]}},
		// another team's key and app are not seen
		{billing.Filter{TeamID: "t1", KeyID: "k3"}, nil},
		{billing.Filter{TeamID: "t1", AppID: "a3"}, nil},
	} {
		recs, total := list(t, l, tc.f)
		want := make([]string, len(tc.want))
		for i, r := range tc.want {
			want[i] = r.ID
		}
		if total != len(want) || !slices.Equal(ids(recs), want) {
			t.Errorf("List(%+v) = %d %v; want %v", tc.f, total, ids(recs), want)
		}
		for _, r := range recs {
			if r.TeamID != tc.f.TeamID {
				t.Errorf("List(%+v) returned team %s's record", tc.f, r.TeamID)
			}
		}
	}
}

func testListTimeRange(t *testing.T, l billing.Ledger) {
	var rs []*billing.Record
	for h := range 6 {
		rs = append(rs, record(t, l, chat("t", "k", "a", 0.25, t0.Add(time.Duration(h)*time.Hour))))
	}
	hour := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	for _, tc := range []struct {
		from, to time.Time
		want     []int // hours, newest first
	}{
		{time.Time{}, time.Time{}, []int{5, 4, 3, 2, 1, 0}},
		{hour(2), time.Time{}, []int{5, 4, 3, 2}}, // From is included
		{time.Time{}, hour(2), []int{1, 0}},       // To is not
		{hour(1), hour(4), []int{3, 2, 1}},
		{hour(1).Add(time.Nanosecond), hour(4).Add(time.Nanosecond), []int{4, 3, 2}},
		{hour(6), time.Time{}, nil},
		{time.Time{}, hour(0), nil},
		{hour(-100), hour(100), []int{5, 4, 3, 2, 1, 0}},
		// the same instants in another zone select the same records
		{hour(1).In(time.FixedZone("CST", 8*3600)), hour(3).In(time.FixedZone("PST", -8*3600)), []int{2, 1}},
	} {
		recs, total := list(t, l, billing.Filter{TeamID: "t", From: tc.from, To: tc.to})
		want := make([]string, len(tc.want))
		for i, h := range tc.want {
			want[i] = rs[h].ID
		}
		if total != len(want) || !slices.Equal(ids(recs), want) {
			t.Errorf("List [%v, %v) = %d records; want hours %v", tc.from, tc.to, total, tc.want)
		}
		if s, err := l.Summary(ctx, billing.Filter{TeamID: "t", From: tc.from, To: tc.to}); err != nil || s.Total.Records != len(want) {
			t.Errorf("Summary [%v, %v) = %+v, %v; want %d records", tc.from, tc.to, s, err, len(want))
		}
	}
}

func testListPagination(t *testing.T, l billing.Ledger) {
	var all []string // newest first
	for i := range 7 {
		r := record(t, l, chat("t", "k", "a", 0.25, t0.Add(time.Duration(i)*time.Minute)))
		all = append([]string{r.ID}, all...)
	}
	record(t, l, chat("other", "k", "a", 0.25, t0.Add(time.Hour)))
	var paged []string
	for off := 0; off < 7; off += 3 {
		recs, total := list(t, l, billing.Filter{TeamID: "t", Offset: off, Limit: 3})
		if total != 7 || len(recs) != min(3, 7-off) {
			t.Fatalf("page at %d = %d of %d", off, len(recs), total)
		}
		paged = append(paged, ids(recs)...)
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("pages %v; want %v", paged, all)
	}
	if recs, total := list(t, l, billing.Filter{TeamID: "t", Offset: 7, Limit: 3}); total != 7 || len(recs) != 0 {
		t.Fatalf("past the end: %d records of %d", len(recs), total)
	}
	if recs, total := list(t, l, billing.Filter{TeamID: "t", Offset: 100}); total != 7 || len(recs) != 0 {
		t.Fatalf("far past the end: %d records of %d", len(recs), total)
	}
	if recs, total := list(t, l, billing.Filter{TeamID: "t", Offset: 5}); total != 7 || !slices.Equal(ids(recs), all[5:]) {
		t.Fatalf("offset without limit: %v of %d", ids(recs), total)
	}
	if recs, total := list(t, l, billing.Filter{TeamID: "t", Limit: 100}); total != 7 || !slices.Equal(ids(recs), all) {
		t.Fatalf("limit over total: %v of %d", ids(recs), total)
	}
	// a page of a filtered selection: total counts the selection
	recs, total := list(t, l, billing.Filter{TeamID: "t", From: t0.Add(2 * time.Minute), Offset: 1, Limit: 2})
	if total != 5 || !slices.Equal(ids(recs), all[1:3]) {
		t.Fatalf("filtered page: %v of %d; want %v of 5", ids(recs), total, all[1:3])
	}
}

func testSummary(t *testing.T, l billing.Ledger) {
	cst := time.FixedZone("CST", 8*3600)
	for _, r := range []*billing.Record{
		{TeamID: "t", KeyID: "k1", AppID: "a", Module: "AI Chat", Model: "m", InputTokens: 10, OutputTokens: 5, Points: 1, Time: t0},
		{TeamID: "t", KeyID: "k2", AppID: "a", Module: "AI Chat", Model: "m", InputTokens: 20, OutputTokens: 5, Points: 2.5, Time: t0.Add(time.Hour)},
		// 01:00 on March 2nd in UTC+8 is 17:00 on March 1st in UTC
		{TeamID: "t", KeyID: "k1", AppID: "a", Module: "AI Chat", Model: "m", InputTokens: 1, OutputTokens: 1, Points: 0.25,
			Time: time.Date(2026, 3, 2, 1, 0, 0, 0, cst)},
		{TeamID: "t", KeyID: "k1", Module: "embedding", Model: "local", InputTokens: 100, Points: 0.5, Time: t0.Add(24 * time.Hour)},
		{TeamID: "t", KeyID: "k3", Module: "embedding", Model: "local", InputTokens: 40, Points: 0.5, Time: t0.Add(48 * time.Hour)},
		{TeamID: "t", KeyID: "k4", Module: "embedding", Model: "local", InputTokens: 40, Points: 0.5, Time: t0.Add(48 * time.Hour)},
		{TeamID: "other", KeyID: "k9", Module: "AI Chat", Model: "m", InputTokens: 1000, Points: 64, Time: t0},
	} {
		record(t, l, r)
	}
	s, err := l.Summary(ctx, billing.Filter{TeamID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if (s.Total != billing.Total{Records: 6, InputTokens: 211, OutputTokens: 11, Points: 5.25}) {
		t.Fatalf("total = %+v", s.Total)
	}
	wantDays := []billing.DayTotal{
		{Day: "2026-03-01", Total: billing.Total{Records: 3, InputTokens: 31, OutputTokens: 11, Points: 3.75}},
		{Day: "2026-03-02", Total: billing.Total{Records: 1, InputTokens: 100, Points: 0.5}},
		{Day: "2026-03-03", Total: billing.Total{Records: 2, InputTokens: 80, Points: 1}},
	}
	if !slices.Equal(s.ByDay, wantDays) {
		t.Fatalf("by day = %+v; want %+v (UTC days, oldest first)", s.ByDay, wantDays)
	}
	// most points first; equal points by key id
	wantKeys := []billing.KeyTotal{
		{KeyID: "k2", Total: billing.Total{Records: 1, InputTokens: 20, OutputTokens: 5, Points: 2.5}},
		{KeyID: "k1", Total: billing.Total{Records: 3, InputTokens: 111, OutputTokens: 6, Points: 1.75}},
		{KeyID: "k3", Total: billing.Total{Records: 1, InputTokens: 40, Points: 0.5}},
		{KeyID: "k4", Total: billing.Total{Records: 1, InputTokens: 40, Points: 0.5}},
	}
	if !slices.Equal(s.ByKey, wantKeys) {
		t.Fatalf("by key = %+v; want %+v", s.ByKey, wantKeys)
	}
	// the filter applies
	s, err = l.Summary(ctx, billing.Filter{TeamID: "t", KeyID: "k1", From: t0.Add(time.Minute)})
	if err != nil || s.Total.Records != 2 || s.Total.Points != 0.75 || len(s.ByDay) != 2 || len(s.ByKey) != 1 || s.ByKey[0].KeyID != "k1" {
		t.Fatalf("filtered summary = %+v, %v", s, err)
	}
	s, _ = l.Summary(ctx, billing.Filter{TeamID: "t", AppID: "a"})
	if s.Total.Records != 3 || s.Total.Points != 3.75 {
		t.Fatalf("summary by app = %+v", s.Total)
	}
}

// App ids are scoped to their team: two teams' apps of one id keep
// separate totals, and a team without the app has spent nothing on it.
func testAppPointsPerTeam(t *testing.T, l billing.Ledger) {
	record(t, l, chat("t1", "k1", "a", 1, t0))
	record(t, l, chat("t2", "k2", "a", 2.5, t0))
	record(t, l, chat("t2", "k2", "a", 0.25, t0.Add(time.Minute)))
	record(t, l, chat("t1", "k1", "b", 4, t0))
	for _, tc := range []struct {
		team, app string
		want      float64
	}{{"t1", "a", 1}, {"t2", "a", 2.75}, {"t1", "b", 4}, {"t2", "b", 0}, {"t3", "a", 0}} {
		if p := appPoints(t, l, tc.team, tc.app); p != tc.want {
			t.Errorf("AppPoints(%s, %s) = %v; want %v", tc.team, tc.app, p, tc.want)
		}
	}
}

func testEmpty(t *testing.T, l billing.Ledger) {
	if recs, total := list(t, l, billing.Filter{TeamID: "t"}); total != 0 || len(recs) != 0 {
		t.Fatalf("empty List = %d %v", total, recs)
	}
	s, err := l.Summary(ctx, billing.Filter{TeamID: "t"})
	if err != nil || s.Total != (billing.Total{}) || len(s.ByDay) != 0 || len(s.ByKey) != 0 {
		t.Fatalf("empty Summary = %+v, %v", s, err)
	}
	if kp := keyPoints(t, l); len(kp) != 0 {
		t.Fatalf("empty KeyPoints = %v", kp)
	}
	if p := appPoints(t, l, "t", "a"); p != 0 {
		t.Fatalf("empty AppPoints = %v", p)
	}
}

func testConcurrent(t *testing.T, l billing.Ledger) {
	const writers, each = 8, 64
	bill := createBill(t, l, "t", "concurrent")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				r := &billing.Record{TeamID: "t", KeyID: fmt.Sprintf("k%d", g%4), AppID: "a", Module: "embedding", Model: "local",
					InputTokens: 3, OutputTokens: 1, Points: 0.25}
				if i%4 == 0 {
					r.BillID = bill
				}
				if err := l.Record(ctx, r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[r.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const n = writers * each
	if len(seen) != n {
		t.Fatalf("%d distinct ids for %d records", len(seen), n)
	}
	recs, total := list(t, l, billing.Filter{TeamID: "t"})
	if total != n || len(recs) != n {
		t.Fatalf("List = %d; want %d", total, n)
	}
	for _, r := range recs {
		delete(seen, r.ID)
	}
	if len(seen) != 0 {
		t.Fatalf("%d acknowledged records are not listed", len(seen))
	}
	kp := keyPoints(t, l)
	for k := range 4 {
		if p := kp[fmt.Sprintf("k%d", k)]; p != writers/4*each*0.25 {
			t.Errorf("k%d points = %v; want %v", k, p, writers/4*each*0.25)
		}
	}
	if p := appPoints(t, l, "t", "a"); p != n*0.25 {
		t.Errorf("app points = %v; want %v", p, n*0.25)
	}
	b, err := l.Bill(ctx, bill)
	if err != nil || b.TotalTokens != n/4*4 || b.TotalPoints != n/4*0.25 || len(b.Items) != 1 {
		t.Errorf("bill = %+v, %v; want %d tokens, %v points", b, err, n/4*4, n/4*0.25)
	}
	s, err := l.Summary(ctx, billing.Filter{TeamID: "t"})
	if err != nil || (s.Total != billing.Total{Records: n, InputTokens: 3 * n, OutputTokens: n, Points: n * 0.25}) {
		t.Errorf("summary = %+v, %v", s, err)
	}
}

func testConcurrentDuplicates(t *testing.T, l billing.Ledger) {
	const writers = 16
	var (
		wg     sync.WaitGroup
		stored atomic.Int64 // calls that stored their record, not ErrDuplicate
	)
	start := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			<-start
			for i := range 4 {
				// every writer records the same four ids
				r := &billing.Record{ID: fmt.Sprintf("dup-%d", i), TeamID: "t", KeyID: "k", AppID: "a", Module: "AI Chat",
					Model: "m", InputTokens: g + 1, Points: 0.5, Time: t0.Add(time.Duration(i) * time.Minute)}
				switch err := l.Record(ctx, r); {
				case err == nil:
					stored.Add(1)
				case !errors.Is(err, billing.ErrDuplicate):
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if _, total := list(t, l, billing.Filter{TeamID: "t"}); total != 4 {
		t.Fatalf("List = %d records; want 4", total)
	}
	if n := stored.Load(); n != 4 {
		t.Fatalf("%d calls stored a record; want exactly one per id, the others ErrDuplicate", n)
	}
	if kp := keyPoints(t, l); kp["k"] != 2 {
		t.Fatalf("key points = %v; want 2", kp["k"])
	}
	if p := appPoints(t, l, "t", "a"); p != 2 {
		t.Fatalf("app points = %v; want 2", p)
	}
}

// testConcurrentFailures interleaves records that must fail with good ones:
// a ledger that commits records together must not let one sink the others.
func testConcurrentFailures(t *testing.T, l billing.Ledger) {
	const writers, each = 8, 32
	bill := createBill(t, l, "t", "b")
	var (
		wg   sync.WaitGroup
		good = make([]int, writers)
	)
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				r := &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", BillID: bill, Module: "embedding", Model: "local",
					InputTokens: 2, Points: 0.25}
				var want error
				switch (g + i) % 4 {
				case 1:
					r.BillID, want = "missing", billing.ErrBillNotFound
				case 3:
					r.TeamID, want = "", errors.New("no team")
					if g%2 == 0 {
						r.TeamID, r.Points = "t", math.NaN()
					}
				}
				err := l.Record(ctx, r)
				switch {
				case want == nil && err != nil:
					t.Errorf("a good record failed beside bad ones: %v", err)
				case want == billing.ErrBillNotFound && !errors.Is(err, billing.ErrBillNotFound):
					t.Errorf("unknown bill: %v", err)
				case want != nil && err == nil:
					t.Errorf("a bad record was stored: %+v", r)
				case err == nil:
					good[g]++
				}
			}
		})
	}
	wg.Wait()
	n := 0
	for _, c := range good {
		n += c
	}
	if n != writers*each/2 {
		t.Fatalf("%d good records acknowledged; want %d", n, writers*each/2)
	}
	if _, total := list(t, l, billing.Filter{TeamID: "t"}); total != n {
		t.Fatalf("List = %d; want %d", total, n)
	}
	if kp := keyPoints(t, l); kp["k"] != float64(n)*0.25 {
		t.Fatalf("key points = %v; want %v", kp["k"], float64(n)*0.25)
	}
	if b, _ := l.Bill(ctx, bill); b.TotalTokens != 2*n || b.TotalPoints != float64(n)*0.25 {
		t.Fatalf("bill = %+v", b)
	}
	if p := appPoints(t, l, "t", "a"); p != float64(n)*0.25 {
		t.Fatalf("app points = %v; want %v", p, float64(n)*0.25)
	}
}

// testConcurrentDuplicateOfFailure sends, at once, pairs of records of one
// id, one naming a missing bill and one good: a ledger that writes a batch
// of records together must answer each by itself, so the good one is
// stored and the bad one fails, whichever comes first.
func testConcurrentDuplicateOfFailure(t *testing.T, l billing.Ledger) {
	const pairs = 32
	bill := createBill(t, l, "t", "b")
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range pairs {
		for _, bad := range []bool{i%2 == 0, i%2 == 1} { // half the pairs send the bad one first
			wg.Go(func() {
				<-start
				r := &billing.Record{ID: fmt.Sprintf("pair-%d", i), TeamID: "t", KeyID: "k", AppID: "a", BillID: bill,
					Module: "embedding", Model: "local", InputTokens: 2, Points: 0.25, Time: t0}
				if bad {
					r.BillID, r.Points = "missing", 8
				}
				err := l.Record(ctx, r)
				switch {
				case bad && !errors.Is(err, billing.ErrBillNotFound):
					t.Errorf("%s naming a missing bill: %v; want ErrBillNotFound", r.ID, err)
				case !bad && err != nil:
					t.Errorf("%s beside a failing record of its id: %v", r.ID, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if _, total := list(t, l, billing.Filter{TeamID: "t"}); total != pairs {
		t.Fatalf("List = %d; want %d", total, pairs)
	}
	if kp := keyPoints(t, l); kp["k"] != pairs*0.25 {
		t.Fatalf("key points = %v; want %v", kp["k"], pairs*0.25)
	}
	if b, _ := l.Bill(ctx, bill); b.TotalTokens != 2*pairs || b.TotalPoints != pairs*0.25 {
		t.Fatalf("bill = %+v", b)
	}
}

// testConcurrentRefused sends, among good records, records a backend may
// refuse where the others pass no check of their own (an id longer than
// an index takes, a NUL in a text): a ledger that writes records together
// must not let them sink the others. Each is stored or fails, as the
// backend can; stored, it counts once, failed, not at all.
func testConcurrentRefused(t *testing.T, l billing.Ledger) {
	const writers, each = 8, 16
	var (
		wg     sync.WaitGroup
		good   atomic.Int64
		odd    atomic.Int64 // odd records stored
		oddPts = 4.0
	)
	start := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				r := &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "AI Chat", Model: "m", InputTokens: 1, Points: 0.25}
				isOdd := true
				switch (g + i) % 4 {
				case 1:
					r.ID = fmt.Sprintf("%d-%d-%s", g, i, strings.Repeat("x", 64<<10))
				case 3:
					r.Model = "m\x00m"
				default:
					isOdd = false
				}
				if isOdd {
					r.Points = oddPts
				}
				err := l.Record(ctx, r)
				switch {
				case !isOdd && err != nil:
					t.Errorf("a good record failed beside ones the backend may refuse: %v", err)
				case !isOdd:
					good.Add(1)
				case err == nil:
					odd.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if n := good.Load(); n != writers*each/2 {
		t.Fatalf("%d good records acknowledged; want %d", n, writers*each/2)
	}
	n, o := int(good.Load()), int(odd.Load())
	if _, total := list(t, l, billing.Filter{TeamID: "t"}); total != n+o {
		t.Fatalf("List = %d; want %d good and %d others acknowledged", total, n, o)
	}
	want := float64(n)*0.25 + float64(o)*oddPts
	if kp := keyPoints(t, l); kp["k"] != want {
		t.Fatalf("key points = %v; want %v", kp["k"], want)
	}
	if p := appPoints(t, l, "t", "a"); p != want {
		t.Fatalf("app points = %v; want %v", p, want)
	}
}

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
