package pgstore_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

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
	got, c, held = readAll(t, s, c)
	if fmt.Sprint(got) != "[a b]" || held {
		t.Fatalf("after A commits: read %v, held %v; want [a b]", got, held)
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
	if got, _, _ := readAll(t, s, c); fmt.Sprint(got) != "[c d]" {
		t.Fatalf("after C commits: read %v; want [c d] (in transaction order)", got)
	}
}

// Many writers whose transactions take their ids, write their rows and
// commit in every order, while a reader follows the feed: the reader gets
// every committed row exactly once, and no rolled-back one.
func TestFeedUnderConcurrentWriters(t *testing.T) {
	s, pool := openPool(t)
	const writers, each = 8, 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want = map[string]bool{}
	)
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
				mu.Lock()
				want[id], want[id+"+"] = true, true
				mu.Unlock()
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
