package chat

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
)

// MemoryStore keeps apps and history in memory, for tests and for callers
// that keep state elsewhere. Its zero value is ready to use.
type MemoryStore struct {
	mu      sync.RWMutex
	apps    map[string]*App
	convs   map[string]*Conversation
	records map[string][]Record
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (s *MemoryStore) init() {
	if s.apps == nil {
		s.apps, s.convs, s.records = map[string]*App{}, map[string]*Conversation{}, map[string][]Record{}
	}
}

// PutApp implements AppStore.
func (s *MemoryStore) PutApp(ctx context.Context, a *App) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.apps[appKey(a.TeamID, a.ID)] = cloneApp(a)
	return nil
}

// App implements AppStore.
func (s *MemoryStore) App(ctx context.Context, team, id string) (*App, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.apps[appKey(team, id)]
	if !ok {
		return nil, ErrAppNotFound
	}
	return cloneApp(a), nil
}

// Apps implements AppStore.
func (s *MemoryStore) Apps(ctx context.Context, team string) ([]*App, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*App
	for _, a := range s.apps {
		if team == "" || a.TeamID == team {
			out = append(out, cloneApp(a))
		}
	}
	slices.SortFunc(out, func(a, b *App) int { return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.TeamID, b.TeamID)) })
	return out, nil
}

// DeleteApp implements AppStore.
func (s *MemoryStore) DeleteApp(ctx context.Context, team, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := appKey(team, id)
	if _, ok := s.apps[key]; !ok {
		return ErrAppNotFound
	}
	prefix := key + "\x00"
	for k := range s.convs {
		if strings.HasPrefix(k, prefix) {
			delete(s.convs, k)
			delete(s.records, k)
		}
	}
	delete(s.apps, key)
	return nil
}

// Conversation implements HistoryStore.
func (s *MemoryStore) Conversation(ctx context.Context, team, app, chatID string, limit int) (*Conversation, []Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := convKey(team, app, chatID)
	c, ok := s.convs[k]
	if !ok {
		return nil, nil, ErrChatNotFound
	}
	recs := s.records[k]
	if limit > 0 && len(recs) > limit {
		recs = recs[len(recs)-limit:]
	}
	return cloneConversation(c), cloneRecords(recs), nil
}

// AppendTurn implements HistoryStore.
func (s *MemoryStore) AppendTurn(ctx context.Context, c *Conversation, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	k := convKey(c.TeamID, c.AppID, c.ChatID)
	cc := cloneConversation(c)
	if old, ok := s.convs[k]; ok {
		if old.CustomUID != c.CustomUID {
			return ErrOtherEndUser
		}
		cc.CustomTitle, cc.Top = old.CustomTitle, old.Top
	}
	s.records[k] = append(s.records[k], cloneRecords(recs)...)
	cc.Messages = len(s.records[k])
	s.convs[k] = cc
	return nil
}

// Conversations implements HistoryStore.
func (s *MemoryStore) Conversations(ctx context.Context, team, app string, offset, limit int) ([]Conversation, int, error) {
	return s.SearchConversations(ctx, team, app, ConversationFilter{}, offset, limit)
}

// SearchConversations implements HistorySearcher.
func (s *MemoryStore) SearchConversations(ctx context.Context, team, app string, f ConversationFilter, offset, limit int) ([]Conversation, int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []Conversation
	for _, c := range s.convs {
		if c.TeamID == team && c.AppID == app && f.Match(c) {
			all = append(all, *cloneConversation(c))
		}
	}
	sortConversations(all)
	lo, hi := pageBounds(len(all), offset, limit)
	return all[lo:hi], len(all), nil
}

func sortConversations(cs []Conversation) {
	slices.SortFunc(cs, func(a, b Conversation) int {
		if a.Top != b.Top {
			if a.Top {
				return -1
			}
			return 1
		}
		if c := b.UpdateTime.Compare(a.UpdateTime); c != 0 {
			return c
		}
		return cmp.Compare(a.ChatID, b.ChatID)
	})
}

// Records implements HistoryStore.
func (s *MemoryStore) Records(ctx context.Context, team, app, chatID string, offset, limit int) ([]Record, int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := convKey(team, app, chatID)
	if _, ok := s.convs[k]; !ok {
		return nil, 0, ErrChatNotFound
	}
	recs := s.records[k]
	lo, hi := pageBounds(len(recs), offset, limit)
	return cloneRecords(recs[lo:hi]), len(recs), nil
}

// DeleteConversation implements HistoryStore.
func (s *MemoryStore) DeleteConversation(ctx context.Context, team, app, chatID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := convKey(team, app, chatID)
	if _, ok := s.convs[k]; !ok {
		return ErrChatNotFound
	}
	delete(s.convs, k)
	delete(s.records, k)
	return nil
}

// Record implements HistorySearcher.
func (s *MemoryStore) Record(ctx context.Context, team, app, chatID, dataID string) (*Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := convKey(team, app, chatID)
	if _, ok := s.convs[k]; !ok {
		return nil, ErrChatNotFound
	}
	for i, r := range s.records[k] {
		if r.DataID == dataID {
			return &cloneRecords(s.records[k][i : i+1])[0], nil
		}
	}
	return nil, ErrRecordNotFound
}

// UpdateConversation implements HistoryEditor.
func (s *MemoryStore) UpdateConversation(ctx context.Context, team, app, chatID string, u ConversationUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[convKey(team, app, chatID)]
	if !ok {
		return ErrChatNotFound
	}
	if u.CustomTitle != nil {
		c.CustomTitle = *u.CustomTitle
	}
	if u.Top != nil {
		c.Top = *u.Top
	}
	return nil
}

// DeleteConversations implements HistoryEditor.
func (s *MemoryStore) DeleteConversations(ctx context.Context, team, app string, f ConversationFilter) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, c := range s.convs {
		if c.TeamID == team && c.AppID == app && f.Match(c) {
			delete(s.convs, k)
			delete(s.records, k)
			n++
		}
	}
	return n, nil
}

// DeleteRecord implements HistoryEditor.
func (s *MemoryStore) DeleteRecord(ctx context.Context, team, app, chatID, dataID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := convKey(team, app, chatID)
	c, ok := s.convs[k]
	if !ok {
		return ErrChatNotFound
	}
	kept := slices.DeleteFunc(slices.Clone(s.records[k]), func(r Record) bool { return r.DataID == dataID })
	if len(kept) == len(s.records[k]) {
		return ErrRecordNotFound
	}
	s.records[k], c.Messages = kept, len(kept)
	return nil
}

// SetFeedback implements HistoryEditor.
func (s *MemoryStore) SetFeedback(ctx context.Context, team, app, chatID, dataID string, fb Feedback) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := convKey(team, app, chatID)
	if _, ok := s.convs[k]; !ok {
		return ErrChatNotFound
	}
	found := false
	for i := range s.records[k] {
		if r := &s.records[k][i]; r.DataID == dataID {
			r.UserGoodFeedback, r.UserBadFeedback, found = fb.Good, fb.Bad, true
		}
	}
	if !found {
		return ErrRecordNotFound
	}
	return nil
}

// The store keeps and returns deep copies, as the bbolt store's encoding
// does, so neither the caller's values nor what a read returned alias it.

// Clone returns a deep copy of a, which its caller may change without
// changing a.
func (a *App) Clone() *App { return cloneApp(a) }

func cloneApp(a *App) *App {
	c := *a
	c.DatasetIDs = slices.Clone(a.DatasetIDs)
	if a.Temperature != nil {
		t := *a.Temperature
		c.Temperature = &t
	}
	return &c
}

func cloneConversation(c *Conversation) *Conversation {
	cc := *c
	cc.Variables = maps.Clone(c.Variables)
	return &cc
}

func cloneRecords(recs []Record) []Record {
	out := slices.Clone(recs)
	for i := range out {
		rd := slices.Clone(out[i].ResponseData)
		for j := range rd {
			m := &rd[j]
			m.QuoteList = slices.Clone(m.QuoteList)
			m.CompleteMessages = slices.Clone(m.CompleteMessages)
			if m.Similarity != nil {
				sim := *m.Similarity
				m.Similarity = &sim
			}
		}
		out[i].ResponseData = rd
	}
	return out
}
