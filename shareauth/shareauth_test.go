package shareauth_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/shareauth"
	"github.com/chatgate/chatgate/shareauth/shareauthtest"
)

// A link's limits run on the clock: it expires at its expiredTime, and
// its questions per minute come back as the minute passes.
func TestLinkLimitsFollowTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		svc := shareauth.New(shareauth.Options{})
		defer svc.Close(ctx)
		l, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{TeamID: "t", AppID: "app", Name: "n",
			Limit: shareauth.Limit{QPM: 1, ExpiredTime: time.Now().Add(time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		if !l.CreateTime.Equal(time.Now()) {
			t.Fatalf("CreateTime %v, want now (%v)", l.CreateTime, time.Now())
		}
		if _, err := svc.Admit(ctx, l.ID, "v", "q"); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Admit(ctx, l.ID, "v", "q")
		var ae *apierror.Error
		if !errors.Is(err, shareauth.ErrQPM) || !errors.As(err, &ae) || ae.RetryAfterSeconds() != 60 {
			t.Fatalf("second question within the minute: %v, want ErrQPM retrying in 60 s", err)
		}
		time.Sleep(time.Minute)
		if _, err := svc.Admit(ctx, l.ID, "v", "q"); err != nil {
			t.Fatalf("a minute later: %v", err)
		}
		if err := svc.Charge(ctx, l.ID, 2); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.Link(ctx, "t", l.ID); !got.LastUsedTime.Equal(time.Now()) || got.UsagePoints != 2 {
			t.Fatalf("after Charge: last used %v, points %v", got.LastUsedTime, got.UsagePoints)
		}
		time.Sleep(time.Hour)
		if _, err := svc.Admit(ctx, l.ID, "v", "q"); !errors.Is(err, shareauth.ErrLinkExpired) {
			t.Fatalf("an hour later: %v, want ErrLinkExpired", err)
		}
	})
}

// A new link's appId is vetted by Options.Apps.
func TestCreateLinkChecksTheApp(t *testing.T) {
	ctx := context.Background()
	noApp := apierror.InvalidRequest("appId", "names no app of your team")
	svc := shareauth.New(shareauth.Options{Apps: shareauth.AppCheckerFunc(func(_ context.Context, teamID, appID string) error {
		if teamID == "t" && appID == "known" {
			return nil
		}
		return noApp
	})})
	defer svc.Close(ctx)
	if _, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{TeamID: "t", AppID: "known", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{TeamID: "t", AppID: "other", Name: "n"}); err != noApp {
		t.Fatalf("an unknown app: %v, want the checker's error", err)
	}
}

// The admin routes need the admin scope and carry the body limit, 1 MiB
// by default; the visitor's init is public.
func TestHandlerRoutes(t *testing.T) {
	svc := shareauth.New(shareauth.Options{})
	defer svc.Close(context.Background())
	for _, tc := range []struct {
		opts    shareauth.HandlerOptions
		maxBody int64
	}{{shareauth.HandlerOptions{}, 1 << 20}, {shareauth.HandlerOptions{MaxBody: 4096}, 4096}} {
		routes := shareauth.NewHandler(svc, tc.opts).Routes()
		if len(routes) != 5 {
			t.Fatalf("%d routes, want 5", len(routes))
		}
		for _, r := range routes {
			if r.Pattern == "POST /api/core/chat/outLink/init" {
				if !r.Public || r.MaxBody != 0 {
					t.Errorf("init: public %v, max body %d; want public, no limit", r.Public, r.MaxBody)
				}
				continue
			}
			if r.Public || r.Scope != auth.ScopeAdmin || r.MaxBody != tc.maxBody || r.Handler == nil {
				t.Errorf("%s: public %v, scope %q, max body %d; want admin, %d", r.Pattern, r.Public, r.Scope, r.MaxBody, tc.maxBody)
			}
		}
	}
}

// Every Store of the package passes the conformance suite; the zero
// MemoryStore too, as it is documented ready to use.
func TestStoreConformance(t *testing.T) {
	for _, impl := range []struct {
		name string
		open func(t *testing.T) shareauth.Store
	}{
		{"MemoryStore", func(*testing.T) shareauth.Store { return shareauth.NewMemoryStore() }},
		{"ZeroMemoryStore", func(*testing.T) shareauth.Store { return new(shareauth.MemoryStore) }},
		{"BoltStore", openBoltStore},
	} {
		t.Run(impl.name, func(t *testing.T) { shareauthtest.TestStore(t, impl.open) })
	}
}

// openBoltStore is a BoltStore on a new file, closed when the test ends.
func openBoltStore(t *testing.T) shareauth.Store {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "shareauth.db"), 0o600, nil)
	if err == nil {
		t.Cleanup(func() { _ = db.Close() })
		var s *shareauth.BoltStore
		if s, err = shareauth.NewBoltStore(db); err == nil {
			return s
		}
	}
	t.Fatal(err)
	return nil
}
