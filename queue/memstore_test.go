package queue_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/queue/queuetest"
)

// job is a test job.
type job struct {
	id       string
	attempts int
}

func (j job) JobID() string    { return j.id }
func (j job) JobAttempts() int { return j.attempts }

// memStore is a queue.Store and queue.Completer in memory, with hooks.
type memStore struct {
	mu   sync.Mutex
	jobs map[string]*queue.Attempt
	// claimPanics, when positive, makes that many Claims panic.
	claimPanics int
	released    []string
}

func newMemStore() *memStore { return &memStore{jobs: map[string]*queue.Attempt{}} }

func (s *memStore) add(_ context.Context, id string, next time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[id] = &queue.Attempt{Next: next}
	return nil
}

func (s *memStore) state(_ context.Context, id string) (queue.Attempt, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.jobs[id]
	if !ok {
		return queue.Attempt{}, false, nil
	}
	return *a, true, nil
}

func (s *memStore) Claim(_ context.Context, now time.Time, n int, skip func(string) bool) ([]job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimPanics > 0 {
		s.claimPanics--
		panic("store: corrupted page")
	}
	var out []job
	for id, a := range s.jobs {
		if !a.Failed && !a.Next.After(now) && !skip(id) {
			out = append(out, job{id, a.Attempts})
		}
	}
	slices.SortFunc(out, func(x, y job) int {
		return cmp.Or(s.jobs[x.id].Next.Compare(s.jobs[y.id].Next), cmp.Compare(x.id, y.id))
	})
	return out[:min(n, len(out))], nil
}

func (s *memStore) Reschedule(_ context.Context, id string, a queue.Attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[id]; !ok {
		return queue.ErrGone
	}
	s.jobs[id] = &a
	return nil
}

func (s *memStore) Complete(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.jobs, id)
	}
	return nil
}

// Release records what a Runner gave back; this store holds no leases.
func (s *memStore) Release(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = append(s.released, ids...)
	return nil
}

func (s *memStore) harness() queuetest.Harness[job] {
	return queuetest.Harness[job]{Store: s, Add: s.add, State: s.state}
}
