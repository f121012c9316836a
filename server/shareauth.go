package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/httpjson"
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

func (s *Server) openShare() error {
	store, err := shareauth.NewBoltStore(s.db)
	if err != nil {
		return err
	}
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
	apps := s.Chat
	s.Share = shareauth.New(shareauth.Options{Store: store, HookTimeout: time.Duration(s.cfg.Share.HookTimeout), Logger: s.log,
		AllowHosts: allow, InitPerMinute: s.cfg.Share.InitPerMinute, InitBurst: s.cfg.Share.InitBurst,
		OnHookFailure: func(cause string) { hookFailures.WithLabelValues(cause).Inc() },
		OnPanic:       s.metrics.onPanic,
		Apps: shareauth.AppCheckerFunc(func(ctx context.Context, teamID, appID string) error {
			_, err := apps.App(ctx, teamID, appID)
			if errors.Is(err, chat.ErrAppNotFound) {
				return apierror.InvalidRequest("appId", "names no app of your team")
			}
			return err
		})})
	return nil
}

// shareRequest is what the share-link middleware reads of a chat request.
type shareRequest struct {
	ShareID    string            `json:"shareId"`
	AuthToken  string            `json:"authToken"`
	OutLinkUID string            `json:"outLinkUid"`
	Messages   []json.RawMessage `json:"messages"`
}

// shareOrKey routes a chat request: with an Authorization header it is a
// keyed call; without one, a share-link visitor's, identified by shareId
// and authToken/outLinkUid in the body or the query string, let in by the
// link's auth host, and reported to it by the finish callback after the
// answer is out.
func (s *Server) shareOrKey(keyed, chatHandler http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Header.Get("Authorization") != "" || (q.Get("shareId") == "" && !mayCarryShare(r)) {
			keyed.ServeHTTP(w, r)
			return
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.chatMaxBody()))
		if err != nil {
			chat.WriteOpenAIError(w, r, httpjson.DecodeErr(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if err := httpjson.CheckUTF8(raw); err != nil {
			chat.WriteOpenAIError(w, r, err) // before a shareId with U+FFFD in it goes to the auth host
			return
		}
		var sr shareRequest
		_ = json.Unmarshal(raw, &sr) // a malformed body is the chat handler's to report
		if v := q.Get("shareId"); sr.ShareID != "" && v != "" && v != sr.ShareID {
			chat.WriteOpenAIError(w, r, apierror.InvalidRequest("shareId", "differs between the body and the query string; give one"))
			return
		}
		shareID := cmp.Or(sr.ShareID, q.Get("shareId"))
		if shareID == "" {
			keyed.ServeHTTP(w, r) // no key, no link: the keyed path answers 401
			return
		}
		token := cmp.Or(sr.AuthToken, sr.OutLinkUID, q.Get("authToken"), q.Get("outLinkUid"))
		adm, err := s.Share.Admit(r.Context(), shareID, token, lastQuestion(sr.Messages))
		if err != nil {
			chat.WriteOpenAIError(w, r, err)
			return
		}
		p := &auth.Principal{KeyName: "share:" + adm.Link.Name, TeamID: adm.Link.TeamID, AppID: adm.Link.AppID,
			Scopes: auth.Scopes{auth.ScopeChat}}
		v := &chat.Visitor{ShareID: adm.Link.ID, UID: adm.UID, HideDetail: !adm.Link.ResponseDetail}
		ctx := chat.WithVisitor(auth.NewContext(r.Context(), p), v)
		chatHandler.ServeHTTP(w, r.WithContext(ctx))
		if v.Result == nil {
			return
		}
		// Send the visitor the whole answer first (net/http would hold it
		// until the handler returns); the callback then waits in the outbox.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if err := s.Share.Finish(context.WithoutCancel(r.Context()), adm, v.Result.Responses); err != nil {
			s.log.Error("share link: queueing the finish callback", "link", adm.Link.ID, "err", err)
		}
	})
}

// mayCarryShare reports whether a keyless request's body is worth reading
// for a shareId; anything else goes down the keyed path to its 401.
func mayCarryShare(r *http.Request) bool { return r.Method == http.MethodPost }

func (s *Server) chatMaxBody() int64 {
	if s.cfg.Chat.MaxBodyBytes > 0 {
		return s.cfg.Chat.MaxBodyBytes
	}
	return 4 << 20
}

// lastQuestion returns the text of the last user message, for /shareAuth/start.
func lastQuestion(msgs []json.RawMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		var m struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(msgs[i], &m) != nil || m.Role != "user" {
			continue
		}
		var text string
		if json.Unmarshal(m.Content, &text) == nil {
			return text
		}
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(m.Content, &parts) == nil {
			var b bytes.Buffer
			for _, p := range parts {
				if p.Type == "text" {
					b.WriteString(p.Text)
				}
			}
			return b.String()
		}
		return ""
	}
	return ""
}
