package shareauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/queue"
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
	// InitBurst is how many may come at once; default 20: at most
	// InitBurst in any InitBurst/InitPerMinute minutes (20 in 20 s).
	InitPerMinute int
	InitBurst     int
	// Limiter counts links' questions per minute (Limit.QPM) and init
	// calls, by "qpm:" or "init:" and the link id. A new limit.Local,
	// which counts this process's only, when nil; give every replica one
	// redislimit Limiter to count the cluster's.
	Limiter limit.Limiter
	// Quota admits visitors' chats against links' points
	// (Limit.MaxUsagePoints), by link id, and is told of what they spend
	// (Charge). When nil, a limit.LocalQuota over the store's usage,
	// which sees this process's chats only; give every replica one
	// redislimit Quota over LinkSpend to admit across the cluster.
	Quota limit.Quota
	// FinishTimeout bounds one finish delivery attempt; default 10 s.
	FinishTimeout time.Duration
	RetryBase     time.Duration // first finish retry delay, doubled each time; default 1 s
	RetryMax      time.Duration // longest finish retry delay; default 10 min
	PollEvery     time.Duration // how often the outbox is checked without a wake-up; default 1 s
	// Apps, when set, vets a new link's appId in its team: shareauth does
	// not know chat's apps, so the program that has both says.
	Apps AppChecker
	// OnHookFailure, when set, is called with the cause (CauseBlocked,
	// CauseTimeout...) each time an auth host gave no verdict (metrics hook).
	OnHookFailure func(cause string)
	// OnPanic, when set, is called after a panic in the finish outbox was
	// recovered and logged (metrics hook), with the component "finish".
	OnPanic func(component string)
	Logger  *slog.Logger
}

// AppChecker vets the app a new link publishes.
type AppChecker interface {
	// CheckApp returns nil when team teamID has app appID, and the error
	// the link's creator gets otherwise (an apierror.InvalidRequest on
	// appId, say).
	CheckApp(ctx context.Context, teamID, appID string) error
}

// AppCheckerFunc adapts a function to an AppChecker.
type AppCheckerFunc func(ctx context.Context, teamID, appID string) error

// CheckApp calls f.
func (f AppCheckerFunc) CheckApp(ctx context.Context, teamID, appID string) error {
	return f(ctx, teamID, appID)
}

// Service manages share links, admits their visitors through the owner's
// auth host, and delivers finish callbacks.
type Service struct {
	opts  Options
	store Store
	hooks *hookClient
	log   *slog.Logger

	limiter limit.Limiter
	quota   limit.Quota

	outbox *queue.Runner[*Delivery]
}

// New starts a Service and the runner of its finish outbox; Close stops it.
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
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Limiter == nil {
		opts.Limiter = new(limit.Local)
	}
	if opts.Quota == nil {
		opts.Quota = limit.NewLocalQuota(LinkSpend(opts.Store))
	}
	s := &Service{opts: opts, store: opts.Store, log: opts.Logger, limiter: opts.Limiter, quota: opts.Quota,
		hooks: &hookClient{http: opts.HTTPClient, timeout: opts.HookTimeout, log: opts.Logger, onFailure: opts.OnHookFailure}}
	s.outbox = s.startOutbox()
	return s
}

// LinkSpend is the source of links' quota counters: the usage points the
// store holds for each link id.
func LinkSpend(store LinkStore) limit.Source {
	return limit.SourceFunc(func(ctx context.Context, id string) (float64, error) {
		l, err := store.Link(ctx, id)
		if err != nil {
			return 0, err
		}
		return l.UsagePoints, nil
	})
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops the outbox runner, or gives up when ctx ends; undelivered
// callbacks stay in the store, due, for the next Service.
func (s *Service) Close(ctx context.Context) error { return s.outbox.Close(ctx) }

// LinkSpec describes a new link.
type LinkSpec struct {
	TeamID         string
	AppID          string
	Name           string
	Limit          Limit
	ResponseDetail bool
	Display        Display
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
	if err := spec.Display.validate(); err != nil {
		return nil, "", err
	}
	if s.opts.Apps != nil {
		if err := s.opts.Apps.CheckApp(ctx, spec.TeamID, spec.AppID); err != nil {
			return nil, "", err
		}
	}
	l := &Link{ID: id.New(), TeamID: spec.TeamID, AppID: spec.AppID, Name: spec.Name, Limit: spec.Limit,
		ResponseDetail: spec.ResponseDetail, Display: spec.Display, Secret: newSecret(), CreateTime: time.Now().UTC()}
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
	Display        DisplayUpdate
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
	u.Display.apply(&l.Display)
	if err := l.Display.validate(); err != nil {
		return nil, err
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
	return s.store.DeleteLink(ctx, id)
}

// Admission is a visitor let in for one question.
type Admission struct {
	Link *Link
	// UID is the owner's server's uid for the visitor, else the token.
	UID   string
	Token string

	end func()
}

// End tells the link's quota that the visitor's chat has ended and its
// points are charged (Service.Charge). Call it once the chat is over,
// whatever its outcome; it is safe to call twice, and on an Admission
// that Admit did not make.
func (a *Admission) End() {
	if a != nil && a.end != nil {
		a.end()
	}
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
	if !l.Limit.ExpiredTime.IsZero() && !time.Now().Before(l.Limit.ExpiredTime) {
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
	if l.Limit.HookURL != "" && token == "" {
		return nil, ErrNoToken
	}
	if l.Limit.QPM > 0 {
		wait, err := s.limiter.Take(ctx, "qpm:"+l.ID, limit.PerMinute(l.Limit.QPM))
		if err != nil {
			return nil, fmt.Errorf("shareauth: questions per minute of link %s: %w", l.ID, err)
		}
		if wait > 0 {
			return nil, retryAfter(ErrQPM, wait)
		}
	}
	end, err := s.quota.Reserve(ctx, l.ID, l.Limit.MaxUsagePoints)
	if errors.Is(err, limit.ErrSpent) {
		return nil, ErrLinkQuota
	}
	if err != nil {
		return nil, fmt.Errorf("shareauth: points of link %s: %w", l.ID, err)
	}
	adm := &Admission{Link: l, UID: token, Token: token, end: end}
	if l.Limit.HookURL == "" {
		return adm, nil
	}
	uid, err := s.hooks.ask(ctx, l, "/shareAuth/start", map[string]string{"token": token, "question": question})
	if err != nil {
		end()
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
		r := limit.Rate{N: s.opts.InitBurst, Per: time.Duration(s.opts.InitBurst) * time.Minute / time.Duration(n)}
		wait, err := s.limiter.Take(ctx, "init:"+l.ID, r)
		if err != nil {
			return nil, fmt.Errorf("shareauth: init calls of link %s: %w", l.ID, err)
		}
		if wait > 0 {
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

// Charge adds points a visitor's chat spent to the link, and tells the
// link's quota.
func (s *Service) Charge(ctx context.Context, shareID string, points float64) error {
	if err := s.store.AddUsage(ctx, shareID, points, time.Now().UTC()); err != nil {
		return err
	}
	if err := s.quota.Charge(ctx, shareID, points); err != nil {
		s.log.WarnContext(ctx, "shareauth: charging the link's quota counter; it is rebuilt from the store", "link", shareID, "err", err)
	}
	return nil
}
