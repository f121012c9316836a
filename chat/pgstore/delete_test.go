package pgstore_test

import (
	"context"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// Deleting a conversation or an app leaves no row of what it deleted
// behind, and only that.
func TestDeleteLeavesNoRows(t *testing.T) {
	pool := pgtest.Pool(t)
	s := open(t, pool)
	ctx := context.Background()
	count := func(table string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, app := range []string{"a", "b"} {
		if err := s.PutApp(ctx, &chat.App{ID: app, TeamID: "t", Name: app}); err != nil {
			t.Fatal(err)
		}
		for _, chatID := range []string{"c1", "c2"} {
			c := &chat.Conversation{TeamID: "t", AppID: app, ChatID: chatID}
			if err := s.AppendTurn(ctx, c, []chat.Record{{Obj: "Human"}, {Obj: "AI"}, {Obj: "Human"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.DeleteConversation(ctx, "t", "a", "c1"); err != nil {
		t.Fatal(err)
	}
	if c, r := count("chat_conversations"), count("chat_records"); c != 3 || r != 9 {
		t.Fatalf("after deleting a conversation: %d conversations, %d records; want 3, 9", c, r)
	}
	if err := s.DeleteApp(ctx, "t", "b"); err != nil {
		t.Fatal(err)
	}
	if a, c, r := count("chat_apps"), count("chat_conversations"), count("chat_records"); a != 1 || c != 1 || r != 3 {
		t.Fatalf("after deleting an app: %d apps, %d conversations, %d records; want 1, 1, 3", a, c, r)
	}
}
