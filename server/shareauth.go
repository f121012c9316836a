package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/shareauth"
)

// ShareConfig tunes share links.
type ShareConfig struct {
	// HookTimeout bounds the owner's /shareAuth/init and /start; 5s when zero.
	HookTimeout Duration `yaml:"hook_timeout"`
	// AllowHosts lets hookUrls reach internal auth hosts, refused by
	// default (loopback, private, link-local...): CIDRs or addresses
	// ("127.0.0.1/32") permit those addresses, host names ("auth.internal")
	// that name whatever it resolves to.
	AllowHosts []string `yaml:"allow_hosts"`
	// InitPerMinute bounds the visitors' init calls that reach a link's
	// auth host, per link and per process; 60 when zero, no limit when
	// negative. InitBurst is how many may come at once; 20 when zero.
	InitPerMinute int `yaml:"init_per_minute"`
	InitBurst     int `yaml:"init_burst"`
}

// openShare builds the share-link service; apps vets the app a new link
// names.
func (s *Server) openShare(apps chat.AppStore) error {
	store := s.be.links
	allow, err := shareauth.ParseAllowList(s.cfg.Share.AllowHosts)
	if err != nil {
		return fmt.Errorf("config: share.allow_hosts: %w", err)
	}
	hookFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgate_share_hook_failures_total",
		Help: "Share-link auth host calls that gave no verdict, by cause (blocked, timeout, unreachable, redirect, status, bad_answer).",
	}, []string{"cause"})
	if err := s.metrics.reg.Register(hookFailures); err != nil {
		return err
	}
	opts := shareauth.Options{Store: store, HookTimeout: time.Duration(s.cfg.Share.HookTimeout), Logger: s.log,
		AllowHosts: allow, InitPerMinute: s.cfg.Share.InitPerMinute, InitBurst: s.cfg.Share.InitBurst,
		OnHookFailure: func(cause string) { hookFailures.WithLabelValues(cause).Inc() },
		OnPanic:       s.metrics.onPanic,
		Apps: shareauth.AppCheckerFunc(func(ctx context.Context, teamID, appID string) error {
			_, err := apps.App(ctx, teamID, appID)
			if errors.Is(err, chat.ErrAppNotFound) {
				return apierror.InvalidRequest("appId", "names no app of your team")
			}
			return err
		})}
	s.limits.links(&opts)
	s.Share = shareauth.New(opts)
	return nil
}

// shareLinks lets share-link visitors chat: shareauth admits them and
// queues the finish callback to the link's auth host.
type shareLinks struct {
	share *shareauth.Service
}

// Admit implements chat.ShareLinks.
func (l shareLinks) Admit(ctx context.Context, req chat.ShareRequest) (*chat.Visit, error) {
	adm, err := l.share.Admit(ctx, req.ShareID, req.Token, req.Question)
	if err != nil {
		return nil, err
	}
	return &chat.Visit{TeamID: adm.Link.TeamID, AppID: adm.Link.AppID, LinkID: adm.Link.ID, LinkName: adm.Link.Name,
		UID: adm.UID, Token: adm.Token, HideDetail: !adm.Link.ResponseDetail, Report: adm.Link.Limit.HookURL != "",
		HideNodeStatus: !adm.Link.ShowNodeStatus, HideQuoteText: !adm.Link.ShowCompleteQuote, HideSources: !adm.Link.ShowRawSource,
		End: adm.End}, nil
}

// Finish implements chat.ShareLinks: it queues the /shareAuth/finish
// callback of a visit whose link had an auth host when the visitor came.
// The callback goes where the link's host is now, as every delivery does;
// a link deleted since, or whose host was removed, has nobody to tell.
func (l shareLinks) Finish(ctx context.Context, v *chat.Visit, responses []chat.ModuleResponse) error {
	if !v.Report {
		return nil
	}
	link, err := l.share.Link(ctx, v.TeamID, v.LinkID)
	if errors.Is(err, shareauth.ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("share link: %w", err)
	}
	if err := l.share.Finish(ctx, &shareauth.Admission{Link: link, UID: v.UID, Token: v.Token}, responses); err != nil {
		return fmt.Errorf("share link: queueing the finish callback: %w", err)
	}
	return nil
}
