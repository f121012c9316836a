package shareauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/internal/panics"
)

// Options configures a Service. The zero value works: in memory, 5 s hook
// timeout, internal addresses refused, 60 inits a minute per link.
type Options struct {
	Store Store // nil: a MemoryStore
	// HTTPClient makes the callbacks. nil: a client of the Service's own
	// that refuses internal addresses (see AllowHosts), ignores proxy
	// variables and never follows redirects. A client set here is used as
	// given, except that redirects are still never followed (the target
	// would get the signed body): where it may connect is the caller's
	// responsibility, since chatgate cannot see where its Transport dials.
	HTTPClient *http.Client
	// AllowHosts opens internal auth hosts to the default client: by
	// default loopback, private, link-local, multicast, unspecified and
	// reserved addresses are refused, both in a hookUrl given as an address
	// (at create and update, whatever the client) and at each connect.
	AllowHosts AllowList
	// HookTimeout bounds init and start; default 5 s.
	HookTimeout time.Duration
	// InitPerMinute bounds the init calls that reach a link's auth host
	// (visitors need no key to make them); default 60, negative: no limit.
	// InitBurst is how many may come at once; default 20. The limit is per
	// process.
	InitPerMinute int
	InitBurst     int
	// FinishTimeout bounds one finish delivery attempt; default 10 s.
	FinishTimeout time.Duration
	RetryBase     time.Duration // first finish retry delay, doubled each time; default 1 s
	RetryMax      time.Duration // longest finish retry delay; default 10 min
	PollEvery     time.Duration // how often the outbox is checked without a wake-up; default 1 s
	// AppExists, when set, vets a new link's appId in its team.
	AppExists func(ctx context.Context, teamID, appID string) error
	// OnHookFailure, when set, is called with the cause (CauseBlocked,
	// CauseTimeout...) each time an auth host gave no verdict (metrics hook).
	OnHookFailure func(cause string)
	// OnPanic, when set, is called after a panic in background work was recovered and
	// logged (metrics hook); component names the loop, e.g. "training".
	OnPanic func(component string)
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service manages share links, admits their visitors through the owner's
// auth host, and delivers finish callbacks.
type Service struct {
	opts  Options
	store Store
	hooks *hookClient
	log   *slog.Logger

	qpm   *buckets // questions per minute, by link
	inits *buckets // init calls to the auth host, by link

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New starts a Service and its outbox worker; Close stops it.
func New(opts Options) *Service {
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = guardedClient(opts.AllowHosts)
	} else {
		c := *opts.HTTPClient
		c.CheckRedirect = noRedirects
		opts.HTTPClient = &c
	}
	opts.HookTimeout = or(opts.HookTimeout, 5*time.Second)
	opts.FinishTimeout = or(opts.FinishTimeout, 10*time.Second)
	opts.RetryBase = or(opts.RetryBase, time.Second)
	opts.RetryMax = or(opts.RetryMax, 10*time.Minute)
	opts.PollEvery = or(opts.PollEvery, time.Second)
	if opts.InitPerMinute == 0 {
		opts.InitPerMinute = 60
	}
	if opts.InitBurst <= 0 {
		opts.InitBurst = 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{opts: opts, store: opts.Store, log: opts.Logger, qpm: newBuckets(0), inits: newBuckets(0),
		hooks: &hookClient{http: opts.HTTPClient, timeout: opts.HookTimeout, now: opts.Now, log: opts.Logger, onFailure: opts.OnHookFailure},
		wake:  make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go s.deliverLoop(ctx)
	return s
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops the outbox worker; undelivered callbacks stay in the store.
func (s *Service) Close(ctx context.Context) error {
	s.once.Do(s.cancel)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LinkSpec describes a new link.
type LinkSpec struct {
	TeamID         string
	AppID          string
	Name           string
	Limit          Limit
	ResponseDetail bool
}

// validateLimit checks l and normalises an unlimited quota to 0.
func (s *Service) validateLimit(l *Limit) error {
	if l.QPM < 0 {
		return apierror.InvalidRequest("limit.qpm", "must be 0 (unlimited) or more")
	}
	switch p := l.MaxUsagePoints; {
	case p == 0 || p == -1:
		l.MaxUsagePoints = 0 // unlimited, as on keys
	case p < 0 || math.IsNaN(p) || math.IsInf(p, 0):
		return apierror.InvalidRequest("limit.maxUsagePoints", "must be positive, or -1 for unlimited")
	}
	if err := field.Line("limit.hookUrl", l.HookURL, MaxHookURLBytes); err != nil {
		return err
	}
	if l.HookURL != "" {
		return checkHookURL(l.HookURL, s.opts.AllowHosts)
	}
	return nil
}

// newSecret returns 32 random bytes in base62.
func newSecret() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 43)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("shareauth: crypto/rand failed: " + err.Error())
		}
		b[i] = alphabet[n.Int64()]
	}
	return "cgs_" + string(b)
}

// CreateLink creates a link and returns it with its secret, which is shown
// this once.
func (s *Service) CreateLink(ctx context.Context, spec LinkSpec) (*Link, string, error) {
	if err := field.ID("appId", spec.AppID); err != nil {
		return nil, "", err
	}
	name, err := field.Name("name", spec.Name)
	if err != nil {
		return nil, "", err
	}
	spec.Name = name
	if err := s.validateLimit(&spec.Limit); err != nil {
		return nil, "", err
	}
	if s.opts.AppExists != nil {
		if err := s.opts.AppExists(ctx, spec.TeamID, spec.AppID); err != nil {
			return nil, "", err
		}
	}
	l := &Link{ID: id.New(), TeamID: spec.TeamID, AppID: spec.AppID, Name: spec.Name, Limit: spec.Limit,
		ResponseDetail: spec.ResponseDetail, Secret: newSecret(), CreateTime: s.opts.Now().UTC()}
	if err := s.store.PutLink(ctx, l); err != nil {
		return nil, "", err
	}
	return l, l.Secret, nil
}

// Link returns a team's link.
func (s *Service) Link(ctx context.Context, teamID, id string) (*Link, error) {
	l, err := s.store.Link(ctx, id)
	if err != nil {
		return nil, err
	}
	if l.TeamID != teamID {
		return nil, ErrLinkNotFound
	}
	return l, nil
}

// Links returns a team's links, of one app if appID is set.
func (s *Service) Links(ctx context.Context, teamID, appID string) ([]*Link, error) {
	return s.store.Links(ctx, teamID, appID)
}

// LinkUpdate changes a link; nil fields are kept.
type LinkUpdate struct {
	ID             string
	Name           *string
	Limit          *Limit
	ResponseDetail *bool
}

// UpdateLink applies u to a team's link.
func (s *Service) UpdateLink(ctx context.Context, teamID string, u LinkUpdate) (*Link, error) {
	l, err := s.Link(ctx, teamID, u.ID)
	if err != nil {
		return nil, err
	}
	if u.Name != nil {
		name, err := field.Name("name", *u.Name)
		if err != nil {
			return nil, err
		}
		l.Name = name
	}
	if u.Limit != nil {
		lim := *u.Limit
		if err := s.validateLimit(&lim); err != nil {
			return nil, err
		}
		l.Limit = lim
	}
	if u.ResponseDetail != nil {
		l.ResponseDetail = *u.ResponseDetail
	}
	if err := s.store.PutLink(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

// DeleteLink deletes a team's link; its visitors are refused at once.
func (s *Service) DeleteLink(ctx context.Context, teamID, id string) error {
	if _, err := s.Link(ctx, teamID, id); err != nil {
		return err
	}
	s.qpm.drop(id)
	s.inits.drop(id)
	return s.store.DeleteLink(ctx, id)
}

// Admission is a visitor let in for one question.
type Admission struct {
	Link *Link
	// UID is the owner's server's uid for the visitor, else the token.
	UID   string
	Token string
}

// MaxTokenBytes bounds a visitor's authToken (or outLinkUid), which is
// passed on to the link's auth host.
const MaxTokenBytes = 2048

// MaxHookURLBytes bounds a link's auth host URL.
const MaxHookURLBytes = 2048

// checkLink checks a visitor's shareId and token and applies the link's
// own limits.
func (s *Service) checkLink(ctx context.Context, shareID, token string) (*Link, error) {
	if err := field.First(field.ID("shareId", shareID), field.Line("authToken", token, MaxTokenBytes)); err != nil {
		return nil, err
	}
	l, err := s.store.Link(ctx, shareID)
	if err != nil {
		return nil, err
	}
	if !l.Limit.ExpiredTime.IsZero() && !s.opts.Now().Before(l.Limit.ExpiredTime) {
		return nil, ErrLinkExpired
	}
	if l.Limit.MaxUsagePoints > 0 && l.UsagePoints >= l.Limit.MaxUsagePoints {
		return nil, ErrLinkQuota
	}
	return l, nil
}

// Admit decides whether a visitor may ask question through a link: the
// link must exist, be unexpired, within its points and its questions per
// minute, and, when it has an auth host, the host's /shareAuth/start must
// answer success within the timeout.
func (s *Service) Admit(ctx context.Context, shareID, token, question string) (*Admission, error) {
	l, err := s.checkLink(ctx, shareID, token)
	if err != nil {
		return nil, err
	}
	if l.Limit.QPM > 0 {
		if wait, ok := s.qpm.take(l.ID, rate.Limit(float64(l.Limit.QPM)/60), l.Limit.QPM, s.opts.Now()); !ok {
			return nil, retryAfter(ErrQPM, wait)
		}
	}
	adm := &Admission{Link: l, UID: token, Token: token}
	if l.Limit.HookURL == "" {
		return adm, nil
	}
	if token == "" {
		return nil, ErrNoToken
	}
	uid, err := s.hooks.ask(ctx, l, "/shareAuth/start", map[string]string{"token": token, "question": question})
	if err != nil {
		return nil, err
	}
	if uid != "" {
		adm.UID = uid
	}
	return adm, nil
}

// Init is a visitor opening a link: the link's limits and, with an auth
// host, its /shareAuth/init, at most Options.InitPerMinute a minute per
// link (ErrInitRate, with a retry delay, beyond).
func (s *Service) Init(ctx context.Context, shareID, token string) (*Admission, error) {
	l, err := s.checkLink(ctx, shareID, token)
	if err != nil {
		return nil, err
	}
	adm := &Admission{Link: l, UID: token, Token: token}
	if l.Limit.HookURL == "" {
		return adm, nil
	}
	if token == "" {
		return nil, ErrNoToken
	}
	if n := s.opts.InitPerMinute; n > 0 {
		if wait, ok := s.inits.take(l.ID, rate.Limit(float64(n)/60), s.opts.InitBurst, s.opts.Now()); !ok {
			return nil, retryAfter(ErrInitRate, wait)
		}
	}
	uid, err := s.hooks.ask(ctx, l, "/shareAuth/init", map[string]string{"token": token})
	if err != nil {
		return nil, err
	}
	if uid != "" {
		adm.UID = uid
	}
	return adm, nil
}

// retryAfter is e with a Retry-After of wait, at least a second; it
// matches e under errors.Is.
func retryAfter(e *apierror.Error, wait time.Duration) error {
	return e.WithRetryAfter(max(wait, time.Second))
}

// Charge adds points a visitor's chat spent to the link.
func (s *Service) Charge(ctx context.Context, shareID string, points float64) error {
	return s.store.AddUsage(ctx, shareID, points, s.opts.Now().UTC())
}

// Finish queues the /shareAuth/finish callback for a finished chat. It
// returns once the callback is durable; delivery happens in the background.
func (s *Service) Finish(ctx context.Context, adm *Admission, responseData any) error {
	if adm.Link.Limit.HookURL == "" {
		return nil
	}
	body, err := json.Marshal(map[string]any{"token": adm.Token, "responseData": responseData})
	if err != nil {
		return fmt.Errorf("shareauth: finish body: %w", err)
	}
	now := s.opts.Now().UTC()
	d := &Delivery{ID: id.New(), ShareID: adm.Link.ID, Path: "/shareAuth/finish", Body: body, NextAttempt: now, CreateTime: now}
	if err := s.store.Enqueue(ctx, d); err != nil {
		return err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Pending counts a link's undelivered finish callbacks.
func (s *Service) Pending(ctx context.Context, shareID string) (int, error) {
	return s.store.Pending(ctx, shareID)
}

// deliverLoop works the outbox until ctx ends. A panic, whether in one
// delivery or in the store, is recovered: one poisoned callback must not
// stop the others, nor, replayed after a restart, crash the process again.
func (s *Service) deliverLoop(ctx context.Context) {
	defer close(s.done)
	for {
		more := false
		if err := panics.Catch(func() error { more = s.deliverDue(ctx); return nil }); err != nil {
			s.panicked(ctx, err, "shareauth: the finish outbox loop panicked; it carries on")
			more = false // wait before trying the store again
		}
		if ctx.Err() != nil {
			return
		}
		if more {
			continue
		}
		t := time.NewTimer(s.opts.PollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliverDue works one batch of due callbacks and reports whether there
// may be more.
func (s *Service) deliverDue(ctx context.Context) bool {
	const batch = 32
	due, err := s.store.Due(ctx, s.opts.Now(), batch)
	if err != nil && ctx.Err() == nil {
		s.log.Error("shareauth: reading the outbox", "err", err)
	}
	for _, d := range due {
		if ctx.Err() != nil {
			return false
		}
		s.deliver(ctx, d)
	}
	return len(due) == batch
}

// panicked logs a recovered panic with its stack and tells the metrics hook.
func (s *Service) panicked(ctx context.Context, err error, msg string, args ...any) {
	var pe *panics.Error
	if errors.As(err, &pe) {
		args = append(args, "stack", string(pe.Stack))
	}
	s.log.ErrorContext(ctx, msg, append(args, "err", err)...)
	if s.opts.OnPanic != nil {
		s.opts.OnPanic("finish")
	}
}

// deliver makes one attempt at d and records its outcome: gone from the
// outbox, or rescheduled with backoff and the cause, a panic included.
func (s *Service) deliver(ctx context.Context, d *Delivery) {
	err := panics.Catch(func() error { return s.send(ctx, d) })
	var pe *panics.Error
	isPanic := errors.As(err, &pe)
	if ctx.Err() != nil && !isPanic {
		return // shutting down; the delivery stays due
	}
	if err == nil {
		if err := s.store.Delivered(ctx, d.ID); err != nil {
			s.log.Error("shareauth: marking a callback delivered", "err", err)
		}
		return
	}
	d.Attempts++
	d.LastError = err.Error()
	delay := s.opts.RetryBase << min(d.Attempts-1, 20)
	if delay > s.opts.RetryMax || delay <= 0 {
		delay = s.opts.RetryMax
	}
	d.NextAttempt = s.opts.Now().Add(delay).UTC()
	if isPanic {
		s.panicked(ctx, err, "shareauth: a finish callback panicked; will retry",
			"link", d.ShareID, "delivery", d.ID, "attempts", d.Attempts, "retry_in", delay)
	} else {
		s.log.Warn("shareauth: finish callback failed; will retry", "link", d.ShareID, "attempts", d.Attempts, "retry_in", delay, "err", err)
	}
	if err := s.store.Reschedule(context.WithoutCancel(ctx), d); err != nil {
		s.log.Error("shareauth: rescheduling a callback", "err", err)
	}
}

// send makes one attempt at d; nil means it is settled: delivered, or its
// link is gone or has no auth host any more.
func (s *Service) send(ctx context.Context, d *Delivery) error {
	l, err := s.store.Link(ctx, d.ShareID)
	if errors.Is(err, ErrLinkNotFound) || (err == nil && l.Limit.HookURL == "") {
		return nil // nobody to tell any more
	}
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.FinishTimeout)
	defer cancel()
	resp, _, err := s.hooks.call(cctx, l, d.Path, json.RawMessage(d.Body))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("auth host answered %d", resp.StatusCode)
	}
	return nil
}
