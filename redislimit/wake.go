package redislimit

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// waker wakes the Reserves that wait for the first piece of an account's
// work to end (its cost unknown until then): the end script publishes the
// counter's key on one channel, and this process's subscription wakes its
// waiters at once instead of at their next poll. A message lost (Redis
// restarting, the subscription reconnecting) costs only the poll.
type waker struct {
	rdb     redis.UniversalClient
	channel string
	stop    <-chan struct{}
	spawn   func(func()) bool // runs a goroutine Close waits for, unless closed

	once sync.Once
	mu   sync.Mutex
	sets map[string]*waitSet // by counter key
}

type waitSet struct {
	ch   chan struct{}
	refs int
}

// wait returns a channel closed when counter's first piece of work ends
// (or, rarely, later), and the func that stops waiting. Call it before the
// check whose answer may be to wait, so that no end falls between them.
func (w *waker) wait(counter string) (<-chan struct{}, func()) {
	w.once.Do(w.start)
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sets[counter]
	if s == nil {
		s = &waitSet{ch: make(chan struct{})}
		w.sets[counter] = s
	}
	s.refs++
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if s.refs--; s.refs == 0 && w.sets[counter] == s {
				delete(w.sets, counter)
			}
		})
	}
}

func (w *waker) start() {
	w.spawn(func() {
		ps := w.rdb.Subscribe(context.Background(), w.channel)
		defer ps.Close()
		msgs := ps.Channel()
		for {
			select {
			case <-w.stop:
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				w.wake(m.Payload)
			}
		}
	})
}

func (w *waker) wake(counter string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.sets[counter]; s != nil {
		close(s.ch)
		delete(w.sets, counter)
	}
}
