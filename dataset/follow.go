package dataset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatgate/chatgate/internal/panics"
)

// feedPage is how many changes the follower reads at once.
const feedPage = 1024

// follower keeps a Service's vector and full-text indexes in step with a
// ChangeFeed store: it loads them from a snapshot at start, then applies
// every change, made through this process or another, as the feed
// delivers it.
//
// The Service applies its own changes to its indexes at once too, under
// indexMu (a trainer holds it shared from before its commit until its
// index is updated, a deletion alone). The follower reads a page without
// it and applies the page holding it alone, so a change of this process
// is applied before any page read after its commit, and a page read
// before a local change (whose item it may show as it was) is followed by
// the page holding that change's own row, which puts the item right.
type follower struct {
	s    *Service
	feed ChangeFeed
	wake chan struct{}

	cursor ChangeCursor
	sets   map[string]bool // datasets the vector index holds, for a reload

	cancel context.CancelFunc
	ended  [2]chan struct{} // closed as the listener and the follower end
}

// startFollower loads the Service's indexes from feed's snapshot and
// starts following the feed.
func (s *Service) startFollower(ctx context.Context, feed ChangeFeed) (*follower, error) {
	f := &follower{s: s, feed: feed, wake: make(chan struct{}, 1), sets: map[string]bool{}}
	if err := f.load(ctx); err != nil {
		return nil, err
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel, f.ended = cancel, [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	go func() {
		defer close(f.ended[0])
		f.catch("feed", func() error { return feed.ListenChanges(run, f.wake) })
	}()
	go func() {
		defer close(f.ended[1])
		f.catch("feed", func() error { f.follow(run); return nil })
	}()
	return f, nil
}

// catch runs fn, recovering a panic: a broken listener leaves the follower
// to the periodic reads, a broken follower is logged and reported.
func (f *follower) catch(component string, fn func() error) {
	err := panics.Catch(fn)
	if errors.As(err, new(*panics.Error)) {
		f.s.panicked(component, err)
	}
}

// poke wakes the follower, after a change of this process: the feed then
// has it to read, and the full-text index waits for it.
func (f *follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// stop ends the follower and its listener, waiting for them or ctx.
func (f *follower) stop(ctx context.Context) error {
	f.cancel()
	for _, ended := range f.ended {
		select {
		case <-ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// load fills the indexes from a snapshot of the store and keeps the
// cursor to follow from. The vectors go to the index per dataset, in
// batches, as loadVectors does.
func (f *follower) load(ctx context.Context) error {
	s := f.s
	var (
		batch   []Vector
		batchDS string
		docs    []TextDoc
	)
	flush := func() error {
		err := s.vectors.Upsert(ctx, batchDS, batch)
		batch = batch[:0]
		if err == nil {
			err = s.text.Index(ctx, docs)
			docs = docs[:0]
		}
		return err
	}
	cursor, err := f.feed.SnapshotChanges(ctx, func(c Change) error {
		if c.DatasetID != batchDS || len(batch) >= 1024 {
			if err := flush(); err != nil {
				return err
			}
			batchDS = c.DatasetID
		}
		f.sets[c.DatasetID] = true
		batch = append(batch, c.Vectors...)
		docs = append(docs, textDoc(c.Data))
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("dataset: loading the indexes: %w", err)
	}
	f.cursor = cursor
	return nil
}

// follow reads the feed until ctx ends: at each wake-up (a notification or
// a change of this process), every PollEvery in case one was lost, and,
// while the feed holds changes back behind an open transaction, again
// after a delay that doubles from a millisecond up to PollEvery.
func (f *follower) follow(ctx context.Context) {
	poll := time.NewTicker(f.s.opts.PollEvery)
	defer poll.Stop()
	held := time.Millisecond
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		retry.Stop()
		if f.catchUp(ctx) {
			retry.Reset(held)
			held = min(2*held, f.s.opts.PollEvery)
		} else {
			held = time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-poll.C:
		case <-retry.C:
		}
	}
}

// catchUp applies the feed's pages until one is short, and reports
// whether changes are held back (or a read failed) and it should look
// again soon.
func (f *follower) catchUp(ctx context.Context) bool {
	for ctx.Err() == nil {
		page, err := f.feed.Changes(ctx, f.cursor, feedPage)
		if err == nil && page.Reset {
			f.s.log.Warn("dataset: the change feed lost changes this process had not read; loading the indexes again")
			if err = f.reload(ctx); err == nil {
				continue
			}
		} else if err == nil {
			err = f.apply(ctx, page.Changes)
		}
		if err != nil {
			if ctx.Err() == nil {
				f.s.log.Error("dataset: following the change feed", "err", err)
			}
			return false // the next poll tries again
		}
		f.cursor = page.Next
		if len(page.Changes) < feedPage {
			return page.Held
		}
	}
	return false
}

// apply brings the indexes up to date with a page of changes, each
// replacing what they hold of its item by the item as the page has it.
func (f *follower) apply(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	s := f.s
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	docs := map[string]TextDoc{}
	var ids []string
	for _, c := range changes {
		if c.DataID == "" {
			delete(f.sets, c.DatasetID)
			if err := s.vectors.DeleteDataset(ctx, c.DatasetID); err != nil {
				return err
			}
			continue
		}
		if err := s.vectors.Delete(ctx, c.DatasetID, c.Removed); err != nil {
			return err
		}
		if _, seen := docs[c.DataID]; !seen {
			ids = append(ids, c.DataID)
		}
		if c.Data == nil {
			docs[c.DataID] = TextDoc{} // gone
			continue
		}
		f.sets[c.DatasetID] = true
		if err := s.vectors.Upsert(ctx, c.DatasetID, c.Vectors); err != nil {
			return err
		}
		docs[c.DataID] = textDoc(c.Data)
	}
	poisoned, err := s.applyTextSafely(ctx, ids, func(ids []string) error {
		var (
			put  []TextDoc
			gone []string
		)
		for _, id := range ids {
			if d := docs[id]; d.ID == "" {
				gone = append(gone, id)
			} else {
				put = append(put, d)
			}
		}
		return s.putText(ctx, put, gone)
	})
	if len(poisoned) > 0 {
		s.log.Error("dataset: left data out of the full-text index after a panic", "data", poisoned)
	}
	return err
}

// reload loads the indexes again after the feed lost changes: every
// dataset's vectors are dropped and loaded anew; the full-text index is
// emptied when it is the Service's own, else brought up to date (a
// document of data deleted meanwhile stays in it, and searches skip it).
func (f *follower) reload(ctx context.Context) error {
	s := f.s
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	for ds := range f.sets {
		if err := s.vectors.DeleteDataset(ctx, ds); err != nil {
			return err
		}
		delete(f.sets, ds)
	}
	if m, ok := s.text.(*memText); ok {
		m.reset()
	}
	return f.load(ctx)
}
