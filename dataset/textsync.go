package dataset

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/queue"
)

// textBatch is how many data items the full-text runner applies at once.
const textBatch = 512

// textJob is a data item whose full-text entry must be brought up to date:
// an entry of the store's TextOutbox, at its version, or, with reindex,
// an item to index again because the index was lost.
type textJob struct {
	Pending
	reindex bool
}

func (j textJob) JobID() string  { return j.DataID }
func (textJob) JobAttempts() int { return 0 }

// textQueue is the full-text runner's queue.Store and its handler. Its
// jobs are first the data to index again (when a Service starts on an
// empty index but a store that holds data), then the store's outbox. It
// keeps no attempts: what failed is read again at the next poll, until the
// index takes it. Work clears what it applied itself, with the versions it
// read, so that an entry that changed again meanwhile stays pending.
type textQueue struct {
	s      *Service
	outbox TextOutbox

	mu      sync.Mutex
	reindex []string // taken by Claim, given back by a failed batch
}

// Claim returns up to n jobs: data to index again while there is any,
// else the outbox's pending entries, leaving out those skip reports (a
// batch in flight) and reading past them.
func (q *textQueue) Claim(ctx context.Context, _ time.Time, n int, skip func(string) bool) ([]textJob, error) {
	if n <= 0 {
		return nil, nil
	}
	q.mu.Lock()
	jobs := make([]textJob, 0, min(n, len(q.reindex)))
	for _, id := range q.reindex[:cap(jobs)] {
		jobs = append(jobs, textJob{Pending: Pending{DataID: id}, reindex: true})
	}
	q.reindex = q.reindex[len(jobs):]
	q.mu.Unlock()
	if len(jobs) > 0 {
		return jobs, nil
	}
	for limit := n; ; limit *= 2 {
		pend, err := q.outbox.TextPending(ctx, limit)
		if err != nil {
			return nil, err
		}
		jobs = jobs[:0]
		for _, p := range pend {
			if !skip(p.DataID) {
				jobs = append(jobs, textJob{Pending: p})
			}
			if len(jobs) == n {
				return jobs, nil
			}
		}
		if len(pend) < limit {
			return jobs, nil
		}
	}
}

// Reschedule does nothing: a failed entry is still pending, and read again.
func (*textQueue) Reschedule(context.Context, string, queue.Attempt) error { return nil }

// giveBack returns the reindex jobs of a failed batch, to be claimed again.
func (q *textQueue) giveBack(batch []textJob) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range batch {
		if j.reindex {
			q.reindex = append(q.reindex, j.DataID)
		}
	}
}

// Work indexes or removes each item of a batch as the store has it now,
// then clears the batch's outbox entries, so a crash in between only
// repeats work.
func (q *textQueue) Work(ctx context.Context, batch []textJob) []error {
	s := q.s
	ids := make([]string, len(batch))
	var done []Pending
	for i, j := range batch {
		ids[i] = j.DataID
		if !j.reindex {
			done = append(done, j.Pending)
		}
	}
	poisoned, err := s.applyTextSafely(ctx, ids, func(ids []string) error { return s.applyText(ctx, ids) })
	if err != nil {
		q.giveBack(batch)
	}
	if err == nil && len(poisoned) > 0 {
		s.log.Error("dataset: left data out of the full-text index after a panic", "data", poisoned)
	}
	if err == nil {
		err = q.outbox.ClearTextPending(ctx, done)
	}
	if err == nil {
		return nil
	}
	errs := make([]error, len(batch))
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// applyTextSafely applies ids to the full-text index with apply. When that
// panics, it applies them one at a time, and leaves out (and returns)
// those that panic alone: one poisoned item must not stop the index for
// good, nor, still pending after a restart, take the process down.
func (s *Service) applyTextSafely(ctx context.Context, ids []string, apply func(ids []string) error) (poisoned map[string]bool, err error) {
	err = panics.Catch(func() error { return apply(ids) })
	if !errors.As(err, new(*panics.Error)) {
		return nil, err
	}
	s.panicked("fulltext", err)
	poisoned = map[string]bool{}
	for _, id := range ids {
		err := panics.Catch(func() error { return apply([]string{id}) })
		if errors.As(err, new(*panics.Error)) {
			s.panicked("fulltext", err)
			poisoned[id] = true
			continue
		}
		if err != nil {
			return poisoned, err
		}
	}
	return poisoned, nil
}

// applyText brings the full-text entries of ids up to date with the store.
func (s *Service) applyText(ctx context.Context, ids []string) error {
	var (
		docs []TextDoc
		gone []string
	)
	for _, id := range ids {
		d, err := s.store.Data(ctx, id)
		switch {
		case errors.Is(err, ErrDataNotFound):
			gone = append(gone, id)
		case err != nil:
			return err
		default:
			docs = append(docs, textDoc(d))
		}
	}
	return s.putText(ctx, docs, gone)
}

// putText removes the entries of gone and writes docs.
func (s *Service) putText(ctx context.Context, docs []TextDoc, gone []string) error {
	if err := s.text.Delete(ctx, gone); err != nil {
		return err
	}
	return s.text.Index(ctx, docs)
}

// textDoc is what the full-text index holds of d.
func textDoc(d *Data) TextDoc {
	return TextDoc{ID: d.ID, DatasetID: d.DatasetID, Text: strings.Join(append([]string{d.Q, d.A}, d.Indexes...), "\n")}
}
