package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/limit"
)

// Options configure an Authenticator. The zero value is usable.
type Options struct {
	// Prefix marks generated keys; DefaultPrefix when empty. Tokens carrying
	// it are checked for shape and checksum before any store lookup.
	Prefix string
	// TrustedProxies are the peers whose X-Forwarded-For header is believed.
	TrustedProxies []netip.Prefix
	// CacheTTL bounds how long a key read from the store is trusted before it
	// is read again; changes made through this process's Manager apply at
	// once. Default 30s.
	CacheTTL time.Duration
	// FlushInterval is how often usage (last-used time, points) is written
	// back; Close writes what is left. Default 5s.
	FlushInterval time.Duration
	// Logger receives flush and audit errors; slog.Default() when nil.
	Logger *slog.Logger
	// OnFailure, when set, is called with the statusText of every rejected
	// request (metrics hook). It must be fast and safe for concurrent use.
	OnFailure func(reason string)
	// OnPanic, when set, is called after a panic in background work was recovered and
	// logged (metrics hook); component names the loop, e.g. "training".
	OnPanic func(component string)

	// FailureLimitPerMinute is how many failed authentications whose key
	// is not valid (401 invalid_api_key: no key, a malformed one, or one
	// naming no key) a client address may make in a minute. Past it, such
	// requests are answered 429 too_many_auth_failures with Retry-After
	// until the minute is over. The key is still checked, so a valid key is
	// never refused this way. IPv6 clients count by their /64.
	// DefaultFailureLimitPerMinute when zero; negative turns the throttle off.
	FailureLimitPerMinute int
	// MaxTrackedAddrs bounds how many client addresses the throttle
	// remembers; addresses whose minute has ended are forgotten first.
	// DefaultMaxTrackedAddrs when zero.
	MaxTrackedAddrs int
	// AuditRetention is how long audit events are kept; the trail is
	// trimmed at start and hourly. DefaultAuditRetention when zero;
	// negative keeps events forever.
	AuditRetention time.Duration
	// AuditMaxEvents caps the trail at its newest events, trimmed with
	// AuditRetention. DefaultAuditMaxEvents when zero; negative: no cap.
	AuditMaxEvents int

	// Limiter counts keys' requests per minute (Limit.RPM), by key id: a
	// key limited to N gets at most N in any minute. A new limit.Local,
	// which counts this process's requests only, when nil; give every
	// replica one redislimit Limiter to count the cluster's.
	Limiter limit.Limiter
	// Quota admits requests of keys with a points quota (Limit.MaxUsagePoints),
	// by key id, against the points spent and what the requests running
	// will likely spend (see limit.Quota); Charge tells it of spent points,
	// and UsedPoints asks it. When nil, a limit.LocalQuota over this
	// process's counters, which sees this process's requests only; give
	// every replica one redislimit Quota, rebuilt from the ledger, to admit
	// across the cluster.
	Quota limit.Quota
	// Usage, with a Quota set, is the durable record UsedPoints and the
	// key views read a key's used points from: the ledger. A shared
	// quota's counter is admission state and may count a charge twice
	// after its Redis lost it (on the budget's side); the record does not.
	// When nil they ask Quota.
	Usage limit.Source
}

// Authenticator checks keys on requests. It caches keys in memory so that a
// warm check neither touches the store nor allocates, counts rates and
// quotas through Options.Limiter and Options.Quota, and coalesces usage
// updates into periodic store writes.
//
// Failed authentications are counted in memory, not written one by one: the
// audit trail gets one auth.failed event per reason, client address, key and
// minute, with Count saying how many failures it stands for, written when
// the minute is over (or by Flush, Close and Manager.Audit). A client address
// that fails too often is throttled (Options.FailureLimitPerMinute). Both
// are per process. The trail itself is trimmed by age and count
// (Options.AuditRetention, AuditMaxEvents).
//
// Create one with NewAuthenticator and Close it on shutdown.
type Authenticator struct {
	store   AuthenticatorStore
	opts    Options
	log     *slog.Logger
	limiter limit.Limiter
	quota   limit.Quota
	shared  bool // the quota is the caller's, not this process's own
	usage   limit.Source

	mu     sync.RWMutex
	byHash map[Hash]*entry
	byID   map[string]*keyState

	failures  *failures
	flushMu   sync.Mutex // one usage flush at a time
	auditMu   sync.Mutex // one audit write or trim at a time
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// entry is a cached resolution of one hash to a key snapshot. Snapshots are
// never mutated; a change replaces the entry.
type entry struct {
	key       *Key
	principal *Principal
	prefixes  []netip.Prefix
	retired   time.Time // non-zero when the hash is a rotated-out one, valid until then
	loaded    time.Time
	state     *keyState
}

// keyState is what outlives cache reloads of a key: the usage not yet
// flushed, and its limits as last read.
type keyState struct {
	id       string
	lastUsed atomic.Int64 // unix ns
	dirty    atomic.Bool
	rpm      atomic.Int64

	mu       sync.Mutex
	base     float64 // points in the store
	pending  float64 // charged since the last flush
	inflight float64 // being flushed now
	flushed  int64   // lastUsed as of the last flush
	max      float64 // the points quota; 0: none
}

func (s *keyState) used() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base + s.pending + s.inflight
}

// NewAuthenticator returns an Authenticator on store and starts its
// background flusher. store is usually a whole Store, shared with the
// Manager that changes its keys.
func NewAuthenticator(store AuthenticatorStore, opts Options) *Authenticator {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 30 * time.Second
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 5 * time.Second
	}
	if opts.FailureLimitPerMinute == 0 {
		opts.FailureLimitPerMinute = DefaultFailureLimitPerMinute
	}
	if opts.MaxTrackedAddrs <= 0 {
		opts.MaxTrackedAddrs = DefaultMaxTrackedAddrs
	}
	if opts.AuditRetention == 0 {
		opts.AuditRetention = DefaultAuditRetention
	}
	if opts.AuditMaxEvents == 0 {
		opts.AuditMaxEvents = DefaultAuditMaxEvents
	}
	a := &Authenticator{
		store:    store,
		opts:     opts,
		log:      opts.Logger,
		byHash:   map[Hash]*entry{},
		byID:     map[string]*keyState{},
		failures: newFailures(opts.FailureLimitPerMinute, opts.MaxTrackedAddrs),
		stop:     make(chan struct{}),
		limiter:  opts.Limiter,
		quota:    opts.Quota,
		shared:   opts.Quota != nil,
		usage:    opts.Usage,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.limiter == nil {
		a.limiter = new(limit.Local)
	}
	if a.quota == nil {
		a.quota = limit.NewLocalQuota(limit.SourceFunc(func(ctx context.Context, id string) (float64, error) {
			st, err := a.state(ctx, id)
			if err != nil {
				return 0, err
			}
			return st.used(), nil
		}))
	}
	a.done.Add(2)
	go a.loop()
	go a.trimLoop()
	return a
}

// Prefix returns the prefix of generated keys.
func (a *Authenticator) Prefix() string { return a.opts.Prefix }

// Authenticate checks token, presented by client, against every limit of
// its key: disabled, expired, IP allow-list, points quota and rate. It
// returns the key's principal, or an *apierror.Error that says which check failed.
// A request that passes counts against the rate limit and marks the key used.
// A token that is not a valid key, from a client over
// Options.FailureLimitPerMinute, fails with ErrTooManyFailures instead.
func (a *Authenticator) Authenticate(ctx context.Context, token string, client netip.Addr) (*Principal, error) {
	p, k, err := a.authenticate(ctx, token, client)
	if err != nil {
		err = a.fail(err, k, client)
	}
	return p, err
}

// authenticate returns the principal, or the error and the key it concerns, if known.
func (a *Authenticator) authenticate(ctx context.Context, token string, client netip.Addr) (*Principal, *Key, error) {
	if err := checkToken(a.opts.Prefix, token); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	e, err := a.lookup(ctx, HashKey(token), now)
	if err != nil {
		return nil, nil, err
	}
	k := e.key
	switch {
	case !e.retired.IsZero() && !now.Before(e.retired):
		return nil, k, errKeyUnknown // rotated out and past its grace period
	case k.Disabled:
		return nil, k, ErrKeyDisabled
	case !k.Limit.ExpiredTime.IsZero() && !now.Before(k.Limit.ExpiredTime):
		return nil, k, ErrKeyExpired
	case len(e.prefixes) > 0 && !inPrefixes(client, e.prefixes):
		return nil, k, ErrIPNotAllowed
	case !k.Limit.unlimitedPoints() && e.state.used() >= k.Limit.MaxUsagePoints:
		return nil, k, ErrInsufficientQuota
	}
	if rpm := e.state.rpm.Load(); rpm > 0 {
		wait, err := a.limiter.Take(ctx, k.ID, limit.PerMinute(int(rpm)))
		if err != nil {
			return nil, k, fmt.Errorf("auth: rate of key %s: %w", k.ID, err)
		}
		if wait > 0 {
			return nil, k, ErrRateLimited.WithRetryAfter(max(wait, time.Second))
		}
	}
	e.state.lastUsed.Store(now.UnixNano())
	if !e.state.dirty.Load() {
		e.state.dirty.Store(true)
	}
	return e.principal, k, nil
}

// lookup returns the cache entry for h, reading the store when the entry is
// missing or older than CacheTTL.
func (a *Authenticator) lookup(ctx context.Context, h Hash, now time.Time) (*entry, error) {
	a.mu.RLock()
	e := a.byHash[h]
	a.mu.RUnlock()
	if e != nil && now.Sub(e.loaded) < a.opts.CacheTTL {
		return e, nil
	}
	k, err := a.store.GetByHash(ctx, h)
	if errors.Is(err, ErrKeyNotFound) {
		a.mu.Lock()
		delete(a.byHash, h)
		a.mu.Unlock()
		return nil, errKeyUnknown
	}
	if err != nil {
		return nil, err
	}
	return a.cache(h, k, now), nil
}

// cache builds and stores the entry for h resolving to k.
func (a *Authenticator) cache(h Hash, k *Key, now time.Time) *entry {
	e := &entry{
		key:      k,
		prefixes: k.AllowedIPs,
		loaded:   now,
		principal: &Principal{
			KeyID: k.ID, KeyName: k.Name, TeamID: k.TeamID, AppID: k.AppID,
			Scopes: k.Scopes, Source: k.Source,
		},
	}
	if !k.Hash.Equal(h) {
		for _, r := range k.Retired {
			if r.Hash.Equal(h) {
				e.retired = r.Until
			}
		}
		if e.retired.IsZero() {
			e.retired = now // the store resolved a hash the key does not list; refuse it
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.byID[k.ID]
	if st == nil {
		st = &keyState{id: k.ID, base: k.UsagePoints}
		if !k.LastUsedTime.IsZero() {
			st.flushed = k.LastUsedTime.UnixNano()
			st.lastUsed.Store(st.flushed)
		}
		a.byID[k.ID] = st
	}
	st.rpm.Store(int64(k.Limit.RPM))
	st.mu.Lock()
	st.max = k.Limit.MaxUsagePoints
	st.mu.Unlock()
	e.state = st
	a.byHash[h] = e
	return e
}

// Invalidate drops the cached entries of key id, so its next use reads the
// store. The Manager calls it after every change; call it yourself after
// changing a key in the store by other means.
func (a *Authenticator) Invalidate(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, e := range a.byHash {
		if e.key.ID == id {
			delete(a.byHash, h)
		}
	}
}

// InvalidateAll drops every cached key, so that each one's next use reads
// the store. Call it when changes made elsewhere may have gone unheard,
// such as when a store's change feed reconnects (auth/pgstore's Watch
// asks for it so). Usage not yet flushed and rate limits are kept: they
// belong to the keys, not to the cached reads of them.
func (a *Authenticator) InvalidateAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.byHash)
}

// forget drops everything known about a deleted key, unflushed usage included.
func (a *Authenticator) forget(id string) {
	a.Invalidate(id)
	a.mu.Lock()
	delete(a.byID, id)
	a.mu.Unlock()
}

// Charge adds points to the key's used points. They count against the quota
// at once (Options.Quota is told) and are written to the store by the next
// flush.
func (a *Authenticator) Charge(ctx context.Context, keyID string, points float64) error {
	if points < 0 || math.IsNaN(points) || math.IsInf(points, 0) {
		return apierror.InvalidRequest("points", "must be a finite, non-negative number")
	}
	st, err := a.state(ctx, keyID)
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.pending += points
	st.mu.Unlock()
	st.dirty.Store(true)
	if err := a.quota.Charge(ctx, keyID, points); err != nil {
		return fmt.Errorf("auth: charging key %s: %w", keyID, err)
	}
	return nil
}

// hold admits a request of a key with a points quota through
// Options.Quota, and returns the function that ends it. Keys without a
// quota are not held.
func (a *Authenticator) hold(ctx context.Context, keyID string) (func(), error) {
	st, err := a.state(ctx, keyID)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	quota := st.max
	st.mu.Unlock()
	if quota <= 0 {
		return func() {}, nil
	}
	end, err := a.quota.Reserve(ctx, keyID, quota)
	if errors.Is(err, limit.ErrSpent) {
		return nil, ErrInsufficientQuota
	}
	if err != nil {
		return nil, fmt.Errorf("auth: quota of key %s: %w", keyID, err)
	}
	return end, nil
}

// UsedPoints returns the key's used points, flushed or not: the cluster's
// count (Options.Usage's, else Options.Quota's) when Options.Quota is set,
// else this process's.
func (a *Authenticator) UsedPoints(ctx context.Context, keyID string) (float64, error) {
	st, err := a.state(ctx, keyID)
	if err != nil {
		return 0, err
	}
	if a.shared {
		return a.clusterUsed(ctx, keyID)
	}
	return st.used(), nil
}

// clusterUsed is a key's used points as the whole cluster spent them.
func (a *Authenticator) clusterUsed(ctx context.Context, keyID string) (float64, error) {
	if a.usage != nil {
		return a.usage.Spent(ctx, keyID)
	}
	return a.quota.Spent(ctx, keyID)
}

// LastUsed returns when the key last passed authentication, flushed or not.
func (a *Authenticator) LastUsed(ctx context.Context, keyID string) (time.Time, error) {
	st, err := a.state(ctx, keyID)
	if err != nil || st.lastUsed.Load() == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, st.lastUsed.Load()).UTC(), nil
}

func (a *Authenticator) state(ctx context.Context, keyID string) (*keyState, error) {
	a.mu.RLock()
	st := a.byID[keyID]
	a.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	k, err := a.store.Get(ctx, keyID)
	if err != nil {
		return nil, err
	}
	return a.cache(k.Hash, k, time.Now()).state, nil
}

// Flush writes unflushed usage and the aggregated auth-failure events not
// yet written to the store now.
func (a *Authenticator) Flush(ctx context.Context) error {
	return errors.Join(a.flushUsage(ctx), a.writeAudit(ctx, true))
}

func (a *Authenticator) flushUsage(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.RLock()
	var (
		batch  []Usage
		states []*keyState
	)
	for _, st := range a.byID {
		if !st.dirty.Swap(false) {
			continue
		}
		st.mu.Lock()
		u := Usage{KeyID: st.id, Points: st.pending}
		if n := st.lastUsed.Load(); n > st.flushed {
			u.LastUsed = time.Unix(0, n).UTC()
		}
		st.inflight, st.pending = st.pending, 0
		st.mu.Unlock()
		batch = append(batch, u)
		states = append(states, st)
	}
	a.mu.RUnlock()
	if len(batch) == 0 {
		return nil
	}
	// A store that panics must not lose the batch: the panic becomes the
	// error, and the usage waits for the next flush like any failed write.
	err := panics.Catch(func() error { return a.store.AddUsage(ctx, batch) })
	for i, st := range states {
		st.mu.Lock()
		if err != nil {
			st.pending += st.inflight // keep it for the next flush
			st.dirty.Store(true)
		} else {
			st.base += st.inflight
			if !batch[i].LastUsed.IsZero() {
				st.flushed = batch[i].LastUsed.UnixNano()
			}
		}
		st.inflight = 0
		st.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("auth: flushing key usage: %w", err)
	}
	return nil
}

// fail counts a rejected request and returns the error to answer it with:
// err itself, or ErrTooManyFailures when err says the key is not valid and
// the client is over its failure limit. Its audit event is aggregated with
// the others of its minute (see failures), so a flood of bad keys costs a
// few map updates rather than a database write each.
func (a *Authenticator) fail(err error, k *Key, client netip.Addr) error {
	now := time.Now()
	if errors.Is(err, ErrInvalidKey) {
		if wait := a.failures.count(client, now); wait > 0 {
			err = ErrTooManyFailures.WithRetryAfter(wait)
		}
	}
	reason := apierror.Reason(err)
	if a.opts.OnFailure != nil {
		a.opts.OnFailure(reason)
	}
	ev := AuditEvent{Time: now.UTC(), Action: AuditAuthFailed, Reason: reason, RemoteIP: addrString(client)}
	if k != nil {
		ev.KeyID, ev.Hint, ev.TeamID = k.ID, k.Hint, k.TeamID
	}
	a.failures.add(ev)
	return err
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (a *Authenticator) loop() {
	defer a.done.Done()
	t := time.NewTicker(a.opts.FlushInterval)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		a.guard(ctx, func() error { return a.flushUsage(ctx) })
		a.guard(ctx, func() error { return a.writeAudit(ctx, false) })
		a.guard(ctx, func() error { a.failures.sweep(now); return nil })
	}
}

// trimLoop trims the audit trail at start and hourly, apart from the
// flushes: the first trim after a flood (or an upgrade) may delete millions
// of events, and usage must still be written meanwhile. Close stops it
// between two of the store's batches.
func (a *Authenticator) trimLoop() {
	defer a.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		a.guard(ctx, func() error {
			if err := a.TrimAudit(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		})
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// guard runs one piece of background work. An error is logged; a panic is
// recovered, logged with its stack and reported to Options.OnPanic, and the
// loop goes on: a poisoned flush must not take the server down with it.
func (a *Authenticator) guard(ctx context.Context, fn func() error) {
	err := panics.Catch(fn)
	if err == nil {
		return
	}
	var pe *panics.Error
	if errors.As(err, &pe) {
		a.log.ErrorContext(ctx, "auth: background work panicked; recovered", "panic", fmt.Sprint(pe.Value), "err", err, "stack", string(pe.Stack))
		if a.opts.OnPanic != nil {
			a.opts.OnPanic("auth")
		}
		return
	}
	a.log.ErrorContext(ctx, "auth: background work failed", "err", err)
}

// writeAudit writes the aggregated failure events whose minute is over, or
// all of them, in one transaction. Events that cannot be written are kept
// for the next attempt.
func (a *Authenticator) writeAudit(ctx context.Context, all bool) error {
	a.auditMu.Lock()
	defer a.auditMu.Unlock()
	evs := a.failures.take(time.Now(), all)
	if len(evs) == 0 {
		return nil
	}
	if err := panics.Catch(func() error { return a.store.AppendAudit(ctx, evs) }); err != nil {
		a.failures.putBack(evs)
		return fmt.Errorf("auth: writing %d audit events: %w", len(evs), err)
	}
	return nil
}

// TrimAudit removes audit events older than Options.AuditRetention and
// those beyond the newest Options.AuditMaxEvents. The Authenticator calls it
// at start and hourly; call it yourself after changing either bound.
func (a *Authenticator) TrimAudit(ctx context.Context) error {
	var before time.Time
	if a.opts.AuditRetention > 0 {
		before = time.Now().Add(-a.opts.AuditRetention)
	}
	keep := max(a.opts.AuditMaxEvents, 0)
	if before.IsZero() && keep == 0 {
		return nil
	}
	// Not under auditMu: a long trim must not hold up the audit writes and
	// queries (each of the store's batches is a transaction of its own).
	n, err := a.store.TrimAudit(ctx, before, keep)
	if err != nil {
		return fmt.Errorf("auth: trimming the audit trail: %w", err)
	}
	if n > 0 {
		a.log.InfoContext(ctx, "auth: audit trail trimmed", "removed", n, "before", before, "keep", keep)
	}
	return nil
}

// Close stops the background work, writes the aggregated audit events and
// flushes usage. Call it before closing the store; it is safe to call twice.
func (a *Authenticator) Close(ctx context.Context) error {
	var err error
	a.closeOnce.Do(func() {
		close(a.stop)
		a.done.Wait()
		err = a.Flush(ctx)
	})
	return err
}
