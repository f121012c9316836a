package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/chromemstore"
	"github.com/chatgate/chatgate/dataset/fulltext"
)

// --- helpers shared by this package's tests ---

// runeCounter counts a token per rune, so tests can compute token counts
// (and need not load the cl100k_base encoder).
type runeCounter struct{}

func (runeCounter) Count(s string) int { return len([]rune(s)) }

// newService starts a Service with fast retries and polling and a rune
// token counter, unless opts says otherwise, and closes it at the end.
func newService(t *testing.T, opts dataset.Options) *dataset.Service {
	t.Helper()
	if opts.RetryBase == 0 {
		opts.RetryBase = time.Millisecond
	}
	if opts.PollEvery == 0 {
		opts.PollEvery = 5 * time.Millisecond
	}
	if opts.Tokens == nil {
		opts.Tokens = runeCounter{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := dataset.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("dataset.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// usageLog is a UsageRecorder that keeps what it is given.
type usageLog struct {
	mu  sync.Mutex
	all []dataset.UsageRecord
}

func (l *usageLog) RecordDatasetUsage(_ context.Context, u dataset.UsageRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, u)
	return nil
}

func (l *usageLog) module(m string) []dataset.UsageRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []dataset.UsageRecord
	for _, u := range l.all {
		if u.Module == m {
			out = append(out, u)
		}
	}
	return out
}

// fakeGen is a Generator whose answers a test scripts.
type fakeGen struct {
	mu      sync.Mutex
	prompts []string
	answer  func(n int, prompt string) (dataset.GenerateResult, error)
}

func (g *fakeGen) Generate(_ context.Context, prompt string) (dataset.GenerateResult, error) {
	g.mu.Lock()
	g.prompts = append(g.prompts, prompt)
	n := len(g.prompts)
	g.mu.Unlock()
	return g.answer(n, prompt)
}

func (g *fakeGen) Prompts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.prompts)
}

// flakyEmbedder fails its first fails calls, then embeds locally.
type flakyEmbedder struct {
	fails int32
	calls atomic.Int32
}

func (e *flakyEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if n := e.calls.Add(1); n <= e.fails {
		return nil, fmt.Errorf("embedding endpoint unavailable (call %d)", n)
	}
	return dataset.LocalEmbedder{}.Embed(ctx, texts)
}

// setup creates a dataset and an empty collection in team.
func setup(t *testing.T, s *dataset.Service, team string) (*dataset.Dataset, *dataset.Collection) {
	t.Helper()
	ctx := context.Background()
	ds, err := s.CreateDataset(ctx, team, "kb", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateCollection(ctx, team, ds.ID, "manual")
	if err != nil {
		t.Fatal(err)
	}
	return ds, c
}

func push(t *testing.T, s *dataset.Service, req dataset.PushRequest) *dataset.PushResult {
	t.Helper()
	res, err := s.Push(context.Background(), req)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	return res
}

// queuedItems reads a store's queue, failed items included.
func queuedItems(t *testing.T, st dataset.Store, collID string) []*dataset.TrainingItem {
	t.Helper()
	due, err := st.Claim(context.Background(), time.Now().Add(1000*time.Hour), 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := st.TrainingFailures(context.Background(), collID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return append(due, fs...)
}

// --- training ---

// The queue's clock is the bubble's: time moves only when every goroutine
// of the test waits, so each attempt is exactly when it is due.
func TestTrainingRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		emb := &flakyEmbedder{fails: 3}
		st := dataset.NewMemoryStore()
		s := newService(t, dataset.Options{Store: st, Embedders: map[string]dataset.Embedder{dataset.LocalModel: emb},
			RetryBase: time.Minute, RetryMax: 3 * time.Minute, MaxAttempts: 10, PollEvery: time.Second})
		_, c := setup(t, s, "team")
		start := time.Now()
		if res := push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID,
			Data: []dataset.PushItem{{Q: "what is the refund window?", A: "30 days"}}}); res.InsertLen != 1 {
			t.Fatalf("push %+v", res)
		}
		// Each failure doubles the delay, up to RetryMax: 1m, 2m, then 3m
		// (not 4m).
		next := start
		for attempt, delay := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
			attempt++
			synctest.Wait() // the attempt ran and is recorded
			items := queuedItems(t, st, c.ID)
			if len(items) != 1 || items[0].Attempts != attempt {
				t.Fatalf("after attempt %d: %+v", attempt, items)
			}
			it := items[0]
			if it.Failed || !strings.Contains(it.LastError, fmt.Sprintf("embedding endpoint unavailable (call %d)", attempt)) {
				t.Fatalf("after attempt %d: %+v", attempt, it)
			}
			next = next.Add(delay)
			if !it.NextAttempt.Equal(next) {
				t.Fatalf("attempt %d: next attempt %v after the start; want %v", attempt, it.NextAttempt.Sub(start), next.Sub(start))
			}
			if d, _ := s.Collection(ctx, "team", c.ID); d.TrainingAmount != 1 || d.FailedAmount != 0 || d.DataAmount != 0 {
				t.Fatalf("collection while retrying: %+v", d)
			}
			// Not tried again before its time, however often the queue is polled.
			time.Sleep(time.Until(next) - time.Nanosecond)
			synctest.Wait()
			if n := emb.calls.Load(); n != int32(attempt) {
				t.Fatalf("embedder called %d times before the next attempt was due; want %d", n, attempt)
			}
			time.Sleep(time.Nanosecond) // its time: the poll due now tries it
		}
		d := waitTrained(t, s, "team", c.ID)
		if d.DataAmount != 1 || d.FailedAmount != 0 {
			t.Fatalf("collection after the retries: %+v", d)
		}
		if n := emb.calls.Load(); n != 4 {
			t.Fatalf("embedder called %d times; want 4", n)
		}
		list, _, err := s.DataList(ctx, "team", c.ID, 0, 10)
		if err != nil || len(list) != 1 || list[0].Q != "what is the refund window?" || list[0].A != "30 days" {
			t.Fatalf("data = %+v, %v", list, err)
		}
	})
}

func TestTrainingFailsForGoodAfterMaxAttempts(t *testing.T) {
	synctest.Test(t, testTrainingFailsForGood)
}

func testTrainingFailsForGood(t *testing.T) {
	ctx := context.Background()
	emb := &flakyEmbedder{fails: math.MaxInt32}
	st := dataset.NewMemoryStore()
	s := newService(t, dataset.Options{Store: st, Embedders: map[string]dataset.Embedder{dataset.LocalModel: emb}, MaxAttempts: 3})
	_, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID,
		Data: []dataset.PushItem{{Q: "first"}, {Q: "second"}}})
	waitFor(t, "both items to fail", func() bool {
		d, err := s.Collection(ctx, "team", c.ID)
		return err == nil && d.FailedAmount == 2
	})
	d, err := s.Collection(ctx, "team", c.ID)
	if err != nil || d.TrainingAmount != 0 || d.DataAmount != 0 {
		t.Fatalf("collection = %+v, %v", d, err)
	}
	fs, err := s.TrainingFailures(ctx, "team", c.ID, 10)
	if err != nil || len(fs) != 2 {
		t.Fatalf("TrainingFailures = %v, %v", fs, err)
	}
	var qs []string
	for _, f := range fs {
		qs = append(qs, f.Q)
		if !f.Failed || f.Attempts != 3 || !strings.HasPrefix(f.LastError, "embedding: embedding endpoint unavailable") {
			t.Fatalf("failure %+v", f)
		}
	}
	slices.Sort(qs)
	if !slices.Equal(qs, []string{"first", "second"}) {
		t.Fatalf("failed qs = %v", qs)
	}
	// Failures are kept, never retried and never dropped.
	calls := emb.calls.Load()
	time.Sleep(time.Minute)
	synctest.Wait()
	if emb.calls.Load() != calls {
		t.Fatal("a failed item was tried again")
	}
	if fs, _ := s.TrainingFailures(ctx, "other-team", c.ID, 10); fs != nil {
		t.Fatalf("another team sees the failures: %v", fs)
	}
	if d, _ := s.Collection(ctx, "team", c.ID); d.FailedAmount != 2 {
		t.Fatalf("failures dropped: %+v", d)
	}
	// A failed q may be pushed again.
	if res := push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: "first"}}}); res.InsertLen != 1 {
		t.Fatalf("re-push of a failed q: %+v", res)
	}
}

func TestTrainingWithoutEmbedderFailsAtOnce(t *testing.T) {
	synctest.Test(t, testTrainingWithoutEmbedderFailsAtOnce)
}

func testTrainingWithoutEmbedderFailsAtOnce(t *testing.T) {
	ctx := context.Background()
	st := dataset.NewMemoryStore()
	// a dataset whose vector model is no longer configured
	now := time.Now().UTC()
	if err := st.PutDataset(ctx, &dataset.Dataset{ID: "ds", TeamID: "team", Name: "old", VectorModel: "retired-model", CreateTime: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCollection(ctx, &dataset.Collection{ID: "c", TeamID: "team", DatasetID: "ds", Name: "c", CreateTime: now}); err != nil {
		t.Fatal(err)
	}
	s := newService(t, dataset.Options{Store: st, MaxAttempts: 5})
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: "c", Data: []dataset.PushItem{{Q: "q"}}})
	waitFor(t, "the item to fail", func() bool {
		d, err := s.Collection(ctx, "team", "c")
		return err == nil && d.FailedAmount == 1
	})
	fs, _ := s.TrainingFailures(ctx, "team", "c", 10)
	if len(fs) != 1 || fs[0].Attempts != 1 || !strings.Contains(fs[0].LastError, `"retired-model" has no embedder`) {
		t.Fatalf("a permanent error is retried or unexplained: %+v", fs)
	}
}

const suzume = "《铃芽之旅》是新海诚执导的动画电影，于2022年上映。主角岩户铃芽是一名高中生。"

func TestTrainingQA(t *testing.T) { synctest.Test(t, testTrainingQA) }

func testTrainingQA(t *testing.T) {
	ctx := context.Background()
	usage := &usageLog{}
	gen := &fakeGen{answer: func(n int, prompt string) (dataset.GenerateResult, error) {
		return dataset.GenerateResult{Model: "fake-qa", PromptTokens: 100 + n, CompletionTokens: 20, Text: "好的，以下是问题和答案：\n\n" +
			"Q1：主角是谁？\nA1：岩户铃芽，\n一名高中生。\n\n" +
			"Q2: 《铃芽之旅》的导演是谁？\nA2: 新海诚。\n"}, nil
	}}
	st := dataset.NewMemoryStore()
	s := newService(t, dataset.Options{Store: st, QA: gen, Usage: usage})
	ds, c := setup(t, s, "team")

	// The collection already holds one of the questions the model will write.
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: "主角是谁？", A: "铃芽"}}})
	waitTrained(t, s, "team", c.ID)
	// its usage is delivered from the outbox after the commit
	waitFor(t, "the first item's usage", func() bool { return len(usage.module(dataset.ModuleEmbedding)) == 1 })
	usage.mu.Lock()
	usage.all = nil
	usage.mu.Unlock()

	res := push(t, s, dataset.PushRequest{TeamID: "team", KeyID: "key-1", CollectionID: c.ID, Mode: dataset.ModeQA,
		Prompt: "电影知识", BillID: "bill-1", Data: []dataset.PushItem{{Q: suzume, Source: "wiki"}}})
	if res.InsertLen != 1 {
		t.Fatalf("push %+v", res)
	}
	d := waitTrained(t, s, "team", c.ID)
	if d.DataAmount != 2 || d.FailedAmount != 0 {
		t.Fatalf("collection %+v", d)
	}

	// The model got FastGPT's template with the theme and the text.
	prompts := gen.Prompts()
	want := strings.NewReplacer("{{theme}}", "电影知识", "{{text}}", suzume).Replace(dataset.DefaultQAPrompt)
	if len(prompts) != 1 || prompts[0] != want {
		t.Fatalf("prompts = %q\nwant %q", prompts, want)
	}
	if !strings.Contains(prompts[0], "我会给你一段文本,电影知识,学习它们") || !strings.Contains(prompts[0], `我的文本:"""`+suzume+`"""`) || strings.Contains(prompts[0], "{{") {
		t.Fatalf("prompt not filled in: %q", prompts[0])
	}

	// The new pair is data; the one the collection had is not added twice.
	list, total, err := s.DataList(ctx, "team", c.ID, 0, 10)
	if err != nil || total != 2 {
		t.Fatalf("DataList = %v, %d, %v", list, total, err)
	}
	if list[0].Q != "主角是谁？" || list[0].A != "铃芽" {
		t.Fatalf("existing data changed: %+v", list[0])
	}
	if p := list[1]; p.Q != "《铃芽之旅》的导演是谁？" || p.A != "新海诚。" || p.Source != "wiki" || p.DatasetID != ds.ID || p.CollectionID != c.ID || p.TeamID != "team" {
		t.Fatalf("pair = %+v", p)
	}
	hits, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "导演是谁"})
	if err != nil || len(hits.Hits) == 0 || hits.Hits[0].A != "新海诚。" {
		t.Fatalf("search = %+v, %v", hits, err)
	}

	// QA and embedding usage, both under the bill and the key.
	waitFor(t, "embedding usage", func() bool { return len(usage.module(dataset.ModuleEmbedding)) > 0 })
	qa := usage.module(dataset.ModuleQA)
	if len(qa) != 1 {
		t.Fatalf("QA usage = %+v", qa)
	}
	if u := qa[0]; u.TeamID != "team" || u.KeyID != "key-1" || u.BillID != "bill-1" || u.DatasetID != ds.ID || u.CollectionID != c.ID ||
		u.Model != "fake-qa" || u.InputTokens != 101 || u.OutputTokens != 20 || u.Items != 1 || u.Time.IsZero() {
		t.Fatalf("QA usage = %+v", u)
	}
	emb := usage.module(dataset.ModuleEmbedding)
	if len(emb) != 1 {
		t.Fatalf("embedding usage = %+v", emb)
	}
	// both questions were embedded, the repeated one too
	wantTokens := len([]rune("《铃芽之旅》的导演是谁？")) + len([]rune("主角是谁？"))
	if u := emb[0]; u.TeamID != "team" || u.KeyID != "key-1" || u.BillID != "bill-1" || u.DatasetID != ds.ID || u.CollectionID != c.ID ||
		u.Model != dataset.LocalModel || u.InputTokens != wantTokens || u.Items != 1 {
		t.Fatalf("embedding usage = %+v; want %d input tokens", u, wantTokens)
	}

	// No prompt: the default theme. A prompt holding {{text}} is the whole template.
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Mode: dataset.ModeQA, Data: []dataset.PushItem{{Q: "第二段文字。"}}})
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Mode: dataset.ModeQA, Prompt: "只问一个问题：{{text}}",
		Data: []dataset.PushItem{{Q: "第三段文字。"}}})
	waitTrained(t, s, "team", c.ID)
	prompts = gen.Prompts()
	if len(prompts) != 3 {
		t.Fatalf("%d prompts", len(prompts))
	}
	slices.Sort(prompts[1:])
	if want := "只问一个问题：第三段文字。"; prompts[1] != want {
		t.Fatalf("custom template prompt = %q; want %q", prompts[1], want)
	}
	if want := strings.NewReplacer("{{theme}}", dataset.DefaultQATheme, "{{text}}", "第二段文字。").Replace(dataset.DefaultQAPrompt); prompts[2] != want {
		t.Fatalf("default prompt = %q; want %q", prompts[2], want)
	}
}

func TestTrainingQAWithoutPairsFails(t *testing.T) { synctest.Test(t, testTrainingQAWithoutPairsFails) }

func testTrainingQAWithoutPairsFails(t *testing.T) {
	ctx := context.Background()
	usage := &usageLog{}
	gen := &fakeGen{answer: func(int, string) (dataset.GenerateResult, error) {
		return dataset.GenerateResult{Text: "抱歉，我无法从这段文字中提出问题。", Model: "fake-qa", PromptTokens: 50, CompletionTokens: 9}, nil
	}}
	s := newService(t, dataset.Options{QA: gen, Usage: usage, MaxAttempts: 5})
	_, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Mode: dataset.ModeQA, Data: []dataset.PushItem{{Q: "一段文字"}}})
	waitFor(t, "the QA item to fail", func() bool {
		d, err := s.Collection(ctx, "team", c.ID)
		return err == nil && d.FailedAmount == 1
	})
	fs, _ := s.TrainingFailures(ctx, "team", c.ID, 10)
	if len(fs) != 1 || fs[0].Attempts != 1 || !strings.Contains(fs[0].LastError, "no Q/A pairs") || fs[0].Q != "一段文字" {
		t.Fatalf("failure = %+v; want one attempt, permanent", fs)
	}
	if n := len(gen.Prompts()); n != 1 {
		t.Fatalf("the model was asked %d times; want 1", n)
	}
	// the model's tokens were spent all the same
	if qa := usage.module(dataset.ModuleQA); len(qa) != 1 || qa[0].InputTokens != 50 || qa[0].OutputTokens != 9 {
		t.Fatalf("QA usage = %+v", qa)
	}
	if d, _ := s.Collection(ctx, "team", c.ID); d.DataAmount != 0 || d.TrainingAmount != 0 {
		t.Fatalf("collection = %+v", d)
	}
}

func TestTrainingQAModelErrorIsRetried(t *testing.T) {
	synctest.Test(t, testTrainingQAModelErrorIsRetried)
}

func testTrainingQAModelErrorIsRetried(t *testing.T) {
	gen := &fakeGen{answer: func(n int, _ string) (dataset.GenerateResult, error) {
		if n == 1 {
			return dataset.GenerateResult{}, errors.New("model overloaded")
		}
		return dataset.GenerateResult{Text: "Q1: a?\nA1: b.", Model: "m"}, nil
	}}
	s := newService(t, dataset.Options{QA: gen, MaxAttempts: 3})
	_, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Mode: dataset.ModeQA, Data: []dataset.PushItem{{Q: "text"}}})
	d := waitTrained(t, s, "team", c.ID)
	if d.DataAmount != 1 || d.FailedAmount != 0 || len(gen.Prompts()) != 2 {
		t.Fatalf("collection %+v after %d prompts", d, len(gen.Prompts()))
	}
}

func TestQAModelUnavailable(t *testing.T) {
	ctx := context.Background()
	s := newService(t, dataset.Options{})
	ds, c := setup(t, s, "team")
	_, err := s.Push(ctx, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Mode: dataset.ModeQA, Data: []dataset.PushItem{{Q: "text"}}})
	if !errors.Is(err, dataset.ErrQAModelUnavailable) {
		t.Fatalf("Push in QA mode without a model = %v; want ErrQAModelUnavailable", err)
	}
	if d, _ := s.Collection(ctx, "team", c.ID); d.TrainingAmount != 0 || d.FailedAmount != 0 || d.DataAmount != 0 {
		t.Fatalf("something was queued: %+v", d)
	}
	_, _, err = s.CreateTextCollection(ctx, dataset.TextCollection{TeamID: "team", DatasetID: ds.ID, Name: "doc",
		Text: "第一句。第二句。", TrainingType: dataset.ModeQA})
	if !errors.Is(err, dataset.ErrQAModelUnavailable) {
		t.Fatalf("CreateTextCollection in QA mode without a model = %v", err)
	}
	if cs, _ := s.Collections(ctx, "team", ds.ID); len(cs) != 1 {
		t.Fatalf("a collection was created: %d", len(cs))
	}
}

func TestParseQA(t *testing.T) {
	var many strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&many, "Q%d: question %d?\nA%d: answer %d.\n", i, i, i, i)
	}
	for _, tc := range []struct {
		name string
		in   string
		want []dataset.QAPair
	}{
		{"plain", "Q1: What is it?\nA1: A gateway.\nQ2: Who made it?\nA2: Us.",
			[]dataset.QAPair{{"What is it?", "A gateway."}, {"Who made it?", "Us."}}},
		{"full-width colons", "Q1：导演是谁？\nA1：新海诚。", []dataset.QAPair{{"导演是谁？", "新海诚。"}}},
		{"bold markers", "**Q1:** What?\n**A1:** That.\n**Q2**: Why?\n**A2**: Because.",
			[]dataset.QAPair{{"What?", "That."}, {"Why?", "Because."}}},
		{"preamble and blank lines", "好的，以下是问题：\n\nQ1: 问题一\n\nA1: 答案一\n\n\n",
			[]dataset.QAPair{{"问题一", "答案一"}}},
		{"multi-line answer", "Q1: Steps?\nA1: First this.\nThen that.\n\n- a list\n- of items\nQ2: Done?\nA2: Yes.",
			[]dataset.QAPair{{"Steps?", "First this.\nThen that.\n\n- a list\n- of items"}, {"Done?", "Yes."}}},
		{"missing answer", "Q1: Lonely?\nQ2: Paired?\nA2: Yes.", []dataset.QAPair{{"Paired?", "Yes."}}},
		{"empty answer", "Q1: Empty?\nA1:\nQ2: Full?\nA2: Yes.", []dataset.QAPair{{"Full?", "Yes."}}},
		{"answer without question", "A1: Orphan.\nQ2: Q?\nA2: A.", []dataset.QAPair{{"Q?", "A."}}},
		{"numbering mismatch", "Q1: One?\nA2: Two.", nil},
		{"lower case, dots, spaces", "q1. small?\na 1 . yes.", []dataset.QAPair{{"small?", "yes."}}},
		{"CRLF", "Q1: Windows?\r\nA1: Yes.\r\n", []dataset.QAPair{{"Windows?", "Yes."}}},
		{"marker mid-line is text", "Q1: Is Q2: a marker here?\nA1: No, A2: neither.",
			[]dataset.QAPair{{"Is Q2: a marker here?", "No, A2: neither."}}},
		{"no pairs", "I cannot help with that.", nil},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dataset.ParseQA(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("ParseQA(%q) =\n%q\nwant\n%q", tc.in, got, tc.want)
			}
		})
	}
	got := dataset.ParseQA(many.String())
	if len(got) != dataset.MaxQAPairs || dataset.MaxQAPairs != 25 {
		t.Fatalf("30 pairs parsed into %d; want %d", len(got), dataset.MaxQAPairs)
	}
	if got[24] != (dataset.QAPair{Q: "question 25?", A: "answer 25."}) {
		t.Fatalf("25th pair = %+v", got[24])
	}
}

func TestSplitText(t *testing.T) {
	runes := func(s string) int { return len([]rune(s)) }
	zh := "电影《铃芽之旅》是新海诚执导的动画电影。主角是铃芽，她是一名高中生！她和草太一起关闭灾难之门。你看过吗？这部电影在二〇二二年上映；票房很高。"
	t.Run("Chinese sentences", func(t *testing.T) {
		chunks, err := dataset.SplitText(zh, 20, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"电影《铃芽之旅》是新海诚执导的动画电影。", "主角是铃芽，她是一名高中生！", "她和草太一起关闭灾难之门。你看过吗？", "这部电影在二〇二二年上映；票房很高。"}
		if !slices.Equal(chunks, want) {
			t.Fatalf("chunks = %q\nwant %q", chunks, want)
		}
		// one rune short of a sentence: the mark is not cut off alone
		chunks, _ = dataset.SplitText(zh, 12, 0, nil)
		if !slices.Contains(chunks, "她和草太一起关闭灾难之门。") || !slices.Contains(chunks, "这部电影在二〇二二年上映；") {
			t.Fatalf("size 12: %q", chunks)
		}
		for _, size := range []int{8, 12, 13, 20, 40, 100} {
			chunks, err := dataset.SplitText(zh, size, 0, runes)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(chunks, "") != zh {
				t.Fatalf("size %d: chunks %q lose or add text", size, chunks)
			}
			for _, c := range chunks {
				// at most about size: a sentence's closing mark may run over
				if n := runes(strings.TrimRightFunc(c, unicode.IsPunct)); n > size {
					t.Fatalf("size %d: chunk %q has %d runes before its closing punctuation", size, c, n)
				}
				if !strings.ContainsFunc(c, unicode.IsLetter) {
					t.Fatalf("size %d: chunk %q has nothing but punctuation", size, c)
				}
				if strings.ContainsAny(c[:len(string([]rune(c)[0]))], "。！？；，") {
					t.Fatalf("size %d: chunk %q starts with the punctuation of the sentence before", size, c)
				}
			}
		}
	})
	t.Run("count func", func(t *testing.T) {
		en := strings.Repeat("The quick brown fox jumps over the lazy dog. It was not amused, said the dog! ", 6)
		words := func(s string) int { return len(strings.Fields(s)) }
		chunks, err := dataset.SplitText(en, 8, 0, words)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) < 12 {
			t.Fatalf("%d chunks of at most 8 words from %d words", len(chunks), words(en))
		}
		for _, c := range chunks {
			if words(c) > 8 {
				t.Fatalf("chunk %q has %d words", c, words(c))
			}
		}
		if got := strings.Join(strings.Fields(strings.Join(chunks, " ")), " "); got != strings.Join(strings.Fields(en), " ") {
			t.Fatalf("without overlap the chunks are not the text: %q", got)
		}
	})
	t.Run("overlap", func(t *testing.T) {
		en := "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega"
		chunks, err := dataset.SplitText(en, 30, 12, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) < 4 {
			t.Fatalf("chunks = %q", chunks)
		}
		shared := 0
		for i := 1; i < len(chunks); i++ {
			if runes(chunks[i]) > 30 {
				t.Fatalf("chunk %q over 30", chunks[i])
			}
			first := strings.Fields(chunks[i])[0]
			if strings.Contains(chunks[i-1], " "+first) {
				shared++
			}
		}
		if shared != len(chunks)-1 {
			t.Fatalf("only %d of %d chunks start with the end of the one before: %q", shared, len(chunks)-1, chunks)
		}
		plain, _ := dataset.SplitText(en, 30, 0, nil)
		if len(plain) >= len(chunks) {
			t.Fatalf("overlap did not add chunks: %d vs %d", len(plain), len(chunks))
		}
	})
	t.Run("no empty chunks", func(t *testing.T) {
		text := "\n\n  第一段。\n\n\n\n   \n\n\t\n第二段。\r\n\r\n\r\n   \n"
		chunks, err := dataset.SplitText(text, 4, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(chunks, []string{"第一段。", "第二段。"}) {
			t.Fatalf("chunks = %q", chunks)
		}
		if chunks, err := dataset.SplitText("", 10, 0, nil); err != nil || len(chunks) != 0 {
			t.Fatalf("empty text: %q, %v", chunks, err)
		}
		if chunks, err := dataset.SplitText(" \n\n \t ", 10, 0, nil); err != nil || len(chunks) != 0 {
			t.Fatalf("blank text: %q, %v", chunks, err)
		}
	})
	t.Run("separator characters in the input", func(t *testing.T) {
		text := "第一段\u2029第二段\u2028第三段。第四段\u2029\u2029"
		chunks, err := dataset.SplitText(text, 5, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(chunks, []string{"第一段", "第二段", "第三段。", "第四段"}) {
			t.Fatalf("chunks = %q", chunks)
		}
		// and one chunk when it all fits: the separators become line breaks
		chunks, _ = dataset.SplitText("a\u2029b\u2028c", 100, 0, nil)
		if len(chunks) != 1 || strings.ContainsAny(chunks[0], "\u2028\u2029") || !strings.Contains(chunks[0], "a") || !strings.Contains(chunks[0], "c") {
			t.Fatalf("chunks = %q", chunks)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		long := strings.Repeat("长", 1500)
		chunks, err := dataset.SplitText(long, 0, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) != 3 || runes(chunks[0]) != 512 {
			t.Fatalf("default chunk size: %d chunks, first %d runes", len(chunks), runes(chunks[0]))
		}
	})
}

func TestLocalEmbedder(t *testing.T) {
	ctx := context.Background()
	cos := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	}
	norm := func(v []float32) float64 { return math.Sqrt(cos(v, v)) }
	texts := []string{
		"电影《铃芽之旅》的导演是谁？",                                       // 0
		"铃芽之旅这部电影是谁导演的",                                        // 1: similar to 0
		"今天天气很好，适合去公园散步。",                                      // 2: unrelated
		"Who wrote the novel Moby-Dick?",                       // 3
		"Moby-Dick, the novel: its author was Herman Melville", // 4: similar to 3
		"The stock market closed higher on Friday.",            // 5: unrelated
		"", // 6
	}
	vs, err := dataset.LocalEmbedder{}.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vs), len(texts))
	}
	for i, v := range vs[:6] {
		if len(v) != dataset.DefaultDimensions || dataset.DefaultDimensions != 256 {
			t.Fatalf("vector %d has %d dimensions", i, len(v))
		}
		if n := norm(v); math.Abs(n-1) > 1e-5 {
			t.Fatalf("vector %d has norm %v", i, n)
		}
	}
	// text without letters or digits is normalised too
	odd, _ := dataset.LocalEmbedder{}.Embed(ctx, []string{"？？？", "🙂", "  ", "-"})
	for i, v := range append(odd, vs[6]) {
		if n := norm(v); math.Abs(n-1) > 1e-5 || len(v) != dataset.DefaultDimensions {
			t.Fatalf("featureless text %d: norm %v, %d dimensions", i, n, len(v))
		}
	}
	if sim, other := cos(vs[0], vs[1]), cos(vs[0], vs[2]); sim <= other+0.2 {
		t.Fatalf("Chinese: similar %.3f, unrelated %.3f", sim, other)
	}
	if sim, other := cos(vs[3], vs[4]), cos(vs[3], vs[5]); sim <= other+0.2 {
		t.Fatalf("English: similar %.3f, unrelated %.3f", sim, other)
	}
	// deterministic, across values and calls
	again, _ := dataset.LocalEmbedder{Dimensions: 256}.Embed(ctx, texts[:1])
	if !slices.Equal(again[0], vs[0]) {
		t.Fatal("the same text embedded twice differs")
	}
	// case does not matter, word order hardly
	a, _ := dataset.LocalEmbedder{}.Embed(ctx, []string{"Herman Melville", "melville HERMAN"})
	if c := cos(a[0], a[1]); c < 0.99 {
		t.Fatalf("case and order changed the vector: %.3f", c)
	}
	small, _ := dataset.LocalEmbedder{Dimensions: 64}.Embed(ctx, texts[:2])
	if len(small[0]) != 64 || math.Abs(norm(small[0])-1) > 1e-5 {
		t.Fatalf("Dimensions 64: %d dimensions, norm %v", len(small[0]), norm(small[0]))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (dataset.LocalEmbedder{}).Embed(cctx, texts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed with a cancelled context = %v", err)
	}
}

// gatedEmbedder blocks each call until the test lets it go.
type gatedEmbedder struct {
	started chan struct{}
	release chan struct{}
}

func (e *gatedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.started <- struct{}{}
	select {
	case <-e.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return dataset.LocalEmbedder{}.Embed(ctx, texts)
}

// orphans lists the vectors in vs of ds whose data st does not have.
func orphans(t *testing.T, st dataset.Store, vs dataset.VectorStore, ds string) []string {
	t.Helper()
	q, _ := dataset.LocalEmbedder{}.Embed(context.Background(), []string{"anything"})
	hits, err := vs.Query(context.Background(), ds, q[0], 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hits {
		id, _, _ := strings.Cut(h.ID, "/")
		if _, err := st.Data(context.Background(), id); err != nil {
			out = append(out, h.ID)
		}
	}
	return out
}

func TestDeleteCollectionWhileTraining(t *testing.T) {
	ctx := context.Background()
	gate := &gatedEmbedder{started: make(chan struct{}), release: make(chan struct{})}
	st, vs := dataset.NewMemoryStore(), chromemstore.New()
	s, err := dataset.New(ctx, dataset.Options{Store: st, Vectors: vs, Tokens: runeCounter{}, Workers: 1,
		Embedders: map[string]dataset.Embedder{dataset.LocalModel: gate}, PollEvery: 5 * time.Millisecond, RetryBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	ds, keep := setup(t, s, "team")
	doomed, err := s.CreateCollection(ctx, "team", ds.ID, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: keep.ID, Data: []dataset.PushItem{{Q: "退货期限是多久？", A: "三十天"}}})
	<-gate.started
	gate.release <- struct{}{}
	waitTrained(t, s, "team", keep.ID)

	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: doomed.ID, Data: []dataset.PushItem{
		{Q: "退货期限是多久？", A: "doomed copy", Indexes: []dataset.Index{"退货"}}, {Q: "运费谁付？", A: "doomed"}}})
	<-gate.started // the batch is being embedded
	if err := s.DeleteCollection(ctx, "team", doomed.ID); err != nil {
		t.Fatal(err)
	}
	gate.release <- struct{}{}
	if err := s.Close(ctx); err != nil { // waits for the worker to finish the batch
		t.Fatal(err)
	}
	if o := orphans(t, st, vs, ds.ID); len(o) != 0 {
		t.Fatalf("orphan vectors %v", o)
	}
	if list, total, _ := st.DataList(ctx, doomed.ID, 0, 10); total != 0 || len(list) != 0 {
		t.Fatalf("orphan data %+v", list)
	}
	var stored int
	_ = st.EachVector(ctx, func(string, dataset.Vector) error { stored++; return nil })
	if stored != 1 {
		t.Fatalf("%d stored vectors; want keep's one", stored)
	}
}

func TestDeleteCollectionWhileTrainingStress(t *testing.T) {
	ctx := context.Background()
	for round := range 4 {
		st, vs := dataset.NewMemoryStore(), chromemstore.New()
		s, err := dataset.New(ctx, dataset.Options{Store: st, Vectors: vs, Tokens: runeCounter{}, BatchSize: 8,
			PollEvery: 5 * time.Millisecond, RetryBase: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ds, keep := setup(t, s, "team")
		var doomed []*dataset.Collection
		for i := range 3 {
			c, err := s.CreateCollection(ctx, "team", ds.ID, fmt.Sprintf("doomed %d", i))
			if err != nil {
				t.Fatal(err)
			}
			doomed = append(doomed, c)
			var items []dataset.PushItem
			for j := range 40 {
				items = append(items, dataset.PushItem{Q: fmt.Sprintf("question %d of collection %d, round %d", j, i, round),
					Indexes: []dataset.Index{dataset.Index(fmt.Sprintf("index %d", j))}})
			}
			push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: items})
		}
		push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: keep.ID, Data: []dataset.PushItem{{Q: "kept question"}}})
		for _, c := range doomed {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if err := s.DeleteCollection(ctx, "team", c.ID); err != nil {
				t.Fatal(err)
			}
		}
		waitTrained(t, s, "team", keep.ID)
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if o := orphans(t, st, vs, ds.ID); len(o) != 0 {
			t.Fatalf("round %d: orphan vectors %v", round, o)
		}
		var stored []string
		_ = st.EachVector(ctx, func(_ string, v dataset.Vector) error { stored = append(stored, v.ID); return nil })
		if len(stored) != 1 {
			t.Fatalf("round %d: stored vectors %v; want keep's one", round, stored)
		}
		for _, c := range doomed {
			if _, total, _ := st.DataList(ctx, c.ID, 0, 1); total != 0 {
				t.Fatalf("round %d: %d orphan data in %s", round, total, c.ID)
			}
		}
	}
}

func TestSearchFindsNothingOfADeletedCollection(t *testing.T) {
	ctx := context.Background()
	s := newService(t, dataset.Options{})
	ds, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{{Q: "退货期限是多久？", A: "三十天"}}})
	waitTrained(t, s, "team", c.ID)
	for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText, dataset.SearchMixed} {
		waitFor(t, mode+" finds the data", func() bool {
			r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "退货期限", Mode: mode})
			return err == nil && len(r.Hits) == 1
		})
	}
	if err := s.DeleteCollection(ctx, "team", c.ID); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText, dataset.SearchMixed} {
		r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "退货期限", Mode: mode})
		if err != nil || len(r.Hits) != 0 {
			t.Fatalf("%s after delete: %+v, %v", mode, r, err)
		}
	}
}

// Text with no letters or digits (punctuation, emoji) gets a vector like
// any other: a zero vector would have no direction, and a NaN similarity in
// the index can push real matches out of a search's top results.
func TestSearchWithFeaturelessData(t *testing.T) {
	ctx := context.Background()
	s := newService(t, dataset.Options{})
	ds, c := setup(t, s, "team")
	items := []dataset.PushItem{{Q: "？？？", A: "punctuation"}, {Q: "🙂🙂", A: "emoji"}}
	for i := range 40 {
		items = append(items, dataset.PushItem{Q: fmt.Sprintf("product %d warranty %s", i, strings.Repeat("x", i+1)), A: fmt.Sprint(i)})
	}
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: items})
	waitTrained(t, s, "team", c.ID)
	for range 5 {
		for i := range 40 {
			r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, MaxResults: 1,
				Text: fmt.Sprintf("product %d warranty %s", i, strings.Repeat("x", i+1))})
			if err != nil || len(r.Hits) != 1 || r.Hits[0].A != fmt.Sprint(i) {
				t.Fatalf("search for item %d: %+v, %v", i, r, err)
			}
			if math.IsNaN(r.Hits[0].Score) || r.Hits[0].Score < 0.99 {
				t.Fatalf("score %v", r.Hits[0].Score)
			}
		}
	}
	r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: "？？？", Similarity: 0.5})
	if err != nil || len(r.Hits) != 1 || r.Hits[0].A != "punctuation" {
		t.Fatalf("search for ？？？: %+v, %v", r, err)
	}
}

// openOnDisk opens a Service on a bbolt file and a bleve index in dir; the
// returned close stops it and closes both, so dir can be opened again.
func openOnDisk(t *testing.T, dir, textDir string, opts dataset.Options) (*dataset.Service, func()) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "chatgate.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = st
	var text *fulltext.Index
	if textDir != "" { // else the built-in index
		if text, err = fulltext.Open(filepath.Join(dir, textDir)); err != nil {
			t.Fatal(err)
		}
		opts.Text = text
	}
	s := newService(t, opts)
	return s, func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		if text != nil {
			_ = text.Close()
		}
		_ = db.Close()
	}
}

// The built-in full-text index, in memory, holds all the store holds as
// soon as New returns after a restart, deletions included: New fills it
// from the store before it returns, where another index catches up in the
// background.
func TestBuiltinTextIndexLoadedAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, stop := openOnDisk(t, dir, "", dataset.Options{})
	ds, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{
		{Q: "退货期限是多久？", A: "三十天"}, {Q: "Who pays for shipping?", A: "the buyer"}, {Q: "How long is shipping?", A: "a week"}}})
	waitTrained(t, s, "team", c.ID)
	list, _, err := s.DataList(ctx, "team", c.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		if d.Q == "How long is shipping?" {
			if err := s.DeleteData(ctx, "team", d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop()

	s, stop = openOnDisk(t, dir, "", dataset.Options{})
	defer stop()
	for text, want := range map[string][]string{"退货期限": {"三十天"}, "shipping": {"the buyer"}} {
		r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: text, Mode: dataset.SearchFullText})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range r.Hits {
			got = append(got, h.A)
		}
		if !slices.Equal(got, want) {
			t.Errorf("full-text %q right after the restart: %q; want %q", text, got, want)
		}
	}
}

// Acknowledged items survive a restart in the middle of training, and a
// lost full-text index is rebuilt from the store.
func TestRestartResumesTrainingAndRebuildsIndexes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stuck := gate{open: make(chan struct{})} // never opened: training cannot finish
	s, stop := openOnDisk(t, dir, "fulltext.bleve", dataset.Options{Embedders: map[string]dataset.Embedder{dataset.LocalModel: stuck}})
	ds, c := setup(t, s, "team")
	push(t, s, dataset.PushRequest{TeamID: "team", CollectionID: c.ID, Data: []dataset.PushItem{
		{Q: "退货期限是多久？", A: "三十天"}, {Q: "Who pays for shipping?", A: "the buyer"}}})
	if d, _ := s.Collection(ctx, "team", c.ID); d.TrainingAmount != 2 {
		t.Fatalf("before the restart: %+v", d)
	}
	stop() // shutting down cancels the embedding in flight

	s, stop = openOnDisk(t, dir, "fulltext.bleve", dataset.Options{})
	d := waitTrained(t, s, "team", c.ID)
	if d.DataAmount != 2 || d.FailedAmount != 0 {
		t.Fatalf("after the restart: %+v", d)
	}
	search := func(s *dataset.Service, text, mode string) []dataset.SearchHit {
		t.Helper()
		r, err := s.Search(ctx, dataset.SearchRequest{TeamID: "team", DatasetIDs: []string{ds.ID}, Text: text, Mode: mode, Similarity: 0.3})
		if err != nil {
			t.Fatal(err)
		}
		return r.Hits
	}
	waitFor(t, "full-text search", func() bool { return len(search(s, "shipping", dataset.SearchFullText)) == 1 })
	stop()

	// vectors come back from the store; a lost full-text index is rebuilt
	s, stop = openOnDisk(t, dir, "fulltext-new.bleve", dataset.Options{})
	defer stop()
	if h := search(s, "退货期限是多久", dataset.SearchEmbedding); len(h) != 1 || h[0].A != "三十天" {
		t.Fatalf("embedding search after restart: %+v", h)
	}
	waitFor(t, "the rebuilt full-text index", func() bool {
		h := search(s, "shipping", dataset.SearchFullText)
		return len(h) == 1 && h[0].A == "the buyer"
	})
}
