package chattest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// listed returns what key says of each of the team's apps, in the order
// Apps lists them.
func listed(t *testing.T, s chat.AppStore, team string, key func(*chat.App) string) []string {
	t.Helper()
	apps, err := s.Apps(context.Background(), team)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = key(a)
	}
	return out
}

// deleteApp deletes the team's app and checks that it and its conversation
// chatID are gone.
func deleteApp(t *testing.T, s Store, team, app, chatID string) {
	t.Helper()
	ctx := context.Background()
	if err := s.DeleteApp(ctx, team, app); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App(ctx, team, app); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("deleted app %s of team %s: %v", app, team, err)
	}
	if _, _, err := s.Conversation(ctx, team, app, chatID, 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("the deleted app's conversation: %v", err)
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
	appIDs := func(team string) []string { return listed(t, s, team, func(a *chat.App) string { return a.ID }) }
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
	deleteApp(t, s, "t", "app", "c")
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
	deleteApp(t, s, "t1", "x", "c")
	if a, err := s.App(ctx, "t2", "x"); err != nil || a.Name != "two" {
		t.Fatalf("the other team's x after the delete: %+v, %v", a, err)
	}
	if _, recs, err := s.Conversation(ctx, "t2", "x", "c", 0); err != nil || !slices.Equal(values(recs), []string{"two q0", "two a0"}) {
		t.Fatalf("the other team's history after the delete: %v, %v", values(recs), err)
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
	got := listed(t, s, "", func(a *chat.App) string { return a.TeamID + "/" + a.ID })
	if want := []string{"t1/a", "t3/a", "t1/b", "t2/b", "t2/c"}; !slices.Equal(got, want) {
		t.Fatalf("Apps() = %v, want %v", got, want)
	}
}

// Apps of several teams are written, listed and deleted at once; each team
// ends with exactly what it kept.
func testConcurrentApps(t *testing.T, s Store, _ func() Store) {
	const teams, apps = 4, 10
	var wg sync.WaitGroup
	ctx := context.Background()
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
