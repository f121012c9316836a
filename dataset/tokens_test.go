package dataset_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
)

// leavingClient is the real counter, with a client that leaves the moment
// its request's text starts being counted: once armed, the next count
// cancels the request's context first.
type leavingClient struct {
	cl100k.Counter
	armed  atomic.Pointer[context.CancelFunc]
	counts atomic.Int32 // counts that went on after the context ended
}

func (c *leavingClient) CountContext(ctx context.Context, text string) (int, error) {
	if cancel := c.armed.Swap(nil); cancel != nil {
		(*cancel)()
	}
	n, err := c.Counter.CountContext(ctx, text)
	if err == nil && ctx.Err() != nil {
		c.counts.Add(1)
	}
	return n, err
}

// request returns a context that ends when the counter next counts.
func (c *leavingClient) request(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.armed.Store(&cancel)
	return ctx
}

// The counting a request drives (push's limits, update's, the splitting
// of a text collection, a search's usage) stops with the request: each
// returns the context's error and changes nothing.
func TestCountingStopsWithTheRequest(t *testing.T) {
	counter := &leavingClient{}
	s := newService(t, dataset.Options{Tokens: counter})
	ctx := context.Background()
	ds, err := s.CreateDataset(ctx, "team", "kb", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateCollection(ctx, "team", ds.ID, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID,
		Data: []dataset.PushItem{{Q: "what is chatgate", A: "a gateway"}}}); err != nil || res.InsertLen != 1 {
		t.Fatalf("push: %+v, %v", res, err)
	}
	waitTrained(t, s, "team", c.ID)
	list, _, err := s.DataList(ctx, "team", c.ID, 0, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("data: %v, %v", list, err)
	}
	item := list[0]
	word := strings.Repeat("chatgate", 16<<10)

	_, err = s.Push(counter.request(t), dataset.PushRequest{TeamID: "team", CollectionID: c.ID,
		Data: []dataset.PushItem{{Q: word}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("push of a long word after the client left: %v", err)
	}
	if d, err := s.Collection(ctx, "team", c.ID); err != nil || d.TrainingAmount != 0 || d.DataAmount != 1 {
		t.Fatalf("after the refused push: %+v, %v", d, err)
	}

	_, err = s.UpdateData(counter.request(t), "team", dataset.DataUpdate{ID: item.ID, Q: &word})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("update to a long word after the client left: %v", err)
	}
	if d, err := s.Data(ctx, "team", item.ID); err != nil || d.Q != item.Q {
		t.Fatalf("after the refused update: %+v, %v", d, err)
	}

	_, _, err = s.CreateTextCollection(counter.request(t), dataset.TextCollection{TeamID: "team", DatasetID: ds.ID,
		Name: "long", Text: word})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("text collection after the client left: %v", err)
	}
	if cs, err := s.Collections(ctx, "team", ds.ID); err != nil || len(cs) != 1 {
		t.Fatalf("collections after the refused text: %d, %v", len(cs), err)
	}

	_, err = s.Search(counter.request(t), dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: word})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("search after the client left: %v", err)
	}
	if n := counter.counts.Load(); n != 0 {
		t.Fatalf("%d counts went on after their request ended", n)
	}
}
