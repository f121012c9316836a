package dataset

import (
	"context"
	"sync"
	"testing"
)

// strictUsage refuses an ended context, as the Postgres ledger does.
type strictUsage struct {
	mu   sync.Mutex
	recs []UsageRecord
}

func (u *strictUsage) RecordDatasetUsage(ctx context.Context, r UsageRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.recs = append(u.recs, r)
	return nil
}

// Usage of work that was done is recorded even when its caller has left
// (searchTest records after the search; a training batch after the
// model answered): the tokens were spent.
func TestUsageOutlivesItsCaller(t *testing.T) {
	ctx := context.Background()
	usage := &strictUsage{}
	s, err := New(ctx, Options{Usage: usage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	gone, cancel := context.WithCancel(ctx)
	cancel()
	s.recordUsage(gone, UsageRecord{TeamID: "team", KeyID: "k", Module: ModuleSearch, Model: "m", InputTokens: 7})
	if len(usage.recs) != 1 || usage.recs[0].InputTokens != 7 {
		t.Fatalf("usage recorded after the caller left: %+v; want the one record", usage.recs)
	}
}
