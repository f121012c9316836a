package pgstore

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/chat"
)

// A Postgres that cannot be reached is storage_unavailable (503) from
// every method, never a missing app or conversation.
func TestUnreachable(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://u:pw@127.0.0.1:1/db?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	if _, err := New(ctx, pool); !errors.Is(err, apierror.ErrStorageUnavailable) {
		t.Fatalf("New: %v", err)
	}
	s := &Store{pool: pool}
	c := &chat.Conversation{TeamID: "t", AppID: "a", ChatID: "c"}
	for name, call := range map[string]func() error{
		"PutApp":    func() error { return s.PutApp(ctx, &chat.App{ID: "a", TeamID: "t"}) },
		"App":       func() error { _, err := s.App(ctx, "t", "a"); return err },
		"Apps":      func() error { _, err := s.Apps(ctx, ""); return err },
		"DeleteApp": func() error { return s.DeleteApp(ctx, "t", "a") },
		"Conversation": func() error {
			_, _, err := s.Conversation(ctx, "t", "a", "c", 10)
			return err
		},
		"AppendTurn":         func() error { return s.AppendTurn(ctx, c, []chat.Record{{Obj: "Human"}}) },
		"Conversations":      func() error { _, _, err := s.Conversations(ctx, "t", "a", 0, 10); return err },
		"Records":            func() error { _, _, err := s.Records(ctx, "t", "a", "c", 0, 10); return err },
		"DeleteConversation": func() error { return s.DeleteConversation(ctx, "t", "a", "c") },
	} {
		if err := call(); !errors.Is(err, apierror.ErrStorageUnavailable) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
