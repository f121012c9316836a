// Package shareauthtest checks that a shareauth.Store behaves as its
// interfaces document. Every implementation runs it, as net.Conn
// implementations run golang.org/x/net/nettest:
//
//	func TestStore(t *testing.T) {
//		shareauthtest.TestStore(t, func(t *testing.T) shareauth.Store { return shareauth.NewMemoryStore() })
//	}
//
// The links: a round trip keeps every field, the secret included; a
// missing link is ErrLinkNotFound; Links selects a team's, of one app when
// asked, oldest first; DeleteLink takes the link's undelivered callbacks
// with it; AddUsage adds points and never moves the last use back; what a
// store returns, and what it was given, are copies. The outbox: the
// queue's verbs, by queuetest; Pending and Deliveries see a link's
// callbacks, failed ones included. On a store that is a LinkLister and a
// DeliveryLister, they list every team's links and every callback.
//
// Times in the suite are whole milliseconds in UTC, and compared with
// Equal, so that a database keeping microseconds or another zone passes.
package shareauthtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/queue/queuetest"
	"github.com/chatgate/chatgate/shareauth"
)

// TestStore runs the suite on a store that one process holds, as
// BoltStore's file is: its Claim need not keep claimed callbacks from
// other claims, since the Runner keeps its own apart. open returns a
// fresh, empty store each call and registers any cleanup with t.Cleanup.
func TestStore(t *testing.T, open func(t *testing.T) shareauth.Store) {
	run(t, open, false)
}

// TestSharedStore runs the suite on a store that several processes share:
// its Claim must also keep the callbacks it returned from every other
// Claim until they are rescheduled or completed (queuetest's Exclusive).
func TestSharedStore(t *testing.T, open func(t *testing.T) shareauth.Store) {
	run(t, open, true)
}

// storeTests are the suite's cases, each on a fresh store.
var storeTests = []struct {
	name string
	fn   func(t *testing.T, s shareauth.Store)
}{
	{"LinkRoundTrip", testLinkRoundTrip}, {"LinkNotFound", testLinkNotFound},
	{"PutLinkReplaces", testPutLinkReplaces}, {"LinksByTeamAndApp", testLinks},
	{"LinksAreCopies", testLinkCopies}, {"DeleteLink", testDeleteLink},
	{"DeleteLinkDropsItsCallbacks", testDeleteLinkDropsCallbacks}, {"AddUsage", testAddUsage},
	{"DeliveryRoundTrip", testDeliveryRoundTrip}, {"DeliveriesAreCopies", testDeliveryCopies},
	{"PendingAndDeliveries", testPending}, {"Listers", testListers},
}

func run(t *testing.T, open func(t *testing.T) shareauth.Store, exclusive bool) {
	for _, st := range storeTests {
		t.Run(st.name, func(t *testing.T) { st.fn(t, open(t)) })
	}
	t.Run("Outbox", func(t *testing.T) {
		queuetest.TestStore(t, func(t *testing.T) queuetest.Harness[*shareauth.Delivery] {
			return harness(t, open(t), exclusive)
		})
	})
}

var ctx = context.Background()

// t0 is a fixed time; the suite's times are t0 plus whole milliseconds.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// harnessLink is the link the queue suite's callbacks belong to.
const harnessLink = "queuetest-link"

// harness adapts s to queuetest: jobs are callbacks of one link, read
// back through Deliveries.
func harness(t *testing.T, s shareauth.Store, exclusive bool) queuetest.Harness[*shareauth.Delivery] {
	putLink(t, s, link(harnessLink, "team-q", "app-q", t0))
	return queuetest.Harness[*shareauth.Delivery]{
		Store: s,
		Add: func(ctx context.Context, id string, next time.Time) error {
			return s.Enqueue(ctx, delivery(id, harnessLink, next))
		},
		State: func(ctx context.Context, id string) (queue.Attempt, bool, error) {
			ds, err := s.Deliveries(ctx, harnessLink)
			if err != nil {
				return queue.Attempt{}, false, err
			}
			for _, d := range ds {
				if d.ID == id {
					return queue.Attempt{Attempts: d.Attempts, Next: d.NextAttempt, Failed: d.Failed, Err: d.LastError}, true, nil
				}
			}
			return queue.Attempt{}, false, nil
		},
		Exclusive: exclusive,
	}
}

// link is a link with every field set.
func link(id, team, app string, created time.Time) *shareauth.Link {
	return &shareauth.Link{ID: id, TeamID: team, AppID: app, Name: "link " + id,
		Limit:          shareauth.Limit{ExpiredTime: t0.Add(24 * time.Hour), QPM: 5, MaxUsagePoints: 10, HookURL: "https://auth.example.com/base"},
		ResponseDetail: true, Secret: "cgs_secret_" + id, UsagePoints: 1.25, LastUsedTime: t0.Add(time.Minute), CreateTime: created,
		Display: shareauth.Display{ShowNodeStatus: true, ShowCompleteQuote: true, ShowRawSource: true,
			ImmediateResponse: "one moment…", DefaultResponse: "try again later"}}
}

// delivery is a callback of link shareID due at next.
func delivery(id, shareID string, next time.Time) *shareauth.Delivery {
	return &shareauth.Delivery{ID: id, ShareID: shareID, Path: "/shareAuth/finish",
		Body: []byte(`{"token":"t-` + id + `","responseData":[]}`), NextAttempt: next, CreateTime: next}
}

// must fails the test when err is not nil; what names the call.
func must(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf(what+": %v", append(args, err)...)
	}
}

func putLink(t *testing.T, s shareauth.Store, l *shareauth.Link) {
	t.Helper()
	must(t, s.PutLink(ctx, l), "PutLink(%s)", l.ID)
}

func enqueue(t *testing.T, s shareauth.Store, d *shareauth.Delivery) {
	t.Helper()
	must(t, s.Enqueue(ctx, d), "Enqueue(%s)", d.ID)
}

func getLink(t *testing.T, s shareauth.Store, id string) *shareauth.Link {
	t.Helper()
	l, err := s.Link(ctx, id)
	must(t, err, "Link(%s)", id)
	return l
}

// sameLink reports whether a and b hold the same link, times compared
// with Equal.
func sameLink(a, b *shareauth.Link) bool {
	x, y := *a, *b
	for _, p := range []*shareauth.Link{&x, &y} {
		p.CreateTime, p.LastUsedTime, p.Limit.ExpiredTime = p.CreateTime.UTC(), p.LastUsedTime.UTC(), p.Limit.ExpiredTime.UTC()
	}
	return x == y
}

// sameDelivery reports whether a and b hold the same callback, times
// compared with Equal.
func sameDelivery(a, b *shareauth.Delivery) bool {
	return a.ID == b.ID && a.ShareID == b.ShareID && a.Path == b.Path && string(a.Body) == string(b.Body) &&
		a.Attempts == b.Attempts && a.NextAttempt.Equal(b.NextAttempt) && a.LastError == b.LastError &&
		a.Failed == b.Failed && a.CreateTime.Equal(b.CreateTime)
}

// ids are the ids of xs, in order.
func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func linkID(l *shareauth.Link) string         { return l.ID }
func deliveryID(d *shareauth.Delivery) string { return d.ID }

func linkIDs(t *testing.T, s shareauth.Store, team, app string) []string {
	t.Helper()
	ls, err := s.Links(ctx, team, app)
	must(t, err, "Links(%q, %q)", team, app)
	return ids(ls, linkID)
}

func deliveryIDs(t *testing.T, s shareauth.Store, shareID string) []string {
	t.Helper()
	ds, err := s.Deliveries(ctx, shareID)
	must(t, err, "Deliveries(%s)", shareID)
	return ids(ds, deliveryID)
}

func pending(t *testing.T, s shareauth.Store, shareID string) int {
	t.Helper()
	n, err := s.Pending(ctx, shareID)
	must(t, err, "Pending(%s)", shareID)
	return n
}

// claimAll returns the ids of every callback due by a day after t0.
func claimAll(t *testing.T, s shareauth.Store) []string {
	t.Helper()
	ds, err := s.Claim(ctx, t0.Add(24*time.Hour), 100, func(string) bool { return false })
	must(t, err, "Claim")
	return ids(ds, deliveryID)
}

func testLinkRoundTrip(t *testing.T, s shareauth.Store) {
	want := link("l1", "team-a", "app-1", t0)
	putLink(t, s, want)
	if got := getLink(t, s, "l1"); !sameLink(got, want) {
		t.Fatalf("Link: %+v\nwant %+v", got, want)
	}
	// the zero values of the optional fields come back zero
	bare := &shareauth.Link{ID: "l2", TeamID: "team-a", AppID: "app-1", Name: "bare", Secret: "cgs_bare", CreateTime: t0}
	putLink(t, s, bare)
	if got := getLink(t, s, "l2"); !sameLink(got, bare) || !got.LastUsedTime.IsZero() || !got.Limit.ExpiredTime.IsZero() {
		t.Fatalf("bare Link: %+v\nwant %+v", got, bare)
	}
}

func testLinkNotFound(t *testing.T, s shareauth.Store) {
	if _, err := s.Link(ctx, "nope"); !errors.Is(err, shareauth.ErrLinkNotFound) {
		t.Fatalf("Link of a missing link: %v, want ErrLinkNotFound", err)
	}
}

func testPutLinkReplaces(t *testing.T, s shareauth.Store) {
	l := link("l1", "team-a", "app-1", t0)
	putLink(t, s, l)
	l.Name, l.Limit.QPM, l.ResponseDetail = "renamed", 0, false
	l.ShowNodeStatus, l.ShowRawSource, l.DefaultResponse = false, false, ""
	putLink(t, s, l)
	if got := getLink(t, s, "l1"); !sameLink(got, l) {
		t.Fatalf("after a second PutLink: %+v\nwant %+v", got, l)
	}
	if ids := linkIDs(t, s, "team-a", ""); !slices.Equal(ids, []string{"l1"}) {
		t.Fatalf("Links after a replace: %v", ids)
	}
}

func testLinks(t *testing.T, s shareauth.Store) {
	putLink(t, s, link("a1", "team-a", "app-1", t0.Add(2*time.Millisecond)))
	putLink(t, s, link("a2", "team-a", "app-2", t0))
	putLink(t, s, link("a3", "team-a", "app-1", t0.Add(time.Millisecond)))
	putLink(t, s, link("a0", "team-a", "app-2", t0.Add(2*time.Millisecond))) // ties a1: by id
	putLink(t, s, link("b1", "team-b", "app-1", t0))
	if ids := linkIDs(t, s, "team-a", ""); !slices.Equal(ids, []string{"a2", "a3", "a0", "a1"}) {
		t.Fatalf("team-a's links: %v, want [a2 a3 a0 a1]", ids)
	}
	if ids := linkIDs(t, s, "team-a", "app-1"); !slices.Equal(ids, []string{"a3", "a1"}) {
		t.Fatalf("team-a's app-1 links: %v, want [a3 a1]", ids)
	}
	if ids := linkIDs(t, s, "team-b", ""); !slices.Equal(ids, []string{"b1"}) {
		t.Fatalf("team-b's links: %v, want [b1]", ids)
	}
	for _, q := range [][2]string{{"team-c", ""}, {"team-a", "app-9"}, {"team-b", "app-2"}} {
		if ids := linkIDs(t, s, q[0], q[1]); len(ids) != 0 {
			t.Fatalf("Links(%q, %q): %v, want none", q[0], q[1], ids)
		}
	}
	ls, err := s.Links(ctx, "team-a", "app-2")
	if err != nil || len(ls) != 2 || !sameLink(ls[0], link("a2", "team-a", "app-2", t0)) {
		t.Fatalf("Links returns the links whole: %v %v", ls, err)
	}
}

func testLinkCopies(t *testing.T, s shareauth.Store) {
	l := link("l1", "team-a", "app-1", t0)
	putLink(t, s, l)
	l.Name, l.Secret = "changed by the caller", "cgs_changed"
	got := getLink(t, s, "l1")
	if got.Name != "link l1" || got.Secret != "cgs_secret_l1" {
		t.Fatalf("PutLink kept the caller's link, not a copy: %+v", got)
	}
	got.Name, got.Limit.HookURL = "changed", ""
	ls, err := s.Links(ctx, "team-a", "")
	if err != nil || len(ls) != 1 {
		t.Fatalf("Links: %v %v", ls, err)
	}
	ls[0].Name = "changed too"
	if again := getLink(t, s, "l1"); again.Name != "link l1" || again.Limit.HookURL == "" {
		t.Fatalf("a returned link was the stored one, not a copy: %+v", again)
	}
}

func testDeleteLink(t *testing.T, s shareauth.Store) {
	putLink(t, s, link("l1", "team-a", "app-1", t0))
	putLink(t, s, link("l2", "team-a", "app-1", t0.Add(time.Millisecond)))
	if err := s.DeleteLink(ctx, "l1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Link(ctx, "l1"); !errors.Is(err, shareauth.ErrLinkNotFound) {
		t.Fatalf("Link after DeleteLink: %v, want ErrLinkNotFound", err)
	}
	if ids := linkIDs(t, s, "team-a", ""); !slices.Equal(ids, []string{"l2"}) {
		t.Fatalf("Links after DeleteLink: %v, want [l2]", ids)
	}
	if err := s.DeleteLink(ctx, "l1"); !errors.Is(err, shareauth.ErrLinkNotFound) {
		t.Fatalf("DeleteLink of a deleted link: %v, want ErrLinkNotFound", err)
	}
}

func testDeleteLinkDropsCallbacks(t *testing.T, s shareauth.Store) {
	putLink(t, s, link("a", "team-a", "app-1", t0))
	putLink(t, s, link("b", "team-a", "app-1", t0))
	enqueue(t, s, delivery("a1", "a", t0))
	enqueue(t, s, delivery("a2", "a", t0.Add(time.Millisecond)))
	enqueue(t, s, delivery("a3", "a", t0.Add(2*time.Millisecond)))
	enqueue(t, s, delivery("b1", "b", t0))
	// a failed callback goes too
	if err := s.Reschedule(ctx, "a3", queue.Attempt{Attempts: 1, Failed: true, Err: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLink(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, s, "a"); n != 0 {
		t.Fatalf("%d callbacks of a deleted link pending", n)
	}
	if ids := deliveryIDs(t, s, "a"); len(ids) != 0 {
		t.Fatalf("Deliveries of a deleted link: %v", ids)
	}
	if ids := claimAll(t, s); !slices.Equal(ids, []string{"b1"}) {
		t.Fatalf("due after DeleteLink: %v, want [b1]", ids)
	}
	if n := pending(t, s, "b"); n != 1 {
		t.Fatalf("the other link's callbacks: %d pending, want 1", n)
	}
}

func testAddUsage(t *testing.T, s shareauth.Store) {
	l := link("l1", "team-a", "app-1", t0)
	l.UsagePoints, l.LastUsedTime = 0, time.Time{}
	putLink(t, s, l)
	at := t0.Add(time.Hour)
	if err := s.AddUsage(ctx, "l1", 1.25, at); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, "l1", 0.5, t0); err != nil { // earlier: points count, the last use stays
		t.Fatal(err)
	}
	got := getLink(t, s, "l1")
	want := *l
	want.UsagePoints, want.LastUsedTime = 1.75, at
	if !sameLink(got, &want) {
		t.Fatalf("after AddUsage: %+v\nwant %+v (the other fields, the secret included, kept)", got, &want)
	}
	if err := s.AddUsage(ctx, "nope", 1, t0); !errors.Is(err, shareauth.ErrLinkNotFound) {
		t.Fatalf("AddUsage of a missing link: %v, want ErrLinkNotFound", err)
	}
}

func testDeliveryRoundTrip(t *testing.T, s shareauth.Store) {
	putLink(t, s, link("l1", "team-a", "app-1", t0))
	want := delivery("d1", "l1", t0)
	enqueue(t, s, want)
	ds, err := s.Deliveries(ctx, "l1")
	if err != nil || len(ds) != 1 || !sameDelivery(ds[0], want) {
		t.Fatalf("Deliveries: %v %v, want [%+v]", ds, err, want)
	}
	claimed, err := s.Claim(ctx, t0, 10, func(string) bool { return false })
	if err != nil || len(claimed) != 1 || !sameDelivery(claimed[0], want) {
		t.Fatalf("Claim: %v %v, want [%+v]", claimed, err, want)
	}
	next := t0.Add(3 * time.Second)
	if err := s.Reschedule(ctx, "d1", queue.Attempt{Attempts: 1, Next: next, Err: "auth host answered 500"}); err != nil {
		t.Fatal(err)
	}
	want.Attempts, want.NextAttempt, want.LastError = 1, next, "auth host answered 500"
	if ds, err := s.Deliveries(ctx, "l1"); err != nil || len(ds) != 1 || !sameDelivery(ds[0], want) {
		t.Fatalf("after Reschedule: %v %v, want [%+v] (the body and the rest kept)", ds, err, want)
	}
}

func testDeliveryCopies(t *testing.T, s shareauth.Store) {
	putLink(t, s, link("l1", "team-a", "app-1", t0))
	d := delivery("d1", "l1", t0)
	body := string(d.Body)
	enqueue(t, s, d)
	d.Body[0], d.Path = 'X', "/changed"
	ds, err := s.Deliveries(ctx, "l1")
	if err != nil || len(ds) != 1 || string(ds[0].Body) != body || ds[0].Path != "/shareAuth/finish" {
		t.Fatalf("Enqueue kept the caller's callback, not a copy: %v %v", ds, err)
	}
	ds[0].Body[0] = 'Y'
	claimed, err := s.Claim(ctx, t0, 10, func(string) bool { return false })
	if err != nil || len(claimed) != 1 || string(claimed[0].Body) != body {
		t.Fatalf("Deliveries returned the stored callback, not a copy: %v %v", claimed, err)
	}
	claimed[0].Body[0] = 'Z'
	if ds, err := s.Deliveries(ctx, "l1"); err != nil || len(ds) != 1 || string(ds[0].Body) != body {
		t.Fatalf("Claim returned the stored callback, not a copy: %v %v", ds, err)
	}
}

func testPending(t *testing.T, s shareauth.Store) {
	for _, id := range []string{"a", "b", "c"} {
		putLink(t, s, link(id, "team-a", "app-1", t0))
	}
	enqueue(t, s, delivery("a2", "a", t0.Add(time.Millisecond)))
	enqueue(t, s, delivery("a1", "a", t0.Add(time.Millisecond))) // ties a2: by id
	enqueue(t, s, delivery("a0", "a", t0.Add(2*time.Millisecond)))
	enqueue(t, s, delivery("b1", "b", t0))
	for id, want := range map[string]int{"a": 3, "b": 1, "c": 0, "unknown": 0} {
		if n := pending(t, s, id); n != want {
			t.Fatalf("Pending(%s) = %d, want %d", id, n, want)
		}
	}
	if ids := deliveryIDs(t, s, "a"); !slices.Equal(ids, []string{"a1", "a2", "a0"}) {
		t.Fatalf("Deliveries(a): %v, want [a1 a2 a0], oldest first", ids)
	}
	if err := s.Complete(ctx, []string{"a1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reschedule(ctx, "a2", queue.Attempt{Attempts: 4, Failed: true, Err: "x"}); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, s, "a"); n != 2 {
		t.Fatalf("Pending(a) after one completed and one failed: %d, want 2 (failed ones count)", n)
	}
	if ids := deliveryIDs(t, s, "a"); !slices.Equal(ids, []string{"a2", "a0"}) {
		t.Fatalf("Deliveries(a): %v, want [a2 a0], the failed one included", ids)
	}
	if ids := deliveryIDs(t, s, "c"); len(ids) != 0 {
		t.Fatalf("Deliveries(c): %v, want none", ids)
	}
}

// testListers checks LinkLister and DeliveryLister, what a copy of a
// whole store reads through, on a store that has them: every team's
// links, secrets included, and every undelivered callback, failed ones
// and those of a link since deleted included, whole and oldest first.
func testListers(t *testing.T, s shareauth.Store) {
	ll, okL := s.(shareauth.LinkLister)
	dl, okD := s.(shareauth.DeliveryLister)
	if !okL || !okD {
		t.Skip("the store is no LinkLister and DeliveryLister")
	}
	links := []*shareauth.Link{
		link("b1", "team-b", "app-1", t0.Add(time.Millisecond)),
		link("a1", "team-a", "app-1", t0.Add(2*time.Millisecond)),
		link("a0", "team-a", "app-2", t0.Add(time.Millisecond)), // ties b1: by id
		link("c1", "team-c", "app-3", t0),
	}
	for _, l := range links {
		putLink(t, s, l)
	}
	got, err := ll.AllLinks(ctx)
	must(t, err, "AllLinks")
	want := []*shareauth.Link{links[3], links[2], links[0], links[1]}
	if !slices.EqualFunc(got, want, sameLink) {
		t.Fatalf("AllLinks = %v\nwant %v", ids(got, linkID), ids(want, linkID))
	}

	ds := []*shareauth.Delivery{
		delivery("d2", "a1", t0.Add(2*time.Millisecond)),
		delivery("d1", "b1", t0.Add(time.Millisecond)),
		delivery("d0", "c1", t0.Add(2*time.Millisecond)),
		delivery("d3", "a0", t0.Add(3*time.Millisecond)),
	}
	for _, d := range ds {
		enqueue(t, s, d)
	}
	failed := queue.Attempt{Attempts: 3, Next: t0.Add(time.Hour), Failed: true, Err: "auth host answered 500"}
	must(t, s.Reschedule(ctx, "d3", failed), "Reschedule(d3)")
	if ds3, err := s.Deliveries(ctx, "a0"); err != nil || len(ds3) != 1 || !ds3[0].Failed {
		t.Fatalf("Deliveries(a0) after a failing Reschedule: %v %v", ds3, err)
	} else {
		ds[3] = ds3[0]
	}
	// a callback queued for a link that is gone is still to be delivered
	orphan := delivery("d4", "gone", t0.Add(4*time.Millisecond))
	enqueue(t, s, orphan)
	gotD, err := dl.AllDeliveries(ctx)
	must(t, err, "AllDeliveries")
	wantD := []*shareauth.Delivery{ds[1], ds[2], ds[0], ds[3], orphan} // d0 ties d2: by id
	if len(gotD) != len(wantD) {
		t.Fatalf("AllDeliveries = %v\nwant %v", ids(gotD, deliveryID), ids(wantD, deliveryID))
	}
	for i := range wantD {
		if !sameDelivery(gotD[i], wantD[i]) {
			t.Fatalf("AllDeliveries[%d] = %+v\nwant %+v", i, gotD[i], wantD[i])
		}
	}
}
