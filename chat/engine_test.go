package chat_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
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

type budget struct{ err error }

func (b budget) CheckBudget(context.Context, string, float64) error { return b.err }

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

func newTestEngine(t *testing.T, m chat.Model, cfg chat.EngineConfig) *chat.Engine {
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
	e := newTestEngine(t, m, chat.EngineConfig{Usage: usage,
		Price: func(model string, in, out int) float64 { return float64(in+out) / 1000 }})

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
	spent := &auth.Error{Status: 429, Code: "insufficient_quota", Message: "spent"}
	e := newTestEngine(t, m, chat.EngineConfig{Budget: budget{spent}})
	if _, _, err := ask(e, "", "hi", nil); !errors.Is(err, auth.ErrInsufficientQuota) {
		t.Fatalf("err = %v", err)
	}
	if m.calls != 0 {
		t.Fatalf("the model was called %d times past the budget", m.calls)
	}
	e = newTestEngine(t, m, chat.EngineConfig{Budget: budget{nil}})
	if _, _, err := ask(e, "", "hi", nil); err != nil || m.calls != 1 {
		t.Fatalf("within budget: %v, %d calls", err, m.calls)
	}
}
