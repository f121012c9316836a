package billing

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/chatgate/chatgate/internal/id"
)

// MemoryLedger is a Ledger in memory, for tests and for callers that keep
// state elsewhere. Its zero value is ready to use.
type MemoryLedger struct {
	mu      sync.RWMutex
	records []Record // in insertion order
	ids     map[string]bool
	bills   map[string]*BillDetail
	keys    map[string]float64
	apps    map[string]float64 // appKey -> points
}

// NewMemoryLedger returns an empty MemoryLedger.
func NewMemoryLedger() *MemoryLedger { return &MemoryLedger{} }

func (l *MemoryLedger) init() {
	if l.ids == nil {
		l.ids, l.bills, l.keys, l.apps = map[string]bool{}, map[string]*BillDetail{}, map[string]float64{}, map[string]float64{}
	}
}

// prepare fills a record's id and time and checks it has a team and
// figures that can be summed. named reports that the id is the ledger's,
// made here: one found taken is a collision to draw again, not a
// duplicate.
func prepare(r *Record) (named bool, err error) {
	if r.TeamID == "" {
		return false, errNoTeam
	}
	if r.Points < 0 || math.IsNaN(r.Points) || math.IsInf(r.Points, 0) || r.InputTokens < 0 || r.OutputTokens < 0 {
		return false, errBadFigures
	}
	now := time.Now()
	if r.ID == "" {
		r.ID, named = newRecordID(now), true
	}
	if r.Time.IsZero() {
		r.Time = now.UTC()
	}
	return named, nil
}

// Record implements RecordWriter.
func (l *MemoryLedger) Record(ctx context.Context, r *Record) error {
	named, err := prepare(r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if r.BillID != "" {
		if b, ok := l.bills[r.BillID]; !ok || b.TeamID != r.TeamID {
			return ErrBillNotFound
		}
	}
	for named && l.ids[r.ID] {
		r.ID = newRecordID(time.Now())
	}
	if l.ids[r.ID] {
		return ErrDuplicate
	}
	l.ids[r.ID] = true
	l.records = append(l.records, *r)
	if r.KeyID != "" {
		l.keys[r.KeyID] += r.Points
	}
	if r.AppID != "" {
		l.apps[appKey(r.TeamID, r.AppID)] += r.Points
	}
	if r.BillID != "" {
		l.bills[r.BillID].addRecord(r)
	}
	return nil
}

// CreateBill implements BillStore.
func (l *MemoryLedger) CreateBill(ctx context.Context, b *Bill) error {
	if b.ID == "" {
		b.ID = id.New()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	l.bills[b.ID] = &BillDetail{Bill: *b, Items: []BillItem{}}
	return nil
}

// Bill implements BillStore.
func (l *MemoryLedger) Bill(ctx context.Context, id string) (*BillDetail, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	b, ok := l.bills[id]
	if !ok {
		return nil, ErrBillNotFound
	}
	c := *b
	c.Items = slices.Clone(b.Items)
	return &c, nil
}

// Bills implements BillLister.
func (l *MemoryLedger) Bills(ctx context.Context) ([]Bill, error) {
	l.mu.RLock()
	out := make([]Bill, 0, len(l.bills))
	for _, b := range l.bills {
		out = append(out, b.Bill)
	}
	l.mu.RUnlock()
	sortBills(out)
	return out, nil
}

// EachRecord implements RecordSource. fn runs without the ledger's lock,
// so it may use the ledger.
func (l *MemoryLedger) EachRecord(ctx context.Context, fn func(Record) error) error {
	l.mu.RLock()
	recs := slices.Clone(l.records)
	l.mu.RUnlock()
	slices.SortStableFunc(recs, func(a, b Record) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID)) })
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// sortBills puts bills in BillLister's order.
func sortBills(bs []Bill) {
	slices.SortFunc(bs, func(a, b Bill) int { return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID)) })
}

// selected returns the records f selects, newest first.
func (l *MemoryLedger) selected(f Filter) []Record {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []Record
	for i := len(l.records) - 1; i >= 0; i-- {
		if r := &l.records[i]; f.match(r) {
			out = append(out, *r)
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return b.Time.Compare(a.Time) })
	return out
}

// List implements UsageReader.
func (l *MemoryLedger) List(ctx context.Context, f Filter) ([]Record, int, error) {
	all := l.selected(f)
	total := len(all)
	all = all[min(f.Offset, total):]
	if f.Limit > 0 {
		all = all[:min(f.Limit, len(all))]
	}
	return all, total, nil
}

// Summary implements UsageReader.
func (l *MemoryLedger) Summary(ctx context.Context, f Filter) (*Summary, error) {
	s := newSummer()
	for _, r := range l.selected(f) {
		s.add(&r)
	}
	return s.result(), nil
}

// KeyPoints implements SpendReader.
func (l *MemoryLedger) KeyPoints(ctx context.Context) (map[string]float64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[string]float64, len(l.keys))
	for k, v := range l.keys {
		out[k] = v
	}
	return out, nil
}

// KeyPointsOf implements KeySpendReader.
func (l *MemoryLedger) KeyPointsOf(ctx context.Context, keyID string) (float64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.keys[keyID], nil
}

// AppPoints implements SpendReader.
func (l *MemoryLedger) AppPoints(ctx context.Context, teamID, appID string) (float64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.apps[appKey(teamID, appID)], nil
}

// appKey is the key of a team's app in the app totals; NUL cannot occur
// in ids.
func appKey(teamID, appID string) string { return teamID + "\x00" + appID }
