package dataset

import (
	"context"
	"errors"
	"time"

	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/queue"
)

// Usage modules.
const (
	ModuleEmbedding = "embedding" // training: embedding pushed data
	ModuleQA        = "qa"        // training: the QA model writing pairs
	ModuleSearch    = "search"    // embedding a search query
	ModuleRerank    = "rerank"    // a rerank model reordering a search's candidates
	// ModuleQueryExtension is the chat model rewriting a search query.
	ModuleQueryExtension = "queryExtension"
)

// UsageRecorder receives the tokens spent on training and search. The
// billing package provides one; dataset only declares what it needs. A
// record given again under an ID the recorder already has must not be
// counted again, and must not be an error.
type UsageRecorder interface {
	RecordDatasetUsage(ctx context.Context, u UsageRecord) error
}

// UsageRecord is the usage of one piece of dataset work.
type UsageRecord struct {
	// ID identifies the record. Training usage is delivered from a durable
	// outbox and may be delivered again after a crash: a recorder that
	// stores it under this id (the billing ledger does) counts it once.
	ID           string `json:"id"`
	TeamID       string
	KeyID        string
	DatasetID    string
	CollectionID string
	BillID       string // pushData's billId; empty for none
	Module       string
	Model        string
	InputTokens  int
	OutputTokens int
	Items        int // data items the work covered
	Time         time.Time
}

// UsageRecorderFunc adapts a function to a UsageRecorder.
type UsageRecorderFunc func(ctx context.Context, u UsageRecord) error

// RecordDatasetUsage calls f.
func (f UsageRecorderFunc) RecordDatasetUsage(ctx context.Context, u UsageRecord) error {
	return f(ctx, u)
}

// usageBatch is how many outbox records the usage runner delivers at once.
const usageBatch = 256

// usageJob is an outbox record as a queue.Job.
type usageJob struct{ UsageRecord }

func (j usageJob) JobID() string  { return j.ID }
func (usageJob) JobAttempts() int { return 0 }

// usageQueue is the usage outbox as the usage runner's queue.Store: the
// records a commit put there, which Complete clears once the
// UsageRecorder has them. A record the recorder refused keeps no attempt
// count: it is delivered again at the next poll, for as long as it takes,
// and never dropped.
type usageQueue struct{ outbox UsageOutbox }

// Claim returns up to n records, oldest first, leaving out those skip
// reports (a batch in flight). It reads past them, so that a long outbox
// drains batch after batch without waiting for a poll.
func (q usageQueue) Claim(ctx context.Context, _ time.Time, n int, skip func(string) bool) ([]usageJob, error) {
	if n <= 0 {
		return nil, nil
	}
	for limit := n; ; limit *= 2 {
		recs, err := q.outbox.PendingUsage(ctx, limit)
		if err != nil {
			return nil, err
		}
		var out []usageJob
		for _, u := range recs {
			if !skip(u.ID) {
				out = append(out, usageJob{u})
			}
			if len(out) == n {
				return out, nil
			}
		}
		if len(recs) < limit {
			return out, nil
		}
	}
}

// Reschedule does nothing: the outbox keeps no attempts.
func (usageQueue) Reschedule(context.Context, string, queue.Attempt) error { return nil }

// Complete implements queue.Completer: delivered records leave the outbox.
func (q usageQueue) Complete(ctx context.Context, ids []string) error {
	return q.outbox.ClearUsage(ctx, ids)
}

// deliverUsage is the usage runner's handler: it hands each record to the
// UsageRecorder (none discards them), which counts a record it already has
// once, so a record delivered again after a crash is not billed twice.
func (s *Service) deliverUsage(ctx context.Context, batch []usageJob) []error {
	if s.opts.Usage == nil {
		return nil
	}
	errs := make([]error, len(batch))
	for i, j := range batch {
		errs[i] = panics.Catch(func() error { return s.opts.Usage.RecordDatasetUsage(ctx, j.UsageRecord) })
		if errors.As(errs[i], new(*panics.Error)) {
			s.panicked("usage", errs[i])
		}
	}
	return errs
}
