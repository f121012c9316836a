package shareauth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/shareauth"
)

// Every way an auth host can fail is one error for the visitor; the
// operator gets the cause in the log and the metrics hook, never the
// secret.
func TestHookFailuresAreOneAnswer(t *testing.T) {
	ctx := context.Background()
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) }))
	defer target.Close()
	answer := func(status int, body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if status/100 == 3 {
				w.Header().Set("Location", target.URL+r.URL.Path)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so the server notices the client hang up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()

	var mu sync.Mutex
	var causes []string
	logs := &syncBuffer{}
	st := shareauth.NewMemoryStore()
	svc := shareauth.New(shareauth.Options{Store: st, HookTimeout: 200 * time.Millisecond, AllowHosts: shareauth.MustParseAllowList("127.0.0.1/32"),
		OnHookFailure: func(c string) { mu.Lock(); causes = append(causes, c); mu.Unlock() },
		Logger:        slog.New(slog.NewTextHandler(logs, nil))})
	defer svc.Close(ctx)
	cases := []struct{ url, cause string }{
		{"http://169.254.169.254/latest", shareauth.CauseBlocked}, // stored before the create check existed
		{answer(500, `{"success":true}`), shareauth.CauseStatus},
		{answer(302, ``), shareauth.CauseRedirect},
		{answer(307, ``), shareauth.CauseRedirect},
		{answer(200, `not json`), shareauth.CauseBadAnswer},
		{answer(200, `{}`), shareauth.CauseBadAnswer},
		{closed, shareauth.CauseUnreachable},
		{slow.URL, shareauth.CauseTimeout},
	}
	var secrets []string
	for _, c := range cases {
		l, secret, err := svc.CreateLink(ctx, shareauth.LinkSpec{AppID: "a", Name: "x", Limit: shareauth.Limit{HookURL: c.url}})
		if c.cause == shareauth.CauseBlocked {
			l, secret = &shareauth.Link{ID: "legacy", AppID: "a", Name: "x", Limit: shareauth.Limit{HookURL: c.url}, Secret: "cgs_legacy_secret"}, "cgs_legacy_secret"
			err = st.PutLink(ctx, l)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		secrets = append(secrets, secret)
		_, err = svc.Init(ctx, l.ID, "visitor")
		var ae *apierror.Error
		if !errors.As(err, &ae) || *ae != *shareauth.ErrHookFailed {
			t.Fatalf("%s: %#v, want ErrHookFailed", c.url, err)
		}
		if !strings.Contains(logs.String(), "link="+l.ID) {
			t.Fatalf("%s: the log does not name the link:\n%s", c.url, logs.String())
		}
	}
	mu.Lock()
	got := slices.Clone(causes)
	mu.Unlock()
	want := []string{}
	for _, c := range cases {
		want = append(want, c.cause)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("causes %v, want %v", got, want)
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Fatal("a secret is in the log")
		}
	}
	if targetHits.Load() != 0 {
		t.Fatalf("a redirect was followed: the target got %d calls", targetHits.Load())
	}
}

// A caller's own HTTP client is used as given (its addresses are the
// caller's business), but redirects are still not followed: the target
// would get a signed call.
func TestCustomClientNeverFollowsRedirects(t *testing.T) {
	ctx := context.Background()
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) }))
	defer target.Close()
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer hop.Close()
	approve := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":true,"data":{"uid":"u1"}}`)
	}))
	defer approve.Close()
	own := &http.Client{Transport: &http.Transport{}}
	svc := shareauth.New(shareauth.Options{HTTPClient: own, AllowHosts: shareauth.MustParseAllowList("127.0.0.1/32"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close(ctx)
	l, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{AppID: "a", Name: "x", Limit: shareauth.Limit{HookURL: hop.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Init(ctx, l.ID, "v"); !errors.Is(err, shareauth.ErrHookFailed) || targetHits.Load() != 0 {
		t.Fatalf("redirect: %v, target got %d calls", err, targetHits.Load())
	}
	ok, _, _ := svc.CreateLink(ctx, shareauth.LinkSpec{AppID: "a", Name: "y", Limit: shareauth.Limit{HookURL: approve.URL}})
	if adm, err := svc.Init(ctx, ok.ID, "v"); err != nil || adm.UID != "u1" {
		t.Fatalf("approving host through the caller's client: %v", err)
	}
	if own.CheckRedirect != nil {
		t.Fatal("the caller's client was changed")
	}
}

// A link stored before hookUrls were vetted may carry a password; the
// failure log must not show it.
func TestHookFailureLogRedactsPassword(t *testing.T) {
	ctx := context.Background()
	st := shareauth.NewMemoryStore()
	logs := &syncBuffer{}
	svc := shareauth.New(shareauth.Options{Store: st, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer svc.Close(ctx)
	if err := st.PutLink(ctx, &shareauth.Link{ID: "old", AppID: "a", Name: "old", Secret: "cgs_s",
		Limit: shareauth.Limit{HookURL: "http://admin:hunter2@127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Init(ctx, "old", "v"); !errors.Is(err, shareauth.ErrHookFailed) {
		t.Fatal(err)
	}
	if l := logs.String(); strings.Contains(l, "hunter2") || !strings.Contains(l, "cause=blocked") {
		t.Fatalf("log:\n%s", l)
	}
}
