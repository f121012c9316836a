package dataset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/queue"
)

// trainGroup is a batch's items of one dataset, with what each trains into.
type trainGroup struct {
	ds    *Dataset
	pos   []int // the items' positions in the batch
	items []*TrainingItem
	data  [][]*Data        // per item
	qa    []GenerateResult // per item; zero for index-mode items
}

// at is the group's i-th item alone.
func (g *trainGroup) at(i int) *trainGroup {
	return &trainGroup{ds: g.ds, pos: g.pos[i : i+1], items: g.items[i : i+1], data: g.data[i : i+1], qa: g.qa[i : i+1]}
}

// train is the training queue's handler. QA items first get their pairs
// from the model, then everything is embedded per dataset and stored, with
// what it cost, in one transaction per dataset. Each item's outcome goes
// back to the queue.Runner, which retries or fails the item: nil once it
// is stored (or dropped, when it was deleted meanwhile), an error to try
// it again after a backoff, and a queue.Permanent one when trying again
// cannot help. Panics of the embedder or the QA model are caught item by
// item; one anywhere else is the Runner's to catch, and fails an attempt
// of every item of the batch.
func (s *Service) train(ctx context.Context, batch []*TrainingItem) []error {
	errs := make([]error, len(batch))
	groups := map[string]*trainGroup{}
	var order []string
	for i, it := range batch {
		g := groups[it.DatasetID]
		if g == nil {
			ds, err := s.store.Dataset(ctx, it.DatasetID)
			if errors.Is(err, ErrDatasetNotFound) {
				err = queue.Permanent(err)
			}
			if err != nil {
				errs[i] = err
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
			data, qa, err = s.itemData(ctx, g.ds, it)
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
			errs[i] = err
			continue
		}
		g.pos = append(g.pos, i)
		g.items = append(g.items, it)
		g.data = append(g.data, data)
		g.qa = append(g.qa, qa)
	}
	for _, dsID := range order {
		if g := groups[dsID]; len(g.items) > 0 {
			s.trainGroup(ctx, g, errs)
		}
	}
	return errs
}

// trainGroup embeds a group's data and commits its items, setting errs at
// the positions of those that fail. When the embedder panics on the group,
// each item is embedded alone, so that the item that makes it panic fails
// without the others.
func (s *Service) trainGroup(ctx context.Context, g *trainGroup, errs []error) {
	vecs, err := s.embedGroup(ctx, g)
	var pe *panics.Error
	if errors.As(err, &pe) {
		s.panicked("training", err)
		if len(g.items) > 1 {
			for i := range g.items {
				s.trainGroup(ctx, g.at(i), errs)
			}
			return
		}
	}
	if err != nil {
		for _, p := range g.pos {
			errs[p] = fmt.Errorf("embedding: %w", err)
		}
		return
	}
	done := make([]Trained, len(g.items))
	k := 0
	for i, it := range g.items {
		done[i].ItemID = it.ID
		// a copy: Commit filters it in place, and usage counts every
		// text that was embedded
		done[i].Data = slices.Clone(g.data[i])
		for _, d := range g.data[i] {
			for n := range d.texts() {
				done[i].Vectors = append(done[i].Vectors, Vector{ID: vectorID(d.ID, n), Values: vecs[k]})
				k++
			}
		}
	}
	done[0].Usage = s.trainingUsage(g)
	err = s.commit(ctx, g.ds.ID, done)
	// The usage runner delivers what the commit put in the outbox; after a
	// failed commit too, in case it went through after all.
	s.usage.Wake()
	if err != nil {
		// A store that leases what it hands out (queue.Releaser) gets the
		// items back at once, not when the lease runs out.
		if rl, ok := s.store.(queue.Releaser); ok {
			ids := make([]string, len(g.items))
			for i, it := range g.items {
				ids[i] = it.ID
			}
			_ = rl.Release(context.WithoutCancel(ctx), ids) // else the lease ends
		}
	}
	if err != nil && ctx.Err() == nil {
		// The items stay queued as they were, and are claimed again at the
		// next poll: the store failed, not the items, so no attempt is
		// spent (their errors stay nil, and the Runner, the training queue
		// being no queue.Completer, leaves them alone).
		s.log.Error("dataset: storing trained items", "dataset", g.ds.ID, "err", err)
	}
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
func (s *Service) itemData(ctx context.Context, ds *Dataset, it *TrainingItem) ([]*Data, GenerateResult, error) {
	now := time.Now().UTC()
	base := Data{TeamID: it.TeamID, DatasetID: it.DatasetID, CollectionID: it.CollectionID,
		Source: it.Source, FileID: it.FileID, CreateTime: it.CreateTime, UpdateTime: now}
	if it.Mode != ModeQA {
		d := base
		d.ID, d.Q, d.A, d.Indexes = it.ID, it.Q, it.A, it.Indexes
		return []*Data{&d}, GenerateResult{}, nil
	}
	gen, err := s.qaFor(ds)
	if err != nil {
		return nil, GenerateResult{}, queue.Permanent(err)
	}
	res, err := gen.Generate(ctx, qaPrompt(it.Prompt, it.Q))
	if err != nil {
		return nil, GenerateResult{}, fmt.Errorf("QA model: %w", err)
	}
	pairs := ParseQA(res.Text)
	if len(pairs) == 0 {
		return nil, res, queue.Permanent(errors.New("the QA model's answer held no Q/A pairs"))
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

// commit stores trained items and adds their vectors to the index, under
// indexMu so that no deletion runs in between. The vectors go into the
// index first: once the store says an item is trained, a search finds it.
// Until then a search may meet a vector whose data is not stored yet, and
// skips it, as it skips data deleted meanwhile; what the store did not
// keep (gone items, repeated QA pairs, a failed commit) leaves the index
// again.
func (s *Service) commit(ctx context.Context, datasetID string, done []Trained) error {
	s.indexMu.RLock()
	defer s.indexMu.RUnlock()
	var all []Vector
	for _, t := range done {
		all = append(all, t.Vectors...)
	}
	if err := s.vectors.Upsert(ctx, datasetID, all); err != nil {
		return err
	}
	ids := make([]string, len(all)) // before Commit filters the Trained in place
	for i, v := range all {
		ids[i] = v.ID
	}
	var q TrainingQueue = s.store
	gone, err := q.Commit(ctx, done)
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
	s.textChanged()
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
	now := time.Now().UTC()
	out := make([]UsageRecord, len(order))
	for i, k := range order {
		out[i] = *sums[k]
		out[i].ID, out[i].Time = id.New(), now
	}
	return out
}
