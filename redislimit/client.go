package redislimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/limit"
)

// Defaults of Options.
const (
	DefaultPrefix     = "chatgate:"
	DefaultLease      = 10 * time.Second
	DefaultCounterTTL = 10 * time.Minute
	DefaultGrace      = 2 * time.Second
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// Prefix starts every Redis key; DefaultPrefix when empty. The
	// replicas of one cluster share it; two clusters on one Redis do not.
	Prefix string
	// RateFailOpen lets requests through when Redis does not answer a
	// rate limit. By default they are refused with limit.ErrUnavailable.
	// Quotas always fail closed.
	RateFailOpen bool
	// Lease is how long a reservation holds unless renewed; the Client
	// renews its own every Grace/3. A replica that dies frees what its
	// running work held after Lease. DefaultLease when zero. It must be
	// longer than Grace, so that a hold outlives a few missed renewals:
	// a shorter one is taken as twice Grace, on the budget's side.
	Lease time.Duration
	// Grace is how long a Redis that lost its data (a restart) admits
	// nothing, so that every replica has told it of the work it holds
	// and the rate windows it knows first. It must outlast a replica's
	// reconnection: go-redis dials again at most once a second after a
	// run of failed dials. DefaultGrace when zero.
	Grace time.Duration
	// CounterTTL bounds how long a quota counter lives before it is
	// rebuilt from its source. DefaultCounterTTL when zero.
	CounterTTL time.Duration
	// Logger receives the incidents; slog.Default() when nil.
	Logger *slog.Logger
	// OnUnavailable, when set, is called for every limit that could not
	// be checked: kind is "rate" or "quota", and allowed says whether the
	// request was let through (a rate failing open) or refused.
	OnUnavailable func(kind string, allowed bool)
	// OnRebuild, when set, is called each time a quota counter is rebuilt
	// from its source.
	OnRebuild func(namespace string)
	// OnPanic, when set, is called after a panic in the renewal loop was
	// recovered and logged.
	OnPanic func(component string)
}

// Client counts limits in Redis. It implements limit.Limiter itself
// (Limiter returns one for a namespace) and hands out Quotas by namespace.
// Create it with New and Close it on shutdown; it does not close rdb.
type Client struct {
	rdb   redis.UniversalClient
	opts  Options
	log   *slog.Logger
	epoch string
	node  string // this process's part of hold ids and event members
	seq   atomic.Uint64

	down   atomic.Bool   // an incident is under way
	missed atomic.Bool   // lost is not empty
	known  atomic.Int64  // the epoch of the Redis the rate logs are of; 0 before the first
	skew   atomic.Int64  // Redis's clock minus this process's, us
	kick   chan struct{} // a renewal to run now: Redis's epoch moved

	mu        sync.Mutex
	holds     map[string]*hold       // id -> live reservation of this process
	costs     map[string]*cost       // by counter, made on first use: see cost
	lost      map[string]*quotaKeys  // counters that missed a charge, to rebuild
	drops     map[string]*failedDrop // by hold id: drops to try again
	dropsFull bool                   // drops reached maxDrops, was logged and has not drained since
	limiters  map[string]*Limiter    // by namespace

	batch  *batcher
	wake   *waker
	closed bool // under mu: no goroutine may start

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// New returns a Client on rdb and starts renewing its reservations.
func New(rdb redis.UniversalClient, opts Options) *Client {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.CounterTTL <= 0 {
		opts.CounterTTL = DefaultCounterTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Lease <= opts.Grace {
		opts.Logger.Warn("redislimit: Options.Lease is not longer than Grace; holds would lapse between renewals, so it is taken as twice Grace",
			"lease", opts.Lease, "grace", opts.Grace)
		opts.Lease = 2 * opts.Grace
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	c := &Client{rdb: rdb, opts: opts, log: opts.Logger, epoch: opts.Prefix + "epoch", node: hex.EncodeToString(b),
		holds: map[string]*hold{}, lost: map[string]*quotaKeys{}, drops: map[string]*failedDrop{}, limiters: map[string]*Limiter{}, stop: make(chan struct{}), kick: make(chan struct{}, 1)}
	c.batch = &batcher{rdb: rdb, timeout: callTimeout, reqs: make(chan *take), stop: c.stop, onPanic: func(v any) {
		c.log.Error("redislimit: a rate check panicked; recovered", "panic", fmt.Sprint(v))
		if c.opts.OnPanic != nil {
			c.opts.OnPanic("redislimit")
		}
	}}
	c.wake = &waker{rdb: rdb, channel: opts.Prefix + "quota:ended", stop: c.stop, spawn: c.spawn, sets: map[string]*waitSet{}}
	c.done.Add(2 + batchWorkers)
	go c.renewLoop()
	go c.dropLoop()
	for range batchWorkers {
		go func() {
			defer c.done.Done()
			c.batch.run()
		}()
	}
	return c
}

// Close stops renewing. Reservations still held lapse after the lease.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stop)
		c.done.Wait()
	})
	return nil
}

// spawn runs f in a goroutine that Close waits for, and reports false,
// running nothing, once Close has begun.
func (c *Client) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		f()
	}()
	return true
}

// Up reports whether Redis answered the last call (true before the first).
func (c *Client) Up() bool { return !c.down.Load() }

// Limiter returns the Limiter of namespace, whose keys are apart from
// every other namespace's.
func (c *Client) Limiter(namespace string) *Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.limiters[namespace]; l != nil {
		return l // one per namespace, so that its leases serve every caller
	}
	l := &Limiter{c: c, prefix: c.opts.Prefix + "rate:" + namespace + ":", leases: map[string]*lease{}, logs: map[string]*rateLog{}}
	c.limiters[namespace] = l
	return l
}

// errMalformed is a script's answer of an unexpected shape.
var errMalformed = errors.New("redislimit: malformed answer from Redis")

// Quota returns the Quota of namespace, whose counters are rebuilt from src.
func (c *Client) Quota(namespace string, src limit.Source) *Quota {
	return &Quota{c: c, ns: namespace, prefix: c.opts.Prefix + "quota:" + namespace + ":", src: src}
}

func (c *Client) nextID() string {
	return fmt.Sprintf("%s-%x", c.node, c.seq.Add(1))
}

// failed records that Redis did not answer: the first failure of an
// incident is logged. It returns the error to answer with.
func (c *Client) failed(ctx context.Context, kind string, err error) error {
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errCallTimeout) {
		return ctx.Err() // the caller went away; Redis may be fine
	}
	if c.down.CompareAndSwap(false, true) {
		c.log.Error("redislimit: Redis does not answer; quotas refuse work until it does", "err", err,
			"rates", map[bool]string{true: "let through", false: "refused"}[c.opts.RateFailOpen])
	}
	return fmt.Errorf("%w (redis: %w)", limit.ErrUnavailable, err)
}

// answered records that Redis answered, ending an incident.
func (c *Client) answered() {
	if c.down.Load() && c.down.CompareAndSwap(true, false) {
		c.log.Info("redislimit: Redis answers again")
		c.renewNow() // it may be a new Redis, whose grace runs
	}
}

// recover, after an incident, first drops the counters that missed a
// charge, so that they are rebuilt from their sources before they are
// used again.
func (c *Client) recover(ctx context.Context) {
	if !c.missed.Load() {
		return
	}
	c.mu.Lock()
	lost := c.lost
	c.lost = map[string]*quotaKeys{}
	c.missed.Store(false)
	c.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	keys := make([]string, 0, len(lost))
	for k := range lost {
		keys = append(keys, k)
	}
	if err := c.rdb.Del(ctx, keys...).Err(); err != nil {
		c.mu.Lock()
		for k, q := range lost {
			c.lost[k] = q
		}
		c.missed.Store(true)
		c.mu.Unlock()
	}
}

// maxLost bounds the counters remembered as having missed a charge; past
// it they wait for their TTL.
const maxLost = 100_000

func (c *Client) missedCharge(k *quotaKeys) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lost) < maxLost {
		c.lost[k.counter] = k
		c.missed.Store(true)
	}
}

// renewLoop extends this process's reservations every Grace/3, tells a
// Redis that lost them of them again, and gives back the rate slots of
// leases that ended unused.
func (c *Client) renewLoop() {
	defer c.done.Done()
	t := time.NewTicker(c.opts.Grace / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		c.caught("renewing reservations", panics.Catch(func() error { return c.renew(context.Background()) }))
	}
}

// caught logs and counts a panic that err holds, recovered while doing
// what.
func (c *Client) caught(what string, err error) {
	var pe *panics.Error
	if errors.As(err, &pe) {
		c.log.Error("redislimit: "+what+" panicked; recovered", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		if c.opts.OnPanic != nil {
			c.opts.OnPanic("redislimit")
		}
	}
}

// dropLoop tries the drops that failed again every Grace/3, apart from
// the renewals: a slow Redis must not hold those up.
func (c *Client) dropLoop() {
	defer c.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	t := time.NewTicker(c.opts.Grace / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.caught("retrying drops", panics.Catch(func() error { c.retryDrops(ctx); return nil }))
	}
}

func (c *Client) renew(ctx context.Context) error {
	c.mu.Lock()
	limiters := make([]*Limiter, 0, len(c.limiters))
	for _, l := range c.limiters {
		limiters = append(limiters, l)
	}
	c.mu.Unlock()
	rctx, cancel := callContext(ctx)
	rateErr := c.rates(rctx, limiters)
	cancel()
	if rateErr != nil {
		// The holds are renewed all the same: else they lapse.
		rateErr = c.failed(ctx, "rate", rateErr)
	}
	type batch struct {
		keys  *quotaKeys
		epoch int64
		ids   []string
	}
	c.mu.Lock()
	by := map[string]*batch{}
	for id, h := range c.holds {
		g := fmt.Sprintf("%s\x00%d", h.keys.counter, h.epoch)
		if by[g] == nil {
			by[g] = &batch{keys: h.keys, epoch: h.epoch}
		}
		by[g].ids = append(by[g].ids, id)
	}
	c.mu.Unlock()
	ctx, cancel = callContext(ctx)
	defer cancel()
	// Before the holds: a replica that holds nothing and is not called
	// must still drop the counters that missed its charges.
	c.recover(ctx)
	if len(by) == 0 {
		return rateErr
	}
	pipe := c.rdb.Pipeline()
	cmds := make(map[*batch]*redis.Cmd, len(by))
	for _, b := range by {
		args := append(c.quotaArgs(), b.epoch)
		for _, id := range b.ids {
			args = append(args, id)
		}
		cmds[b] = renewScript.EvalSha(ctx, pipe, b.keys.list(c.epoch), args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// EVALSHA fails in a pipeline on a Redis that lost its scripts;
		// load it and renew at the next tick.
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			return renewScript.Load(ctx, c.rdb).Err()
		}
		return c.failed(ctx, "quota", err)
	}
	c.answered()
	c.mu.Lock()
	defer c.mu.Unlock()
	for b, cmd := range cmds {
		epoch, err := cmd.Int64()
		if err != nil {
			continue
		}
		for _, id := range b.ids {
			if h := c.holds[id]; h != nil {
				h.epoch = epoch
			}
		}
	}
	return rateErr
}

// failedDrop is a drop that failed (see Quota.drop): the hold's keys, and
// when the hold would lapse, after which there is nothing to drop.
type failedDrop struct {
	keys  *quotaKeys
	until time.Time
}

// maxDrops bounds the failed drops kept to be tried again, and
// dropsPerTick those tried in one tick: a Redis that times out answers a
// pipeline all or nothing (go-redis marks every command of it failed), so
// one big pipeline would be run again whole at every tick without any of
// it being known done. Past maxDrops, holds lapse after the lease.
const (
	maxDrops     = 10_000
	dropsPerTick = 256
)

// keepDrop keeps a failed drop of hold id to be tried again until until.
func (c *Client) keepDrop(id string, k *quotaKeys, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.drops) >= maxDrops {
		if !c.dropsFull {
			c.dropsFull = true
			c.log.Warn("redislimit: too many failed drops to try again; the holds of the others lapse after the lease", "kept", len(c.drops))
		}
		return
	}
	c.drops[id] = &failedDrop{keys: k, until: until}
}

// retryDrops tries up to dropsPerTick of the drops that failed again, in
// one pipeline, and forgets those Redis took and those whose hold has
// lapsed.
func (c *Client) retryDrops(parent context.Context) {
	ctx, cancel := callContext(parent)
	defer cancel()
	pipe := c.rdb.Pipeline()
	cmds := map[string]*redis.Cmd{}
	now := time.Now()
	c.mu.Lock()
	for id, d := range c.drops {
		if now.After(d.until) {
			delete(c.drops, id)
		} else if len(cmds) < dropsPerTick {
			cmds[id] = dropScript.EvalSha(ctx, pipe, d.keys.list(c.epoch), append(c.quotaArgs(), id)...)
		}
	}
	c.drained()
	c.mu.Unlock()
	if len(cmds) == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); redis.HasErrorPrefix(err, "NOSCRIPT") {
		// a Redis that lost its scripts: load it for the next tick
		lctx, cancel := callContext(parent)
		_ = dropScript.Load(lctx, c.rdb).Err()
		cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cmd := range cmds {
		if cmd.Err() == nil {
			delete(c.drops, id)
		}
	}
	c.drained()
}

// drained notes that the failed drops fell to half of maxDrops, so that
// the next time they fill is logged, rather than each time they touch the
// bound; c.mu is held.
func (c *Client) drained() {
	if len(c.drops) < maxDrops/2 {
		c.dropsFull = false
	}
}

// rates keeps the rate limiters' Redis state: it replays the windows to a
// Redis whose epoch moved (one that lost them), gives back the unused
// slots of ended leases, and snapshots the windows in use.
func (c *Client) rates(ctx context.Context, limiters []*Limiter) error {
	if len(limiters) == 0 {
		return nil
	}
	epoch, err := epochScript.Run(ctx, c.rdb, []string{c.epoch}).Int64()
	if err != nil {
		return err
	}
	if prev := c.known.Swap(epoch); prev != 0 && prev != epoch {
		for _, l := range limiters {
			if err := l.replay(ctx); err != nil {
				c.known.Store(prev) // replay at the next tick
				return err
			}
		}
		c.log.Info("redislimit: Redis lost the rate windows; told it what this replica knows of them")
	}
	var errs []error
	for _, l := range limiters {
		errs = append(errs, l.giveBack(ctx), l.snapshot(ctx))
	}
	return errors.Join(errs...)
}

// sawEpoch notes what a rate check answered of Redis: its clock, and its
// epoch, which when it moved calls for a renewal now, to replay the
// windows within the new Redis's grace.
func (c *Client) sawEpoch(epoch, now int64) {
	c.skew.Store(now - time.Now().UnixMicro())
	switch k := c.known.Load(); {
	case k == 0:
		c.known.CompareAndSwap(0, epoch)
	case k != epoch:
		c.renewNow()
	}
}

// renewNow has the renewal loop run at once.
func (c *Client) renewNow() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// redisNow is Redis's clock as this process last saw it, in us.
func (c *Client) redisNow() int64 { return time.Now().UnixMicro() + c.skew.Load() }

// quotaArgs are the first arguments of every quota script.
func (c *Client) quotaArgs() []any {
	return []any{c.opts.Lease.Milliseconds(), c.opts.Grace.Milliseconds(), int64(c.opts.CounterTTL / time.Second)}
}
