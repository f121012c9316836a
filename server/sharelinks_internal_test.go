package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/shareauth"
)

// A link changed mid-chat is judged as it was when the visitor came: a
// chat let in while the link had no auth host is reported to none, even
// if one was added since; one let in with a host is reported.
func TestShareLinksFinishAsAdmitted(t *testing.T) {
	ctx := context.Background()
	svc := shareauth.New(shareauth.Options{PollEvery: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close(ctx)
	link, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{TeamID: "t", AppID: "a", Name: "open"})
	if err != nil {
		t.Fatal(err)
	}
	sl := shareLinks{svc}
	v, err := sl.Admit(ctx, chat.ShareRequest{ShareID: link.ID, Token: "visitor"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Report {
		t.Fatal("a link without an auth host asked for reports")
	}
	hooked := shareauth.Limit{HookURL: "http://auth.example.com"}
	if _, err := svc.UpdateLink(ctx, "t", shareauth.LinkUpdate{ID: link.ID, Limit: &hooked}); err != nil {
		t.Fatal(err)
	}
	if err := sl.Finish(ctx, v, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Pending(ctx, link.ID); err != nil || n != 0 {
		t.Fatalf("a chat admitted before the host was added queued %d callbacks (%v)", n, err)
	}
	v.Report = true // as a visitor admitted now would be
	if err := sl.Finish(ctx, v, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Pending(ctx, link.ID); err != nil || n != 1 {
		t.Fatalf("a reported chat queued %d callbacks (%v), want 1", n, err)
	}
}
