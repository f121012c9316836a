package shareauth

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/chatgate/chatgate/queue"
)

// MemoryStore is a Store in memory, for tests and for programs that keep
// no state. Its zero value is ready.
type MemoryStore struct {
	mu     sync.Mutex
	links  map[string]*Link
	outbox map[string]*Delivery
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (s *MemoryStore) lock() func() {
	s.mu.Lock()
	if s.links == nil {
		s.links, s.outbox = map[string]*Link{}, map[string]*Delivery{}
	}
	return s.mu.Unlock
}

// PutLink implements LinkStore.
func (s *MemoryStore) PutLink(ctx context.Context, l *Link) error {
	defer s.lock()()
	c := *l
	s.links[l.ID] = &c
	return nil
}

// Link implements LinkStore.
func (s *MemoryStore) Link(ctx context.Context, id string) (*Link, error) {
	defer s.lock()()
	l, ok := s.links[id]
	if !ok {
		return nil, ErrLinkNotFound
	}
	c := *l
	return &c, nil
}

// Links implements LinkStore.
func (s *MemoryStore) Links(ctx context.Context, teamID, appID string) ([]*Link, error) {
	return s.linksWhere(func(l *Link) bool { return l.TeamID == teamID && (appID == "" || l.AppID == appID) }), nil
}

// AllLinks implements LinkLister.
func (s *MemoryStore) AllLinks(ctx context.Context) ([]*Link, error) {
	return s.linksWhere(func(*Link) bool { return true }), nil
}

// linksWhere returns copies of the links keep selects, oldest first.
func (s *MemoryStore) linksWhere(keep func(*Link) bool) []*Link {
	defer s.lock()()
	var out []*Link
	for _, l := range s.links {
		if keep(l) {
			c := *l
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, byLinkCreation)
	return out
}

// DeleteLink implements LinkStore.
func (s *MemoryStore) DeleteLink(ctx context.Context, id string) error {
	defer s.lock()()
	if _, ok := s.links[id]; !ok {
		return ErrLinkNotFound
	}
	delete(s.links, id)
	for k, d := range s.outbox {
		if d.ShareID == id {
			delete(s.outbox, k)
		}
	}
	return nil
}

// AddUsage implements LinkStore.
func (s *MemoryStore) AddUsage(ctx context.Context, id string, points float64, at time.Time) error {
	defer s.lock()()
	l, ok := s.links[id]
	if !ok {
		return ErrLinkNotFound
	}
	l.UsagePoints += points
	if at.After(l.LastUsedTime) {
		l.LastUsedTime = at
	}
	return nil
}

func cloneDelivery(d *Delivery) *Delivery {
	c := *d
	c.Body = slices.Clone(d.Body)
	return &c
}

// Enqueue implements Outbox.
func (s *MemoryStore) Enqueue(ctx context.Context, d *Delivery) error {
	defer s.lock()()
	s.outbox[d.ID] = cloneDelivery(d)
	return nil
}

// Claim implements queue.Store.
func (s *MemoryStore) Claim(ctx context.Context, now time.Time, n int, skip func(id string) bool) ([]*Delivery, error) {
	defer s.lock()()
	var out []*Delivery
	for _, d := range s.outbox {
		if !d.Failed && !d.NextAttempt.After(now) && !skip(d.ID) {
			out = append(out, cloneDelivery(d))
		}
	}
	slices.SortFunc(out, func(a, b *Delivery) int {
		return cmp.Or(a.NextAttempt.Compare(b.NextAttempt), cmp.Compare(a.ID, b.ID))
	})
	return out[:max(min(n, len(out)), 0)], nil
}

// Reschedule implements queue.Store.
func (s *MemoryStore) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	defer s.lock()()
	d, ok := s.outbox[id]
	if !ok {
		return queue.ErrGone
	}
	d.attempt(a)
	return nil
}

// Complete implements queue.Completer.
func (s *MemoryStore) Complete(ctx context.Context, ids []string) error {
	defer s.lock()()
	for _, id := range ids {
		delete(s.outbox, id)
	}
	return nil
}

// Pending implements Outbox.
func (s *MemoryStore) Pending(ctx context.Context, shareID string) (int, error) {
	ds, err := s.Deliveries(ctx, shareID)
	return len(ds), err
}

// Deliveries implements Outbox.
func (s *MemoryStore) Deliveries(ctx context.Context, shareID string) ([]*Delivery, error) {
	return s.deliveriesWhere(func(d *Delivery) bool { return d.ShareID == shareID }), nil
}

// AllDeliveries implements DeliveryLister.
func (s *MemoryStore) AllDeliveries(ctx context.Context) ([]*Delivery, error) {
	return s.deliveriesWhere(func(*Delivery) bool { return true }), nil
}

// deliveriesWhere returns copies of the deliveries keep selects, oldest first.
func (s *MemoryStore) deliveriesWhere(keep func(*Delivery) bool) []*Delivery {
	defer s.lock()()
	var out []*Delivery
	for _, d := range s.outbox {
		if keep(d) {
			out = append(out, cloneDelivery(d))
		}
	}
	slices.SortFunc(out, byCreation)
	return out
}

// byCreation orders deliveries oldest first, as Deliveries returns them.
func byCreation(a, b *Delivery) int {
	return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID))
}
