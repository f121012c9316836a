package chat_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/cl100k"
)

type usageLog struct {
	mu   sync.Mutex
	recs []chat.UsageRecord
}

func (u *usageLog) RecordChatUsage(_ context.Context, r chat.UsageRecord) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.recs = append(u.recs, r)
	return nil
}

// budget answers err and notes the team and app it was asked about.
type budget struct {
	err   error
	asked *[]string
}

func (b budget) ReserveBudget(_ context.Context, team, app string, _ float64) (func(), error) {
	if b.asked != nil {
		*b.asked = append(*b.asked, team+"/"+app)
	}
	if b.err != nil {
		return nil, b.err
	}
	return func() {
		if b.asked != nil {
			*b.asked = append(*b.asked, "end "+team+"/"+app)
		}
	}, nil
}

// echoModel answers with the system prompt it was given, and counts calls.
type echoModel struct {
	calls int
	seen  [][]chat.Message
	fail  error
}

func (m *echoModel) Generate(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	m.calls++
	m.seen = append(m.seen, req.Messages)
	if m.fail != nil {
		return chat.ModelResult{}, m.fail
	}
	text := "no system prompt"
	if req.Messages[0].Role == chat.RoleSystem {
		text = req.Messages[0].Content
	}
	if err := onToken(text); err != nil {
		return chat.ModelResult{}, err
	}
	return chat.ModelResult{Text: text, FinishReason: "stop"}, nil
}

func newTestEngine(t *testing.T, m chat.Model, cfg chat.EngineOptions) *chat.Engine {
	t.Helper()
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register("echo", m)
	cfg.Apps, cfg.History, cfg.Models = store, store, models
	e := chat.NewEngine(cfg)
	if err := e.SaveApp(context.Background(), &chat.App{ID: "app", Name: "app", Model: "echo",
		SystemPrompt: "Hello {{name}}, you are {{age}}.", MaxUsagePoints: 10}); err != nil {
		t.Fatal(err)
	}
	return e
}

func ask(e *chat.Engine, chatID, q string, vars map[string]any) (*chat.Result, []chat.Event, error) {
	var evs []chat.Event
	res, err := e.Run(context.Background(), chat.Request{TeamID: auth.DefaultTeam, KeyID: "k1", AppID: "app", ChatID: chatID,
		Messages: []chat.Message{{Role: chat.RoleUser, Content: q}}, Variables: vars},
		chat.SinkFunc(func(ev chat.Event) error { evs = append(evs, ev); return nil }))
	return res, evs, err
}

func TestEngineVariablesHistoryUsage(t *testing.T) {
	m := &echoModel{}
	usage := &usageLog{}
	e := newTestEngine(t, m, chat.EngineOptions{Usage: usage,
		Price: chat.PricerFunc(func(model string, in, out int) float64 { return float64(in+out) / 1000 })})

	res, evs, err := ask(e, "c1", "first", map[string]any{"name": "Ada", "age": 36})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Hello Ada, you are 36." {
		t.Fatalf("variables not substituted: %q", res.Text)
	}
	if evs[len(evs)-1].Kind != chat.EventDone {
		t.Fatalf("last event %v", evs[len(evs)-1].Kind)
	}
	ai := res.Responses[len(res.Responses)-1]
	if want := float64(res.Usage.PromptTokens+res.Usage.CompletionTokens) / 1000 * 100000; ai.Price != want || ai.Price == 0 {
		t.Fatalf("price %v, want %v", ai.Price, want)
	}
	// FastGPT's current fields beside the older ones
	if want := float64(res.Usage.PromptTokens+res.Usage.CompletionTokens) / 1000; ai.TotalPoints != want ||
		ai.ModuleType != chat.ModuleTypeChat || ai.InputTokens != res.Usage.PromptTokens || ai.OutputTokens != res.Usage.CompletionTokens ||
		ai.Query != "first" || ai.ContextTotalLen != len(ai.HistoryPreview) || len(ai.HistoryPreview) != 2 ||
		ai.HistoryPreview[0].Obj != "Human" || ai.HistoryPreview[1].Obj != "AI" {
		t.Fatalf("AI Chat module %+v; want totalPoints %v, chatNode, the tokens, query and a preview without the system prompt", ai, want)
	}
	if len(usage.recs) != 1 || usage.recs[0].KeyID != "k1" || usage.recs[0].AppID != "app" || usage.recs[0].Model != "echo" ||
		usage.recs[0].InputTokens == 0 || usage.recs[0].OutputTokens == 0 {
		t.Fatalf("usage %+v", usage.recs)
	}

	// the second turn sees the first, and the conversation's variables
	res, _, err = ask(e, "c1", "second", nil)
	if err != nil || res.Text != "Hello Ada, you are 36." {
		t.Fatalf("second turn: %v %v", res, err)
	}
	msgs := m.seen[1]
	if len(msgs) != 4 || msgs[1].Content != "first" || msgs[2].Content != "Hello Ada, you are 36." || msgs[3].Content != "second" {
		t.Fatalf("second turn's prompt: %+v", msgs)
	}

	// a failed turn stores nothing
	m.fail = &chat.UpstreamError{Provider: "test", Err: errors.New("boom")}
	if _, evs, err := ask(e, "c1", "third", nil); err == nil || evs[len(evs)-1].Kind != chat.EventError {
		t.Fatalf("failed turn: %v", err)
	}
	m.fail = nil
	if _, _, err := ask(e, "c1", "fourth", nil); err != nil {
		t.Fatal(err)
	}
	if last := m.seen[len(m.seen)-1]; len(last) != 6 {
		t.Fatalf("history after a failed turn has %d messages, want 6 (two turns + system + question)", len(last))
	}
}

func TestEngineBudget(t *testing.T) {
	m := &echoModel{}
	spent := &apierror.Error{Status: 429, Code: "insufficient_quota", Message: "spent"}
	var asked []string
	// the budget's own error comes back, not another 429 that shares its statusText
	e := newTestEngine(t, m, chat.EngineOptions{Budget: budget{spent, &asked}})
	if _, _, err := ask(e, "", "hi", nil); !errors.Is(err, spent) || errors.Is(err, auth.ErrInsufficientQuota) {
		t.Fatalf("err = %v", err)
	}
	if want := []string{auth.DefaultTeam + "/app"}; !slices.Equal(asked, want) {
		t.Fatalf("budget asked about %q; want the team's app %q", asked, want)
	}
	if m.calls != 0 {
		t.Fatalf("the model was called %d times past the budget", m.calls)
	}
	e = newTestEngine(t, m, chat.EngineOptions{Budget: budget{}})
	if _, _, err := ask(e, "", "hi", nil); err != nil || m.calls != 1 {
		t.Fatalf("within budget: %v, %d calls", err, m.calls)
	}
}

// timeline records, in order, what a run's sink and usage recorder saw, so a
// test can tell whether usage was recorded before the client heard "done".
type timeline struct {
	mu    sync.Mutex
	steps []string
}

func (tl *timeline) add(s string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.steps = append(tl.steps, s)
}

func (tl *timeline) get() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.steps)
}

func kindName(k chat.EventKind) string {
	switch k {
	case chat.EventNodeStatus:
		return "node"
	case chat.EventVariables:
		return "variables"
	case chat.EventDelta:
		return "delta"
	case chat.EventError:
		return "error"
	case chat.EventDone:
		return "done"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// eventLog is a Sink that keeps every event and notes it on a timeline.
type eventLog struct {
	tl     *timeline
	events []chat.Event
	fail   func(ev chat.Event) error // when set, its error is returned from Send
}

func (s *eventLog) Send(ev chat.Event) error {
	s.events = append(s.events, ev)
	step := "event:" + kindName(ev.Kind)
	if ev.Kind == chat.EventNodeStatus {
		step += ":" + ev.Node.Name
	}
	s.tl.add(step)
	if s.fail != nil {
		return s.fail(ev)
	}
	return nil
}

func (s *eventLog) deltas() string {
	var b strings.Builder
	for _, ev := range s.events {
		if ev.Kind == chat.EventDelta {
			b.WriteString(ev.Delta)
		}
	}
	return b.String()
}

// usageTimeline is a UsageRecorder that notes each record on a timeline.
type usageTimeline struct {
	tl   *timeline
	mu   sync.Mutex
	recs []chat.UsageRecord
}

func (u *usageTimeline) RecordChatUsage(_ context.Context, r chat.UsageRecord) error {
	u.mu.Lock()
	u.recs = append(u.recs, r)
	u.mu.Unlock()
	u.tl.add("usage:" + r.Module)
	return nil
}

// fakeRetriever answers every search with the same quotes and keeps the requests.
type fakeRetriever struct {
	mu     sync.Mutex
	reqs   []chat.RetrieveRequest
	result chat.RetrieveResult
	err    error
}

func (r *fakeRetriever) Retrieve(_ context.Context, req chat.RetrieveRequest) (chat.RetrieveResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return r.result, r.err
}

// scriptModel streams pieces, then fails with err if set, and keeps the
// requests it was given.
type scriptModel struct {
	mu     sync.Mutex
	pieces []string
	usage  chat.Usage
	err    error
	block  chan struct{} // when set, wait for it (or ctx) after the first piece
	reqs   []chat.ModelRequest
}

func (m *scriptModel) Generate(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	pieces, usage, fail, block := m.pieces, m.usage, m.err, m.block
	m.mu.Unlock()
	var text strings.Builder
	for i, p := range pieces {
		if err := onToken(p); err != nil {
			return chat.ModelResult{}, err
		}
		text.WriteString(p)
		if i == 0 && block != nil {
			select {
			case <-block:
			case <-ctx.Done():
				return chat.ModelResult{}, ctx.Err()
			}
		}
	}
	if fail != nil {
		return chat.ModelResult{}, fail
	}
	return chat.ModelResult{Text: text.String(), FinishReason: "stop", Usage: usage}, nil
}

func (m *scriptModel) requests() []chat.ModelRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reqs)
}

// testTokens is shared by the tests' engines, which count as the server
// does: building the encoder takes a moment.
var testTokens = new(cl100k.Counter)

type engineFixture struct {
	e         *chat.Engine
	store     *chat.MemoryStore
	model     *scriptModel
	retriever *fakeRetriever
	usage     *usageTimeline
	tl        *timeline
}

// newEngineFixture returns an engine whose app "kb" searches datasets d1 and
// d2 and answers with the script model "script"; app "plain" has no datasets.
func newEngineFixture(t *testing.T) *engineFixture {
	t.Helper()
	f := &engineFixture{store: chat.NewMemoryStore(), tl: &timeline{},
		model:     &scriptModel{pieces: []string{"The ", "answer ", "is 42."}},
		retriever: &fakeRetriever{}}
	f.usage = &usageTimeline{tl: f.tl}
	models := new(chat.Models)
	models.Register("script", f.model)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	f.e = chat.NewEngine(chat.EngineOptions{Apps: f.store, History: f.store, Models: models,
		Retriever: f.retriever, Usage: f.usage, Tokens: testTokens})
	ctx := context.Background()
	for _, a := range []*chat.App{
		{ID: "kb", Name: "KB", Model: "script", SystemPrompt: "You help {{name}}.", DatasetIDs: []string{"d1", "d2"},
			Search: chat.SearchSettings{Limit: 3, Similarity: 0.4, Mode: "mixedRecall"}},
		{ID: "plain", Name: "Plain", Model: "script", SystemPrompt: "Be brief."},
	} {
		if err := f.e.SaveApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *engineFixture) run(ctx context.Context, req chat.Request) (*chat.Result, *eventLog, error) {
	if req.TeamID == "" {
		req.TeamID = auth.DefaultTeam
	}
	if req.KeyID == "" {
		req.KeyID = "key-1"
	}
	sink := &eventLog{tl: f.tl}
	res, err := f.e.Run(ctx, req, sink)
	return res, sink, err
}

func user(q string) []chat.Message { return []chat.Message{{Role: chat.RoleUser, Content: q}} }

func TestRunEventOrder(t *testing.T) {
	f := newEngineFixture(t)
	f.retriever.result = chat.RetrieveResult{Quotes: []chat.Quote{{ID: "q1", Q: "question", A: "42"}}, Model: "embed", Tokens: 4}
	res, sink, err := f.run(context.Background(), chat.Request{AppID: "kb", ChatID: "c1",
		Messages: user("what is the answer?"), Variables: map[string]any{"name": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"event:variables", "event:node:KB Search", "usage:KB Search", "event:node:AI Chat",
		"event:delta", "event:delta", "event:delta", "usage:AI Chat", "event:done"}
	if got := f.tl.get(); !slices.Equal(got, want) {
		t.Fatalf("timeline\n got %v\nwant %v", got, want)
	}
	for _, ev := range sink.events {
		if ev.Kind == chat.EventNodeStatus && ev.Node.Status != "running" {
			t.Fatalf("node status %+v", ev.Node)
		}
	}
	if v := sink.events[0].Variables; v["name"] != "Ada" || len(v) != 1 {
		t.Fatalf("variables event %v", v)
	}
	done := sink.events[len(sink.events)-1]
	if done.Result != res {
		t.Fatal("EventDone does not carry the result Run returns")
	}
	if !strings.HasPrefix(res.ID, "chatcmpl-") || res.AppID != "kb" || res.Model != "script" || res.ChatID != "c1" ||
		res.Text != "The answer is 42." || sink.deltas() != res.Text || res.FinishReason != "stop" || res.Created.IsZero() {
		t.Fatalf("result %+v", res)
	}
	if len(res.Responses) != 2 || res.Responses[0].ModuleName != "KB Search" || res.Responses[1].ModuleName != "AI Chat" {
		t.Fatalf("responses %+v", res.Responses)
	}

	// Stateless: no variables event, no KB Search for an app without datasets.
	f.tl = &timeline{}
	f.usage.tl = f.tl
	_, _, err = f.run(context.Background(), chat.Request{AppID: "plain", Messages: user("hi"), Variables: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.tl.get(), []string{"event:node:AI Chat", "event:delta", "event:delta", "event:delta", "usage:AI Chat", "event:done"}; !slices.Equal(got, want) {
		t.Fatalf("stateless timeline %v, want %v", got, want)
	}
}

func TestRunSystemPromptVariables(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	if err := f.e.SaveApp(ctx, &chat.App{ID: "vars", Name: "vars", Model: "script",
		SystemPrompt: "Hi {{ name }} from {{city}}, age {{age}}, member {{member}}, {{none}}{{unknown}} stays; {{ broken"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.run(ctx, chat.Request{AppID: "vars", ChatID: "v1", Messages: user("q1"),
		Variables: map[string]any{"name": "Ada", "city": "北京", "age": 36, "member": true, "none": nil}})
	if err != nil {
		t.Fatal(err)
	}
	first := f.model.requests()[0].Messages[0]
	if want := "Hi Ada from 北京, age 36, member true, {{unknown}} stays; {{ broken"; first.Role != chat.RoleSystem || first.Content != want {
		t.Fatalf("system prompt %q, want %q", first.Content, want)
	}

	// The conversation keeps its variables; a request overrides one of them
	// and the change is announced.
	_, sink, err := f.run(ctx, chat.Request{AppID: "vars", ChatID: "v1", Messages: user("q2")})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.model.requests()[1].Messages[0].Content; got != first.Content {
		t.Fatalf("second turn forgot the variables: %q", got)
	}
	if sink.events[0].Kind == chat.EventVariables {
		t.Fatal("variables event without a change")
	}
	res, sink, err := f.run(ctx, chat.Request{AppID: "vars", ChatID: "v1", Messages: user("q3"), Variables: map[string]any{"city": "Paris"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.model.requests()[2].Messages[0].Content; !strings.HasPrefix(got, "Hi Ada from Paris, age 36") {
		t.Fatalf("third turn: %q", got)
	}
	if ev := sink.events[0]; ev.Kind != chat.EventVariables || ev.Variables["city"] != "Paris" || ev.Variables["name"] != "Ada" {
		t.Fatalf("first event %+v", ev)
	}
	if res.Variables["city"] != "Paris" || res.Variables["name"] != "Ada" {
		t.Fatalf("result variables %v", res.Variables)
	}
}

func TestRunHistory(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	if _, _, err := f.run(ctx, chat.Request{AppID: "plain", ChatID: "c1", Messages: user("first question\nsecond line")}); err != nil {
		t.Fatal(err)
	}
	conv, recs, err := f.store.Conversation(ctx, auth.DefaultTeam, "plain", "c1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if conv.Title != "first question" || conv.KeyID != "key-1" || conv.Messages != 2 || conv.CreateTime.IsZero() || conv.UpdateTime.IsZero() {
		t.Fatalf("conversation %+v", conv)
	}
	if len(recs) != 2 || recs[0].Obj != "Human" || recs[0].Value != "first question\nsecond line" ||
		recs[1].Obj != "AI" || recs[1].Value != "The answer is 42." || len(recs[1].ResponseData) != 1 || recs[0].DataID == recs[1].DataID {
		t.Fatalf("records %+v", recs)
	}

	// The next turn sees the stored one; the request's earlier messages are
	// ignored, its last one is the question.
	_, _, err = f.run(ctx, chat.Request{AppID: "plain", ChatID: "c1", Messages: []chat.Message{
		{Role: chat.RoleUser, Content: "ignored"}, {Role: chat.RoleAssistant, Content: "ignored too"}, {Role: chat.RoleUser, Content: "again"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.model.requests()[1].Messages
	want := []chat.Message{{Role: chat.RoleSystem, Content: "Be brief."}, {Role: chat.RoleUser, Content: "first question\nsecond line"},
		{Role: chat.RoleAssistant, Content: "The answer is 42."}, {Role: chat.RoleUser, Content: "again"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("second turn's messages\n got %+v\nwant %+v", got, want)
	}
	if _, total, _ := f.store.Records(ctx, auth.DefaultTeam, "plain", "c1", 0, 0); total != 4 {
		t.Fatalf("records after two turns: %d", total)
	}

	// Another chatId starts afresh.
	if _, _, err := f.run(ctx, chat.Request{AppID: "plain", ChatID: "c2", Messages: user("other")}); err != nil {
		t.Fatal(err)
	}
	if got := f.model.requests()[2].Messages; len(got) != 2 || got[1].Content != "other" {
		t.Fatalf("new conversation's messages %+v", got)
	}
	// A history limit keeps only the last messages.
	f.e = chat.NewEngine(chat.EngineOptions{Apps: f.store, History: f.store, Models: modelsWith("script", f.model), HistoryLimit: 2, Tokens: testTokens})
	if _, _, err := f.run(ctx, chat.Request{AppID: "plain", ChatID: "c1", Messages: user("third")}); err != nil {
		t.Fatal(err)
	}
	if got := f.model.requests()[3].Messages; len(got) != 4 || got[1].Content != "again" || got[3].Content != "third" {
		t.Fatalf("history limit 2: %+v", got)
	}
}

func modelsWith(name string, m chat.Model) *chat.Models {
	ms := new(chat.Models)
	ms.Register(name, m)
	return ms
}

func TestRunStatelessStoresNothing(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	msgs := []chat.Message{{Role: chat.RoleSystem, Content: "client system"}, {Role: chat.RoleUser, Content: "q1"},
		{Role: chat.RoleAssistant, Content: "a1"}, {Role: chat.RoleUser, Content: "q2"}}
	res, _, err := f.run(ctx, chat.Request{AppID: "plain", Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChatID != "" {
		t.Fatalf("chatId %q", res.ChatID)
	}
	got := f.model.requests()[0]
	if want := append([]chat.Message{{Role: chat.RoleSystem, Content: "Be brief."}}, msgs...); !reflect.DeepEqual(got.Messages, want) {
		t.Fatalf("model messages %+v", got.Messages)
	}
	if got.Question != "q2" {
		t.Fatalf("question %q", got.Question)
	}
	if _, total, err := f.store.Conversations(ctx, auth.DefaultTeam, "plain", 0, 100); err != nil || total != 0 {
		t.Fatalf("a stateless chat stored %d conversations (%v)", total, err)
	}
}

func TestRunModelErrorStoresNothing(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	// one good turn, so there is a conversation to leave untouched
	if _, _, err := f.run(ctx, chat.Request{AppID: "plain", ChatID: "c1", Messages: user("ok")}); err != nil {
		t.Fatal(err)
	}
	f.model.err = errors.New("connection reset")
	for _, chatID := range []string{"c1", "fresh"} {
		f.usage.recs = nil
		res, sink, err := f.run(ctx, chat.Request{AppID: "plain", ChatID: chatID, Messages: user("fails")})
		var ue *chat.UpstreamError
		if res != nil || !errors.As(err, &ue) || ue.Provider != "script" || !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("%s: Run = %v, %v", chatID, res, err)
		}
		last := sink.events[len(sink.events)-1]
		if last.Kind != chat.EventError || !errors.Is(last.Err, ue.Err) {
			t.Fatalf("%s: last event %+v", chatID, last)
		}
		if sink.deltas() != "The answer is 42." {
			t.Fatalf("deltas before the failure: %q", sink.deltas())
		}
		for _, ev := range sink.events {
			if ev.Kind == chat.EventDone {
				t.Fatal("EventDone after a failure")
			}
		}
		if len(f.usage.recs) != 0 {
			t.Fatalf("usage recorded for a failed call: %+v", f.usage.recs)
		}
	}
	if _, total, _ := f.store.Records(ctx, auth.DefaultTeam, "plain", "c1", 0, 0); total != 2 {
		t.Fatalf("a failed turn changed the conversation: %d records", total)
	}
	if _, _, err := f.store.Conversation(ctx, auth.DefaultTeam, "plain", "fresh", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("a failed first turn created a conversation: %v", err)
	}
}

func TestRunSinkErrorAndCancel(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	gone := errors.New("client gone")
	sink := &eventLog{tl: f.tl, fail: func(ev chat.Event) error {
		if ev.Kind == chat.EventDelta {
			return gone
		}
		return nil
	}}
	_, err := f.e.Run(ctx, chat.Request{TeamID: auth.DefaultTeam, AppID: "plain", ChatID: "s1", Messages: user("q")}, sink)
	if !errors.Is(err, gone) {
		t.Fatalf("Run = %v, want the sink's error", err)
	}
	if last := sink.events[len(sink.events)-1]; last.Kind != chat.EventDelta || sink.deltas() != "The " {
		t.Fatalf("the run went on after the sink failed: %+v", sink.events)
	}

	// A cancelled context stops the model; nothing is stored.
	f.model.block = make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	sink = &eventLog{tl: f.tl, fail: func(ev chat.Event) error {
		if ev.Kind == chat.EventDelta {
			cancel()
		}
		return nil
	}}
	_, err = f.e.Run(cctx, chat.Request{TeamID: auth.DefaultTeam, AppID: "plain", ChatID: "s2", Messages: user("q")}, sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run = %v", err)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, _, err := f.store.Conversation(ctx, auth.DefaultTeam, "plain", id, 0); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("%s was stored: %v", id, err)
		}
	}
}

// tiktokenCount counts with tiktoken-go's own encoder, read from the offline loader.
func tiktokenCount(t *testing.T) func(string) int {
	t.Helper()
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	enc, err := tiktoken.GetEncoding("cl100k_base")
	if err != nil {
		t.Fatal(err)
	}
	return func(s string) int { return len(enc.Encode(s, nil, nil)) }
}

func TestRunUsage(t *testing.T) {
	count := tiktokenCount(t)
	f := newEngineFixture(t)
	ctx := context.Background()
	res, _, err := f.run(ctx, chat.Request{AppID: "plain", KeyID: "key-9", ChatID: "u1",
		Messages: user("How many tokens does this question have?")})
	if err != nil {
		t.Fatal(err)
	}
	// OpenAI's count: 3 priming the reply, and per message 3 of framing,
	// the role's one and the content's.
	wantIn := 3 + (3 + 1 + count("Be brief.")) + (3 + 1 + count("How many tokens does this question have?"))
	wantOut := count("The answer is 42.")
	if len(f.usage.recs) != 1 {
		t.Fatalf("usage %+v", f.usage.recs)
	}
	u := f.usage.recs[0]
	if u.TeamID != auth.DefaultTeam || u.KeyID != "key-9" || u.AppID != "plain" || u.ChatID != "u1" || u.Module != "AI Chat" ||
		u.Model != "script" || u.InputTokens != wantIn || u.OutputTokens != wantOut || u.Time.IsZero() {
		t.Fatalf("usage %+v, want %d in, %d out", u, wantIn, wantOut)
	}
	if res.Usage != (chat.Usage{PromptTokens: wantIn, CompletionTokens: wantOut, TotalTokens: wantIn + wantOut}) {
		t.Fatalf("result usage %+v", res.Usage)
	}
	if ai := res.Responses[0]; ai.Tokens != wantIn+wantOut || ai.Question != "How many tokens does this question have?" ||
		ai.Answer != res.Text || len(ai.CompleteMessages) != 3 || ai.CompleteMessages[0].Obj != "System" ||
		ai.CompleteMessages[1].Obj != "Human" || ai.CompleteMessages[2] != (chat.CompleteMessage{Obj: "AI", Value: res.Text}) {
		t.Fatalf("AI Chat response %+v", ai)
	}

	// A provider's own count wins over the tokenizer's.
	f.model.usage = chat.Usage{PromptTokens: 11, CompletionTokens: 7}
	f.usage.recs = nil
	res, _, err = f.run(ctx, chat.Request{AppID: "plain", Messages: user("q")})
	if err != nil {
		t.Fatal(err)
	}
	if u := f.usage.recs[0]; u.InputTokens != 11 || u.OutputTokens != 7 || res.Usage.TotalTokens != 18 {
		t.Fatalf("provider usage: %+v, %+v", u, res.Usage)
	}
}

func TestRunRetriever(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	quotes := []chat.Quote{{DatasetID: "d1", ID: "a", Q: "What is the answer?", A: "42", Source: "guide.txt", Score: 0.9},
		{DatasetID: "d2", ID: "b", Q: "Who asked?", Score: 0.5}}
	f.retriever.result = chat.RetrieveResult{Quotes: quotes, Model: "embed-x", Tokens: 6}
	res, _, err := f.run(ctx, chat.Request{AppID: "kb", KeyID: "key-3", Messages: user("what is it?")})
	if err != nil {
		t.Fatal(err)
	}
	want := chat.RetrieveRequest{TeamID: auth.DefaultTeam, DatasetIDs: []string{"d1", "d2"}, Query: "what is it?",
		Limit: 3, Similarity: 0.4, Mode: "mixedRecall", BillKeyID: "key-3"}
	if len(f.retriever.reqs) != 1 || !reflect.DeepEqual(f.retriever.reqs[0], want) {
		t.Fatalf("retrieve requests %+v", f.retriever.reqs)
	}
	kb := res.Responses[0]
	if kb.ModuleName != "KB Search" || kb.Model != "embed-x" || kb.Tokens != 6 || kb.Similarity == nil || *kb.Similarity != 0.4 ||
		kb.Limit != 3 || kb.SearchMode != "mixedRecall" || !slices.Equal(kb.QuoteList, quotes) {
		t.Fatalf("KB Search response %+v", kb)
	}
	if ai := res.Responses[1]; !slices.Equal(ai.QuoteList, quotes) {
		t.Fatalf("AI Chat quotes %+v", ai.QuoteList)
	}
	mreq := f.model.requests()[0]
	if !slices.Equal(mreq.Quotes, quotes) || len(mreq.Messages) != 3 || mreq.Messages[1].Role != chat.RoleSystem ||
		!strings.Contains(mreq.Messages[1].Content, "1. [What is the answer?\n42]\n2. [Who asked?]") ||
		!strings.HasPrefix(mreq.Messages[1].Content, "Use the following knowledge-base content") {
		t.Fatalf("model request %+v", mreq)
	}
	var kbUsage []chat.UsageRecord
	for _, u := range f.usage.recs {
		if u.Module == "KB Search" {
			kbUsage = append(kbUsage, u)
		}
	}
	if len(kbUsage) != 1 || kbUsage[0].Model != "embed-x" || kbUsage[0].InputTokens != 6 || kbUsage[0].KeyID != "key-3" || kbUsage[0].AppID != "kb" {
		t.Fatalf("KB Search usage %+v", kbUsage)
	}

	// The default limit is 5; an app without datasets is never searched.
	if err := f.e.SaveApp(ctx, &chat.App{ID: "kb5", Name: "kb5", Model: "script", DatasetIDs: []string{"d9"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.run(ctx, chat.Request{AppID: "kb5", Messages: user("q")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.run(ctx, chat.Request{AppID: "plain", Messages: user("q")}); err != nil {
		t.Fatal(err)
	}
	if len(f.retriever.reqs) != 2 || f.retriever.reqs[1].Limit != 5 || f.retriever.reqs[1].Mode != "" {
		t.Fatalf("retrieve requests %+v", f.retriever.reqs)
	}

	// A failed search fails the run before the model is asked.
	f.retriever.err = errors.New("index offline")
	calls := len(f.model.requests())
	if _, _, err := f.run(ctx, chat.Request{AppID: "kb", ChatID: "r1", Messages: user("q")}); err == nil || !strings.Contains(err.Error(), "index offline") {
		t.Fatalf("failed search: %v", err)
	}
	if len(f.model.requests()) != calls {
		t.Fatal("the model was asked after a failed search")
	}
}

func TestRunExtractiveEmptyAnswer(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	for _, a := range []*chat.App{
		{ID: "ex", Name: "ex", Model: chat.ExtractiveModelName, DatasetIDs: []string{"d1"}, EmptyAnswer: "Nothing on that, sorry."},
		{ID: "ex-default", Name: "ex", Model: chat.ExtractiveModelName, DatasetIDs: []string{"d1"}},
	} {
		if err := f.e.SaveApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	res, sink, err := f.run(ctx, chat.Request{AppID: "ex", Messages: user("what about the weather?")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Nothing on that, sorry." || sink.deltas() != res.Text {
		t.Fatalf("empty answer %q (streamed %q)", res.Text, sink.deltas())
	}
	if n := len(sink.events); n < 6 { // node x2, one delta per word, done
		t.Fatalf("the empty answer was not streamed word by word: %d events", n)
	}
	if res, _, err = f.run(ctx, chat.Request{AppID: "ex-default", Messages: user("q")}); err != nil || res.Text != chat.DefaultEmptyAnswer {
		t.Fatalf("default empty answer %q, %v", res.Text, err)
	}

	// With quotes, the best-matching one answers.
	f.retriever.result.Quotes = []chat.Quote{{Q: "How tall is the tower?", A: "It is 330 metres tall.", Score: 0.3},
		{Q: "When does the museum open?", A: "At nine.", Score: 0.9}}
	if res, _, err = f.run(ctx, chat.Request{AppID: "ex", Messages: user("how tall is the tower")}); err != nil || res.Text != "It is 330 metres tall." {
		t.Fatalf("extractive answer %q, %v", res.Text, err)
	}
}

func TestRunErrors(t *testing.T) {
	f := newEngineFixture(t)
	ctx := context.Background()
	if err := f.store.PutApp(ctx, &chat.App{ID: "theirs", TeamID: "other", Name: "x", Model: "script"}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutApp(ctx, &chat.App{ID: "nomodel", TeamID: auth.DefaultTeam, Name: "x", Model: "gone"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  chat.Request
		want error
	}{
		{"unknown app", chat.Request{AppID: "nope", Messages: user("q")}, chat.ErrAppNotFound},
		{"another team's app", chat.Request{AppID: "theirs", Messages: user("q")}, chat.ErrAppNotFound},
		{"unknown model", chat.Request{AppID: "nomodel", Messages: user("q")}, chat.ErrUnknownModel},
		{"no messages", chat.Request{AppID: "plain"}, chat.ErrNoQuestion},
		{"last message not the user's", chat.Request{AppID: "plain", ChatID: "e1",
			Messages: []chat.Message{{Role: chat.RoleUser, Content: "q"}, {Role: chat.RoleAssistant, Content: "a"}}}, apierror.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, sink, err := f.run(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if len(sink.events) != 1 || sink.events[0].Kind != chat.EventError {
				t.Fatalf("events %+v", sink.events)
			}
		})
	}
	if n := len(f.model.requests()); n != 0 {
		t.Fatalf("the model was called %d times", n)
	}
}
