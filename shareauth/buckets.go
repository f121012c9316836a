package shareauth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// defaultMaxBuckets bounds how many links one bucket set tracks at once.
const defaultMaxBuckets = 10_000

// buckets is a set of token buckets, one per link, of bounded size. It is
// per process: the scale-out deployment moves these limits to Redis.
type buckets struct {
	mu  sync.Mutex
	max int
	m   map[string]*bucket
}

type bucket struct {
	every rate.Limit
	burst int
	lim   *rate.Limiter
}

func newBuckets(max int) *buckets {
	if max <= 0 {
		max = defaultMaxBuckets
	}
	return &buckets{max: max, m: map[string]*bucket{}}
}

// take spends a token of key's bucket, which refills at r per second up to
// burst; when there is none it reports how long until there is. A bucket
// whose rate or burst changed starts afresh.
func (b *buckets) take(key string, r rate.Limit, burst int, now time.Time) (wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[key]
	if bk == nil || bk.every != r || bk.burst != burst {
		if bk == nil && len(b.m) >= b.max {
			b.shrink(now)
		}
		bk = &bucket{every: r, burst: burst, lim: rate.NewLimiter(r, burst)}
		b.m[key] = bk
	}
	if bk.lim.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - bk.lim.TokensAt(now)
	return time.Duration(missing / float64(r) * float64(time.Second)), false
}

// shrink makes room: a full bucket is the same as none, so those go
// first; if that is not a quarter of the set, arbitrary ones go too (each
// such link gets a fresh burst: a small leak, bounded, against unbounded
// memory), so the next shrink is at least max/4 new links away.
func (b *buckets) shrink(now time.Time) {
	for k, bk := range b.m {
		if bk.lim.TokensAt(now) >= float64(bk.burst) {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) <= b.max*3/4 {
			break
		}
		delete(b.m, k)
	}
}

// drop forgets key's bucket.
func (b *buckets) drop(key string) {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}

func (b *buckets) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
