package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/tokens"
)

func TestCountMessagesContext(t *testing.T) {
	msgs := []chat.Message{{Role: chat.RoleSystem, Content: "Be brief."}, {Role: chat.RoleUser, Content: strings.Repeat("word", 50000)}}
	n, err := chat.CountMessages(context.Background(), testTokens, msgs)
	if want := 3 + (3 + testTokens.Count(msgs[0].Content) + 1) + (3 + testTokens.Count(msgs[1].Content) + 1); err != nil || n != want {
		t.Fatalf("CountMessages = %d, %v; want %d", n, err, want)
	}
	// a Tokenizer without CountContext counts the same
	if got, err := chat.CountMessages(context.Background(), tokens.CounterFunc(testTokens.Count), msgs); err != nil || got != n {
		t.Fatalf("CountMessages with a plain Tokenizer = %d, %v; with a ContextTokenizer %d", got, err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tok := range []tokens.Counter{testTokens, tokens.CounterFunc(testTokens.Count), tokens.Estimate{}} {
		if n, err := chat.CountMessages(ctx, tok, msgs); !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("%T on a cancelled context: %d, %v", tok, n, err)
		}
	}
}

// An engine without a Tokenizer estimates: it needs no tables, and a
// model's own usage still wins.
func TestEngineDefaultTokenizer(t *testing.T) {
	store := chat.NewMemoryStore()
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: modelsWith("script", &scriptModel{pieces: []string{"Four score"}})})
	if err := e.SaveApp(context.Background(), &chat.App{ID: "a", Name: "a", Model: "script"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), chat.Request{TeamID: auth.DefaultTeam, AppID: "a", Messages: user("What is it?")},
		chat.SinkFunc(func(chat.Event) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	var est tokens.Estimate
	if want := (chat.Usage{PromptTokens: 3 + 3 + est.Count("What is it?") + 1, CompletionTokens: est.Count("Four score")}); res.Usage.PromptTokens != want.PromptTokens ||
		res.Usage.CompletionTokens != want.CompletionTokens {
		t.Fatalf("usage %+v, want %+v", res.Usage, want)
	}
}

// When the client leaves as the model finishes, the prompt is not counted
// on: the run ends with the context's error, and nothing is stored or
// billed.
func TestRunClientLeavesBeforeCounting(t *testing.T) {
	f := newEngineFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	last := f.model.pieces[len(f.model.pieces)-1]
	sink := &eventLog{tl: f.tl, fail: func(ev chat.Event) error {
		if ev.Kind == chat.EventDelta && ev.Delta == last {
			cancel()
		}
		return nil
	}}
	_, err := f.e.Run(ctx, chat.Request{TeamID: auth.DefaultTeam, AppID: "plain", ChatID: "gone",
		Messages: user(strings.Repeat("long question ", 10000))}, sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want the context's error", err)
	}
	if sink.deltas() != strings.Join(f.model.pieces, "") {
		t.Fatalf("the model did not finish: %q", sink.deltas())
	}
	if _, _, err := f.store.Conversation(context.Background(), auth.DefaultTeam, "plain", "gone", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("the turn was stored: %v", err)
	}
	if len(f.usage.recs) != 0 {
		t.Fatalf("usage recorded: %+v", f.usage.recs)
	}
}
