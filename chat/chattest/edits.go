package chattest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// The cases of chat.HistorySearcher and chat.HistoryEditor, which a store
// without them skips.

func searcher(t *testing.T, s Store) chat.HistorySearcher {
	t.Helper()
	hs, ok := s.(chat.HistorySearcher)
	if !ok {
		t.Skipf("%T is not a chat.HistorySearcher", s)
	}
	return hs
}

func editor(t *testing.T, s Store) chat.HistoryEditor {
	t.Helper()
	he, ok := s.(chat.HistoryEditor)
	if !ok {
		t.Skipf("%T is not a chat.HistoryEditor", s)
	}
	return he
}

func chatIDs(cs []chat.Conversation) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ChatID
	}
	return out
}

// snapshot is all a conversation holds, to show that a refused change
// changed nothing.
func snapshot(t *testing.T, s Store, team, app, chatID string) string {
	t.Helper()
	c, recs, err := s.Conversation(context.Background(), team, app, chatID, 0)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%+v %+v", *c, recs)
}

func testUpdateConversation(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	he := editor(t, s)
	for i := range 3 {
		mustAppend(t, s, conv("t", "app", fmt.Sprintf("c%d", i), st0.Add(time.Duration(i)*time.Minute)), turn(0, "x"))
	}
	title, top := "my name", true
	if err := he.UpdateConversation(ctx, "t", "app", "c0", chat.ConversationUpdate{CustomTitle: &title}); err != nil {
		t.Fatal(err)
	}
	if err := he.UpdateConversation(ctx, "t", "app", "c0", chat.ConversationUpdate{Top: &top}); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	got, _, _ := s.Conversations(ctx, "t", "app", 0, 0)
	if want := []string{"c0", "c2", "c1"}; !slices.Equal(chatIDs(got), want) {
		t.Fatalf("pinned c0: %v, want %v", chatIDs(got), want)
	}
	if c := got[0]; c.CustomTitle != "my name" || !c.Top || c.Title != "title c0" || !c.UpdateTime.Equal(st0) {
		t.Fatalf("updated conversation %+v", c)
	}
	// a turn appended with the conversation as it was read before keeps them
	c0 := conv("t", "app", "c0", st0.Add(time.Hour))
	mustAppend(t, s, c0, turn(1, "x"))
	if c, _, _ := s.Conversation(ctx, "t", "app", "c0", 0); c.CustomTitle != "my name" || !c.Top || c.Messages != 4 {
		t.Fatalf("after a turn: %+v", c)
	}
	// unpinning; the title stays
	top = false
	if err := editor(t, s).UpdateConversation(ctx, "t", "app", "c0", chat.ConversationUpdate{Top: &top}); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.Conversations(ctx, "t", "app", 0, 0)
	if want := []string{"c0", "c2", "c1"}; !slices.Equal(chatIDs(got), want) || got[0].Top || got[0].CustomTitle != "my name" {
		t.Fatalf("unpinned (c0 is the newest now): %v %+v", chatIDs(got), got[0])
	}
	before := snapshot(t, s, "t", "app", "c1")
	for _, k := range [][3]string{{"t", "app", "missing"}, {"t", "other", "c1"}, {"u", "app", "c1"}} {
		if err := editor(t, s).UpdateConversation(ctx, k[0], k[1], k[2], chat.ConversationUpdate{CustomTitle: &title}); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("UpdateConversation%v: %v", k, err)
		}
	}
	if after := snapshot(t, s, "t", "app", "c1"); after != before {
		t.Fatalf("a refused update changed c1:\n%s\n%s", before, after)
	}
	if _, _, err := s.Conversation(ctx, "t", "app", "missing", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("an update created a conversation: %v", err)
	}
}

func testSearchConversations(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	hs := searcher(t, s)
	add := func(chatID, uid, share string, at time.Duration) {
		c := conv("t", "app", chatID, st0.Add(at))
		c.CustomUID, c.ShareID = uid, share
		mustAppend(t, s, c, turn(0, chatID))
	}
	add("a1", "alice", "", 1*time.Minute)
	add("b1", "bob", "", 2*time.Minute)
	add("a2", "alice", "", 3*time.Minute)
	add("n1", "", "", 4*time.Minute)
	add("s1", "", "link", 5*time.Minute)
	c := conv("t", "app", "a1", st0.Add(6*time.Minute))
	c.CustomUID = "alice"
	mustAppend(t, s, c, turn(1, "a1"))
	mustAppend(t, s, conv("t", "app2", "a9", st0), turn(0, "x"))
	for _, tc := range []struct {
		f    chat.ConversationFilter
		want []string
	}{
		{chat.ConversationFilter{}, []string{"a1", "s1", "n1", "a2", "b1"}},
		{chat.ConversationFilter{CustomUID: "alice"}, []string{"a1", "a2"}},
		{chat.ConversationFilter{CustomUID: "bob"}, []string{"b1"}},
		{chat.ConversationFilter{CustomUID: "carol"}, nil},
		{chat.ConversationFilter{Source: chat.SourceShare}, []string{"s1"}},
		{chat.ConversationFilter{Source: chat.SourceAPI}, []string{"a1", "n1", "a2", "b1"}},
		{chat.ConversationFilter{Source: "online"}, nil},
		{chat.ConversationFilter{CustomUID: "alice", Source: chat.SourceAPI}, []string{"a1", "a2"}},
	} {
		got, total, err := hs.SearchConversations(ctx, "t", "app", tc.f, 0, 0)
		if err != nil || total != len(tc.want) || !slices.Equal(chatIDs(got), tc.want) {
			t.Fatalf("%+v: %v total %d %v, want %v", tc.f, chatIDs(got), total, err, tc.want)
		}
	}
	page, total, err := hs.SearchConversations(ctx, "t", "app", chat.ConversationFilter{Source: chat.SourceAPI}, 1, 2)
	if err != nil || total != 4 || !slices.Equal(chatIDs(page), []string{"n1", "a2"}) {
		t.Fatalf("a page: %v total %d %v", chatIDs(page), total, err)
	}
	if got, _, _ := hs.SearchConversations(ctx, "t", "app", chat.ConversationFilter{CustomUID: "alice"}, 0, 1); got[0].CustomUID != "alice" || got[0].Messages != 4 {
		t.Fatalf("listed %+v", got[0])
	}
}

func testRecordByDataID(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	hs := searcher(t, s)
	c := conv("t", "app", "c", st0)
	mustAppend(t, s, c, turn(0, "c"))
	mustAppend(t, s, c, turn(1, "c"))
	r, err := hs.Record(ctx, "t", "app", "c", "c-a1")
	if err != nil || r.Value != "c a1" || r.Obj != "AI" || !r.Time.Equal(st0.Add(time.Second)) || r.ResponseData[0].Tokens != 1 {
		t.Fatalf("Record: %+v %v", r, err)
	}
	for _, k := range [][4]string{{"t", "app", "missing", "c-a1"}, {"t", "other", "c", "c-a1"}, {"u", "app", "c", "c-a1"}} {
		if _, err := hs.Record(ctx, k[0], k[1], k[2], k[3]); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("Record%v: %v", k, err)
		}
	}
	for _, id := range []string{"missing", "", "c-a"} {
		if _, err := hs.Record(ctx, "t", "app", "c", id); !errors.Is(err, chat.ErrRecordNotFound) {
			t.Fatalf("Record %q: %v", id, err)
		}
	}
}

func testDeleteRecord(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	he := editor(t, s)
	c := conv("t", "app", "c", st0)
	for i := range 3 {
		mustAppend(t, s, c, turn(i, "c"))
	}
	mustAppend(t, s, conv("t", "app", "c1", st0), turn(0, "c"))
	if err := he.DeleteRecord(ctx, "t", "app", "c", "c-a0"); err != nil {
		t.Fatal(err)
	}
	if err := he.DeleteRecord(ctx, "t", "app", "c", "c-h2"); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	want := []string{"c q0", "c q1", "c a1", "c a2"}
	if got, recs, err := s.Conversation(ctx, "t", "app", "c", 0); err != nil || got.Messages != 4 || !slices.Equal(values(recs), want) {
		t.Fatalf("after deleting two: %+v %v %v", got, values(recs), err)
	}
	// pages and the last records count the records that are left
	if page, total, err := s.Records(ctx, "t", "app", "c", 1, 2); err != nil || total != 4 || !slices.Equal(values(page), want[1:3]) {
		t.Fatalf("a page: %v %d %v", values(page), total, err)
	}
	if _, recs, _ := s.Conversation(ctx, "t", "app", "c", 2); !slices.Equal(values(recs), want[2:]) {
		t.Fatalf("the last two: %v", values(recs))
	}
	// a turn appended after goes after them, in order
	mustAppend(t, s, c, turn(3, "c"))
	want = append(want, "c q3", "c a3")
	if page, total, _ := s.Records(ctx, "t", "app", "c", 3, 0); total != 6 || !slices.Equal(values(page), want[3:]) {
		t.Fatalf("after a new turn: %v %d", values(page), total)
	}
	// the other conversation, with the same dataIds, is untouched
	if _, recs, _ := s.Conversation(ctx, "t", "app", "c1", 0); !slices.Equal(values(recs), []string{"c q0", "c a0"}) {
		t.Fatalf("c1: %v", values(recs))
	}
	before := snapshot(t, s, "t", "app", "c")
	he = editor(t, s)
	if err := he.DeleteRecord(ctx, "t", "app", "c", "c-a0"); !errors.Is(err, chat.ErrRecordNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
	for _, k := range [][4]string{{"t", "app", "missing", "c-a1"}, {"t", "other", "c", "c-a1"}, {"u", "app", "c", "c-a1"}} {
		if err := he.DeleteRecord(ctx, k[0], k[1], k[2], k[3]); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("DeleteRecord%v: %v", k, err)
		}
	}
	if after := snapshot(t, s, "t", "app", "c"); after != before {
		t.Fatalf("a refused delete changed c:\n%s\n%s", before, after)
	}
	// every record deleted leaves the conversation, empty
	for _, id := range []string{"c-h0", "c-h1", "c-a1", "c-a2", "c-h3", "c-a3"} {
		if err := he.DeleteRecord(ctx, "t", "app", "c", id); err != nil {
			t.Fatal(id, err)
		}
	}
	if got, recs, err := s.Conversation(ctx, "t", "app", "c", 0); err != nil || got.Messages != 0 || len(recs) != 0 {
		t.Fatalf("emptied: %+v %v %v", got, values(recs), err)
	}
}

func testFeedback(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	he := editor(t, s)
	c := conv("t", "app", "c", st0)
	mustAppend(t, s, c, turn(0, "c"))
	mustAppend(t, s, c, turn(1, "c"))
	if err := he.SetFeedback(ctx, "t", "app", "c", "c-a0", chat.Feedback{Good: "yes"}); err != nil {
		t.Fatal(err)
	}
	if err := he.SetFeedback(ctx, "t", "app", "c", "c-a1", chat.Feedback{Good: "yes"}); err != nil {
		t.Fatal(err)
	}
	// a dislike replaces the like
	if err := he.SetFeedback(ctx, "t", "app", "c", "c-a1", chat.Feedback{Bad: "wrong film"}); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	_, recs, _ := s.Conversation(ctx, "t", "app", "c", 0)
	if r := recs[1]; r.UserGoodFeedback != "yes" || r.UserBadFeedback != "" || r.Value != "c a0" || r.ResponseData[0].QuoteList[0].Q != "quote" {
		t.Fatalf("liked: %+v", r)
	}
	if r := recs[3]; r.UserGoodFeedback != "" || r.UserBadFeedback != "wrong film" {
		t.Fatalf("disliked: %+v", r)
	}
	if recs[0].UserGoodFeedback != "" || recs[2].UserBadFeedback != "" {
		t.Fatalf("questions got feedback: %+v", recs)
	}
	before := snapshot(t, s, "t", "app", "c")
	he = editor(t, s)
	if err := he.SetFeedback(ctx, "t", "app", "c", "missing", chat.Feedback{Good: "yes"}); !errors.Is(err, chat.ErrRecordNotFound) {
		t.Fatalf("a missing record: %v", err)
	}
	for _, k := range [][3]string{{"t", "app", "missing"}, {"t", "other", "c"}, {"u", "app", "c"}} {
		if err := he.SetFeedback(ctx, k[0], k[1], k[2], "c-a0", chat.Feedback{Bad: "x"}); !errors.Is(err, chat.ErrChatNotFound) {
			t.Fatalf("SetFeedback%v: %v", k, err)
		}
	}
	if after := snapshot(t, s, "t", "app", "c"); after != before {
		t.Fatalf("a refused feedback changed c:\n%s\n%s", before, after)
	}
	// withdrawn
	if err := he.SetFeedback(ctx, "t", "app", "c", "c-a0", chat.Feedback{}); err != nil {
		t.Fatal(err)
	}
	if _, recs, _ := s.Conversation(ctx, "t", "app", "c", 0); recs[1].UserGoodFeedback != "" {
		t.Fatalf("withdrawn: %+v", recs[1])
	}
}

func testDeleteConversations(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	he := editor(t, s)
	add := func(app, chatID, uid, share string) {
		c := conv("t", app, chatID, st0)
		c.CustomUID, c.ShareID = uid, share
		mustAppend(t, s, c, turn(0, chatID))
		mustAppend(t, s, c, turn(1, chatID))
	}
	add("app", "a1", "alice", "")
	add("app", "b1", "bob", "")
	add("app", "n1", "", "")
	add("app", "s1", "", "link")
	add("app2", "a1", "alice", "")
	n, err := he.DeleteConversations(ctx, "t", "app", chat.ConversationFilter{CustomUID: "alice", Source: chat.SourceAPI})
	if err != nil || n != 1 {
		t.Fatalf("alice's: %d %v", n, err)
	}
	if n, err := he.DeleteConversations(ctx, "t", "app", chat.ConversationFilter{CustomUID: "alice"}); err != nil || n != 0 {
		t.Fatalf("alice's again: %d %v", n, err)
	}
	s = reopen()
	got, _, _ := s.Conversations(ctx, "t", "app", 0, 0)
	if want := []string{"b1", "n1", "s1"}; !slices.Equal(chatIDs(got), want) {
		t.Fatalf("left: %v, want %v", chatIDs(got), want)
	}
	if _, _, err := s.Records(ctx, "t", "app", "a1", 0, 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("records of a deleted conversation: %v", err)
	}
	// no record of it is left behind: the same chatId starts afresh
	add("app", "a1", "carol", "")
	if c, recs, err := s.Conversation(ctx, "t", "app", "a1", 0); err != nil || c.Messages != 4 || len(recs) != 4 || c.CustomUID != "carol" {
		t.Fatalf("a1 again: %+v %v %v", c, values(recs), err)
	}
	if _, recs, _ := s.Conversation(ctx, "t", "app2", "a1", 0); len(recs) != 4 {
		t.Fatalf("the other app's a1 lost records: %v", values(recs))
	}
	if n, err := editor(t, s).DeleteConversations(ctx, "t", "app", chat.ConversationFilter{Source: chat.SourceAPI}); err != nil || n != 3 {
		t.Fatalf("every keyed chat: %d %v", n, err)
	}
	if got, _, _ := s.Conversations(ctx, "t", "app", 0, 0); !slices.Equal(chatIDs(got), []string{"s1"}) {
		t.Fatalf("left: %v, want the share link's", chatIDs(got))
	}
}

// A conversation is its end user's: a turn appended to it for another end
// user (or for none, to one of an end user's) stores nothing.
func testAppendEndUser(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	c := conv("t", "app", "c", st0)
	c.CustomUID = "alice"
	mustAppend(t, s, c, turn(0, "c"))
	mustAppend(t, s, conv("t", "app", "n", st0), turn(0, "n"))
	before, beforeN := snapshot(t, s, "t", "app", "c"), snapshot(t, s, "t", "app", "n")
	for _, k := range []struct{ chatID, uid string }{{"c", "bob"}, {"c", ""}, {"n", "bob"}} {
		o := conv("t", "app", k.chatID, st0.Add(time.Hour))
		o.CustomUID = k.uid
		if err := s.AppendTurn(ctx, o, turn(1, "x")); !errors.Is(err, chat.ErrOtherEndUser) {
			t.Fatalf("appending to %s for %q: %v", k.chatID, k.uid, err)
		}
	}
	if after, afterN := snapshot(t, s, "t", "app", "c"), snapshot(t, s, "t", "app", "n"); after != before || afterN != beforeN {
		t.Fatalf("refused turns changed the history:\n%s\n%s\n%s\n%s", before, after, beforeN, afterN)
	}
	// the same end user goes on
	c.UpdateTime = st0.Add(2 * time.Hour)
	mustAppend(t, s, c, turn(2, "c"))
	if got, recs, err := s.Conversation(ctx, "t", "app", "c", 0); err != nil || got.Messages != 4 || got.CustomUID != "alice" || !slices.Equal(values(recs), []string{"c q0", "c a0", "c q2", "c a2"}) {
		t.Fatalf("alice's: %+v %v %v", got, values(recs), err)
	}
}
