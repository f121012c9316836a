package redislimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/limit"
)

// Quota is a limit.Quota in Redis: each account's spent points, the work
// it holds across every replica and its mean cost are one counter, read
// and changed by atomic scripts. Spent points are rebuilt from the Source
// when Redis does not have them.
type Quota struct {
	c      *Client
	ns     string
	prefix string
	src    limit.Source

	rebuildLease time.Duration // 0: the constant; tests shorten it
}

type quotaKeys struct {
	counter, holds string
}

func (k *quotaKeys) list(epoch string) []string { return []string{k.counter, k.holds, epoch} }

type hold struct {
	keys  *quotaKeys
	epoch int64 // of the Redis that holds it
}

// cost is this process's share of an account's mean cost: the holds of it
// this process runs, and what was charged while they ran. An end tells
// Redis of pieces of work and of the points charged since the last end in
// one step, so that the mean never counts work without its cost (nor the
// reverse) when the counter is lost and made again between a charge and
// the end it belongs to. Charges pair with ends in aggregate, not one by
// one, which is all the mean needs, provided the ends reach Redis in the
// order they took the points: an end that took none, arriving before the
// one that took its points, would lower the mean and admit more work than
// the budget allows. So one end at a time is told to Redis, and it tells
// every end that queued behind it too.
type cost struct {
	live    int     // holds reserved and not yet taken by an end
	charged float64 // points charged since the last end took them

	send   sync.Mutex // held by the caller telling Redis of ends
	ending []string   // holds ended, not yet told
	queued int64      // ends queued so far; the last one's number
	told   int64      // the number of the last end Redis was told of
}

// costLocked returns the cost of counter, made if need be; c.mu is held.
func (c *Client) costLocked(counter string) *cost {
	if c.costs == nil {
		c.costs = map[string]*cost{}
	}
	cs := c.costs[counter]
	if cs == nil {
		cs = &cost{}
		c.costs[counter] = cs
	}
	return cs
}

func (q *Quota) keys(account string) *quotaKeys {
	k := q.prefix + account
	return &quotaKeys{counter: k, holds: k + ":holds"}
}

// callTimeout bounds the calls that go on without their caller: a hold's
// end and a charge.
const callTimeout = 2 * time.Second

// errCallTimeout ends the calls bounded by callTimeout: when it is their
// context's cause, Redis was too slow, not the caller gone (see failed).
var errCallTimeout = errors.New("redislimit: Redis did not answer within " + callTimeout.String())

// callContext bounds a call that goes on without its caller.
func callContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(parent, callTimeout, errCallTimeout)
}

// maxPoll bounds the pause between two tries of a Reserve that waits.
const maxPoll = 100 * time.Millisecond

// Reserve implements limit.Quota. It fails closed: when Redis does not
// answer, the error has limit.ErrUnavailable in its chain.
func (q *Quota) Reserve(ctx context.Context, account string, max float64) (func(), error) {
	if max <= 0 {
		return func() {}, nil
	}
	k := q.keys(account)
	id := q.c.nextID()
	poll := 5 * time.Millisecond
	for {
		q.c.recover(ctx)
		woken, stop := q.c.wake.wait(k.counter)
		res, err := reserveScript.Run(ctx, q.c.rdb, k.list(q.c.epoch), append(q.c.quotaArgs(), max, id)...).Slice()
		if err != nil || res[0] != "wait" {
			stop()
		}
		if err != nil {
			if mayHaveRun(err) {
				q.drop(k, id)
			}
			return nil, q.unavailable(ctx, err)
		}
		q.c.answered()
		switch res[0] {
		case "ok":
			epoch, _ := res[1].(int64)
			q.c.mu.Lock()
			q.c.holds[id] = &hold{keys: k, epoch: epoch}
			q.c.costLocked(k.counter).live++
			q.c.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { q.end(k, id) }) }, nil
		case "spent":
			return nil, limit.ErrSpent
		case "rebuild":
			wait, err := q.rebuild(ctx, k, account)
			if err != nil {
				return nil, err
			}
			if wait == 0 {
				continue
			}
			if err := pause(ctx, min(wait, poll)); err != nil {
				return nil, err
			}
			poll = min(poll*3/2, maxPoll)
			continue
		}
		// "wait": a Redis new from a restart names its grace; else work of
		// unknown cost runs, and its end wakes this (or the poll does).
		wait := poll
		if len(res) > 1 {
			if ms, _ := res[1].(int64); ms > 0 {
				wait = time.Duration(ms) * time.Millisecond
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-woken:
		case <-ctx.Done():
		}
		t.Stop()
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		poll = min(poll*3/2, maxPoll)
	}
}

// drop ends, in the background, the hold id that a Reserve which failed
// may have made: its script may have run though its answer was lost (the
// caller's context ended, the read timed out), and the hold would keep
// budget for a lease. It leaves a tombstone, so that a script that reaches
// Redis after it admits nothing.
//
// The Redis that lost the Reserve's answer is often slow for a moment
// more, so a drop that fails is kept and tried again (see retryDrops),
// with the others in one call a tick, until the hold would have lapsed
// anyway: else the account is short of the hold's budget for a whole
// lease. The failure was the Reserve's to report.
func (q *Quota) drop(k *quotaKeys, id string) {
	c := q.c
	until := time.Now().Add(c.opts.Lease)
	c.spawn(func() {
		ctx, cancel := callContext(context.Background())
		defer cancel()
		if dropScript.Run(ctx, c.rdb, k.list(c.epoch), append(c.quotaArgs(), id)...).Err() != nil {
			c.keepDrop(id, k, until)
		}
	})
}

// mayHaveRun reports whether a call that failed with err may have reached
// Redis. Those that could not have are let be: in an outage, a drop for
// every refused Reserve would only add to the dials that fail, and go-redis
// refuses every call for a while after enough of them.
func mayHaveRun(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	return !errors.Is(err, redis.ErrPoolTimeout) && !errors.Is(err, redis.ErrClosed)
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *Quota) unavailable(ctx context.Context, err error) error {
	err = q.c.failed(ctx, "quota", err)
	if ctx.Err() == nil && q.c.opts.OnUnavailable != nil {
		q.c.opts.OnUnavailable("quota", false)
	}
	return err
}

// rebuildLease bounds how long one caller's rebuild of a counter keeps the
// others waiting: past it, one of them takes the rebuild over (its owner
// may have died between reading the source and finishing).
const rebuildLease = 3 * time.Second

// rebuild begins a rebuild of the account's counter, reads its spent
// points from the source and completes the counter with them. A counter
// made by a renewal or a charge is only begun here, so that the charges
// the source already has are not in delta too. When another caller's
// rebuild is under way, it returns how long to wait before looking again.
func (q *Quota) rebuild(ctx context.Context, k *quotaKeys, account string) (time.Duration, error) {
	lease := rebuildLease
	if q.rebuildLease > 0 {
		lease = q.rebuildLease
	}
	token, err := rebuildScript.Run(ctx, q.c.rdb, k.list(q.c.epoch), append(q.c.quotaArgs(), lease.Milliseconds())...).Int64()
	if err != nil {
		return 0, q.unavailable(ctx, err)
	}
	if token < 0 {
		return time.Duration(-token) * time.Millisecond, nil
	}
	if token == 0 {
		return 0, nil // built meanwhile
	}
	spent, err := q.src.Spent(ctx, account)
	if err != nil {
		// Let the next caller try at once: a lease kept would only make
		// every caller wait it out. The caller may be gone (its context
		// may be the source's error).
		actx, cancel := callContext(context.WithoutCancel(ctx))
		_ = abandonScript.Run(actx, q.c.rdb, k.list(q.c.epoch), append(q.c.quotaArgs(), token)...).Err()
		cancel()
		return 0, fmt.Errorf("redislimit: rebuilding the %s counter of %s: %w", q.ns, account, err)
	}
	if err := rebuiltScript.Run(ctx, q.c.rdb, k.list(q.c.epoch), append(q.c.quotaArgs(), formatPoints(spent), token)...).Err(); err != nil {
		return 0, q.unavailable(ctx, err)
	}
	if q.c.opts.OnRebuild != nil {
		q.c.opts.OnRebuild(q.ns)
	}
	return 0, nil
}

// end ends a hold. It must reach Redis even when the request's context
// is gone; if it cannot, the hold lapses after the lease. It returns once
// Redis knows, whether this caller told it or another that queued first.
func (q *Quota) end(k *quotaKeys, id string) {
	c := q.c
	c.mu.Lock()
	delete(c.holds, id)
	cs := c.costs[k.counter] // Reserve made it; only the last take deletes it
	cs.ending = append(cs.ending, id)
	cs.queued++
	mine := cs.queued
	c.mu.Unlock()

	cs.send.Lock()
	defer cs.send.Unlock()
	c.mu.Lock()
	if cs.told >= mine {
		c.mu.Unlock()
		return // told with an end that queued before it
	}
	ids, charged, upto := cs.ending, cs.charged, cs.queued
	cs.ending, cs.charged = nil, 0
	if cs.live -= len(ids); cs.live == 0 {
		// Every hold of this cost is taken, with every point charged
		// while they ran. A hold reserved from now on begins another
		// cost, whose ends carry their own points.
		delete(c.costs, k.counter)
	}
	c.mu.Unlock()

	ctx, cancel := callContext(context.Background())
	defer cancel()
	c.recover(ctx)
	args := append(c.quotaArgs(), c.wake.channel, formatPoints(charged))
	for _, id := range ids {
		args = append(args, id)
	}
	err := endScript.Run(ctx, c.rdb, k.list(c.epoch), args...).Err()
	c.mu.Lock()
	cs.told = upto
	if err != nil {
		// The points may be the cost of work still running here: the next
		// end carries them. These ends' pieces of work are lost with them.
		if cs := c.costs[k.counter]; cs != nil {
			cs.charged += charged
		}
	}
	c.mu.Unlock()
	if err != nil {
		_ = c.failed(ctx, "quota", err)
		return
	}
	c.answered()
}

// Charge implements limit.Quota. A charge that cannot reach Redis is not
// lost: the counter is dropped once Redis answers again, and rebuilt from
// the source, which has the points. It goes on after ctx ends: the points
// were spent.
func (q *Quota) Charge(ctx context.Context, account string, points float64) error {
	k := q.keys(account)
	// The points are spent whether or not the caller is still there.
	ctx, cancel := callContext(context.WithoutCancel(ctx))
	defer cancel()
	// Points charged while this process runs work of the account go to
	// the mean with the next end (see cost); others go at once, without
	// a piece of work, which errs on the budget's side.
	mean := points
	q.c.mu.Lock()
	if cs := q.c.costs[k.counter]; cs != nil {
		cs.charged += points
		mean = 0
	}
	q.c.mu.Unlock()
	q.c.recover(ctx)
	if err := chargeScript.Run(ctx, q.c.rdb, k.list(q.c.epoch), append(q.c.quotaArgs(), formatPoints(points), formatPoints(mean))...).Err(); err != nil {
		q.c.missedCharge(k)
		return q.c.failed(ctx, "quota", err)
	}
	q.c.answered()
	return nil
}

// Spent implements limit.Quota: the cluster's count, rebuilt from the
// source when Redis lacks it.
func (q *Quota) Spent(ctx context.Context, account string) (float64, error) {
	k := q.keys(account)
	poll := 5 * time.Millisecond
	for range 100 {
		q.c.recover(ctx)
		res, err := spentScript.Run(ctx, q.c.rdb, k.list(q.c.epoch), q.c.quotaArgs()...).Slice()
		if err != nil {
			return 0, q.c.failed(ctx, "quota", err)
		}
		q.c.answered()
		if res[0] == "ok" && len(res) > 1 {
			s, _ := res[1].(string)
			return strconv.ParseFloat(s, 64)
		}
		wait, err := q.rebuild(ctx, k, account)
		if err != nil {
			return 0, err
		}
		if wait > 0 {
			if err := pause(ctx, min(wait, poll)); err != nil {
				return 0, err
			}
			poll = min(poll*3/2, maxPoll)
		}
	}
	return 0, errors.New("redislimit: the counter of " + account + " keeps vanishing")
}

// Forget drops the account's counter, as for a deleted key; the next use
// rebuilds it.
func (q *Quota) Forget(ctx context.Context, account string) error {
	k := q.keys(account)
	return q.c.rdb.Del(ctx, k.counter).Err()
}

func formatPoints(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
