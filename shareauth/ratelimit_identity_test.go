package shareauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/shareauth"
)

// The rate errors a visitor gets carry a Retry-After and are still the
// sentinels the package documents: a copy of the sentinel would not match
// it under errors.Is.
func TestRateErrorsMatchTheirSentinels(t *testing.T) {
	ctx := context.Background()
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":true,"data":{"uid":"u1"}}`)
	}))
	defer host.Close()
	s := shareauth.New(shareauth.Options{AllowHosts: shareauth.MustParseAllowList("127.0.0.1/32"), InitPerMinute: 1, InitBurst: 1})
	defer s.Close(ctx)
	l, _, err := s.CreateLink(ctx, shareauth.LinkSpec{TeamID: "t", AppID: "app", Name: "n",
		Limit: shareauth.Limit{QPM: 1, HookURL: host.URL}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, err, sentinel error) {
		t.Helper()
		var ae *apierror.Error
		if !errors.Is(err, sentinel) || !errors.As(err, &ae) || ae.RetryAfterSeconds() < 1 || ae.HTTPStatus() != http.StatusTooManyRequests {
			t.Fatalf("%s: %#v; want the sentinel with a Retry-After", what, err)
		}
	}
	if _, err := s.Init(ctx, l.ID, "tok"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Init(ctx, l.ID, "tok")
	check("second init", err, shareauth.ErrInitRate)
	if _, err := s.Admit(ctx, l.ID, "tok", "q"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Admit(ctx, l.ID, "tok", "q")
	check("second question", err, shareauth.ErrQPM)
}
