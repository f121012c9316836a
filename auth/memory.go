package auth

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store held in memory: for tests, and for callers that keep
// their state elsewhere. Its zero value is ready to use.
type MemoryStore struct {
	mu     sync.RWMutex
	keys   map[string]*Key
	hashes map[Hash]string
	usage  map[string]Usage
	audit  []AuditEvent
	seq    uint64 // the last Seq assigned
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (s *MemoryStore) init() {
	if s.keys == nil {
		s.keys = map[string]*Key{}
		s.hashes = map[Hash]string{}
		s.usage = map[string]Usage{}
	}
}

// Create implements KeyWriter.
func (s *MemoryStore) Create(ctx context.Context, k *Key, ev *AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if _, ok := s.keys[k.ID]; ok {
		return ErrKeyExists
	}
	if err := s.claimHashes(k); err != nil {
		return err
	}
	s.keys[k.ID] = k.Clone()
	s.appendAudit(ev)
	return nil
}

// Update implements KeyWriter.
func (s *MemoryStore) Update(ctx context.Context, k *Key, ev *AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	old, ok := s.keys[k.ID]
	if !ok {
		return ErrKeyNotFound
	}
	if err := s.claimHashes(k); err != nil {
		return err
	}
	for _, h := range old.hashes() {
		if !slices.Contains(k.hashes(), h) {
			delete(s.hashes, h)
		}
	}
	s.keys[k.ID] = k.Clone()
	s.appendAudit(ev)
	return nil
}

// claimHashes points k's hashes at k, failing if one belongs to another key.
func (s *MemoryStore) claimHashes(k *Key) error {
	hs := k.hashes()
	for _, h := range hs {
		if id, ok := s.hashes[h]; ok && id != k.ID {
			return ErrHashInUse
		}
	}
	for _, h := range hs {
		s.hashes[h] = k.ID
	}
	return nil
}

// Delete implements KeyWriter.
func (s *MemoryStore) Delete(ctx context.Context, id string, ev *AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	k, ok := s.keys[id]
	if !ok {
		return ErrKeyNotFound
	}
	for _, h := range k.hashes() {
		delete(s.hashes, h)
	}
	delete(s.keys, id)
	delete(s.usage, id)
	s.appendAudit(ev)
	return nil
}

// Get implements KeyReader.
func (s *MemoryStore) Get(ctx context.Context, id string) (*Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return s.withUsage(k), nil
}

// GetByHash implements KeyReader.
func (s *MemoryStore) GetByHash(ctx context.Context, h Hash) (*Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.hashes[h]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return s.withUsage(s.keys[id]), nil
}

func (s *MemoryStore) withUsage(k *Key) *Key {
	c := k.Clone()
	u := s.usage[k.ID]
	c.UsagePoints, c.LastUsedTime = u.Points, u.LastUsed
	return c
}

// List implements KeyLister.
func (s *MemoryStore) List(ctx context.Context, f Filter) ([]*Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Key
	for _, k := range s.keys {
		if f.match(k) {
			out = append(out, s.withUsage(k))
		}
	}
	sortKeys(out)
	return out, nil
}

// AddUsage implements UsageWriter.
func (s *MemoryStore) AddUsage(ctx context.Context, us []Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	for _, u := range us {
		if _, ok := s.keys[u.KeyID]; !ok {
			continue
		}
		s.usage[u.KeyID] = mergeUsage(s.usage[u.KeyID], u)
	}
	return nil
}

// AppendAudit implements AuditWriter.
func (s *MemoryStore) AppendAudit(ctx context.Context, evs []AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		s.appendAudit(&evs[i])
	}
	return nil
}

func (s *MemoryStore) appendAudit(ev *AuditEvent) {
	if ev == nil {
		return
	}
	e := *ev
	s.seq++
	e.Seq = s.seq
	s.audit = append(s.audit, e)
}

// ImportAudit implements AuditImporter.
func (s *MemoryStore) ImportAudit(ctx context.Context, evs []AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.seq
	for _, e := range evs {
		if e.Seq <= last {
			return fmt.Errorf("%w: event %d after %d", ErrAuditSeq, e.Seq, last)
		}
		last = e.Seq
	}
	s.audit = append(s.audit, evs...)
	s.seq = last
	return nil
}

// TrimAudit implements AuditTrimmer.
func (s *MemoryStore) TrimAudit(ctx context.Context, before time.Time, keep int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if !before.IsZero() {
		for n < len(s.audit) && s.audit[n].Time.Before(before) {
			n++
		}
	}
	if keep > 0 && len(s.audit)-n > keep {
		n = len(s.audit) - keep
	}
	if n > 0 {
		// a new slice, so the removed events' memory goes with them
		s.audit = slices.Clone(s.audit[n:])
	}
	return n, nil
}

// Audit implements AuditReader.
func (s *MemoryStore) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []AuditEvent
	for i := len(s.audit) - 1; i >= 0 && len(out) < q.limit(); i-- {
		if q.match(&s.audit[i]) {
			out = append(out, s.audit[i])
		}
	}
	return out, nil
}

// mergeUsage adds u to the stored usage a.
func mergeUsage(a, u Usage) Usage {
	a.KeyID = u.KeyID
	a.Points += u.Points
	if u.LastUsed.After(a.LastUsed) {
		a.LastUsed = u.LastUsed
	}
	return a
}

func sortKeys(ks []*Key) {
	slices.SortFunc(ks, func(a, b *Key) int {
		if c := a.CreateTime.Compare(b.CreateTime); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
