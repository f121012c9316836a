package dataset

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/chatgate/chatgate/internal/panics"
)

// syncText keeps the full-text index caught up with the store: it indexes
// or removes each data item the store marked pending, and clears the mark
// only after the index has taken the change, so a crash in between only
// repeats work. reindex lists data to index first, when the index was lost.
func (s *Service) syncText(ctx context.Context, reindex []string) {
	const batch = 512
	for len(reindex) > 0 && ctx.Err() == nil {
		n := min(batch, len(reindex))
		if _, err := s.applyTextSafely(ctx, reindex[:n]); err != nil {
			s.textError(ctx, err)
			continue
		}
		reindex = reindex[n:]
	}
	for ctx.Err() == nil {
		pend, err := s.store.TextPending(ctx, batch)
		if err == nil && len(pend) > 0 {
			ids := make([]string, len(pend))
			for i, p := range pend {
				ids[i] = p.DataID
			}
			var poisoned map[string]bool
			if poisoned, err = s.applyTextSafely(ctx, ids); err == nil {
				err = s.store.ClearTextPending(ctx, pend)
				if len(poisoned) > 0 {
					s.log.Error("dataset: left data out of the full-text index after a panic", "data", poisoned)
				}
			}
			if err == nil {
				continue
			}
		}
		if err != nil {
			s.textError(ctx, err)
			continue
		}
		t := time.NewTimer(s.opts.PollEvery)
		select {
		case <-ctx.Done():
		case <-s.textWake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Service) textError(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.log.Error("dataset: updating the full-text index", "err", err)
	t := time.NewTimer(s.opts.RetryBase)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
}

// applyTextSafely applies ids to the full-text index. When that panics, it
// applies them one at a time, and leaves out (and returns) those that
// panic alone: one poisoned item must not stop the index for good, nor,
// still pending after a restart, take the process down.
func (s *Service) applyTextSafely(ctx context.Context, ids []string) (poisoned map[string]bool, err error) {
	err = panics.Catch(func() error { return s.applyText(ctx, ids) })
	if !errors.As(err, new(*panics.Error)) {
		return nil, err
	}
	s.panicked("fulltext", err)
	poisoned = map[string]bool{}
	for _, id := range ids {
		err := panics.Catch(func() error { return s.applyText(ctx, []string{id}) })
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
			docs = append(docs, TextDoc{ID: d.ID, DatasetID: d.DatasetID,
				Text: strings.Join(append([]string{d.Q, d.A}, d.Indexes...), "\n")})
		}
	}
	if err := s.text.Delete(ctx, gone); err != nil {
		return err
	}
	return s.text.Index(ctx, docs)
}
