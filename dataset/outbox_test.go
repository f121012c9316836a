package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/fulltext"
)

// flakyUsage refuses records while down, and counts each record id it took.
type flakyUsage struct {
	mu    sync.Mutex
	down  bool
	calls int
	took  map[string]dataset.UsageRecord
	times map[string]int // deliveries of each id, refused ones included
}

func newFlakyUsage() *flakyUsage {
	return &flakyUsage{took: map[string]dataset.UsageRecord{}, times: map[string]int{}}
}

func (f *flakyUsage) RecordDatasetUsage(_ context.Context, u dataset.UsageRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.times[u.ID]++
	if f.down {
		return errors.New("ledger unreachable")
	}
	f.took[u.ID] = u // a second delivery of an id is the same record
	return nil
}

func (f *flakyUsage) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakyUsage) tokens() (n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.took {
		n += u.InputTokens
	}
	return n
}

func (f *flakyUsage) calledSince(n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls > n
}

// Training usage the recorder refused waits in the store's outbox, and is
// delivered once the recorder is back, or by the next Service on the same
// store; each record id arrives once it is taken, and none is lost.
func TestUsageOutboxRedelivers(t *testing.T) {
	ctx := context.Background()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "kb.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	usage := newFlakyUsage()
	usage.setDown(true)
	s1, err := dataset.New(ctx, dataset.Options{Store: st, Usage: usage, Tokens: runeCounter{},
		RetryBase: time.Millisecond, PollEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, c := setup(t, s1, "team")
	want := 0
	var items []dataset.PushItem
	for i := range 10 {
		q := fmt.Sprintf("question number %d", i)
		items = append(items, dataset.PushItem{Q: q})
		want += len([]rune(q))
	}
	push(t, s1, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, BillID: "bill", Data: items})
	waitFor(t, "training", func() bool {
		d, err := s1.Collection(ctx, "team", c.ID)
		return err == nil && d.DataAmount == 10 && d.TrainingAmount == 0
	})
	pending, err := st.PendingUsage(ctx, 100)
	if err != nil || len(pending) == 0 {
		t.Fatalf("with the recorder down, the outbox holds %v, %v", pending, err)
	}
	sum := 0
	for _, u := range pending {
		if u.ID == "" || u.BillID != "bill" || u.Module != dataset.ModuleEmbedding || u.Time.IsZero() {
			t.Fatalf("outbox record %+v", u)
		}
		sum += u.InputTokens
	}
	if sum != want {
		t.Fatalf("outbox holds %d tokens; want %d", sum, want)
	}
	// the first service keeps trying while it runs
	usage.mu.Lock()
	calls := usage.calls
	usage.mu.Unlock()
	waitFor(t, "another delivery attempt", func() bool { return usage.calledSince(calls) })
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// a new service on the same store delivers what is left
	usage.setDown(false)
	s2 := newService(t, dataset.Options{Store: st, Usage: usage})
	waitFor(t, "the outbox to drain", func() bool {
		p, err := st.PendingUsage(ctx, 100)
		return err == nil && len(p) == 0
	})
	if got := usage.tokens(); got != want {
		t.Fatalf("recorder took %d tokens; want %d", got, want)
	}
	_ = s2
}

// panickyText is a full-text index that panics on documents holding
// "poison", as a buggy analyzer might.
type panickyText struct {
	dataset.TextIndex
	mu      sync.Mutex
	indexed map[string]bool
}

func (p *panickyText) Index(ctx context.Context, docs []dataset.TextDoc) error {
	for _, d := range docs {
		if strings.Contains(d.Text, "poison") {
			panic("analyzer exploded")
		}
	}
	// counted once the index has them, so that a search after the count
	// finds them
	if err := p.TextIndex.Index(ctx, docs); err != nil {
		return err
	}
	p.mu.Lock()
	for _, d := range docs {
		p.indexed[d.ID] = true
	}
	p.mu.Unlock()
	return nil
}

// A document that makes the full-text index panic is left out of it; the
// others are indexed, the panic is reported, and the sync goes on with
// what comes later.
func TestFullTextPanicLeavesOutOneDocument(t *testing.T) {
	ctx := context.Background()
	bleve, err := fulltext.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bleve.Close() })
	text := &panickyText{TextIndex: bleve, indexed: map[string]bool{}}
	var (
		mu     sync.Mutex
		panics []string
	)
	s := newService(t, dataset.Options{Text: text, OnPanic: func(c string) {
		mu.Lock()
		panics = append(panics, c)
		mu.Unlock()
	}})
	ds, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{
		{Q: "apple pie recipe"}, {Q: "poison ivy rash"}, {Q: "banana bread recipe"}}})
	waitFor(t, "the two good documents in the full-text index", func() bool {
		text.mu.Lock()
		defer text.mu.Unlock()
		return len(text.indexed) == 2
	})
	mu.Lock()
	got := append([]string(nil), panics...)
	mu.Unlock()
	if len(got) == 0 || got[0] != "fulltext" {
		t.Fatalf("OnPanic calls %v; want fulltext", got)
	}
	res, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "recipe", Mode: dataset.SearchFullText})
	if err != nil || len(res.Hits) != 2 {
		t.Fatalf("full-text search: %+v, %v", res, err)
	}
	// the poisoned item is still data, found by its vector
	res, err = s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "poison ivy rash"})
	if err != nil || len(res.Hits) == 0 || res.Hits[0].Q != "poison ivy rash" {
		t.Fatalf("embedding search: %+v, %v", res, err)
	}
	// later changes still reach the index
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: "cherry tart recipe"}}})
	waitFor(t, "a later document in the full-text index", func() bool {
		text.mu.Lock()
		defer text.mu.Unlock()
		return len(text.indexed) == 3
	})
}

// An item the collection no longer counts as training is found by search
// at once: the vector index is written before the store says trained.
func TestTrainedIsSearchable(t *testing.T) {
	ctx := context.Background()
	s := newService(t, dataset.Options{PollEvery: time.Millisecond})
	ds, c := setup(t, s, "team")
	for i := range 200 {
		q := fmt.Sprintf("question %d about the refund window", i)
		push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: q, A: "30 days"}}})
		for {
			d, err := s.Collection(ctx, "team", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.TrainingAmount == 0 {
				break
			}
		}
		// the local embedder may hash two numbers alike: the item must be
		// among the best, not necessarily first
		res, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: q, MaxResults: dataset.MaxSearchResults})
		if err != nil || !slices.ContainsFunc(res.Hits, func(h dataset.SearchHit) bool { return h.Q == q }) {
			t.Fatalf("item %d: trained by the collection's count, but search does not find it: %v", i, err)
		}
	}
}
