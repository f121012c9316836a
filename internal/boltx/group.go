package boltx

import (
	"context"
	"runtime"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/internal/panics"
)

// Group shares bbolt transactions among concurrent updates: each Update
// joins the next transaction and returns when it has committed, so that
// under load one commit, and its two fsyncs, carries many updates, without
// delaying a lone one (bbolt's own DB.Batch waits up to MaxBatchDelay for
// company) and without giving up durability. Its zero value, given DB, is
// ready; it must not be copied once used.
type Group struct {
	DB *bbolt.DB

	mu      sync.Mutex
	queue   []*groupCall
	running bool
}

type groupCall struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// Update runs fn in a read-write transaction it may share with other
// calls', and returns fn's error or the commit's. A context already done
// runs nothing; once fn is queued it commits whatever ctx does, as waiting
// for it is what makes nil mean durable.
//
// When fn fails (or panics) in a shared transaction, that transaction is
// rolled back and each of its calls is run again in one of its own, so
// that fn's failure is its call's alone: fn must leave nothing behind when
// it fails, and may be called more than once.
func (g *Group) Update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-c.done
}

// loop commits what is queued, one transaction per round, until the queue
// is empty.
func (g *Group) loop() {
	for {
		g.mu.Lock()
		round := g.queue
		g.queue = nil
		if len(round) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(round)
		// Let the goroutines ready to run reach the queue before the next
		// round takes it, so that callers updating again share a round
		// rather than split into two that commit apart: a yield, which
		// returns at once when nothing else is runnable.
		runtime.Gosched()
	}
}

// commit runs round in one transaction, or, should that fail, each call
// in one of its own.
func (g *Group) commit(round []*groupCall) {
	err := panics.Catch(func() error {
		return g.DB.Update(func(tx *bbolt.Tx) error {
			for _, c := range round {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil && len(round) > 1 {
		for _, c := range round {
			g.commit([]*groupCall{c})
		}
		return
	}
	for _, c := range round {
		c.done <- err
	}
}
