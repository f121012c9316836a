package pgstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// What Postgres's text and jsonb cannot hold, or would round, reads back
// as written, as it does from the bbolt store: a NUL in a message (a
// client may send "\u0000"), nanoseconds, the zero time. Times in another
// zone come back the same instant in UTC.
func TestFidelity(t *testing.T) {
	s := open(t, pgtest.Pool(t))
	ctx := context.Background()
	zone := time.FixedZone("x", 5*3600+30*60)
	app := &chat.App{ID: "app", TeamID: "t", Name: "n\x00ul", SystemPrompt: "p\x00", CreateTime: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC)}
	if err := s.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if got, err := s.App(ctx, "t", "app"); err != nil || !reflect.DeepEqual(got, app) {
		t.Fatalf("app\n got %+v %v\nwant %+v", got, err, app)
	}
	c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: "c", Title: "ti\x00tle", Variables: map[string]any{"k": "v\x00"},
		UpdateTime: time.Date(1969, 12, 31, 23, 59, 59, 1, zone)}
	recs := []chat.Record{
		{DataID: "1", Obj: "Human", Value: "a\x00b", Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, zone)},
		{DataID: "2", Obj: "AI", Value: "", ResponseData: []chat.ModuleResponse{{ModuleName: "AI Chat", Answer: "\x00"}}},
	}
	if err := s.AppendTurn(ctx, c, recs); err != nil {
		t.Fatal(err)
	}
	want := *c
	want.UpdateTime, want.Messages = c.UpdateTime.UTC(), 2
	wantRecs := []chat.Record{recs[0], recs[1]}
	wantRecs[0].Time = recs[0].Time.UTC()
	got, gotRecs, err := s.Conversation(ctx, "t", "app", "c", 0)
	if err != nil || !reflect.DeepEqual(*got, want) || !reflect.DeepEqual(gotRecs, wantRecs) {
		t.Fatalf("conversation\n got %+v %+v %v\nwant %+v %+v", got, gotRecs, err, want, wantRecs)
	}
	if list, _, err := s.Conversations(ctx, "t", "app", 0, 0); err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Fatalf("listed\n got %+v %v\nwant %+v", list, err, want)
	}
}
