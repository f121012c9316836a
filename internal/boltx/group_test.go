package boltx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/panics"
)

// Concurrent updates through a Group all commit, each counted once; one
// that fails or panics fails alone, leaving nothing, and the others of its
// transaction commit.
func TestGroupUpdate(t *testing.T) {
	db := testDB(t)
	g := &Group{DB: db}
	bad := errors.New("bad")
	add := func(key string, fail, panicking bool) func(*bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("b"))
			n := uint64(0)
			if v := b.Get([]byte(key)); v != nil {
				n = binary.BigEndian.Uint64(v)
			}
			if err := b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, n+1)); err != nil {
				return err
			}
			switch {
			case panicking:
				panic("boom")
			case fail:
				return bad // after its put: the put must not stay
			}
			return nil
		}
	}
	// Hold the writer lock so that the calls queue up into shared rounds.
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // before db.Close, should the test fail holding it
	const writers, each = 16, 8
	var wg sync.WaitGroup
	errs := make([][]error, writers)
	starts := make([]chan struct{}, writers)
	for w := range writers {
		errs[w], starts[w] = make([]error, each), make(chan struct{})
		wg.Go(func() {
			<-starts[w]
			for i := range each {
				errs[w][i] = g.Update(context.Background(), add(fmt.Sprintf("k%d", w%4), i == 3, i == 5))
			}
		})
	}
	// The first writer's round waits for the lock; the others' first calls
	// queue behind it and share the next round.
	waitQueue := func(want int) {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			g.mu.Lock()
			queued, running := len(g.queue), g.running
			g.mu.Unlock()
			if running && queued == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls queued; want %d", queued, want)
			}
		}
	}
	close(starts[0])
	waitQueue(0)
	for _, c := range starts[1:] {
		close(c)
	}
	waitQueue(writers - 1)
	_ = tx.Rollback()
	wg.Wait()
	for w := range writers {
		for i, err := range errs[w] {
			var pe *panics.Error
			switch {
			case i == 3 && !errors.Is(err, bad):
				t.Errorf("writer %d call %d: %v; want its own failure", w, i, err)
			case i == 5 && !errors.As(err, &pe):
				t.Errorf("writer %d call %d: %v; want its panic", w, i, err)
			case i != 3 && i != 5 && err != nil:
				t.Errorf("writer %d call %d failed beside failing ones: %v", w, i, err)
			}
		}
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		for k := range 4 {
			v := tx.Bucket([]byte("b")).Get(fmt.Appendf(nil, "k%d", k))
			if n := binary.BigEndian.Uint64(v); n != writers/4*(each-2) {
				t.Errorf("k%d = %d; want %d", k, n, writers/4*(each-2))
			}
		}
		return nil
	})
	if err := g.Update(canceled(), add("k0", false, false)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a done context: %v", err)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
