package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

func TestCountMessagesContext(t *testing.T) {
	msgs := []chat.Message{{Role: chat.RoleSystem, Content: "Be brief."}, {Role: chat.RoleUser, Content: strings.Repeat("word", 50000)}}
	n, err := testTokens.CountMessagesContext(context.Background(), msgs)
	if want := 3 + (3 + testTokens.Count(msgs[0].Content) + 1) + (3 + testTokens.Count(msgs[1].Content) + 1); err != nil || n != want {
		t.Fatalf("CountMessagesContext = %d, %v; want %d", n, err, want)
	}
	if got := testTokens.CountMessages(msgs); got != n {
		t.Fatalf("CountMessages = %d, CountMessagesContext %d", got, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := testTokens.CountMessagesContext(ctx, msgs); !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("on a cancelled context: %d, %v", n, err)
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
