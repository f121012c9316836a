package limit

import (
	"context"
	"sync"
)

// Quota admits work against points budgets, by account (a key, an app, a
// share link: each domain names its own). The points an account has spent
// are kept by a Source, the durable record; a Quota adds what it has
// admitted but not yet seen charged.
//
// An account's work is admitted while its spent points, plus what the work
// already running is expected to cost, stay below its budget. The expected
// cost is the account's mean cost per piece of work so far; until one
// piece has ended and made it known, work is admitted one at a time, so
// concurrent requests cannot all slip under a budget the first alone may
// spend. The overspend is thus at most about one piece of work.
type Quota interface {
	// Reserve admits one piece of work of account against a budget of max
	// points (max <= 0: no budget, always admitted) and returns the func
	// that ends it, to be called once the work has ended and its cost has
	// been charged. It returns ErrSpent when the budget is spent; it waits
	// while the account's cost is unknown and other work of it runs.
	Reserve(ctx context.Context, account string, max float64) (end func(), err error)
	// Charge tells the quota that account spent points, after they were
	// added to the Source.
	Charge(ctx context.Context, account string, points float64) error
	// Spent returns the points account has spent.
	Spent(ctx context.Context, account string) (float64, error)
}

// Source returns the points an account has spent, from the durable record:
// the ledger, a key's or a link's usage.
type Source interface {
	Spent(ctx context.Context, account string) (float64, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(ctx context.Context, account string) (float64, error)

// Spent calls f.
func (f SourceFunc) Spent(ctx context.Context, account string) (float64, error) {
	return f(ctx, account)
}

// LocalQuota is a Quota in memory, exact for one process: it asks its
// Source for the spent points on every Reserve and keeps the work running
// and the mean cost itself. Replicas each see only their own running work;
// use redislimit to admit across them.
type LocalQuota struct {
	src Source

	mu sync.Mutex
	m  map[string]*account
}

type account struct {
	running int
	ended   int
	charged float64       // charged since the account was first reserved
	change  chan struct{} // closed when a piece of work ends
}

// NewLocalQuota returns a LocalQuota over src.
func NewLocalQuota(src Source) *LocalQuota {
	return &LocalQuota{src: src, m: map[string]*account{}}
}

// Reserve implements Quota.
func (q *LocalQuota) Reserve(ctx context.Context, name string, max float64) (func(), error) {
	if max <= 0 {
		return func() {}, nil
	}
	for {
		// The source's answer may be older than its read's end: what was
		// charged meanwhile is added, so that work ended during a slow read
		// is not forgotten (some may count twice, on the budget's side).
		q.mu.Lock()
		a := q.m[name]
		if a == nil {
			a = &account{}
			q.m[name] = a
		}
		before := a.charged
		q.mu.Unlock()
		spent, err := q.src.Spent(ctx, name)
		if err != nil {
			return nil, err
		}
		q.mu.Lock()
		if q.m[name] != a { // forgotten meanwhile
			q.mu.Unlock()
			continue
		}
		spent += a.charged - before
		if a.ended == 0 && a.running > 0 {
			if a.change == nil {
				a.change = make(chan struct{})
			}
			ch := a.change
			q.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if spent+float64(a.running)*a.mean() >= max {
			q.mu.Unlock()
			return nil, ErrSpent
		}
		a.running++
		q.mu.Unlock()
		var once sync.Once
		return func() { once.Do(func() { q.end(a) }) }, nil
	}
}

func (a *account) mean() float64 {
	if a.ended == 0 {
		return 0
	}
	return a.charged / float64(a.ended)
}

func (q *LocalQuota) end(a *account) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a.running--
	a.ended++
	if a.change != nil {
		close(a.change)
		a.change = nil
	}
}

// Charge implements Quota: the points count towards the account's mean
// cost. The spent points themselves are the Source's.
func (q *LocalQuota) Charge(_ context.Context, name string, points float64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.m[name]; a != nil {
		a.charged += points
	}
	return nil
}

// Spent implements Quota: it asks the Source.
func (q *LocalQuota) Spent(ctx context.Context, name string) (float64, error) {
	return q.src.Spent(ctx, name)
}

// Forget drops what q knows of account, as for a deleted key; work of it
// still running ends harmlessly.
func (q *LocalQuota) Forget(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.m, name)
}
