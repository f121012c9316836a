package shareauthtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/shareauth"
	"github.com/chatgate/chatgate/shareauth/shareauthtest"
)

// exclusiveStore is a MemoryStore whose Claim keeps what it returned from
// later claims until it is rescheduled or completed, as a store several
// processes share must: what TestSharedStore checks.
type exclusiveStore struct {
	*shareauth.MemoryStore
	mu      sync.Mutex
	claimed map[string]bool
}

func (s *exclusiveStore) Claim(ctx context.Context, now time.Time, n int, skip func(string) bool) ([]*shareauth.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, err := s.MemoryStore.Claim(ctx, now, n, func(id string) bool { return s.claimed[id] || skip(id) })
	for _, d := range ds {
		s.claimed[d.ID] = true
	}
	return ds, err
}

func (s *exclusiveStore) release(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.claimed, id)
	}
}

func (s *exclusiveStore) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	s.release(id)
	return s.MemoryStore.Reschedule(ctx, id, a)
}

func (s *exclusiveStore) Complete(ctx context.Context, ids []string) error {
	s.release(ids...)
	return s.MemoryStore.Complete(ctx, ids)
}

func TestSharedStore(t *testing.T) {
	shareauthtest.TestSharedStore(t, func(t *testing.T) shareauth.Store {
		return &exclusiveStore{MemoryStore: shareauth.NewMemoryStore(), claimed: map[string]bool{}}
	})
}
