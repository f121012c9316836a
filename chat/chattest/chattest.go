// Package chattest holds a conformance suite for implementations of
// chat.AppStore and chat.HistoryStore, in the manner of
// golang.org/x/net/nettest: a store passes when it behaves as the
// interfaces document, whatever keeps its data. Apps are scoped to their
// team, reads return copies, missing apps and conversations are
// ErrAppNotFound and ErrChatNotFound, lists come in their documented order
// and pages, deleting an app deletes its history, a turn is appended whole
// under concurrent writers, and, for a store that keeps its data, all of
// it survives reopening.
//
// chat's MemoryStore and BoltStore run it, as a new store would:
//
//	func TestStore(t *testing.T) {
//		chattest.TestStore(t, func(t *testing.T) chattest.Store { return chat.NewMemoryStore() })
//	}
package chattest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
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

func testAppBasics(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	for _, a := range []*chat.App{{ID: "b", TeamID: "t1", Name: "B", DatasetIDs: []string{"d1"}},
		{ID: "a", TeamID: "t1", Name: "A"}, {ID: "c", TeamID: "t2", Name: "C"}} {
		if err := s.PutApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.App(ctx, "t1", "b")
	if err != nil || got.Name != "B" || got.DatasetIDs[0] != "d1" {
		t.Fatalf("App: %+v %v", got, err)
	}
	got.DatasetIDs[0] = "changed"
	if again, _ := s.App(ctx, "t1", "b"); again.DatasetIDs[0] != "d1" {
		t.Fatal("App returned the stored value, not a copy")
	}
	apps, err := s.Apps(ctx, "t1")
	if err != nil || len(apps) != 2 || apps[0].ID != "a" || apps[1].ID != "b" {
		t.Fatalf("Apps(t1) = %v, %v", apps, err)
	}
	if all, _ := s.Apps(ctx, ""); len(all) != 3 {
		t.Fatalf("Apps(all) = %d", len(all))
	}
	if _, err := s.App(ctx, "t1", "zz"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("missing app: %v", err)
	}
	if _, err := s.App(ctx, "t2", "b"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("another team's app: %v", err)
	}
	if err := s.DeleteApp(ctx, "t1", "zz"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("delete missing app: %v", err)
	}
	if err := s.DeleteApp(ctx, "t2", "a"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("delete another team's app: %v", err)
	}
	s = reopen()
	if err := s.DeleteApp(ctx, "t1", "a"); err != nil {
		t.Fatal(err)
	}
	if apps, _ := s.Apps(ctx, "t1"); len(apps) != 1 || apps[0].ID != "b" {
		t.Fatalf("after delete: %v", apps)
	}
}

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

func testAppsCRUD(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	temp := 0.7
	a := &chat.App{ID: "app", TeamID: "t", Name: "First", Model: "m", SystemPrompt: "p", MaxTokens: 100, Temperature: &temp,
		DatasetIDs: []string{"d1", "d2"}, Search: chat.SearchSettings{Limit: 4, Similarity: 0.5, Mode: "fullTextRecall"},
		EmptyAnswer: "none", MaxUsagePoints: 12.5, QuoteTemplate: "{{quote}}", Source: "config", CreateTime: st0, UpdateTime: st0}
	if err := s.PutApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.App(ctx, "t", "app")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("App\n got %+v\nwant %+v", got, a)
	}
	b := *a
	b.Name, b.DatasetIDs, b.Temperature, b.UpdateTime = "Second", nil, nil, st0.Add(time.Hour)
	if err := s.PutApp(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.App(ctx, "t", "app"); got.Name != "Second" || got.Temperature != nil || len(got.DatasetIDs) != 0 || !got.UpdateTime.Equal(b.UpdateTime) {
		t.Fatalf("replaced app %+v", got)
	}
	for _, x := range []*chat.App{{ID: "app2", TeamID: "t", Name: "x"}, {ID: "0first", TeamID: "t", Name: "x"}, {ID: "zz", TeamID: "u", Name: "x"}} {
		if err := s.PutApp(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	appIDs := func(team string) []string {
		apps, err := s.Apps(ctx, team)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range apps {
			out = append(out, a.ID)
		}
		return out
	}
	if got := appIDs("t"); !slices.Equal(got, []string{"0first", "app", "app2"}) {
		t.Fatalf("Apps(t) = %v", got)
	}
	if got := appIDs(""); !slices.Equal(got, []string{"0first", "app", "app2", "zz"}) {
		t.Fatalf("Apps() = %v", got)
	}
	if got := appIDs("nobody"); len(got) != 0 {
		t.Fatalf("Apps(nobody) = %v", got)
	}

	// Deleting an app deletes its history, not its neighbours'.
	mustAppend(t, s, conv("t", "app", "c", st0), turn(0, "c"))
	mustAppend(t, s, conv("t", "app2", "c", st0), turn(0, "c"))
	mustAppend(t, s, conv("u", "app", "c", st0), turn(0, "c"))
	if err := s.DeleteApp(ctx, "t", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App(ctx, "t", "app"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("deleted app: %v", err)
	}
	if _, _, err := s.Conversation(ctx, "t", "app", "c", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("the deleted app's conversation: %v", err)
	}
	for _, k := range [][2]string{{"t", "app2"}, {"u", "app"}} {
		if _, recs, err := s.Conversation(ctx, k[0], k[1], "c", 0); err != nil || len(recs) != 2 {
			t.Fatalf("%v lost its conversation: %v %v", k, values(recs), err)
		}
	}
	if got := appIDs("t"); !slices.Equal(got, []string{"0first", "app2"}) {
		t.Fatalf("after delete: %v", got)
	}
}

// App ids are scoped to their team: two teams each have an app "x", each
// sees only its own, and deleting one leaves the other and its history.
func testAppIDsPerTeam(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	for _, a := range []*chat.App{{ID: "x", TeamID: "t1", Name: "one"}, {ID: "x", TeamID: "t2", Name: "two"}} {
		if err := s.PutApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, s, conv("t1", "x", "c", st0), turn(0, "one"))
	mustAppend(t, s, conv("t2", "x", "c", st0), turn(0, "two"))
	s = reopen()
	for team, name := range map[string]string{"t1": "one", "t2": "two"} {
		if a, err := s.App(ctx, team, "x"); err != nil || a.Name != name || a.TeamID != team {
			t.Fatalf("App(%s, x) = %+v, %v", team, a, err)
		}
		if apps, _ := s.Apps(ctx, team); len(apps) != 1 || apps[0].Name != name {
			t.Fatalf("Apps(%s) = %+v", team, apps)
		}
	}
	if all, _ := s.Apps(ctx, ""); len(all) != 2 || all[0].ID != "x" || all[1].ID != "x" {
		t.Fatalf("Apps() = %+v", all)
	}
	if _, err := s.App(ctx, "t3", "x"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("a third team's x: %v", err)
	}
	if err := s.DeleteApp(ctx, "t1", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App(ctx, "t1", "x"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("deleted app: %v", err)
	}
	if _, _, err := s.Conversation(ctx, "t1", "x", "c", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("the deleted app's history: %v", err)
	}
	if a, err := s.App(ctx, "t2", "x"); err != nil || a.Name != "two" {
		t.Fatalf("the other team's x after the delete: %+v, %v", a, err)
	}
	if _, recs, err := s.Conversation(ctx, "t2", "x", "c", 0); err != nil || !slices.Equal(values(recs), []string{"two q0", "two a0"}) {
		t.Fatalf("the other team's history after the delete: %v, %v", values(recs), err)
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

func testReopen(t *testing.T, s Store, reopen func() Store) {
	ctx := context.Background()
	a := &chat.App{ID: "app", TeamID: "t", Name: "A", Model: "m", DatasetIDs: []string{"d"}, CreateTime: st0, UpdateTime: st0}
	if err := s.PutApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := conv("t", "app", "c", st0)
	mustAppend(t, s, c, turn(0, "c"))
	mustAppend(t, s, c, turn(1, "c"))
	s = reopen()
	if got, err := s.App(ctx, "t", "app"); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("app after reopening: %+v %v", got, err)
	}
	got, recs, err := s.Conversation(ctx, "t", "app", "c", 0)
	if err != nil || got.Messages != 4 || got.Title != "title c" || got.Variables["name"] != "Ada" || !got.UpdateTime.Equal(st0) ||
		!slices.Equal(values(recs), []string{"c q0", "c a0", "c q1", "c a1"}) || recs[3].ResponseData[0].Tokens != 1 {
		t.Fatalf("conversation after reopening: %+v %v %v", got, values(recs), err)
	}
	// appending after a reopen continues the sequence
	mustAppend(t, s, c, turn(2, "c"))
	s = reopen()
	if page, total, err := s.Records(ctx, "t", "app", "c", 4, 10); err != nil || total != 6 || !slices.Equal(values(page), []string{"c q2", "c a2"}) {
		t.Fatalf("records after a second reopen: %v %d %v", values(page), total, err)
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

// Apps lists by id; the same id in several teams (with team "") comes in
// team order.
func testAppsOrder(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	for _, k := range [][2]string{{"t2", "b"}, {"t1", "b"}, {"t3", "a"}, {"t2", "c"}, {"t1", "a"}} {
		if err := s.PutApp(ctx, &chat.App{ID: k[1], TeamID: k[0], Name: k[1]}); err != nil {
			t.Fatal(err)
		}
	}
	apps, err := s.Apps(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range apps {
		got = append(got, a.TeamID+"/"+a.ID)
	}
	if want := []string{"t1/a", "t3/a", "t1/b", "t2/b", "t2/c"}; !slices.Equal(got, want) {
		t.Fatalf("Apps() = %v, want %v", got, want)
	}
}

// Apps of several teams are written, listed and deleted at once; each team
// ends with exactly what it kept.
func testConcurrentApps(t *testing.T, s Store, _ func() Store) {
	ctx := context.Background()
	const teams, apps = 4, 10
	var wg sync.WaitGroup
	for tm := range teams {
		wg.Go(func() {
			team := fmt.Sprintf("t%d", tm)
			for i := range apps {
				id := fmt.Sprintf("a%02d", i)
				if err := s.PutApp(ctx, &chat.App{ID: id, TeamID: team, Name: "x"}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Apps(ctx, ""); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 1 {
					if err := s.DeleteApp(ctx, team, id); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for tm := range teams {
		got, err := s.Apps(ctx, fmt.Sprintf("t%d", tm))
		if err != nil || len(got) != apps/2 {
			t.Fatalf("team t%d keeps %d apps, %v; want %d", tm, len(got), err, apps/2)
		}
		for i, a := range got {
			if a.ID != fmt.Sprintf("a%02d", 2*i) {
				t.Fatalf("team t%d: app %d is %s", tm, i, a.ID)
			}
		}
	}
}
