package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

const team = "team"

// storeOn is a store on a pool of its own on the schema dsn names, as a
// process of a deployment has; the pool closes when t ends.
func storeOn(t testing.TB, dsn string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st, err := pgstore.NewWithOptions(ctx, pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// replica is a Service on a store of its own (storeOn); it closes when t
// ends.
func replica(t testing.TB, dsn string, opts pgstore.Options, svc dataset.Options) (*dataset.Service, *pgstore.Store) {
	t.Helper()
	st := storeOn(t, dsn, opts)
	svc.Store = st
	if svc.Logger == nil {
		svc.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := dataset.New(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, st
}

// newCollection is a new collection in a new dataset of s.
func newCollection(t testing.TB, s *dataset.Service) (dsID, collID string) {
	t.Helper()
	ds, err := s.CreateDataset(ctx, team, "kb", "")
	var c *dataset.Collection
	if err == nil {
		c, err = s.CreateCollection(ctx, team, ds.ID, "docs")
	}
	if err != nil {
		t.Fatal(err)
	}
	return ds.ID, c.ID
}

// pushTrained pushes items q0..qn-1 into a new collection of a new dataset
// through s and waits until they are trained.
func pushTrained(t testing.TB, s *dataset.Service, n int, q func(i int) string) (dsID, collID string) {
	t.Helper()
	dsID, collID = newCollection(t, s)
	for at := 0; at < n; at += dataset.MaxPushItems {
		items := make([]dataset.PushItem, 0, dataset.MaxPushItems)
		for i := at; i < min(n, at+dataset.MaxPushItems); i++ {
			items = append(items, dataset.PushItem{Q: q(i), A: fmt.Sprintf("answer %d", i)})
		}
		if res, err := s.Push(ctx, dataset.PushRequest{TeamID: team, CollectionID: collID, Data: items}); err != nil || res.InsertLen != len(items) {
			t.Fatalf("push: %+v %v", res, err)
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		d, err := s.Collection(ctx, team, collID)
		if err != nil {
			t.Fatal(err)
		}
		if d.TrainingAmount == 0 && d.DataAmount == n {
			return dsID, collID
		}
		if d.FailedAmount > 0 || time.Now().After(deadline) {
			t.Fatalf("training: %+v", d)
		}
	}
}

func question(i int) string {
	return fmt.Sprintf("how do I configure replica %d of the %s gateway", i, []string{"north", "south", "east", "west"}[i%4])
}

// hits is what a search through s returns, as ids and scores.
func hits(t testing.TB, s *dataset.Service, dsID, mode, text string) []string {
	t.Helper()
	res, err := s.Search(ctx, dataset.SearchRequest{TeamID: team, DatasetIDs: []string{dsID}, Text: text, Mode: mode, MaxResults: 10})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = fmt.Sprintf("%s %.6f", h.ID, h.Score)
	}
	return out
}

// eventually polls cond until it holds or limit passes.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

var modes = []string{dataset.SearchEmbedding, dataset.SearchFullText, dataset.SearchMixed}

// Data pushed and trained through A is found through B with the same hits
// in every mode; data deleted through B vanishes from A's results; a
// replica started after the data exists loads it; all within a second,
// notified.
func TestReplicasAgree(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	b, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	const n = 300
	dsID, collID := pushTrained(t, a, n, question)
	queries := []string{question(7), question(150), "configure the west gateway", "replica 42"}
	same := func(x, y *dataset.Service) bool {
		for _, q := range queries {
			for _, mode := range modes {
				if !slices.Equal(hits(t, x, dsID, mode, q), hits(t, y, dsID, mode, q)) {
					return false
				}
			}
		}
		return true
	}
	lag := eventually(t, time.Second, "B answers as A", func() bool { return same(a, b) })
	t.Logf("B agreed with A %v after A's last item was trained", lag)
	if h := hits(t, b, dsID, dataset.SearchEmbedding, question(7)); len(h) == 0 {
		t.Fatal("B finds nothing")
	}

	// deletions through B vanish from A
	list, _, err := b.DataList(ctx, team, collID, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	gone := list[0].ID
	if err := b.DeleteData(ctx, team, gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the item deleted through B leaves A's indexes", func() bool { return same(a, b) })
	u := "a different question about refunds"
	if _, err := b.UpdateData(ctx, team, dataset.DataUpdate{ID: list[1].ID, Q: &u}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the item updated through B is found through A", func() bool {
		h := hits(t, a, dsID, dataset.SearchFullText, "refunds")
		return len(h) > 0 && h[0][:len(list[1].ID)] == list[1].ID
	})

	// a replica started now loads what is there
	c, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	if !same(a, c) {
		t.Fatal("a replica started after the data exists answers otherwise")
	}

	// a dataset deleted through C is gone everywhere
	if err := c.DeleteDataset(ctx, team, dsID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dataset.Service{a, b} {
		if _, err := s.Search(ctx, dataset.SearchRequest{TeamID: team, DatasetIDs: []string{dsID}, Text: "x"}); !errors.Is(err, dataset.ErrDatasetNotFound) {
			t.Fatalf("search of a deleted dataset: %v", err)
		}
	}
}

// silent is a store whose notifications never arrive.
type silent struct{ *pgstore.Store }

func (silent) ListenChanges(ctx context.Context, _ chan<- struct{}) error {
	<-ctx.Done()
	return ctx.Err()
}

// Without notifications a replica still catches up, within PollEvery.
func TestReplicaCatchesUpWithoutNotifications(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	b, err := dataset.New(ctx, dataset.Options{Store: silent{storeOn(t, dsn, pgstore.Options{})}, PollEvery: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	dsID, _ := pushTrained(t, a, 20, question)
	lag := eventually(t, 2*time.Second, "B finds A's data", func() bool {
		h := hits(t, b, dsID, dataset.SearchFullText, question(3))
		return len(h) > 0
	})
	t.Logf("caught up %v after training, polling every 200ms", lag)
}

// gated is a store whose feed is read only once open is closed.
type gated struct {
	*pgstore.Store
	open chan struct{}
}

func (g gated) Changes(ctx context.Context, after dataset.ChangeCursor, n int) (dataset.ChangePage, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return dataset.ChangePage{}, ctx.Err()
	}
	return g.Store.Changes(ctx, after, n)
}

// A replica that missed changes the feed no longer holds loads its indexes
// again: here B starts, A trains data, and the feed is pruned before B
// reads it.
func TestReplicaReloadsAfterPrunedChanges(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	g := gated{storeOn(t, dsn, pgstore.Options{}), make(chan struct{})}
	warned := make(warnings, 16)
	b, err := dataset.New(ctx, dataset.Options{Store: g, Logger: slog.New(warned)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	dsID, _ := pushTrained(t, a, 20, question)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `WITH d AS (DELETE FROM dataset_changes RETURNING xid, seq)
		UPDATE dataset_changes_horizon SET (xid, seq) = (SELECT xid, seq FROM d ORDER BY xid DESC, seq DESC LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	eventually(t, 5*time.Second, "B finds A's data after reloading", func() bool {
		return slices.Equal(hits(t, a, dsID, dataset.SearchMixed, question(3)), hits(t, b, dsID, dataset.SearchMixed, question(3)))
	})
	select {
	case msg := <-warned:
		t.Logf("B warned: %s", msg)
	default:
		t.Fatal("B did not reload")
	}
}

// warnings is a slog.Handler that passes on the messages of warnings.
type warnings chan string

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w warnings) WithGroup(string) slog.Handler                { return w }

func (w warnings) Handle(_ context.Context, r slog.Record) error {
	select {
	case w <- r.Message:
	default:
	}
	return nil
}

// openPool is a store on a fresh schema and its pool, for tests that
// write behind the store's back.
func openPool(t testing.TB) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.Pool(t)
	s, err := pgstore.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// readAll reads the feed from c until a page comes back empty and not
// held, and returns the data ids of the changes read and the new cursor.
func readAll(t *testing.T, s *pgstore.Store, c dataset.ChangeCursor) ([]string, dataset.ChangeCursor, bool) {
	t.Helper()
	var ids []string
	for {
		page, err := s.Changes(ctx, c, 3)
		if err != nil {
			t.Fatal(err)
		}
		if page.Reset {
			t.Fatal("the feed was reset")
		}
		for _, ch := range page.Changes {
			ids = append(ids, ch.DataID)
		}
		c = page.Next
		if len(page.Changes) == 0 {
			return ids, c, page.Held
		}
	}
}

// readCommitted reads the feed from c until it has want changes: a write
// transaction open anywhere in the database (another test's, in another
// schema) holds the feed back until it ends, by design, so what this
// test committed may take a moment to be readable.
func readCommitted(t *testing.T, s *pgstore.Store, c dataset.ChangeCursor, want int) ([]string, dataset.ChangeCursor, bool) {
	t.Helper()
	var ids []string
	held := false
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var more []string
		more, c, held = readAll(t, s, c)
		ids = append(ids, more...)
		if len(ids) >= want || time.Now().After(deadline) {
			return ids, c, held
		}
	}
}

// change writes a change row as the store's writers do, in tx.
func change(t *testing.T, tx pgx.Tx, id string) {
	t.Helper()
	if _, err := tx.Exec(ctx, `INSERT INTO dataset_changes (dataset_id, data_id) VALUES ('ds', $1)`, id); err != nil {
		t.Fatal(err)
	}
}

func begin(t *testing.T, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	return tx
}

func commitTx(t *testing.T, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// A writer that took its place in the feed first but commits last is not
// skipped: A writes seq 1 and stays open while B writes seq 2 and
// commits; the reader gets nothing (held) until A commits, then both.
// And the other way round: C's transaction begins (takes its xid) first
// but writes its row after D has written and committed one; D's row is
// held until C commits, and then C's comes first.
func TestFeedNeverSkipsOutOfOrderCommits(t *testing.T) {
	s, pool := openPool(t)
	a, b := begin(t, pool), begin(t, pool)
	change(t, a, "a") // seq 1
	change(t, b, "b") // seq 2
	commitTx(t, b)
	got, c, held := readAll(t, s, "")
	if len(got) != 0 || !held {
		t.Fatalf("with A open: read %v, held %v; want nothing, held", got, held)
	}
	commitTx(t, a)
	// (held may be true here while another test's transaction is open)
	got, c, _ = readCommitted(t, s, c, 2)
	if fmt.Sprint(got) != "[a b]" {
		t.Fatalf("after A commits: read %v; want [a b]", got)
	}

	cTx, dTx := begin(t, pool), begin(t, pool)
	if _, err := cTx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // C's xid comes first
		t.Fatal(err)
	}
	change(t, dTx, "d")
	commitTx(t, dTx)
	change(t, cTx, "c") // a later seq than d's
	if got, _, held := readAll(t, s, c); len(got) != 0 || !held {
		t.Fatalf("with C open: read %v, held %v; want nothing, held", got, held)
	}
	commitTx(t, cTx)
	if got, _, _ := readCommitted(t, s, c, 2); fmt.Sprint(got) != "[c d]" {
		t.Fatalf("after C commits: read %v; want [c d] (in transaction order)", got)
	}
}

// Many writers whose transactions take their ids, write their rows and
// commit in every order, while a reader follows the feed: the reader gets
// every committed row exactly once, and no rolled-back one.
func TestFeedUnderConcurrentWriters(t *testing.T) {
	s, pool := openPool(t)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	committed := struct {
		sync.Mutex
		ids map[string]bool
	}{ids: map[string]bool{}}
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			nap := func() { time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond) }
			for i := range each {
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if r.IntN(2) == 0 {
					_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
					nap()
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				if err == nil {
					_, err = tx.Exec(ctx, `INSERT INTO dataset_changes (dataset_id, data_id) VALUES ('ds', $1), ('ds', $1 || '+')`, id)
				}
				nap()
				if err == nil && r.IntN(5) == 0 {
					err = tx.Rollback(ctx)
					continue
				}
				if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					t.Error(err)
					return
				}
				committed.Lock()
				committed.ids[id], committed.ids[id+"+"] = true, true
				committed.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var c dataset.ChangeCursor
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := s.Changes(ctx, c, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range page.Changes {
			seen[ch.DataID]++
		}
		c = page.Next
		if finished && len(page.Changes) == 0 && !page.Held {
			break
		}
	}
	want := committed.ids
	if len(seen) != len(want) {
		t.Errorf("read %d changes; %d were committed", len(seen), len(want))
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("change %s read %d times", id, seen[id])
		}
	}
	for id := range seen {
		if !want[id] {
			t.Errorf("change %s read but rolled back", id)
		}
	}
}

// pushInto pushes items q0..qn-1 into a collection through s and waits
// until they are trained.
func pushInto(t testing.TB, s *dataset.Service, collID string, n int, q func(i int) string) {
	t.Helper()
	items := make([]dataset.PushItem, n)
	for i := range items {
		items[i] = dataset.PushItem{Q: q(i), A: fmt.Sprintf("answer %d", i)}
	}
	if res, err := s.Push(ctx, dataset.PushRequest{TeamID: team, CollectionID: collID, Data: items}); err != nil || res.InsertLen != n {
		t.Fatalf("push: %+v %v", res, err)
	}
	eventually(t, time.Minute, "training", func() bool {
		d, err := s.Collection(ctx, team, collID)
		if err != nil || d.FailedAmount > 0 {
			t.Fatalf("training: %+v %v", d, err)
		}
		return d.TrainingAmount == 0 && d.DataAmount == n
	})
}

// collectionsFound is the collections whose data a search through s
// finds, in any mode.
func collectionsFound(t testing.TB, s *dataset.Service, dsID, text string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, mode := range modes {
		res, err := s.Search(ctx, dataset.SearchRequest{TeamID: team, DatasetIDs: []string{dsID}, Text: text, Mode: mode, MaxResults: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			out[h.CollectionID] = true
		}
	}
	return out
}

// Collections deleted together through A, in two datasets, vanish from
// B's vector and full-text indexes, and the collection kept beside them
// stays found.
func TestReplicasForgetDeletedCollections(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	b, _ := replica(t, dsn, pgstore.Options{}, dataset.Options{})
	ds1, gone1 := newCollection(t, a)
	keep, err := a.CreateCollection(ctx, team, ds1, "kept")
	if err != nil {
		t.Fatal(err)
	}
	ds2, gone2 := newCollection(t, a)
	for _, c := range []string{gone1, keep.ID, gone2} {
		pushInto(t, a, c, 20, func(i int) string { return fmt.Sprintf("%s: %s", c, question(i)) })
	}
	text := question(3)
	eventually(t, time.Second, "B finds every collection", func() bool {
		f1, f2 := collectionsFound(t, b, ds1, text), collectionsFound(t, b, ds2, text)
		return f1[gone1] && f1[keep.ID] && f2[gone2]
	})

	if err := a.DeleteCollections(ctx, team, []string{gone1, gone2}); err != nil {
		t.Fatal(err)
	}
	lag := eventually(t, time.Second, "the deleted collections leave B's indexes", func() bool {
		f1, f2 := collectionsFound(t, b, ds1, text), collectionsFound(t, b, ds2, text)
		return !f1[gone1] && len(f2) == 0
	})
	t.Logf("B forgot the collections %v after A deleted them", lag)
	if f := collectionsFound(t, b, ds1, text); !f[keep.ID] {
		t.Fatalf("the kept collection is no longer found through B: %v", f)
	}
	// A search for the deleted collection's own questions finds a full
	// page of the kept one's: stale vectors or text entries of the deleted
	// data would take the index's top places and leave the page short.
	for _, s := range []*dataset.Service{a, b} {
		for _, mode := range modes {
			res, err := s.Search(ctx, dataset.SearchRequest{TeamID: team, DatasetIDs: []string{ds1},
				Text: gone1 + ": " + text, Mode: mode, MaxResults: 5})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Hits) != 5 {
				t.Fatalf("%s search for the deleted collection's questions: %d hits, want a full page of 5 of the kept one's", mode, len(res.Hits))
			}
			for _, h := range res.Hits {
				if h.CollectionID != keep.ID {
					t.Fatalf("%s search found %+v, not of the kept collection", mode, h)
				}
			}
		}
	}
}
