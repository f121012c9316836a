package dataset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// startTraining starts a dispatcher, which takes due items from the queue,
// and the workers that train them in batches.
func (s *Service) startTraining(ctx context.Context) {
	work := make(chan []*TrainingItem)
	for range s.opts.Workers {
		s.wg.Go(func() {
			for batch := range work {
				s.train(ctx, batch)
				s.inflightMu.Lock()
				for _, it := range batch {
					delete(s.inflight, it.ID)
				}
				s.inflightMu.Unlock()
				wake(s.trainWake) // there may be more
			}
		})
	}
	s.wg.Go(func() {
		defer close(work)
		s.dispatch(ctx, work)
	})
}

func (s *Service) dispatch(ctx context.Context, work chan<- []*TrainingItem) {
	skip := func(id string) bool { return s.inflight[id] }
	for {
		s.inflightMu.Lock()
		due, err := s.store.DueTraining(ctx, s.opts.Now(), s.opts.BatchSize, skip)
		for _, it := range due {
			s.inflight[it.ID] = true
		}
		s.inflightMu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Error("dataset: reading the training queue", "err", err)
		}
		if len(due) > 0 {
			select {
			case work <- due:
				continue
			case <-ctx.Done():
				return
			}
		}
		t := time.NewTimer(s.opts.PollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.trainWake:
		case <-t.C:
		}
		t.Stop()
	}
}

// train trains a batch: QA items first get their pairs from the model, then
// everything is embedded per dataset and stored in one transaction.
func (s *Service) train(ctx context.Context, batch []*TrainingItem) {
	type group struct {
		ds    *Dataset
		items []*TrainingItem
		data  [][]*Data // per item
	}
	groups := map[string]*group{}
	var order []string
	for _, it := range batch {
		g := groups[it.DatasetID]
		if g == nil {
			ds, err := s.store.Dataset(ctx, it.DatasetID)
			if err != nil {
				s.retry(ctx, it, err)
				continue
			}
			g = &group{ds: ds}
			groups[it.DatasetID] = g
			order = append(order, it.DatasetID)
		}
		data, err := s.itemData(ctx, it)
		if err != nil {
			s.retry(ctx, it, err)
			continue
		}
		g.items = append(g.items, it)
		g.data = append(g.data, data)
	}
	for _, dsID := range order {
		g := groups[dsID]
		if len(g.items) == 0 {
			continue
		}
		emb, err := s.embedder(g.ds)
		var texts []string
		for _, data := range g.data {
			for _, d := range data {
				texts = append(texts, d.texts()...)
			}
		}
		var vecs [][]float32
		if err == nil {
			vecs, err = emb.Embed(ctx, texts)
			if err == nil && len(vecs) != len(texts) {
				err = fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(texts))
			}
		}
		if err != nil {
			for _, it := range g.items {
				s.retry(ctx, it, fmt.Errorf("embedding: %w", err))
			}
			continue
		}
		done := make([]Trained, len(g.items))
		k := 0
		for i, it := range g.items {
			done[i].ItemID = it.ID
			// a copy: Complete filters it in place, and the usage below
			// counts every text that was embedded
			done[i].Data = slices.Clone(g.data[i])
			for _, d := range g.data[i] {
				for n := range d.texts() {
					done[i].Vectors = append(done[i].Vectors, Vector{ID: vectorID(d.ID, n), Values: vecs[k]})
					k++
				}
			}
		}
		if err := s.complete(ctx, g.ds.ID, done); err != nil {
			if ctx.Err() == nil {
				s.log.Error("dataset: storing trained items", "dataset", g.ds.ID, "err", err)
			}
			continue // still queued; they are tried again
		}
		s.recordTrainingUsage(ctx, g.ds, g.items, g.data)
	}
}

// itemData turns an item into the Data it trains into; QA items ask the
// model.
func (s *Service) itemData(ctx context.Context, it *TrainingItem) ([]*Data, error) {
	now := s.opts.Now().UTC()
	base := Data{TeamID: it.TeamID, DatasetID: it.DatasetID, CollectionID: it.CollectionID,
		Source: it.Source, FileID: it.FileID, CreateTime: it.CreateTime, UpdateTime: now}
	if it.Mode != ModeQA {
		d := base
		d.ID, d.Q, d.A, d.Indexes = it.ID, it.Q, it.A, it.Indexes
		return []*Data{&d}, nil
	}
	if s.opts.QA == nil {
		return nil, permanent(ErrQAModelUnavailable)
	}
	res, err := s.opts.QA.Generate(ctx, qaPrompt(it.Prompt, it.Q))
	if err != nil {
		return nil, fmt.Errorf("QA model: %w", err)
	}
	s.recordUsage(ctx, UsageRecord{TeamID: it.TeamID, KeyID: it.KeyID, DatasetID: it.DatasetID,
		CollectionID: it.CollectionID, BillID: it.BillID, Module: ModuleQA, Model: res.Model,
		InputTokens: res.PromptTokens, OutputTokens: res.CompletionTokens, Items: 1})
	pairs := ParseQA(res.Text)
	if len(pairs) == 0 {
		return nil, permanent(errors.New("the QA model's answer held no Q/A pairs"))
	}
	out := make([]*Data, len(pairs))
	for i, p := range pairs {
		d := base
		d.ID, d.Q, d.A = fmt.Sprintf("%s-%d", it.ID, i+1), p.Q, p.A
		// pairs of one text come out in order
		d.CreateTime = it.CreateTime.Add(time.Duration(i))
		out[i] = &d
	}
	return out, nil
}

// complete stores trained items and adds their vectors to the index, under
// indexMu so that no deletion runs in between.
func (s *Service) complete(ctx context.Context, datasetID string, done []Trained) error {
	s.indexMu.RLock()
	defer s.indexMu.RUnlock()
	gone, err := s.store.Complete(ctx, done)
	if err != nil {
		return err
	}
	goneSet := make(map[string]bool, len(gone))
	for _, g := range gone {
		goneSet[g] = true
	}
	var vecs []Vector
	for _, t := range done {
		if !goneSet[t.ItemID] {
			vecs = append(vecs, t.Vectors...)
		}
	}
	wake(s.textWake)
	return s.vectors.Upsert(ctx, datasetID, vecs)
}

func (s *Service) recordTrainingUsage(ctx context.Context, ds *Dataset, items []*TrainingItem, data [][]*Data) {
	type key struct{ coll, bill, keyID string }
	type sum struct{ tokens, items int }
	sums := map[key]*sum{}
	var order []key
	for i, it := range items {
		k := key{it.CollectionID, it.BillID, it.KeyID}
		if sums[k] == nil {
			sums[k] = &sum{}
			order = append(order, k)
		}
		for _, d := range data[i] {
			sums[k].tokens += s.countAll(d.texts())
		}
		sums[k].items++
	}
	for _, k := range order {
		s.recordUsage(ctx, UsageRecord{TeamID: ds.TeamID, KeyID: k.keyID, DatasetID: ds.ID,
			CollectionID: k.coll, BillID: k.bill, Module: ModuleEmbedding, Model: ds.VectorModel,
			InputTokens: sums[k].tokens, Items: sums[k].items})
	}
}

// retry records a failed attempt: the item is tried again after a backoff,
// or, when the error is permanent or the attempts are spent, marked failed
// and kept, so the failure is seen rather than the item lost.
func (s *Service) retry(ctx context.Context, it *TrainingItem, cause error) {
	if ctx.Err() != nil {
		return // shutting down: the attempt did not happen
	}
	it.Attempts++
	it.LastError = cause.Error()
	var perm *permanentError
	if errors.As(cause, &perm) || it.Attempts >= s.opts.MaxAttempts || errors.Is(cause, ErrDatasetNotFound) {
		it.Failed = true
		s.log.Warn("dataset: training failed", "item", it.ID, "collection", it.CollectionID,
			"attempts", it.Attempts, "err", cause)
	} else {
		delay := s.opts.RetryBase << (it.Attempts - 1)
		if delay > s.opts.RetryMax || delay <= 0 {
			delay = s.opts.RetryMax
		}
		it.NextAttempt = s.opts.Now().Add(delay).UTC()
	}
	if err := s.store.Reschedule(ctx, it); err != nil && !errors.Is(err, errItemGone) {
		s.log.Error("dataset: rescheduling a training item", "item", it.ID, "err", err)
	}
}
