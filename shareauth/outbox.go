package shareauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/queue"
)

// Finish queues the /shareAuth/finish callback for a finished chat. It
// returns once the callback is durable; delivery happens in the background.
func (s *Service) Finish(ctx context.Context, adm *Admission, responseData any) error {
	if adm.Link.Limit.HookURL == "" {
		return nil
	}
	body, err := json.Marshal(map[string]any{"token": adm.Token, "responseData": responseData})
	if err != nil {
		return fmt.Errorf("shareauth: finish body: %w", err)
	}
	now := time.Now().UTC()
	d := &Delivery{ID: id.New(), ShareID: adm.Link.ID, Path: "/shareAuth/finish", Body: body, NextAttempt: now, CreateTime: now}
	if err := s.store.Enqueue(ctx, d); err != nil {
		return err
	}
	s.outbox.Wake()
	return nil
}

// Pending counts a link's undelivered finish callbacks.
func (s *Service) Pending(ctx context.Context, shareID string) (int, error) {
	return s.store.Pending(ctx, shareID)
}

// startOutbox runs the finish deliveries on a queue.Runner: one at a
// time, each attempt bounded by FinishTimeout, retried forever with a
// backoff from RetryBase to RetryMax. A panic, in a delivery or in the
// store, is a failed attempt or turn reported to OnPanic as "finish": one
// poisoned callback must not stop the others, nor, replayed after a
// restart, crash the process again.
func (s *Service) startOutbox() *queue.Runner[*Delivery] {
	return queue.Start[*Delivery](s.store, queue.HandlerFunc[*Delivery](s.deliver), queue.Options{
		Name: "finish", StoreComponent: "finish", Workers: 1, BatchSize: 1,
		RetryBase: s.opts.RetryBase, RetryMax: s.opts.RetryMax, PollEvery: s.opts.PollEvery,
		Logger: s.log, OnPanic: s.opts.OnPanic})
}

// deliver makes one attempt at each delivery of batch.
func (s *Service) deliver(ctx context.Context, batch []*Delivery) []error {
	errs := make([]error, len(batch))
	for i, d := range batch {
		errs[i] = s.send(ctx, d)
	}
	return errs
}

// send makes one attempt at d; nil means it is settled: delivered, or its
// link is gone or has no auth host any more.
func (s *Service) send(ctx context.Context, d *Delivery) error {
	l, err := s.store.Link(ctx, d.ShareID)
	if errors.Is(err, ErrLinkNotFound) || (err == nil && l.Limit.HookURL == "") {
		return nil // nobody to tell any more
	}
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.FinishTimeout)
	defer cancel()
	resp, _, err := s.hooks.call(cctx, l, d.Path, json.RawMessage(d.Body))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("auth host answered %d", resp.StatusCode)
	}
	return nil
}
