package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/chattest"
	"github.com/chatgate/chatgate/chat/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// replicas returns two stores on one schema, each with its own pool, as
// two processes of one deployment would have.
func replicas(t *testing.T) (*pgstore.Store, *pgstore.Store) {
	dsn := pgtest.DSN(t)
	return open(t, connect(t, dsn)), open(t, connect(t, dsn))
}

// What one replica writes, the other reads at once: nothing is kept in
// the process.
func TestReadYourWritesAcrossReplicas(t *testing.T) {
	a, b := replicas(t)
	ctx := context.Background()
	if err := a.PutApp(ctx, &chat.App{ID: "app", TeamID: "t", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.App(ctx, "t", "app"); err != nil || got.Name != "one" {
		t.Fatalf("B reads A's app: %+v %v", got, err)
	}
	c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: "c", Title: "x"}
	for i, s := range []*pgstore.Store{a, b, a} {
		if err := s.AppendTurn(ctx, c, []chat.Record{{DataID: fmt.Sprint(i), Obj: "Human", Value: fmt.Sprint("q", i)}}); err != nil {
			t.Fatal(err)
		}
		other := []*pgstore.Store{b, a, b}[i]
		if got, recs, err := other.Conversation(ctx, "t", "app", "c", 0); err != nil || got.Messages != i+1 || recs[i].Value != fmt.Sprint("q", i) {
			t.Fatalf("after append %d, the other replica reads %+v %v %v", i, got, recs, err)
		}
	}
	if err := b.DeleteApp(ctx, "t", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.App(ctx, "t", "app"); !errors.Is(err, chat.ErrAppNotFound) {
		t.Fatalf("A after B deleted the app: %v", err)
	}
	if _, _, err := a.Conversation(ctx, "t", "app", "c", 0); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("A after B deleted the app's history: %v", err)
	}
}

// Two replicas append to one chatId at once, the first turns racing to
// create it: every turn is stored once and whole, the records keep one
// order (each writer's turns in the order it wrote them), and both
// replicas read the same history.
func TestConcurrentAppendsAcrossReplicas(t *testing.T) {
	a, b := replicas(t)
	ctx := context.Background()
	const perReplica, turns = 4, 25
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 * perReplica {
		s := []*pgstore.Store{a, b}[w%2]
		wg.Go(func() {
			<-start
			for i := range turns {
				c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: "c", Title: fmt.Sprintf("w%d", w)}
				recs := []chat.Record{{DataID: fmt.Sprintf("w%d-%d-q", w, i), Obj: "Human", Value: fmt.Sprintf("w%d q%d", w, i)},
					{DataID: fmt.Sprintf("w%d-%d-a", w, i), Obj: "AI", Value: fmt.Sprintf("w%d a%d", w, i)}}
				if err := s.AppendTurn(ctx, c, recs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = 2 * perReplica * turns * 2
	conv, recs, err := a.Conversation(ctx, "t", "app", "c", 0)
	if err != nil || conv.Messages != total || len(recs) != total {
		t.Fatalf("%+v, %d records, %v; want %d", conv, len(recs), err, total)
	}
	next := map[string]int{} // writer -> its next turn
	for i := 0; i < len(recs); i += 2 {
		var w string
		var n int
		if _, err := fmt.Sscanf(recs[i].Value, "%s q%d", &w, &n); err != nil || recs[i].Obj != "Human" {
			t.Fatalf("record %d: %+v", i, recs[i])
		}
		if want := strings.Replace(recs[i].Value, " q", " a", 1); recs[i+1].Value != want {
			t.Fatalf("record %d is %q, %d is %q: the turn was split", i, recs[i].Value, i+1, recs[i+1].Value)
		}
		if n != next[w] {
			t.Fatalf("record %d is %s's turn %d; want its turn %d", i, w, n, next[w])
		}
		next[w]++
	}
	page, n, err := b.Records(ctx, "t", "app", "c", 0, 0)
	if err != nil || n != total || len(page) != total {
		t.Fatalf("B's records: %d of %d, %v", len(page), n, err)
	}
	for i := range page {
		if page[i].DataID != recs[i].DataID {
			t.Fatalf("record %d: A reads %s, B reads %s", i, recs[i].DataID, page[i].DataID)
		}
	}
}

// Without a Watch, a replica keeps decoded apps but fetches the row on
// every read and takes the decoded copy only for the very bytes it was
// decoded from: another replica's write, or one made in SQL by hand, is
// seen at once.
func TestAppReadsAreNeverStale(t *testing.T) {
	dsn := pgtest.DSN(t)
	chattest.TestShared(t, func(t *testing.T) (chattest.Store, chattest.Store) {
		return open(t, connect(t, dsn)), open(t, connect(t, dsn))
	})
	pool := connect(t, dsn)
	reader, writer := open(t, pool), open(t, connect(t, dsn))
	ctx := context.Background()
	if err := writer.PutApp(ctx, &chat.App{ID: "b", TeamID: "t", Name: "one", Model: "m"}); err != nil {
		t.Fatal(err)
	}
	if got, err := reader.App(ctx, "t", "b"); err != nil || got.Name != "one" {
		t.Fatalf("App = %+v, %v", got, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE chat_apps SET doc = jsonb_set(doc::jsonb, '{name}', '"three"')::json WHERE team_id = 't' AND id = 'b'`); err != nil {
		t.Fatal(err)
	}
	if got, err := reader.App(ctx, "t", "b"); err != nil || got.Name != "three" {
		t.Fatalf("after a write in SQL: %+v, %v; want the new name", got, err)
	}
}
