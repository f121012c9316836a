package dataset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/tokens"
)

// LocalModel names the LocalEmbedder in Options.Embedders.
const LocalModel = "local"

// Options configures a Service. The zero value gives an in-memory service
// with the local embedder and no QA model.
type Options struct {
	Store   Store       // source of truth; nil: a MemoryStore
	Vectors VectorStore // nil: a FlatStore
	// Text is the full-text index; nil: the Service's own, in memory,
	// filled from the Store at each start (see TextIndex). dataset/fulltext
	// has one on bleve, on disk.
	Text TextIndex
	// Embedders by model name, for datasets' vectorModel. nil: LocalModel
	// only. dataset/embedding has OpenAI-compatible and Ollama ones.
	Embedders map[string]Embedder
	// DefaultVectorModel is used by datasets created without one; "": LocalModel.
	DefaultVectorModel string
	// QA writes question/answer pairs in QA mode; nil answers QA-mode pushes
	// with ErrQAModelUnavailable.
	QA Generator
	// QAModels finds QA models by name, for datasets' agentModel; a
	// dataset created without one trains with QA. nil: no agentModel is
	// accepted. QAModelMap is one.
	QAModels QAModels
	// Reranker reorders the candidates of a search with Rerank (FastGPT's
	// usingReRank); nil answers those with ErrRerankUnavailable.
	// dataset/rerank has a client of Jina/Cohere-compatible endpoints.
	Reranker Reranker
	// RerankModel names the Reranker's model in usage records;
	// DefaultRerankModel when empty.
	RerankModel string
	// Extender answers searches that ask for query extension
	// (datasetSearchUsingExtensionQuery); nil refuses them with 400.
	Extender QueryExtender
	// Usage receives training and search tokens; nil discards them.
	Usage UsageRecorder
	// Bills, when set, vets the billId of a push, a text collection or a
	// searchTest before anything is queued or recorded under it.
	Bills BillChecker
	// Tokens counts tokens for limits and usage; nil: cl100k.Counter
	// (cl100k_base, offline). One that is also a tokens.ContextCounter, as that
	// one is, stops counting a request's text when the request ends.
	Tokens tokens.Counter

	Workers     int           // training workers; default 2
	BatchSize   int           // items a worker trains at once; default 64
	MaxAttempts int           // tries before an item fails for good; default 5
	RetryBase   time.Duration // first retry delay, doubled each time; default 1s
	RetryMax    time.Duration // longest retry delay; default 5m
	PollEvery   time.Duration // how often the queues are checked without a wake-up; default 1s

	IndexMaxTokens int // per index-mode item (q+a); default 3000
	QAMaxTokens    int // per QA-mode item; default 10000

	Logger *slog.Logger // default slog.Default()
	// OnPanic, when set, is called after a panic in background work was
	// recovered and logged (metrics hook); component names the work:
	// "training", "training-queue" (the store, claiming or rescheduling),
	// "usage" or "fulltext".
	OnPanic func(component string)
}

// Service is the knowledge-base service: records, training and search.
//
// Three queue.Runners do its background work: the training queue (the
// Store's TrainingQueue), the delivery of training usage (its UsageOutbox)
// and the full-text index's catch-up (its TextOutbox). On a ChangeFeed
// store, a follower of the feed takes the place of the third.
type Service struct {
	opts    Options
	store   Store
	vectors VectorStore
	text    TextIndex
	tokens  tokens.Counter
	log     *slog.Logger

	// indexMu orders changes of the store and the vector index: trainers
	// share it, deletions take it alone, so a deletion cannot slip between
	// a trainer's commit and its index update and leave orphan vectors.
	indexMu sync.RWMutex

	training *queue.Runner[*TrainingItem]
	usage    *queue.Runner[usageJob]
	textSync *queue.Runner[textJob] // nil with a ChangeFeed store
	feed     *follower              // nil unless the store is a ChangeFeed

	closed    atomic.Bool
	closeOnce sync.Once
}

// New starts a Service: it loads the vector index from the store (and its
// own full-text index, when Options.Text is nil and the store a
// TextSource), and starts training, the delivery of training usage the
// store still holds, and the full-text index's catch-up (a rebuild, when
// another index is empty but the store is not). Call Close to stop them.
//
// A store that is a ChangeFeed (one that several processes share) is
// read otherwise: both indexes are loaded from its snapshot, the full-text
// index included whatever it holds (so give each process one of its own,
// in memory: Text nil or fulltext.Open("")), and then follow its feed,
// which brings them every change made through any process; its
// TextOutbox is not used.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	if opts.Vectors == nil {
		opts.Vectors = NewFlatStore()
	}
	if opts.Text == nil {
		opts.Text = newMemText()
	}
	if opts.Embedders == nil {
		opts.Embedders = map[string]Embedder{LocalModel: LocalEmbedder{}}
	}
	if opts.DefaultVectorModel == "" {
		opts.DefaultVectorModel = LocalModel
	}
	if _, ok := opts.Embedders[opts.DefaultVectorModel]; !ok {
		return nil, fmt.Errorf("dataset: default vector model %q has no embedder", opts.DefaultVectorModel)
	}
	if opts.Tokens == nil {
		opts.Tokens = new(cl100k.Counter)
	}
	opts.Workers = cmp.Or(opts.Workers, 2)
	opts.BatchSize = cmp.Or(opts.BatchSize, 64)
	opts.MaxAttempts = cmp.Or(opts.MaxAttempts, 5)
	opts.RetryBase = cmp.Or(opts.RetryBase, time.Second)
	opts.RetryMax = cmp.Or(opts.RetryMax, 5*time.Minute)
	opts.PollEvery = cmp.Or(opts.PollEvery, time.Second)
	opts.IndexMaxTokens = cmp.Or(opts.IndexMaxTokens, 3000)
	opts.QAMaxTokens = cmp.Or(opts.QAMaxTokens, 10000)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{opts: opts, store: opts.Store, vectors: opts.Vectors, text: opts.Text,
		tokens: opts.Tokens, log: opts.Logger}
	run := func(name string) queue.Options {
		return queue.Options{Name: name, PollEvery: opts.PollEvery, RetryBase: opts.RetryBase, RetryMax: opts.RetryMax,
			Logger: opts.Logger, OnPanic: s.reportPanic}
	}
	if feed, ok := opts.Store.(ChangeFeed); ok {
		f, err := s.startFollower(ctx, feed)
		if err != nil {
			return nil, err
		}
		s.feed = f
	} else {
		reindex, err := s.loadIndexes(ctx)
		if err != nil {
			return nil, err
		}
		to := run("fulltext")
		to.BatchSize = textBatch
		tq := &textQueue{s: s, outbox: opts.Store, reindex: reindex}
		s.textSync = queue.Start[textJob](tq, tq, to)
	}
	uo := run("usage")
	uo.BatchSize = usageBatch
	s.usage = queue.Start[usageJob](usageQueue{opts.Store}, queue.HandlerFunc[usageJob](s.deliverUsage), uo)
	tr := run("training")
	tr.StoreComponent, tr.OnPanic = "training-queue", s.trainingPanicked
	tr.Workers, tr.BatchSize, tr.MaxAttempts = opts.Workers, opts.BatchSize, opts.MaxAttempts
	s.training = queue.Start[*TrainingItem](opts.Store, queue.HandlerFunc[*TrainingItem](s.train), tr)
	return s, nil
}

// loadIndexes fills the vector index from the store, and the full-text
// index too when it is the Service's own and the store a TextSource, the
// two side by side. When another full-text index is empty but data exists
// (the index was lost), it returns the data ids to index again.
func (s *Service) loadIndexes(ctx context.Context) ([]string, error) {
	m, own := s.text.(*memText)
	src, ok := s.store.(TextSource)
	if !own || !ok {
		empty, err := s.text.Empty()
		if err != nil {
			return nil, fmt.Errorf("dataset: full-text index: %w", err)
		}
		return s.loadVectors(ctx, empty)
	}
	loaded := make(chan error, 1)
	go func() { loaded <- panics.Catch(func() error { return loadText(ctx, m, src) }) }()
	_, err := s.loadVectors(ctx, false)
	if terr := <-loaded; err == nil && terr != nil {
		err = fmt.Errorf("dataset: loading the full-text index: %w", terr)
	}
	return nil, err
}

// textLoadBatch is how many documents loadText indexes at once.
const textLoadBatch = 1024

// loadText fills m from src, one goroutine reading and decoding while
// another indexes: 100,000 items take about a second, where the
// background catch-up reads them one at a time. Other indexes are left to
// that catch-up, as they keep what they held (bleve on disk) or are too
// slow to fill before New returns.
func loadText(ctx context.Context, m *memText, src TextSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []TextDoc, 2)
	var readErr error // written before batches is closed
	go func() {
		defer close(batches)
		readErr = panics.Catch(func() error {
			docs := make([]TextDoc, 0, textLoadBatch)
			send := func() error {
				select {
				case batches <- docs:
					docs = make([]TextDoc, 0, textLoadBatch)
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			err := src.EachText(ctx, func(d TextDoc) error {
				if docs = append(docs, d); len(docs) < textLoadBatch {
					return nil
				}
				return send()
			})
			if err == nil && len(docs) > 0 {
				err = send()
			}
			return err
		})
	}()
	var err error
	for docs := range batches {
		if err == nil {
			if err = m.Index(ctx, docs); err != nil {
				cancel() // the reader stops at its next batch
			}
		}
	}
	if err == nil {
		err = readErr
	}
	return err
}

// loadVectors fills the vector index from the store. With reindex, it
// returns the ids of the data items it saw, to index again.
func (s *Service) loadVectors(ctx context.Context, reindex bool) ([]string, error) {
	var (
		ids     []string
		batch   []Vector
		batchDS string
	)
	flush := func() error {
		err := s.vectors.Upsert(ctx, batchDS, batch)
		batch = batch[:0]
		return err
	}
	var src VectorSource = s.store
	err := src.EachVector(ctx, func(ds string, v Vector) error {
		if ds != batchDS || len(batch) == 1024 {
			if err := flush(); err != nil {
				return err
			}
			batchDS = ds
		}
		batch = append(batch, v)
		if reindex && !strings.Contains(v.ID, "/") {
			ids = append(ids, v.ID)
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: loading vectors: %w", err)
	}
	return ids, nil
}

// Close stops training, usage delivery and the full-text catch-up, waiting
// for work in flight to end or ctx to expire. Items in flight stay queued,
// undelivered usage stays in the outbox. It closes neither the Store nor
// a TextIndex it was given; every method answers ErrClosed after it.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		stops := []func(context.Context) error{s.training.Close, s.usage.Close}
		if s.textSync != nil {
			stops = append(stops, s.textSync.Close)
		}
		if s.feed != nil {
			stops = append(stops, s.feed.stop)
		}
		for _, stop := range stops {
			if cerr := stop(ctx); err == nil {
				err = cerr
			}
		}
	})
	return err
}

// textChanged tells the full-text index's catch-up that the store has a
// change for it: the outbox's runner, or the change feed's follower.
func (s *Service) textChanged() {
	if s.feed != nil {
		s.feed.poke()
		return
	}
	s.textSync.Wake()
}

// live returns ErrClosed once the Service is closed.
func (s *Service) live() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// reportPanic tells OnPanic about a panic the runners recovered and logged.
func (s *Service) reportPanic(component string) {
	if s.opts.OnPanic != nil {
		s.opts.OnPanic(component)
	}
}

// trainingPanicked reports a panic of the training queue. One in the
// handler may have come after a commit, before the usage runner heard of
// it: the usage outbox is asked at once rather than at the next poll.
func (s *Service) trainingPanicked(component string) {
	s.usage.Wake()
	s.reportPanic(component)
}

// panicked logs a panic recovered inside background work, which carries
// on without the item that caused it, and reports it.
func (s *Service) panicked(component string, err error) {
	var pe *panics.Error
	if errors.As(err, &pe) {
		s.log.Error("dataset: recovered a panic", "component", component, "panic", pe.Value, "stack", string(pe.Stack))
	}
	s.reportPanic(component)
}

// --- datasets ---

// CreateDataset creates a dataset in team. vectorModel "" is the default.
func (s *Service) CreateDataset(ctx context.Context, teamID, name, vectorModel string) (*Dataset, error) {
	return s.CreateDatasetWith(ctx, teamID, DatasetSpec{Name: name, VectorModel: vectorModel})
}

// DatasetSpec is what a new dataset is made of.
type DatasetSpec struct {
	Name        string
	VectorModel string // "": the default
	AgentModel  string // "": Options.QA; else one of Options.QAModels
	Intro       string
	Avatar      string
}

// CreateDatasetWith creates a dataset in team as spec says.
func (s *Service) CreateDatasetWith(ctx context.Context, teamID string, spec DatasetSpec) (*Dataset, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	name, err := field.Name("name", spec.Name)
	if err != nil {
		return nil, err
	}
	vectorModel := spec.VectorModel
	if err := field.First(field.Line("vectorModel", vectorModel, 200), field.Text("intro", spec.Intro, MaxIntroBytes),
		field.Line("avatar", spec.Avatar, MaxAvatarBytes)); err != nil {
		return nil, err
	}
	if vectorModel == "" {
		vectorModel = s.opts.DefaultVectorModel
	}
	if _, ok := s.opts.Embedders[vectorModel]; !ok {
		return nil, apierror.InvalidRequest("vectorModel", "%q is not a configured embedding model", vectorModel)
	}
	if err := s.checkAgentModel(spec.AgentModel); err != nil {
		return nil, err
	}
	d := &Dataset{ID: id.New(), TeamID: teamID, Name: name, VectorModel: vectorModel, AgentModel: spec.AgentModel,
		Intro: spec.Intro, Avatar: spec.Avatar, CreateTime: time.Now().UTC()}
	if err := s.store.PutDataset(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Dataset returns a team's dataset.
func (s *Service) Dataset(ctx context.Context, teamID, id string) (*Dataset, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	d, err := s.store.Dataset(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.TeamID != teamID {
		return nil, ErrDatasetNotFound
	}
	return d, nil
}

// Datasets returns a team's datasets, oldest first.
func (s *Service) Datasets(ctx context.Context, teamID string) ([]*Dataset, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return s.store.Datasets(ctx, teamID)
}

// DeleteDataset deletes a team's dataset with everything in it.
func (s *Service) DeleteDataset(ctx context.Context, teamID, id string) error {
	if _, err := s.Dataset(ctx, teamID, id); err != nil {
		return err
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if err := s.store.DeleteDataset(ctx, id); err != nil {
		return err
	}
	s.textChanged()
	return s.vectors.DeleteDataset(ctx, id)
}

// --- collections ---

// CollectionDetail is a collection with its training progress.
type CollectionDetail struct {
	*Collection
	TrainingAmount int `json:"trainingAmount"` // items still queued
	FailedAmount   int `json:"failedAmount"`   // items that failed for good
	DataAmount     int `json:"dataAmount"`
}

// CreateCollection creates an empty collection in a team's dataset.
func (s *Service) CreateCollection(ctx context.Context, teamID, datasetID, name string) (*Collection, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	name, err := field.Name("name", name)
	if err != nil {
		return nil, err
	}
	if _, err := s.Dataset(ctx, teamID, datasetID); err != nil {
		return nil, err
	}
	c := &Collection{ID: id.New(), TeamID: teamID, DatasetID: datasetID, Name: name,
		Type: CollectionVirtual, CreateTime: time.Now().UTC()}
	if err := s.store.PutCollection(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// TextCollection asks for a collection made from a text.
type TextCollection struct {
	TeamID, KeyID string
	DatasetID     string
	Name          string
	Text          string
	TrainingType  TrainingMode
	ChunkSize     int // tokens; default 512
	ChunkOverlap  int // tokens; default 0
	// IndexSize is FastGPT's: the size of the indexes a chunk is embedded
	// by. Each chunk here is embedded whole as its one index, so it may be
	// 0 or at least ChunkSize, at most the embedding model's input.
	IndexSize int
	// Splitter, when set, is the highest-priority separator (FastGPT's
	// chunkSplitter): see SplitOptions.Separator. A piece between two is
	// cut further only when longer than the training mode's largest chunk.
	Splitter string
	// Trigger says when the text is split; "" is TriggerForce.
	// TriggerMinSize keeps a text under TriggerMinSize tokens whole;
	// DefaultTriggerMinSize (at most the largest chunk) when 0.
	Trigger        ChunkTrigger
	TriggerMinSize int
	Prompt         string
	BillID         string
	// Tags are the collection's tags (FastGPT's tags).
	Tags []string
	// CreateTime, when set, is the collection's creation time as the
	// caller gives it (FastGPT's createTime); now when zero.
	CreateTime time.Time
	// RawLink is the web page the text was read from: the collection is
	// then of type CollectionLink and lists it as its rawLink.
	RawLink string
	// Type is the collection's type: CollectionText (the default) for a
	// text sent as it is, CollectionFile for the text of an uploaded file,
	// whose name is then Name; a RawLink makes it CollectionLink.
	Type string
}

// MaxTextBytes bounds the text of a text collection, as the handler's
// default body limit does.
const MaxTextBytes = 16 << 20

// CreateTextCollection splits a text into chunks, creates a collection
// for them and queues every chunk for training. Everything is checked
// first, and the collection and its chunks are stored in one transaction:
// a refused request (a 400, a missing dataset or bill) leaves nothing.
func (s *Service) CreateTextCollection(ctx context.Context, tc TextCollection) (*Collection, *PushResult, error) {
	if err := s.live(); err != nil {
		return nil, nil, err
	}
	name, err := field.Name("name", tc.Name)
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(tc.Text) == "" {
		return nil, nil, apierror.InvalidRequest("text", "is required")
	}
	if err := field.Text("text", tc.Text, MaxTextBytes); err != nil {
		return nil, nil, err
	}
	split, tags, err := s.prepareText(ctx, &tc)
	if err != nil {
		return nil, nil, err
	}
	typ := CollectionText
	switch {
	case tc.RawLink != "":
		typ = CollectionLink
	case tc.Type == CollectionFile:
		typ = CollectionFile
	case tc.Type != "" && tc.Type != CollectionText:
		return nil, nil, fmt.Errorf("dataset: a text collection cannot be of type %q", tc.Type)
	}
	count, countErr := s.splitCount(ctx)
	split.Count = count
	chunks, err := SplitTextWith(tc.Text, split)
	if err == nil {
		err = countErr()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: splitting text: %w", err)
	}
	if len(chunks) > MaxPushItems {
		return nil, nil, apierror.InvalidRequest("text", "splits into %d chunks of %d tokens, more than %d; send a shorter text or a larger chunkSize",
			len(chunks), tc.ChunkSize, MaxPushItems)
	}
	created := time.Now().UTC()
	if !tc.CreateTime.IsZero() {
		created = tc.CreateTime.UTC()
	}
	c := &Collection{ID: id.New(), TeamID: tc.TeamID, DatasetID: tc.DatasetID, Name: name, Type: typ,
		TrainingType: tc.TrainingType, ChunkSize: tc.ChunkSize, Tags: tags, RawLink: tc.RawLink, CreateTime: created}
	req := PushRequest{TeamID: tc.TeamID, KeyID: tc.KeyID, CollectionID: c.ID,
		Mode: tc.TrainingType, Prompt: tc.Prompt, BillID: tc.BillID, Data: make([]PushItem, len(chunks))}
	for i, ch := range chunks {
		req.Data[i] = PushItem{Q: ch, Source: c.Name}
	}
	res, items, from, err := s.stage(ctx, c, req)
	if err != nil {
		return nil, nil, err
	}
	repeats, err := s.store.CreateCollection(ctx, c, items)
	if err != nil {
		return nil, nil, err
	}
	res.addQueued(req, items, from, repeats)
	if len(items) > 0 {
		s.training.Wake()
	}
	return c, res, nil
}

// prepareText checks everything of a text collection but its name and
// text, the dataset and the bill included, and fills in the defaults:
// collection/create/link runs it before it fetches the page.
func (s *Service) prepareText(ctx context.Context, tc *TextCollection) (SplitOptions, []string, error) {
	if tc.ChunkSize == 0 {
		tc.ChunkSize = 512
	}
	maxChunk := s.opts.IndexMaxTokens
	if tc.TrainingType == ModeQA {
		maxChunk = s.opts.QAMaxTokens
	}
	if tc.ChunkSize < 16 || tc.ChunkSize > maxChunk {
		return SplitOptions{}, nil, apierror.InvalidRequest("chunkSize", "must be between 16 and %d", maxChunk)
	}
	if tc.ChunkOverlap < 0 || tc.ChunkOverlap > tc.ChunkSize/2 {
		return SplitOptions{}, nil, apierror.InvalidRequest("chunkOverlap", "must be between 0 and half of chunkSize")
	}
	if tc.IndexSize != 0 && (tc.IndexSize < tc.ChunkSize || tc.IndexSize > s.opts.IndexMaxTokens) {
		return SplitOptions{}, nil, apierror.InvalidRequest("indexSize", "must be between chunkSize (%d) and %d: each chunk is embedded whole as its one index here",
			tc.ChunkSize, s.opts.IndexMaxTokens)
	}
	split := SplitOptions{ChunkSize: tc.ChunkSize, Overlap: tc.ChunkOverlap, Separator: tc.Splitter, MaxPiece: maxChunk}
	switch tc.Trigger {
	case "", TriggerForce:
	case TriggerMinSize:
		if tc.TriggerMinSize == 0 {
			tc.TriggerMinSize = min(DefaultTriggerMinSize, maxChunk+1)
		}
		if tc.TriggerMinSize < 0 || tc.TriggerMinSize > maxChunk+1 {
			return SplitOptions{}, nil, apierror.InvalidRequest("chunkTriggerMinSize", "must be between 1 and %d: a text kept whole is one chunk", maxChunk+1)
		}
		split.Whole = tc.TriggerMinSize - 1
	case TriggerMaxSize:
		split.Whole = maxChunk
	default:
		return SplitOptions{}, nil, apierror.InvalidRequest("chunkTriggerType", "must be minSize, maxSize or forceChunk")
	}
	tags, err := checkTags(tc.Tags)
	if err != nil {
		return SplitOptions{}, nil, err
	}
	if tc.TrainingType == "" {
		tc.TrainingType = ModeIndex
	}
	if tc.TrainingType == ModeQA && !s.anyQA() {
		return SplitOptions{}, nil, ErrQAModelUnavailable
	}
	if err := field.Text("prompt", tc.Prompt, MaxPromptBytes); err != nil {
		return SplitOptions{}, nil, err
	}
	ds, err := s.Dataset(ctx, tc.TeamID, tc.DatasetID)
	if err != nil {
		return SplitOptions{}, nil, err
	}
	if tc.TrainingType == ModeQA {
		if _, err := s.qaFor(ds); err != nil {
			return SplitOptions{}, nil, err
		}
	}
	if err := s.checkBill(ctx, tc.TeamID, tc.BillID); err != nil {
		return SplitOptions{}, nil, err
	}
	return split, tags, nil
}

// Collection returns a team's collection with its training progress.
func (s *Service) Collection(ctx context.Context, teamID, id string) (*CollectionDetail, error) {
	c, err := s.collection(ctx, teamID, id)
	if err != nil {
		return nil, err
	}
	return s.detail(ctx, c)
}

func (s *Service) detail(ctx context.Context, c *Collection) (*CollectionDetail, error) {
	queued, failed, err := s.store.TrainingCounts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	_, total, err := s.store.DataList(ctx, c.ID, 0, 0)
	if err != nil {
		return nil, err
	}
	return &CollectionDetail{Collection: c, TrainingAmount: queued, FailedAmount: failed, DataAmount: total}, nil
}

func (s *Service) collection(ctx context.Context, teamID, id string) (*Collection, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	c, err := s.store.Collection(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.TeamID != teamID {
		return nil, ErrCollectionNotFound
	}
	return c, nil
}

// Collections returns the collections of a team's dataset with progress.
func (s *Service) Collections(ctx context.Context, teamID, datasetID string) ([]*CollectionDetail, error) {
	if _, err := s.Dataset(ctx, teamID, datasetID); err != nil {
		return nil, err
	}
	cs, err := s.store.Collections(ctx, datasetID)
	if err != nil {
		return nil, err
	}
	out := make([]*CollectionDetail, 0, len(cs))
	for _, c := range cs {
		d, err := s.detail(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// TrainingFailures returns up to limit items of a team's collection that
// failed for good, with their last error.
func (s *Service) TrainingFailures(ctx context.Context, teamID, collectionID string, limit int) ([]*TrainingItem, error) {
	if _, err := s.collection(ctx, teamID, collectionID); err != nil {
		return nil, err
	}
	return s.store.TrainingFailures(ctx, collectionID, limit)
}

// DeleteCollection deletes a team's collection, its data and queued items.
func (s *Service) DeleteCollection(ctx context.Context, teamID, id string) error {
	c, err := s.collection(ctx, teamID, id)
	if err != nil {
		return err
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	ids, err := s.store.DeleteCollection(ctx, id)
	if err != nil {
		return err
	}
	s.textChanged()
	return s.vectors.Delete(ctx, c.DatasetID, ids)
}

// DeleteCollections deletes collections of a team, each as
// DeleteCollection does, all or none: a collection that is missing or of
// another team is answered ErrCollectionNotFound, naming it, and none is
// deleted. An id given twice is deleted once.
func (s *Service) DeleteCollections(ctx context.Context, teamID string, ids []string) error {
	if len(ids) == 0 {
		return apierror.InvalidRequest("collectionIds", "must hold at least one id")
	}
	for i, id := range ids {
		if _, err := s.collection(ctx, teamID, id); err != nil {
			if errors.Is(err, ErrCollectionNotFound) {
				return ErrCollectionNotFound.WithMessage("collectionIds[%d]: collection %s not found", i, id)
			}
			return err
		}
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	removed, err := s.store.DeleteCollections(ctx, ids)
	if errors.Is(err, ErrCollectionNotFound) {
		// deleted meanwhile by another request, and so none by this one
		return ErrCollectionNotFound.WithMessage("a collection of collectionIds was deleted meanwhile; none was deleted by this request")
	}
	if err != nil {
		return err
	}
	s.textChanged()
	for ds, vs := range removed {
		if err := s.vectors.Delete(ctx, ds, vs); err != nil {
			return err
		}
	}
	return nil
}

// CollectionPage returns a page of the collections of a team's dataset
// whose name contains text (ASCII letters in any case; "" is every
// one), with their progress, oldest first, and how many there are.
func (s *Service) CollectionPage(ctx context.Context, teamID, datasetID, text string, offset, limit int) ([]*CollectionDetail, int, error) {
	if _, err := s.Dataset(ctx, teamID, datasetID); err != nil {
		return nil, 0, err
	}
	cs, err := s.store.Collections(ctx, datasetID)
	if err != nil {
		return nil, 0, err
	}
	var match []*Collection
	for _, c := range cs {
		if containsFold(c.Name, text) {
			match = append(match, c)
		}
	}
	total := len(match)
	match = match[min(max(offset, 0), total):]
	match = match[:min(max(limit, 0), len(match))]
	out := make([]*CollectionDetail, 0, len(match))
	for _, c := range match {
		d, err := s.detail(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, d)
	}
	return out, total, nil
}

// --- data ---

// Data returns a team's data item.
func (s *Service) Data(ctx context.Context, teamID, id string) (*Data, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	d, err := s.store.Data(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.TeamID != teamID {
		return nil, ErrDataNotFound
	}
	return d, nil
}

// DataList returns a page of a team's collection's data and its total.
func (s *Service) DataList(ctx context.Context, teamID, collectionID string, offset, limit int) ([]*Data, int, error) {
	if _, err := s.collection(ctx, teamID, collectionID); err != nil {
		return nil, 0, err
	}
	return s.store.DataList(ctx, collectionID, offset, limit)
}

// DataListMatching returns a page of the data of a team's collection that
// contain text (see Data.Contains), oldest first, and how many there are.
func (s *Service) DataListMatching(ctx context.Context, teamID, collectionID, text string, offset, limit int) ([]*Data, int, error) {
	if _, err := s.collection(ctx, teamID, collectionID); err != nil {
		return nil, 0, err
	}
	if text == "" {
		return s.store.DataList(ctx, collectionID, offset, limit)
	}
	return s.store.DataListMatching(ctx, collectionID, text, offset, limit)
}

// DataUpdate changes a data item; nil fields are kept.
type DataUpdate struct {
	ID      string
	Q, A    *string
	Indexes *[]string
}

// UpdateData applies u to a team's data item and embeds it again.
func (s *Service) UpdateData(ctx context.Context, teamID string, u DataUpdate) (*Data, error) {
	d, err := s.Data(ctx, teamID, u.ID)
	if err != nil {
		return nil, err
	}
	if u.Q != nil {
		if strings.TrimSpace(*u.Q) == "" {
			return nil, apierror.InvalidRequest("q", "must not be empty")
		}
		d.Q = strings.TrimSpace(*u.Q)
	}
	if u.A != nil {
		d.A = *u.A
	}
	if u.Indexes != nil {
		if len(*u.Indexes) > MaxIndexes {
			return nil, apierror.InvalidRequest("indexes", "holds %d indexes, more than %d", len(*u.Indexes), MaxIndexes)
		}
		j, n, err := s.overIndex(ctx, *u.Indexes, s.opts.IndexMaxTokens)
		if err != nil {
			return nil, err
		}
		if j >= 0 {
			return nil, apierror.InvalidRequest(fmt.Sprintf("indexes[%d]", j), "holds %d tokens, more than %d", n, s.opts.IndexMaxTokens)
		}
		d.Indexes = cleanIndexes(*u.Indexes)
	}
	n, err := s.count(ctx, d.Q, d.A)
	if err != nil {
		return nil, err
	}
	if n > s.opts.IndexMaxTokens {
		return nil, apierror.InvalidRequest("q", "q and a hold %d tokens, more than %d", n, s.opts.IndexMaxTokens)
	}
	ds, err := s.store.Dataset(ctx, d.DatasetID)
	if err != nil {
		return nil, err
	}
	emb, err := s.embedder(ds)
	if err != nil {
		return nil, err
	}
	vecs, err := emb.Embed(ctx, d.texts())
	if err != nil {
		return nil, fmt.Errorf("dataset: embedding: %w", err)
	}
	d.UpdateTime = time.Now().UTC()
	vectors := make([]Vector, len(vecs))
	for i, v := range vecs {
		vectors[i] = Vector{ID: vectorID(d.ID, i), Values: v}
	}
	old, err := s.store.Data(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if err := s.store.UpdateData(ctx, d, vectors); err != nil {
		if errors.Is(err, ErrRepeat) {
			return nil, apierror.InvalidRequest("q", "another item of the collection has this q")
		}
		return nil, err
	}
	s.textChanged()
	if err := s.vectors.Delete(ctx, d.DatasetID, vectorIDsOf(old)); err != nil {
		return nil, err
	}
	if err := s.vectors.Upsert(ctx, d.DatasetID, vectors); err != nil {
		return nil, err
	}
	s.recordUsage(ctx, UsageRecord{TeamID: d.TeamID, DatasetID: d.DatasetID, CollectionID: d.CollectionID,
		Module: ModuleEmbedding, Model: ds.VectorModel, InputTokens: s.countAll(d.texts()), Items: 1})
	return d, nil
}

// DeleteData deletes a team's data item.
func (s *Service) DeleteData(ctx context.Context, teamID, id string) error {
	d, err := s.Data(ctx, teamID, id)
	if err != nil {
		return err
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	ids, err := s.store.DeleteData(ctx, id)
	if err != nil {
		return err
	}
	s.textChanged()
	return s.vectors.Delete(ctx, d.DatasetID, ids)
}

func (s *Service) embedder(ds *Dataset) (Embedder, error) {
	e, ok := s.opts.Embedders[ds.VectorModel]
	if !ok {
		return nil, queue.Permanent(fmt.Errorf("dataset %s: vector model %q has no embedder", ds.ID, ds.VectorModel))
	}
	return e, nil
}

func (s *Service) countAll(texts []string) int {
	n := 0
	for _, t := range texts {
		n += s.tokens.Count(t)
	}
	return n
}

// recordTimeout bounds a usage record that outlives its caller, so that a
// hung ledger cannot hold the goroutine for ever.
const recordTimeout = 10 * time.Second

func (s *Service) recordUsage(ctx context.Context, u UsageRecord) {
	if s.opts.Usage == nil {
		return
	}
	if u.Time.IsZero() {
		u.Time = time.Now().UTC()
	}
	// The work is done and its tokens spent: a caller that left since
	// must not take its record with it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := s.opts.Usage.RecordDatasetUsage(ctx, u); err != nil {
		s.log.Error("dataset: recording usage", "module", u.Module, "err", err)
	}
}

func cleanIndexes(in []string) []string {
	var out []string
	for _, x := range in {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
