package dataset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/internal/panics"
)

// startTraining starts a dispatcher, which takes due items from the queue,
// and the workers that train them in batches.
func (s *Service) startTraining(ctx context.Context) {
	work := make(chan []*TrainingItem)
	for range s.opts.Workers {
		s.wg.Go(func() {
			for batch := range work {
				s.trainSafely(ctx, batch)
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

// trainSafely trains a batch. Panics of the embedder or the QA model are
// caught item by item inside train; one anywhere else (a store, a bug)
// counts as a failed attempt of every item of the batch, so that no item
// can take the process down, nor, replayed after a restart, do it again.
func (s *Service) trainSafely(ctx context.Context, batch []*TrainingItem) {
	err := panics.Catch(func() error { s.train(ctx, batch); return nil })
	if err == nil {
		return
	}
	s.panicked("training", err)
	s.usageBehind.Store(true) // the panic may have come after a commit, before its usage was delivered
	for _, it := range batch {
		if rerr := panics.Catch(func() error { s.retry(ctx, it, err); return nil }); rerr != nil {
			s.panicked("training", rerr) // the item stays queued as it was
		}
	}
}

// panicked logs a recovered panic with its stack and reports it.
func (s *Service) panicked(component string, err error) {
	var pe *panics.Error
	if errors.As(err, &pe) {
		s.log.Error("dataset: recovered a panic", "component", component, "panic", pe.Value, "stack", string(pe.Stack))
	}
	if s.opts.OnPanic != nil {
		s.opts.OnPanic(component)
	}
}

func (s *Service) dispatch(ctx context.Context, work chan<- []*TrainingItem) {
	skip := func(id string) bool { return s.inflight[id] }
	for {
		if s.usageBehind.Load() {
			if err := panics.Catch(func() error { s.drainUsage(ctx); return nil }); err != nil {
				s.panicked("usage", err)
			}
		}
		s.inflightMu.Lock()
		var due []*TrainingItem
		err := panics.Catch(func() (err error) {
			due, err = s.store.DueTraining(ctx, s.opts.Now(), s.opts.BatchSize, skip)
			return err
		})
		for _, it := range due {
			s.inflight[it.ID] = true
		}
		s.inflightMu.Unlock()
		var pe *panics.Error
		if errors.As(err, &pe) {
			s.panicked("training-queue", err)
		} else if err != nil && ctx.Err() == nil {
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

// trainGroup is a batch's items of one dataset, with what each trains into.
type trainGroup struct {
	ds    *Dataset
	items []*TrainingItem
	data  [][]*Data        // per item
	qa    []GenerateResult // per item; zero for index-mode items
}

// train trains a batch: QA items first get their pairs from the model, then
// everything is embedded per dataset and stored, with what it cost, in one
// transaction.
func (s *Service) train(ctx context.Context, batch []*TrainingItem) {
	groups := map[string]*trainGroup{}
	var order []string
	for _, it := range batch {
		g := groups[it.DatasetID]
		if g == nil {
			ds, err := s.store.Dataset(ctx, it.DatasetID)
			if err != nil {
				s.retry(ctx, it, err)
				continue
			}
			g = &trainGroup{ds: ds}
			groups[it.DatasetID] = g
			order = append(order, it.DatasetID)
		}
		var (
			data []*Data
			qa   GenerateResult
		)
		err := panics.Catch(func() (err error) {
			data, qa, err = s.itemData(ctx, it)
			return err
		})
		if err != nil {
			if errors.As(err, new(*panics.Error)) {
				s.panicked("training", err)
			}
			if qa.PromptTokens+qa.CompletionTokens > 0 {
				// The model answered, but with nothing to store: its tokens
				// were spent all the same. The id names the attempt, which
				// is durable, so a crash before the failure is stored
				// replays the same record rather than a second one.
				s.recordUsage(ctx, UsageRecord{ID: fmt.Sprintf("%s-qa-%d", it.ID, it.Attempts+1), TeamID: it.TeamID,
					KeyID: it.KeyID, DatasetID: it.DatasetID, CollectionID: it.CollectionID, BillID: it.BillID,
					Module: ModuleQA, Model: qa.Model, InputTokens: qa.PromptTokens, OutputTokens: qa.CompletionTokens, Items: 1})
			}
			s.retry(ctx, it, err)
			continue
		}
		g.items = append(g.items, it)
		g.data = append(g.data, data)
		g.qa = append(g.qa, qa)
	}
	for _, dsID := range order {
		if g := groups[dsID]; len(g.items) > 0 {
			s.trainGroup(ctx, g)
		}
	}
}

// trainGroup embeds a group's data and completes its items. When the
// embedder panics on the group, each item is embedded alone, so that the
// item that makes it panic fails without the others.
func (s *Service) trainGroup(ctx context.Context, g *trainGroup) {
	vecs, err := s.embedGroup(ctx, g)
	var pe *panics.Error
	if errors.As(err, &pe) {
		s.panicked("training", err)
		if len(g.items) > 1 {
			for i := range g.items {
				s.trainGroup(ctx, &trainGroup{ds: g.ds, items: g.items[i : i+1], data: g.data[i : i+1], qa: g.qa[i : i+1]})
			}
			return
		}
	}
	if err != nil {
		for _, it := range g.items {
			s.retry(ctx, it, fmt.Errorf("embedding: %w", err))
		}
		return
	}
	done := make([]Trained, len(g.items))
	k := 0
	for i, it := range g.items {
		done[i].ItemID = it.ID
		// a copy: Complete filters it in place, and usage counts every
		// text that was embedded
		done[i].Data = slices.Clone(g.data[i])
		for _, d := range g.data[i] {
			for n := range d.texts() {
				done[i].Vectors = append(done[i].Vectors, Vector{ID: vectorID(d.ID, n), Values: vecs[k]})
				k++
			}
		}
	}
	usage := s.trainingUsage(g)
	done[0].Usage = usage
	if err := s.complete(ctx, g.ds.ID, done); err != nil {
		if ctx.Err() == nil {
			s.log.Error("dataset: storing trained items", "dataset", g.ds.ID, "err", err)
		}
		s.usageBehind.Store(true) // in case the commit went through after all
		return                    // still queued; they are tried again
	}
	s.deliverUsage(ctx, usage)
}

// embedGroup embeds every text of a group's data, in order.
func (s *Service) embedGroup(ctx context.Context, g *trainGroup) ([][]float32, error) {
	emb, err := s.embedder(g.ds)
	if err != nil {
		return nil, err
	}
	var texts []string
	for _, data := range g.data {
		for _, d := range data {
			texts = append(texts, d.texts()...)
		}
	}
	var vecs [][]float32
	err = panics.Catch(func() (err error) {
		vecs, err = emb.Embed(ctx, texts)
		return err
	})
	if err == nil && len(vecs) != len(texts) {
		err = fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(texts))
	}
	return vecs, err
}

// itemData turns an item into the Data it trains into; QA items ask the
// model, whose answer and token counts are returned too.
func (s *Service) itemData(ctx context.Context, it *TrainingItem) ([]*Data, GenerateResult, error) {
	now := s.opts.Now().UTC()
	base := Data{TeamID: it.TeamID, DatasetID: it.DatasetID, CollectionID: it.CollectionID,
		Source: it.Source, FileID: it.FileID, CreateTime: it.CreateTime, UpdateTime: now}
	if it.Mode != ModeQA {
		d := base
		d.ID, d.Q, d.A, d.Indexes = it.ID, it.Q, it.A, it.Indexes
		return []*Data{&d}, GenerateResult{}, nil
	}
	if s.opts.QA == nil {
		return nil, GenerateResult{}, permanent(ErrQAModelUnavailable)
	}
	res, err := s.opts.QA.Generate(ctx, qaPrompt(it.Prompt, it.Q))
	if err != nil {
		return nil, GenerateResult{}, fmt.Errorf("QA model: %w", err)
	}
	pairs := ParseQA(res.Text)
	if len(pairs) == 0 {
		return nil, res, permanent(errors.New("the QA model's answer held no Q/A pairs"))
	}
	out := make([]*Data, len(pairs))
	for i, p := range pairs {
		d := base
		d.ID, d.Q, d.A = fmt.Sprintf("%s-%d", it.ID, i+1), p.Q, p.A
		// pairs of one text come out in order
		d.CreateTime = it.CreateTime.Add(time.Duration(i))
		out[i] = &d
	}
	return out, res, nil
}

// complete stores trained items and adds their vectors to the index, under
// indexMu so that no deletion runs in between. The vectors go into the
// index first: once the store says an item is trained, a search finds it.
// Until then a search may meet a vector whose data is not stored yet, and
// skips it, as it skips data deleted meanwhile; what the store did not
// keep (gone items, repeated QA pairs, a failed commit) leaves the index
// again.
func (s *Service) complete(ctx context.Context, datasetID string, done []Trained) error {
	s.indexMu.RLock()
	defer s.indexMu.RUnlock()
	var all []Vector
	for _, t := range done {
		all = append(all, t.Vectors...)
	}
	if err := s.vectors.Upsert(ctx, datasetID, all); err != nil {
		return err
	}
	ids := make([]string, len(all)) // before Complete filters the Trained in place
	for i, v := range all {
		ids[i] = v.ID
	}
	gone, err := s.store.Complete(ctx, done)
	if err != nil {
		if derr := s.vectors.Delete(context.WithoutCancel(ctx), datasetID, ids); derr != nil {
			s.log.Error("dataset: removing the vectors of an uncommitted batch", "dataset", datasetID, "err", derr)
		}
		return err
	}
	kept := map[string]bool{}
	for _, t := range done {
		if !slices.Contains(gone, t.ItemID) {
			for _, v := range t.Vectors {
				kept[v.ID] = true
			}
		}
	}
	var drop []string
	for _, id := range ids {
		if !kept[id] {
			drop = append(drop, id)
		}
	}
	wake(s.textWake)
	if len(drop) == 0 {
		return nil
	}
	return s.vectors.Delete(ctx, datasetID, drop)
}

// trainingUsage sums what a group's training cost: the QA model's tokens
// per model, and the embedding of every text, per collection, bill and key.
// Each record gets its id now, so that the outbox and the ledger know it as
// one record however often it is delivered.
func (s *Service) trainingUsage(g *trainGroup) []UsageRecord {
	type key struct{ coll, bill, keyID, module, model string }
	sums := map[key]*UsageRecord{}
	var order []key
	add := func(it *TrainingItem, module, model string, in, out int) {
		k := key{it.CollectionID, it.BillID, it.KeyID, module, model}
		u := sums[k]
		if u == nil {
			u = &UsageRecord{TeamID: g.ds.TeamID, KeyID: it.KeyID, DatasetID: g.ds.ID, CollectionID: it.CollectionID,
				BillID: it.BillID, Module: module, Model: model}
			sums[k] = u
			order = append(order, k)
		}
		u.InputTokens += in
		u.OutputTokens += out
		u.Items++
	}
	for i, it := range g.items {
		if it.Mode == ModeQA {
			qa := g.qa[i]
			add(it, ModuleQA, qa.Model, qa.PromptTokens, qa.CompletionTokens)
		}
		n := 0
		for _, d := range g.data[i] {
			n += s.countAll(d.texts())
		}
		add(it, ModuleEmbedding, g.ds.VectorModel, n, 0)
	}
	now := s.opts.Now().UTC()
	out := make([]UsageRecord, len(order))
	for i, k := range order {
		out[i] = *sums[k]
		out[i].ID, out[i].Time = id.New(), now
	}
	return out
}

// deliverUsage hands outbox records to the UsageRecorder and clears those
// it took. What it could not take stays in the outbox for drainUsage.
func (s *Service) deliverUsage(ctx context.Context, recs []UsageRecord) {
	var took []string
	for _, u := range recs {
		if s.opts.Usage != nil {
			err := panics.Catch(func() error { return s.opts.Usage.RecordDatasetUsage(ctx, u) })
			if err != nil {
				if errors.As(err, new(*panics.Error)) {
					s.panicked("usage", err)
				}
				if ctx.Err() == nil {
					s.log.Error("dataset: recording training usage; it stays in the outbox", "module", u.Module, "err", err)
				}
				s.usageBehind.Store(true)
				continue
			}
		}
		took = append(took, u.ID)
	}
	if err := s.store.ClearUsage(ctx, took); err != nil && ctx.Err() == nil {
		// delivered again later; the recorder counts each id once
		s.log.Error("dataset: clearing delivered usage", "err", err)
		s.usageBehind.Store(true)
	}
}

// drainUsage delivers what the usage outbox holds: records a crash caught
// between the commit of their data and their delivery, or that the
// recorder refused. It runs at start and whenever a delivery fell behind.
func (s *Service) drainUsage(ctx context.Context) {
	for ctx.Err() == nil {
		s.usageBehind.Store(false)
		recs, err := s.store.PendingUsage(ctx, 256)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("dataset: reading the usage outbox", "err", err)
			}
			s.usageBehind.Store(true)
			return
		}
		if len(recs) == 0 {
			return
		}
		s.deliverUsage(ctx, recs)
		if s.usageBehind.Load() {
			return // the recorder is failing; try again at the next poll
		}
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
