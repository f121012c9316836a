package shareauthtest

import (
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/shareauth"
)

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
