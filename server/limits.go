package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/redislimit"
	"github.com/chatgate/chatgate/shareauth"
)

// RedisConfig points the replicas at the Redis that counts their limits
// cluster-wide: keys' requests per minute and points quotas, apps'
// budgets, share links' questions per minute, init calls and points.
// Without an address each process counts its own, which is exact for one
// process and lets N replicas admit N times a limit.
type RedisConfig struct {
	// Addr is host:port; CHATGATE_REDIS_ADDR overrides it.
	Addr string `yaml:"addr"`
	// Username, and Password or the environment variable PasswordEnv
	// names (to keep it out of the file).
	Username    string `yaml:"username"`
	Password    string `yaml:"password"`
	PasswordEnv string `yaml:"password_env"`
	DB          int    `yaml:"db"`
	// Prefix starts chatgate's keys; "chatgate:" when empty. Two clusters
	// sharing a Redis need two prefixes.
	Prefix string `yaml:"prefix"`
	// RateLimits says what a rate limit does when Redis does not answer:
	// "closed" (the default) refuses the request with 503
	// limits_unavailable, "open" lets it through. Quotas always refuse.
	RateLimits string `yaml:"rate_limits"`
	// Timeout bounds each Redis call; 500ms when zero.
	Timeout Duration `yaml:"timeout"`
	// Lease is how long a dead replica's running chats still count
	// against quotas; 10s when zero.
	Lease Duration `yaml:"lease"`
}

// limits is what the domains count through: Redis's when configured.
type limits struct {
	rdb    *redis.Client
	client *redislimit.Client
}

// openLimits connects to the configured Redis, or returns nil to leave
// each domain to count in process. A Redis that does not answer at start
// is logged, not fatal: the limits' policies apply until it does.
func (s *Server) openLimits(ctx context.Context) (*limits, error) {
	c := s.cfg.Redis
	if c.Addr == "" {
		return nil, nil
	}
	failOpen := false
	switch c.RateLimits {
	case "", "closed":
	case "open":
		failOpen = true
	default:
		return nil, fmt.Errorf("config: redis.rate_limits must be closed or open, not %q", c.RateLimits)
	}
	if c.Timeout < 0 || c.Lease < 0 {
		return nil, errors.New("config: redis.timeout and redis.lease must not be negative")
	}
	timeout := time.Duration(c.Timeout)
	if timeout == 0 {
		timeout = 500 * time.Millisecond
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: 1})
	unavailable := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgate_limit_unavailable_total",
		Help: "Limits Redis could not check, by kind (rate, quota) and outcome (allowed, refused).",
	}, []string{"kind", "outcome"})
	rebuilds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgate_quota_rebuilds_total",
		Help: "Quota counters rebuilt in Redis from the ledger or the store, by namespace (keys, apps, links).",
	}, []string{"namespace"})
	client := redislimit.New(rdb, redislimit.Options{Prefix: c.Prefix, RateFailOpen: failOpen, Lease: time.Duration(c.Lease),
		Logger: s.log, OnPanic: s.metrics.onPanic,
		OnUnavailable: func(kind string, allowed bool) {
			unavailable.WithLabelValues(kind, map[bool]string{true: "allowed", false: "refused"}[allowed]).Inc()
		},
		OnRebuild: func(ns string) { rebuilds.WithLabelValues(ns).Inc() }})
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatgate_redis_up",
		Help: "1 while Redis answers the limits' calls, 0 during an incident.",
	}, func() float64 {
		if client.Up() {
			return 1
		}
		return 0
	})
	for _, m := range []prometheus.Collector{unavailable, rebuilds, up} {
		if err := s.metrics.reg.Register(m); err != nil {
			return nil, err
		}
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		s.log.Error("redis does not answer at start; limits follow their policies until it does", "addr", c.Addr, "err", err)
	}
	return &limits{rdb: rdb, client: client}, nil
}

// keys sets auth's options to count keys' rates and quotas in Redis;
// the quota counters are rebuilt from the ledger.
func (l *limits) keys(opts *auth.Options, ledger billing.SpendReader) {
	if l == nil {
		return
	}
	opts.Limiter = l.client.Limiter("keys")
	spend := billing.KeySpend(ledger)
	opts.Quota = l.client.Quota("keys", spend)
	opts.Usage = spend // usagePoints is the ledger's, not the admission counter's
}

func (l *limits) budgets(opts *billing.AccountantOptions) {
	if l == nil {
		return
	}
	opts.Budgets = l.client.Quota("apps", billing.AppSpend(opts.Ledger))
}

func (l *limits) links(opts *shareauth.Options) {
	if l == nil {
		return
	}
	opts.Limiter = l.client.Limiter("links")
	opts.Quota = l.client.Quota("links", shareauth.LinkSpend(opts.Store))
}

func (l *limits) close() error {
	if l == nil {
		return nil
	}
	return errors.Join(l.client.Close(), l.rdb.Close())
}
