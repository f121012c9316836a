package redislimit

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/chatgate/chatgate/limit"
)

// Limiter is a limit.Limiter in Redis: one sliding log of event times per
// key, taken from in one atomic script, so a key limited to N a minute gets
// N in any minute across every replica, and its wait is exact.
//
// A key far from its limit is checked in Redis once per lease rather than
// once per event: the script grants this process a few slots of the window
// at a time (at most a sixteenth of what is left, so none near the limit),
// which it uses for leaseLife and then gives back. See rateScript for why
// leasing never lets a window hold more than N.
type Limiter struct {
	c      *Client
	prefix string

	mu     sync.Mutex
	leases map[string]*lease // by key
}

// lease is the slots of a key's window this process holds.
type lease struct {
	base      string // members are base:i
	next, n   int    // slots next..n-1 are unused
	ends      time.Time
	fetching  chan struct{} // closed when a fetch under way ends
	refused   time.Duration // what that fetch answered, when refused
	refusedAt time.Time
}

// Leasing bounds: a lease lives leaseLife and holds at most maxLease slots.
const (
	leaseLife = 100 * time.Millisecond
	maxLease  = 64
)

// maxLeases bounds the keys a Limiter holds leases of; past it, expired
// ones are swept at once.
const maxLeases = 100_000

// Take implements limit.Limiter. When Redis does not answer, the event is
// let through (Options.RateFailOpen) or refused with limit.ErrUnavailable.
func (l *Limiter) Take(ctx context.Context, key string, r limit.Rate) (time.Duration, error) {
	if r.Unlimited() {
		return 0, nil
	}
	for {
		now := time.Now()
		l.mu.Lock()
		ls := l.leases[key]
		if ls == nil {
			ls = &lease{}
			l.leases[key] = ls
		}
		if ls.next < ls.n && now.Before(ls.ends) {
			ls.next++
			l.mu.Unlock()
			return 0, nil
		}
		if ch := ls.fetching; ch != nil {
			// One fetch per key at a time: its lease serves the others.
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			l.mu.Lock()
			if ls.refused > 0 && l.leases[key] == ls {
				w := ls.refused - time.Since(ls.refusedAt)
				l.mu.Unlock()
				if w > 0 {
					return w, nil
				}
				continue
			}
			l.mu.Unlock()
			continue
		}
		unused := ls.unused()
		ls.base, ls.next, ls.n, ls.refused = "", 0, 0, 0
		ch := make(chan struct{})
		ls.fetching = ch
		if len(l.leases) > maxLeases {
			l.sweepLocked(now, nil)
		}
		l.mu.Unlock()

		base := l.c.nextID()
		wait, granted, err := l.fetch(ctx, key, r, base, unused)

		l.mu.Lock()
		ls.fetching = nil
		close(ch)
		if err == nil && granted > 1 {
			ls.base, ls.next, ls.n, ls.ends = base, 1, granted, now.Add(leaseLife)
		}
		if err == nil && wait > 0 {
			ls.refused, ls.refusedAt = wait, time.Now()
		}
		l.mu.Unlock()
		return wait, err
	}
}

// unused names the lease's slots not used, to give back.
func (ls *lease) unused() []string {
	if ls.next >= ls.n {
		return nil
	}
	out := make([]string, 0, ls.n-ls.next)
	for i := ls.next; i < ls.n; i++ {
		out = append(out, ls.base+":"+strconv.Itoa(i))
	}
	return out
}

// fetch asks Redis for one event and a lease, giving back unused.
func (l *Limiter) fetch(ctx context.Context, key string, r limit.Rate, base string, unused []string) (time.Duration, int, error) {
	args := make([]any, 0, 5+len(unused))
	args = append(args, r.N, r.Per.Microseconds(), base, maxLease, leaseLife.Microseconds())
	for _, m := range unused {
		args = append(args, m)
	}
	t := &take{keys: []string{l.prefix + key}, args: args}
	res, sent, err := l.c.batch.do(ctx, t)
	if !sent { // closed: no batcher runs
		res, err = rateScript.Run(ctx, l.c.rdb, t.keys, t.args...).Slice()
	}
	if err == nil && len(res) < 2 {
		err = errMalformed
	}
	if err != nil {
		err = l.c.failed(ctx, "rate", err)
		if ctx.Err() != nil {
			return 0, 0, err
		}
		if l.c.opts.OnUnavailable != nil {
			l.c.opts.OnUnavailable("rate", l.c.opts.RateFailOpen)
		}
		if l.c.opts.RateFailOpen {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	l.c.answered()
	us, _ := res[0].(int64)
	granted, _ := res[1].(int64)
	return time.Duration(us) * time.Microsecond, int(granted), nil
}

// sweepLocked drops the leases that ended, adding their unused slots to
// back (by Redis key), when back is not nil. l.mu is held.
func (l *Limiter) sweepLocked(now time.Time, back map[string][]string) {
	for k, ls := range l.leases {
		if ls.fetching != nil || now.Before(ls.ends) && ls.next < ls.n {
			continue
		}
		if back != nil {
			if u := ls.unused(); len(u) > 0 {
				back[l.prefix+k] = u
			}
		}
		delete(l.leases, k)
	}
}

// giveBack returns the unused slots of ended leases to Redis, so that
// other replicas may use them; it runs in the renewal loop.
func (l *Limiter) giveBack(ctx context.Context) error {
	back := map[string][]string{}
	l.mu.Lock()
	l.sweepLocked(time.Now(), back)
	l.mu.Unlock()
	if len(back) == 0 {
		return nil
	}
	pipe := l.c.rdb.Pipeline()
	for k, members := range back {
		args := make([]any, len(members))
		for i, m := range members {
			args[i] = m
		}
		pipe.ZRem(ctx, k, args...)
	}
	_, err := pipe.Exec(ctx)
	return err
}
