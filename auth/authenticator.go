package auth

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
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
	// Now replaces time.Now, for tests that need a frozen clock.
	Now func() time.Time
	// Logger receives flush and audit errors; slog.Default() when nil.
	Logger *slog.Logger
	// OnFailure, when set, is called with the statusText of every rejected
	// request (metrics hook). It must be fast and safe for concurrent use.
	OnFailure func(reason string)
}

// Authenticator checks keys on requests. It caches keys in memory so that a
// warm check neither touches the store nor allocates, keeps per-key rate
// limiters, and coalesces usage updates into periodic store writes.
// Create one with NewAuthenticator and Close it on shutdown.
type Authenticator struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu     sync.RWMutex
	byHash map[Hash]*entry
	byID   map[string]*keyState

	audit     chan AuditEvent
	dropped   atomic.Int64
	flushMu   sync.Mutex // one flush at a time
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

// keyState is what outlives cache reloads of a key: its limiter and the
// usage not yet flushed.
type keyState struct {
	id       string
	lastUsed atomic.Int64 // unix ns
	dirty    atomic.Bool

	limiter atomic.Pointer[rate.Limiter] // nil: unlimited

	mu       sync.Mutex
	rpm      int
	base     float64 // points in the store
	pending  float64 // charged since the last flush
	inflight float64 // being flushed now
	flushed  int64   // lastUsed as of the last flush

	// Admission of quota-limited keys (see hold): the points limit, the
	// requests between admission and their end, how many have ended and
	// what was charged meanwhile, and a channel closed when one ends.
	max     float64
	running int
	ended   int
	charged float64
	change  chan struct{}
}

func (s *keyState) used() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base + s.pending + s.inflight
}

// NewAuthenticator returns an Authenticator on store and starts its
// background flusher.
func NewAuthenticator(store Store, opts Options) *Authenticator {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 30 * time.Second
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Authenticator{
		store:  store,
		opts:   opts,
		log:    opts.Logger,
		byHash: map[Hash]*entry{},
		byID:   map[string]*keyState{},
		audit:  make(chan AuditEvent, 4096),
		stop:   make(chan struct{}),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.done.Add(1)
	go a.loop()
	return a
}

// Prefix returns the prefix of generated keys.
func (a *Authenticator) Prefix() string { return a.opts.Prefix }

// Authenticate checks token, presented by client, against every limit of
// its key: disabled, expired, IP allow-list, points quota and rate. It
// returns the key's principal, or an *Error that says which check failed.
// A request that passes counts against the rate limit and marks the key used.
func (a *Authenticator) Authenticate(ctx context.Context, token string, client netip.Addr) (*Principal, error) {
	p, k, err := a.authenticate(ctx, token, client)
	if err != nil {
		a.fail(err, k, client)
	}
	return p, err
}

// authenticate returns the principal, or the error and the key it concerns, if known.
func (a *Authenticator) authenticate(ctx context.Context, token string, client netip.Addr) (*Principal, *Key, error) {
	if err := checkToken(a.opts.Prefix, token); err != nil {
		return nil, nil, err
	}
	now := a.opts.Now()
	e, err := a.lookup(ctx, HashKey(token), now)
	if err != nil {
		return nil, nil, err
	}
	k := e.key
	switch {
	case !e.retired.IsZero() && !now.Before(e.retired):
		return nil, k, ErrInvalidKey // rotated out and past its grace period
	case k.Disabled:
		return nil, k, ErrKeyDisabled
	case !k.Limit.ExpiredTime.IsZero() && !now.Before(k.Limit.ExpiredTime):
		return nil, k, ErrKeyExpired
	case len(e.prefixes) > 0 && !inPrefixes(client, e.prefixes):
		return nil, k, ErrIPNotAllowed
	case !k.Limit.unlimitedPoints() && e.state.used() >= k.Limit.MaxUsagePoints:
		return nil, k, ErrInsufficientQuota
	}
	if err := e.state.allow(now); err != nil {
		return nil, k, err
	}
	e.state.lastUsed.Store(now.UnixNano())
	if !e.state.dirty.Load() {
		e.state.dirty.Store(true)
	}
	return e.principal, k, nil
}

func (s *keyState) allow(now time.Time) error {
	lim := s.limiter.Load()
	if lim == nil || lim.AllowN(now, 1) {
		return nil
	}
	// The wait until one token is back: (1 - tokens) / rate.
	wait := time.Duration((1 - lim.TokensAt(now)) / float64(lim.Limit()) * float64(time.Second))
	return &Error{Status: ErrRateLimited.Status, Code: ErrRateLimited.Code, Message: ErrRateLimited.Message, RetryAfter: max(wait, time.Second)}
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
		return nil, ErrInvalidKey
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
	st.setRPM(k.Limit.RPM, now)
	st.mu.Lock()
	st.max = k.Limit.MaxUsagePoints
	st.mu.Unlock()
	e.state = st
	a.byHash[h] = e
	return e
}

func (s *keyState) setRPM(rpm int, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.limiter.Load()
	switch {
	case rpm == s.rpm:
	case rpm <= 0:
		s.limiter.Store(nil)
	case lim == nil:
		s.limiter.Store(rate.NewLimiter(rate.Limit(float64(rpm)/60), rpm))
	default:
		lim.SetLimitAt(now, rate.Limit(float64(rpm)/60))
		lim.SetBurstAt(now, rpm)
	}
	s.rpm = rpm
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

// forget drops everything known about a deleted key, unflushed usage included.
func (a *Authenticator) forget(id string) {
	a.Invalidate(id)
	a.mu.Lock()
	delete(a.byID, id)
	a.mu.Unlock()
}

// Charge adds points to the key's used points. They count against the quota
// at once and are written to the store by the next flush.
func (a *Authenticator) Charge(ctx context.Context, keyID string, points float64) error {
	if points < 0 || math.IsNaN(points) || math.IsInf(points, 0) {
		return InvalidRequest("points", "must be a finite, non-negative number")
	}
	st, err := a.state(ctx, keyID)
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.pending += points
	st.charged += points
	st.mu.Unlock()
	st.dirty.Store(true)
	return nil
}

// hold admits a request of a key with a points quota, and returns the
// function that ends it. The quota is checked against the points used plus
// an estimate of what the requests already running will spend: the key's
// mean cost per request so far. Until that mean is known (no request of
// the key has ended since this process started), its requests run one at a
// time, so concurrent requests cannot all slip under a quota that the
// first one alone may exhaust. Keys without a quota are not held.
func (a *Authenticator) hold(ctx context.Context, keyID string) (func(), error) {
	st, err := a.state(ctx, keyID)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	for {
		if st.max <= 0 {
			st.mu.Unlock()
			return func() {}, nil
		}
		used := st.base + st.pending + st.inflight
		if st.ended == 0 && st.running > 0 {
			if st.change == nil {
				st.change = make(chan struct{})
			}
			ch := st.change
			st.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			st.mu.Lock()
			continue
		}
		est := 0.0
		if st.ended > 0 {
			est = st.charged / float64(st.ended)
		}
		if used+float64(st.running)*est >= st.max {
			st.mu.Unlock()
			return nil, ErrInsufficientQuota
		}
		st.running++
		st.mu.Unlock()
		var once sync.Once
		return func() {
			once.Do(func() {
				st.mu.Lock()
				st.running--
				st.ended++
				if st.change != nil {
					close(st.change)
					st.change = nil
				}
				st.mu.Unlock()
			})
		}, nil
	}
}

// UsedPoints returns the key's used points, flushed or not.
func (a *Authenticator) UsedPoints(ctx context.Context, keyID string) (float64, error) {
	st, err := a.state(ctx, keyID)
	if err != nil {
		return 0, err
	}
	return st.used(), nil
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
	return a.cache(k.Hash, k, a.opts.Now()).state, nil
}

// Flush writes unflushed usage to the store now.
func (a *Authenticator) Flush(ctx context.Context) error {
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
	err := a.store.AddUsage(ctx, batch)
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
	return err
}

// fail counts a rejected request and queues its audit event. The queue is
// drained in batches so a flood of bad keys cannot turn into a flood of
// database writes; when it is full, events are counted and dropped.
func (a *Authenticator) fail(err error, k *Key, client netip.Addr) {
	reason := Reason(err)
	if a.opts.OnFailure != nil {
		a.opts.OnFailure(reason)
	}
	ev := AuditEvent{Action: AuditAuthFailed, Reason: reason, RemoteIP: addrString(client)}
	if k != nil {
		ev.KeyID, ev.Hint, ev.TeamID = k.ID, k.Hint, k.TeamID
	}
	a.record(ev)
}

func (a *Authenticator) record(ev AuditEvent) {
	ev.Time = a.opts.Now().UTC()
	select {
	case a.audit <- ev:
	default:
		a.dropped.Add(1)
	}
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
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.flushAll(context.Background())
		case ev := <-a.audit:
			a.writeAudit(context.Background(), ev)
		}
	}
}

func (a *Authenticator) flushAll(ctx context.Context) error {
	err := a.Flush(ctx)
	if err != nil {
		a.log.ErrorContext(ctx, "auth: flushing key usage", "err", err)
	}
	if n := a.dropped.Swap(0); n > 0 {
		a.log.WarnContext(ctx, "auth: audit queue full; auth-failure events dropped", "count", n)
	}
	return err
}

// writeAudit writes ev and whatever else is queued in one transaction.
func (a *Authenticator) writeAudit(ctx context.Context, first AuditEvent) {
	batch := []AuditEvent{first}
	for len(batch) < 512 {
		select {
		case ev := <-a.audit:
			batch = append(batch, ev)
			continue
		default:
		}
		break
	}
	if err := a.store.AppendAudit(ctx, batch); err != nil {
		a.log.ErrorContext(ctx, "auth: writing audit events", "err", err, "count", len(batch))
	}
}

// Close stops the background work, writes queued audit events and flushes
// usage. Call it before closing the store; it is safe to call twice.
func (a *Authenticator) Close(ctx context.Context) error {
	var err error
	a.closeOnce.Do(func() {
		close(a.stop)
		a.done.Wait()
		for {
			select {
			case ev := <-a.audit:
				a.writeAudit(ctx, ev)
				continue
			default:
			}
			break
		}
		err = a.flushAll(ctx)
	})
	return err
}
