// Package chattest holds a conformance suite for implementations of
// chat.AppStore and chat.HistoryStore, in the manner of
// golang.org/x/net/nettest: a store passes when it behaves as the
// interfaces document, whatever keeps its data. Apps are scoped to their
// team, reads return copies, missing apps and conversations are
// ErrAppNotFound and ErrChatNotFound, lists come in their documented order
// and pages, deleting an app deletes its history, a turn is appended whole
// under concurrent writers, and, for a store that keeps its data, all of
// it survives reopening. A store that is a chat.HistorySearcher or a
// chat.HistoryEditor is held to those too (filters, renames and pins that
// a turn does not undo, records deleted without a gap or an orphan,
// feedback, and changes refused without a trace); one that is not skips
// those cases.
//
// chat's MemoryStore and BoltStore run it, as a new store would:
//
//	func TestStore(t *testing.T) {
//		chattest.TestStore(t, func(t *testing.T) chattest.Store { return chat.NewMemoryStore() })
//	}
package chattest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// Store is what the suite tests: apps and their history in one store, as
// chat.MemoryStore and chat.BoltStore keep them (DeleteApp deletes an
// app's history, so the two interfaces come together).
type Store interface {
	chat.AppStore
	chat.HistoryStore
}

// storeCase is one clause of the contract. reopens marks those that also
// check, under TestReopen, that what was written is there after reopening.
type storeCase struct {
	name    string
	fn      func(t *testing.T, s Store, reopen func() Store)
	reopens bool
}

func storeCases() []storeCase {
	return []storeCase{
		{"AppBasics", testAppBasics, true},
		{"HistoryBasics", testHistoryBasics, true},
		{"AppendAndLoad", testAppendAndLoad, false},
		{"ConversationsPaging", testConversationsPaging, false},
		{"RecordsPaging", testRecordsPaging, false},
		{"ClearSession", testClearSession, false},
		{"AppsCRUD", testAppsCRUD, false},
		{"AppIDsPerTeam", testAppIDsPerTeam, true},
		{"AppsOrder", testAppsOrder, false},
		{"NotFound", testNotFound, false},
		{"Copies", testCopies, false},
		{"Reopen", testReopen, true},
		{"ConcurrentAppends", testConcurrentAppends, false},
		{"ConcurrentApps", testConcurrentApps, false},
		{"UpdateConversation", testUpdateConversation, true},
		{"SearchConversations", testSearchConversations, false},
		{"RecordByDataID", testRecordByDataID, false},
		{"DeleteRecord", testDeleteRecord, true},
		{"Feedback", testFeedback, true},
		{"DeleteConversations", testDeleteConversations, true},
		{"AppendEndUser", testAppendEndUser, false},
	}
}

// TestStore runs the conformance suite against the stores open returns. It
// calls open once per subtest, which must return a new, empty store; open
// should register any cleanup with t.Cleanup. Cases that would reopen the
// store go on with the same one; TestReopen runs them with a reopening.
func TestStore(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range storeCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s, func() Store { return s })
		})
	}
}

// TestReopen runs the cases that reopen their store midway, for a store
// that keeps its data: open returns a new, empty store and reopen, which
// returns a store on the same data (closing the one before, if need be).
func TestReopen(t *testing.T, open func(t *testing.T) (s Store, reopen func() Store)) {
	for _, tc := range storeCases() {
		if !tc.reopens {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			s, reopen := open(t)
			if s == nil || reopen == nil {
				t.Fatal("open returned a nil store or reopen")
			}
			tc.fn(t, s, reopen)
		})
	}
}

var st0 = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

func turn(n int, prefix string) []chat.Record {
	return []chat.Record{
		{DataID: fmt.Sprintf("%s-h%d", prefix, n), Obj: "Human", Value: fmt.Sprintf("%s q%d", prefix, n), Time: st0.Add(time.Duration(n) * time.Second)},
		{DataID: fmt.Sprintf("%s-a%d", prefix, n), Obj: "AI", Value: fmt.Sprintf("%s a%d", prefix, n), Time: st0.Add(time.Duration(n) * time.Second),
			ResponseData: []chat.ModuleResponse{{ModuleName: "AI Chat", Model: "m", Tokens: n, Answer: fmt.Sprintf("%s a%d", prefix, n),
				QuoteList: []chat.Quote{{ID: "q", Q: "quote"}}}}},
	}
}

func conv(team, app, chatID string, updated time.Time) *chat.Conversation {
	return &chat.Conversation{TeamID: team, AppID: app, ChatID: chatID, Title: "title " + chatID, KeyID: "k",
		Variables: map[string]any{"name": "Ada"}, CreateTime: st0, UpdateTime: updated}
}

func values(recs []chat.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

func mustAppend(t *testing.T, s chat.HistoryStore, c *chat.Conversation, recs []chat.Record) {
	t.Helper()
	if err := s.AppendTurn(context.Background(), c, recs); err != nil {
		t.Fatal(err)
	}
}

func testCopies(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	temp := 0.5
	a := &chat.App{ID: "app", TeamID: "t", Name: "A", Temperature: &temp, DatasetIDs: []string{"d1"}}
	if err := s.PutApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	// what the caller keeps is not the stored app
	a.Name, a.DatasetIDs[0], *a.Temperature = "changed", "changed", 1.5
	got, _ := s.App(ctx, "t", "app")
	if got.Name != "A" || got.DatasetIDs[0] != "d1" || *got.Temperature != 0.5 {
		t.Fatalf("PutApp kept the caller's app: %+v (temperature %v)", got, *got.Temperature)
	}
	// nor is what a read returns
	got.DatasetIDs[0], *got.Temperature = "changed", 1.5
	listed, _ := s.Apps(ctx, "t")
	listed[0].DatasetIDs[0], *listed[0].Temperature = "changed", 1.5
	if again, _ := s.App(ctx, "t", "app"); again.DatasetIDs[0] != "d1" || *again.Temperature != 0.5 {
		t.Fatalf("a read returned the stored app: %+v (temperature %v)", again, *again.Temperature)
	}

	c := conv("t", "app", "c", st0)
	recs := turn(0, "c")
	mustAppend(t, s, c, recs)
	c.Variables["name"] = "changed"
	recs[1].ResponseData[0].Answer = "changed"
	recs[1].ResponseData[0].QuoteList[0].Q = "changed"
	check := func(when string) {
		t.Helper()
		got, rs, err := s.Conversation(ctx, "t", "app", "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.Variables["name"] != "Ada" || rs[1].ResponseData[0].Answer != "c a0" || rs[1].ResponseData[0].QuoteList[0].Q != "quote" {
			t.Fatalf("%s: %+v %+v", when, got.Variables, rs[1].ResponseData[0])
		}
	}
	check("after changing what was appended")
	got2, rs, _ := s.Conversation(ctx, "t", "app", "c", 0)
	got2.Variables["name"] = "changed"
	rs[1].ResponseData[0].Answer = "changed"
	rs[1].ResponseData[0].QuoteList[0].Q = "changed"
	check("after changing what Conversation returned")
	cs, _, _ := s.Conversations(ctx, "t", "app", 0, 10)
	cs[0].Variables["name"] = "changed"
	page, _, _ := s.Records(ctx, "t", "app", "c", 0, 10)
	page[1].ResponseData[0].Answer = "changed"
	page[1].ResponseData[0].QuoteList[0].Q = "changed"
	check("after changing what Conversations and Records returned")
}
