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
	leases map[string]*lease   // by key
	logs   map[string]*rateLog // by key: what to tell a Redis that lost them
}

// lease is the slots of a key's window this process holds.
type lease struct {
	base    string // members are base:i
	next, n int    // slots next..n-1 are unused
	ends    time.Time
	flight  *flight // the fetch under way, if any
}

// flight is one fetch from Redis that the other callers of its key wait
// for rather than each asking Redis: its lease serves them, and so does
// its refusal or Redis's silence, so that a hot key on a hung Redis costs
// one timeout, not one per caller in turn.
type flight struct {
	done chan struct{} // closed when the fields below are set
	at   time.Time
	ans  answer
	// shared: ans.err (or, failing open, the pass) holds for the
	// waiters too; false when the fetcher itself went away.
	shared bool
}

// answer is what one rate check in Redis answered.
type answer struct {
	wait    time.Duration // refused: try again after wait
	grace   time.Duration // Redis is new: try again after grace
	granted int
	now     int64 // Redis's clock, us
	epoch   int64
	err     error // Redis did not answer, and the rate fails closed
	passed  bool  // Redis did not answer, and the rate fails open
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
		if f := ls.flight; f != nil {
			l.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			if !f.shared {
				continue
			}
			switch a := f.ans; {
			case a.err != nil || a.passed:
				l.unchecked()
				return 0, a.err
			case a.grace > 0:
				if err := pause(ctx, a.grace-time.Since(f.at)); err != nil {
					return 0, err
				}
			case a.wait > 0:
				if w := a.wait - time.Since(f.at); w > 0 {
					return w, nil
				}
			}
			continue
		}
		unused := ls.unused()
		l.keptLocked(key, ls)
		ls.base, ls.next, ls.n = "", 0, 0
		f := &flight{done: make(chan struct{})}
		ls.flight = f
		if len(l.leases) > maxLeases {
			l.sweepLocked(now, nil)
		}
		l.mu.Unlock()

		a := l.fly(ctx, key, r, ls, f, unused)
		switch {
		case a.err != nil:
			return 0, a.err
		case a.grace > 0:
			if err := pause(ctx, a.grace); err != nil {
				return 0, err
			}
			continue
		}
		return a.wait, nil
	}
}

// fly runs the fetch f of key's lease ls and hands its answer to the
// callers waiting on it. It lets them go even if the fetch panics.
func (l *Limiter) fly(ctx context.Context, key string, r limit.Rate, ls *lease, f *flight, unused []string) (a answer) {
	base := l.c.nextID()
	shared := false
	defer func() {
		l.mu.Lock()
		ls.flight = nil
		if a.err == nil && a.granted > 1 {
			ls.base, ls.next, ls.n, ls.ends = base, 1, a.granted, f.at.Add(leaseLife)
		}
		l.mu.Unlock()
		f.ans, f.shared = a, shared
		close(f.done)
	}()
	f.at = time.Now()
	a, shared = l.fetch(ctx, key, r, base, unused)
	if a.err == nil && a.now > 0 {
		l.mu.Lock()
		lg := l.logOf(key, r)
		lg.used = f.at
		if a.granted > 0 {
			lg.own[base] = &grant{at: a.now, kept: a.granted}
		}
		l.mu.Unlock()
		l.c.sawEpoch(a.epoch, a.now)
	}
	return a
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

// fetch asks Redis for one event and a lease, giving back unused. shared
// reports whether the answer holds for other callers of the key as well:
// not when it is this caller's context that ended.
func (l *Limiter) fetch(ctx context.Context, key string, r limit.Rate, base string, unused []string) (answer, bool) {
	args := make([]any, 0, 6+len(unused))
	args = append(args, r.N, r.Per.Microseconds(), base, maxLease, leaseLife.Microseconds(), l.c.opts.Grace.Milliseconds())
	for _, m := range unused {
		args = append(args, m)
	}
	t := &take{keys: []string{l.prefix + key, l.c.epoch}, args: args}
	res, sent, err := l.c.batch.do(ctx, t)
	if !sent { // closed: no batcher runs
		res, err = rateScript.Run(ctx, l.c.rdb, t.keys, t.args...).Slice()
	}
	if t.handed && ctx.Err() != nil {
		l.giveBackLater(t, base)
	}
	if err == nil && len(res) < 4 {
		err = errMalformed
	}
	if err != nil {
		err = l.c.failed(ctx, "rate", err)
		if ctx.Err() != nil {
			return answer{err: err}, false
		}
		l.unchecked()
		if l.c.opts.RateFailOpen {
			return answer{passed: true}, true
		}
		return answer{err: err}, true
	}
	l.c.answered()
	var a answer
	us, _ := res[0].(int64)
	granted, _ := res[1].(int64)
	a.now, _ = res[2].(int64)
	a.epoch, _ = res[3].(int64)
	if us < 0 {
		a.grace = time.Duration(-us) * time.Microsecond
	} else {
		a.wait = time.Duration(us) * time.Microsecond
	}
	a.granted = int(granted)
	return a, true
}

// unchecked reports a rate that Redis could not check.
func (l *Limiter) unchecked() {
	if l.c.opts.OnUnavailable != nil {
		l.c.opts.OnUnavailable("rate", l.c.opts.RateFailOpen)
	}
}

// giveBackLater, for a check whose caller left while Redis ran it, gives
// back whatever it was granted: nobody will use it.
func (l *Limiter) giveBackLater(t *take, base string) {
	l.c.spawn(func() {
		<-t.done
		if t.err != nil || len(t.res) < 2 {
			return
		}
		g, _ := t.res[1].(int64)
		if g <= 0 {
			return
		}
		members := make([]any, g)
		for i := range members {
			members[i] = base + ":" + strconv.Itoa(i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_ = l.c.rdb.ZRem(ctx, t.keys[0], members...).Err()
	})
}

// sweepLocked drops the leases that ended, adding their unused slots to
// back (by Redis key), when back is not nil. l.mu is held.
func (l *Limiter) sweepLocked(now time.Time, back map[string][]string) {
	for k, ls := range l.leases {
		if ls.flight != nil || now.Before(ls.ends) && ls.next < ls.n {
			continue
		}
		if back != nil {
			if u := ls.unused(); len(u) > 0 {
				back[l.prefix+k] = u
				l.keptLocked(k, ls)
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
