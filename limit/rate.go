package limit

import (
	"context"
	"sync"
	"time"
)

// Rate is at most N events in any window of length Per. N <= 0 means no
// limit.
type Rate struct {
	N   int
	Per time.Duration
}

// PerMinute is n events in any minute.
func PerMinute(n int) Rate { return Rate{N: n, Per: time.Minute} }

// Unlimited reports whether r limits nothing.
func (r Rate) Unlimited() bool { return r.N <= 0 || r.Per <= 0 }

// Limiter counts events against rates, by key.
type Limiter interface {
	// Take counts one event of key against r. It returns 0 when the event
	// may go on; when r's window already holds r.N events it counts nothing
	// and returns how long until one leaves the window. A non-nil error
	// says the count could not be made (ErrUnavailable in its chain).
	Take(ctx context.Context, key string, r Rate) (time.Duration, error)
}

// DefaultMaxKeys bounds how many keys a Local tracks at once.
const DefaultMaxKeys = 100_000

// Local is a Limiter in memory, exact for one process: it keeps the times
// of the last N events of each key (a sliding log), so a key limited to N
// a minute never gets more than N in any minute, and its wait is exact.
// Replicas each count their own; use redislimit to count across them.
// The zero value is ready to use.
type Local struct {
	// MaxKeys bounds how many keys are tracked; DefaultMaxKeys when zero.
	// Past it, keys whose windows are empty are forgotten first, then
	// arbitrary ones (each such key starts afresh: a bounded leak, against
	// unbounded memory).
	MaxKeys int

	mu sync.Mutex
	m  map[string]*window
}

// window is a ring of the times (unix ns) of a key's last events.
type window struct {
	rate  Rate
	times []int64
	head  int // index of the oldest
	count int
}

// Take implements Limiter.
func (l *Local) Take(_ context.Context, key string, r Rate) (time.Duration, error) {
	if r.Unlimited() {
		return 0, nil
	}
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	if w == nil || w.rate != r {
		if w == nil {
			l.makeRoom(now)
		}
		w = w.resized(r)
		if l.m == nil {
			l.m = map[string]*window{}
		}
		l.m[key] = w
	}
	w.expire(now)
	if w.count == len(w.times) && len(w.times) < r.N {
		w.grow()
	}
	if w.count < len(w.times) {
		w.times[(w.head+w.count)%len(w.times)] = now
		w.count++
		return 0, nil
	}
	return time.Duration(w.times[w.head] + int64(r.Per) - now), nil
}

// minRing is a new window's room; it doubles as it fills, up to the limit,
// so a key limited to millions a minute costs what it sends, not its limit.
const minRing = 16

// resized returns a window for r that keeps w's newest events, so that a
// changed limit does not hand out a fresh window.
func (w *window) resized(r Rate) *window {
	keep := 0
	if w != nil {
		keep = min(w.count, r.N)
	}
	nw := &window{rate: r, times: make([]int64, min(r.N, max(minRing, keep)))}
	for i := range keep {
		nw.times[i] = w.times[(w.head+w.count-keep+i)%len(w.times)]
	}
	nw.count = keep
	return nw
}

// grow doubles a full ring's room, up to the limit.
func (w *window) grow() {
	times := make([]int64, min(2*len(w.times), w.rate.N))
	for i := range w.count {
		times[i] = w.times[(w.head+i)%len(w.times)]
	}
	w.times, w.head = times, 0
}

func (w *window) expire(now int64) {
	edge := now - int64(w.rate.Per)
	for w.count > 0 && w.times[w.head] <= edge {
		w.head = (w.head + 1) % len(w.times)
		w.count--
	}
}

func (l *Local) makeRoom(now int64) {
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if len(l.m) < maxKeys {
		return
	}
	for k, w := range l.m {
		if w.expire(now); w.count == 0 {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) <= maxKeys*3/4 {
			break
		}
		delete(l.m, k)
	}
}

// Forget drops key's window, as for a deleted key or link.
func (l *Local) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// Len returns how many keys are tracked.
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
