package chat_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/chat"
)

type chatStore interface {
	chat.AppStore
	chat.HistoryStore
}

// stores runs fn on both implementations; reopen returns a store on the
// same data (the same one for memory).
func stores(t *testing.T, fn func(t *testing.T, s chatStore, reopen func() chatStore)) {
	t.Run("memory", func(t *testing.T) {
		s := chat.NewMemoryStore()
		fn(t, s, func() chatStore { return s })
	})
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "chat.db")
		var db *bbolt.DB
		open := func() chatStore {
			if db != nil {
				db.Close()
			}
			var err error
			if db, err = bbolt.Open(path, 0o600, nil); err != nil {
				t.Fatal(err)
			}
			s, err := chat.NewBoltStore(db)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		t.Cleanup(func() { db.Close() })
		fn(t, open(), open)
	})
}

func TestAppStore(t *testing.T) {
	ctx := context.Background()
	stores(t, func(t *testing.T, s chatStore, reopen func() chatStore) {
		for _, a := range []*chat.App{{ID: "b", TeamID: "t1", Name: "B", DatasetIDs: []string{"d1"}},
			{ID: "a", TeamID: "t1", Name: "A"}, {ID: "c", TeamID: "t2", Name: "C"}} {
			if err := s.PutApp(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.App(ctx, "b")
		if err != nil || got.Name != "B" || got.DatasetIDs[0] != "d1" {
			t.Fatalf("App: %+v %v", got, err)
		}
		got.DatasetIDs[0] = "changed"
		if again, _ := s.App(ctx, "b"); again.DatasetIDs[0] != "d1" {
			t.Fatal("App returned the stored value, not a copy")
		}
		apps, err := s.Apps(ctx, "t1")
		if err != nil || len(apps) != 2 || apps[0].ID != "a" || apps[1].ID != "b" {
			t.Fatalf("Apps(t1) = %v, %v", apps, err)
		}
		if all, _ := s.Apps(ctx, ""); len(all) != 3 {
			t.Fatalf("Apps(all) = %d", len(all))
		}
		if _, err := s.App(ctx, "zz"); !errors.Is(err, chat.ErrAppNotFound) {
			t.Fatalf("missing app: %v", err)
		}
		if err := s.DeleteApp(ctx, "zz"); !errors.Is(err, chat.ErrAppNotFound) {
			t.Fatalf("delete missing app: %v", err)
		}
		s = reopen()
		if err := s.DeleteApp(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if apps, _ := s.Apps(ctx, "t1"); len(apps) != 1 || apps[0].ID != "b" {
			t.Fatalf("after delete: %v", apps)
		}
	})
}

func TestHistoryStore(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stores(t, func(t *testing.T, s chatStore, reopen func() chatStore) {
		if err := s.PutApp(ctx, &chat.App{ID: "app", TeamID: "t", Name: "app"}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			chatID := fmt.Sprintf("c%d", i)
			c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: chatID, Title: chatID, CreateTime: t0, UpdateTime: t0.Add(time.Duration(i) * time.Minute)}
			for turn := range 2 {
				c.Messages += 2
				recs := []chat.Record{{DataID: fmt.Sprintf("%s-%dq", chatID, turn), Obj: "Human", Value: fmt.Sprintf("q%d", turn)},
					{DataID: fmt.Sprintf("%s-%da", chatID, turn), Obj: "AI", Value: fmt.Sprintf("a%d", turn)}}
				if err := s.AppendTurn(ctx, c, recs); err != nil {
					t.Fatal(err)
				}
			}
		}
		s = reopen()
		conv, recs, err := s.Conversation(ctx, "t", "app", "c1", 3)
		if err != nil || conv.Messages != 4 || len(recs) != 3 || recs[0].Value != "a0" || recs[2].Value != "a1" {
			t.Fatalf("Conversation: %+v %+v %v", conv, recs, err)
		}
		convs, total, err := s.Conversations(ctx, "t", "app", 0, 2)
		if err != nil || total != 3 || len(convs) != 2 || convs[0].ChatID != "c2" || convs[1].ChatID != "c1" {
			t.Fatalf("Conversations: %+v %d %v", convs, total, err)
		}
		page, total, err := s.Records(ctx, "t", "app", "c0", 1, 2)
		if err != nil || total != 4 || len(page) != 2 || page[0].Value != "a0" || page[1].Value != "q1" {
			t.Fatalf("Records: %+v %d %v", page, total, err)
		}
		if _, _, err := s.Conversation(ctx, "other-team", "app", "c1", 10); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("another team's conversation: %v", err)
		}
		if err := s.DeleteConversation(ctx, "t", "app", "c1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteConversation(ctx, "t", "app", "c1"); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, total, _ := s.Records(ctx, "t", "app", "c1", 0, 10); total != 0 {
			t.Fatalf("records of a deleted conversation: %d", total)
		}
		if err := s.DeleteApp(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		if _, total, _ := s.Conversations(ctx, "t", "app", 0, 10); total != 0 {
			t.Fatalf("conversations of a deleted app: %d", total)
		}
	})
}
