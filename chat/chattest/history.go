package chattest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

func testHistoryBasics(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
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
	if err := s.DeleteApp(ctx, "t", "app"); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := s.Conversations(ctx, "t", "app", 0, 10); total != 0 {
		t.Fatalf("conversations of a deleted app: %d", total)
	}
}

func testAppendAndLoad(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	c := conv("t", "app", "c", st0)
	c.Messages = 99 // the store counts, not the caller
	mustAppend(t, s, c, turn(0, "c"))
	// "c1" shares a prefix with "c": neither may see the other's records
	mustAppend(t, s, conv("t", "app", "c1", st0), turn(0, "c1"))
	c.Title, c.UpdateTime, c.Variables = "renamed", st0.Add(time.Hour), map[string]any{"name": "Bob", "n": 2.0}
	mustAppend(t, s, c, turn(1, "c"))

	got, recs, err := s.Conversation(ctx, "t", "app", "c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Messages != 4 || got.Title != "renamed" || !got.UpdateTime.Equal(st0.Add(time.Hour)) || !got.CreateTime.Equal(st0) ||
		got.KeyID != "k" || got.Variables["name"] != "Bob" || got.Variables["n"] != 2.0 {
		t.Fatalf("conversation %+v", got)
	}
	if want := []string{"c q0", "c a0", "c q1", "c a1"}; !slices.Equal(values(recs), want) {
		t.Fatalf("records %v, want %v", values(recs), want)
	}
	if r := recs[3]; r.DataID != "c-a1" || !r.Time.Equal(st0.Add(time.Second)) || len(r.ResponseData) != 1 ||
		r.ResponseData[0].Answer != "c a1" || r.ResponseData[0].QuoteList[0].Q != "quote" {
		t.Fatalf("last record %+v", r)
	}
	for limit, want := range map[int][]string{1: {"c a1"}, 3: {"c a0", "c q1", "c a1"}, 4: {"c q0", "c a0", "c q1", "c a1"}, 10: {"c q0", "c a0", "c q1", "c a1"}} {
		if _, recs, err := s.Conversation(ctx, "t", "app", "c", limit); err != nil || !slices.Equal(values(recs), want) {
			t.Fatalf("limit %d: %v %v, want %v", limit, values(recs), err, want)
		}
	}
	if got, recs, err := s.Conversation(ctx, "t", "app", "c1", 0); err != nil || got.Messages != 2 || !slices.Equal(values(recs), []string{"c1 q0", "c1 a0"}) {
		t.Fatalf("c1: %+v %v %v", got, values(recs), err)
	}
}

func testConversationsPaging(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	// c0 oldest ... c4 newest; "tie-a" and "tie-b" share a time and sort by id
	for i := range 5 {
		mustAppend(t, s, conv("t", "app", fmt.Sprintf("c%d", i), st0.Add(time.Duration(i)*time.Minute)), turn(0, "x"))
	}
	mustAppend(t, s, conv("t", "app", "tie-b", st0.Add(-time.Hour)), turn(0, "x"))
	mustAppend(t, s, conv("t", "app", "tie-a", st0.Add(-time.Hour)), turn(0, "x"))
	// other apps and teams are not listed
	mustAppend(t, s, conv("t", "app2", "z", st0.Add(time.Hour)), turn(0, "x"))
	mustAppend(t, s, conv("t", "ap", "z", st0.Add(time.Hour)), turn(0, "x"))
	mustAppend(t, s, conv("u", "app", "z", st0.Add(time.Hour)), turn(0, "x"))

	ids := func(cs []chat.Conversation) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.ChatID
		}
		return out
	}
	all := []string{"c4", "c3", "c2", "c1", "c0", "tie-a", "tie-b"}
	for _, p := range []struct{ offset, limit, lo, hi int }{
		{0, 2, 0, 2}, {2, 2, 2, 4}, {6, 2, 6, 7}, {7, 2, 7, 7}, {100, 2, 7, 7}, {0, 0, 0, 7}, {3, 0, 3, 7}, {0, 100, 0, 7},
	} {
		got, total, err := s.Conversations(ctx, "t", "app", p.offset, p.limit)
		if err != nil || total != 7 || !slices.Equal(ids(got), all[p.lo:p.hi]) {
			t.Fatalf("offset %d limit %d: %v total %d %v, want %v", p.offset, p.limit, ids(got), total, err, all[p.lo:p.hi])
		}
	}
	got, total, err := s.Conversations(ctx, "t", "nothing", 0, 10)
	if err != nil || total != 0 || len(got) != 0 {
		t.Fatalf("an app without conversations: %v %d %v", got, total, err)
	}
	if got, _, _ := s.Conversations(ctx, "t", "app", 0, 1); got[0].Messages != 2 || got[0].Title != "title c4" || got[0].Variables["name"] != "Ada" {
		t.Fatalf("listed conversation %+v", got[0])
	}
}

func testRecordsPaging(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	c := conv("t", "app", "c", st0)
	var all []string
	for i := range 4 {
		mustAppend(t, s, c, turn(i, "c"))
		all = append(all, fmt.Sprintf("c q%d", i), fmt.Sprintf("c a%d", i))
	}
	mustAppend(t, s, conv("t", "app", "c1", st0), turn(0, "c1"))
	for _, p := range []struct{ offset, limit, lo, hi int }{
		{0, 3, 0, 3}, {3, 3, 3, 6}, {6, 3, 6, 8}, {8, 3, 8, 8}, {100, 3, 8, 8}, {0, 0, 0, 8}, {5, 0, 5, 8}, {1, 1, 1, 2},
	} {
		got, total, err := s.Records(ctx, "t", "app", "c", p.offset, p.limit)
		if err != nil || total != 8 || !slices.Equal(values(got), all[p.lo:p.hi]) {
			t.Fatalf("offset %d limit %d: %v total %d %v, want %v", p.offset, p.limit, values(got), total, err, all[p.lo:p.hi])
		}
	}
	got, _, _ := s.Records(ctx, "t", "app", "c", 7, 1)
	if r := got[0]; r.DataID != "c-a3" || r.Obj != "AI" || !r.Time.Equal(st0.Add(3*time.Second)) || r.ResponseData[0].Tokens != 3 {
		t.Fatalf("record %+v", r)
	}
}

func testClearSession(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	c := conv("t", "app", "c", st0)
	mustAppend(t, s, c, turn(0, "c"))
	mustAppend(t, s, c, turn(1, "c"))
	mustAppend(t, s, conv("t", "app", "c1", st0), turn(0, "c1"))
	if err := s.DeleteConversation(ctx, "t", "app", "c"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Conversation(ctx, "t", "app", "c", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("deleted conversation: %v", err)
	}
	if _, _, err := s.Records(ctx, "t", "app", "c", 0, 10); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("records of a deleted conversation: %v", err)
	}
	if _, total, _ := s.Conversations(ctx, "t", "app", 0, 10); total != 1 {
		t.Fatalf("conversations after delete: %d", total)
	}
	if _, recs, err := s.Conversation(ctx, "t", "app", "c1", 0); err != nil || len(recs) != 2 {
		t.Fatalf("the neighbour lost records: %v %v", values(recs), err)
	}
	// The same chatId starts afresh.
	mustAppend(t, s, c, turn(5, "c"))
	if got, recs, err := s.Conversation(ctx, "t", "app", "c", 0); err != nil || got.Messages != 2 || !slices.Equal(values(recs), []string{"c q5", "c a5"}) {
		t.Fatalf("after clearing: %+v %v %v", got, values(recs), err)
	}
}

func testNotFound(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	mustAppend(t, s, conv("t", "app", "c", st0), turn(0, "c"))
	if _, err := s.App(ctx, "t", "missing"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("App: %v", err)
	}
	if err := s.DeleteApp(ctx, "t", "missing"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("DeleteApp: %v", err)
	}
	for _, k := range [][3]string{{"t", "app", "missing"}, {"t", "other", "c"}, {"other", "app", "c"}, {"t", "app", "c1"}, {"t", "app", ""}} {
		if _, _, err := s.Conversation(ctx, k[0], k[1], k[2], 0); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("Conversation%v: %v", k, err)
		}
		if _, _, err := s.Records(ctx, k[0], k[1], k[2], 0, 10); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("Records%v: %v", k, err)
		}
		if err := s.DeleteConversation(ctx, k[0], k[1], k[2]); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("DeleteConversation%v: %v", k, err)
		}
	}
}

func testConcurrentAppends(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	const writers, turns = 6, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range turns {
				if err := s.AppendTurn(ctx, conv("t", "app", "c", st0), turn(i, fmt.Sprintf("w%d", w))); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := s.Conversations(ctx, "t", "app", 0, 10); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, recs, err := s.Conversation(ctx, "t", "app", "c", 0)
	if err != nil || got.Messages != writers*turns*2 || len(recs) != writers*turns*2 {
		t.Fatalf("%d messages, %d records, %v", got.Messages, len(recs), err)
	}
	// a turn is stored whole: each question is followed by its answer
	for i := 0; i < len(recs); i += 2 {
		q, a := recs[i].Value, recs[i+1].Value
		if recs[i].Obj != "Human" || strings.Replace(q, " q", " a", 1) != a {
			t.Fatalf("records %d and %d are %q and %q", i, i+1, q, a)
		}
	}
}
