package server_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/extract"
	"github.com/chatgate/chatgate/internal/httpjson"
	"github.com/chatgate/chatgate/shareauth"
)

var loopbackAddr = netip.MustParseAddr("127.0.0.1")

// idSentinel is an exported error of a domain package; parent is the
// sentinel it was made from (with WithMessage or InvalidRequest), if any.
type idSentinel struct {
	name   string
	err    error
	parent error
}

// idSentinels lists every exported error sentinel of auth, chat, dataset,
// billing and shareauth. A new one must be added here.
func idSentinels() []idSentinel {
	return []idSentinel{
		{"auth.ErrInvalidKey", auth.ErrInvalidKey, nil},
		{"auth.ErrKeyDisabled", auth.ErrKeyDisabled, nil},
		{"auth.ErrKeyExpired", auth.ErrKeyExpired, nil},
		{"auth.ErrIPNotAllowed", auth.ErrIPNotAllowed, nil},
		{"auth.ErrScopeDenied", auth.ErrScopeDenied, nil},
		{"auth.ErrInsufficientQuota", auth.ErrInsufficientQuota, nil},
		{"auth.ErrRateLimited", auth.ErrRateLimited, nil},
		{"auth.ErrTooManyFailures", auth.ErrTooManyFailures, nil},
		{"apierror.ErrInvalidRequest", apierror.ErrInvalidRequest, nil},
		{"apierror.ErrNotFound", apierror.ErrNotFound, nil},
		{"apierror.ErrConflict", apierror.ErrConflict, nil},
		{"apierror.ErrStorageUnavailable", apierror.ErrStorageUnavailable, nil},
		{"auth.ErrConfigManaged", auth.ErrConfigManaged, nil},
		{"auth.ErrKeyNotFound", auth.ErrKeyNotFound, nil},
		{"auth.ErrKeyExists", auth.ErrKeyExists, nil},
		{"auth.ErrHashInUse", auth.ErrHashInUse, nil},
		{"chat.ErrAppNotFound", chat.ErrAppNotFound, nil},
		{"chat.ErrChatNotFound", chat.ErrChatNotFound, nil},
		{"chat.ErrRecordNotFound", chat.ErrRecordNotFound, nil},
		{"chat.ErrOtherEndUser", chat.ErrOtherEndUser, nil},
		{"chat.ErrQuestionGuideUnavailable", chat.ErrQuestionGuideUnavailable, nil},
		{"chat.ErrUnknownModel", chat.ErrUnknownModel, nil},
		{"chat.ErrConfigApp", chat.ErrConfigApp, nil},
		{"chat.ErrNoQuestion", chat.ErrNoQuestion, apierror.ErrInvalidRequest},
		{"dataset.ErrDatasetNotFound", dataset.ErrDatasetNotFound, nil},
		{"dataset.ErrCollectionNotFound", dataset.ErrCollectionNotFound, nil},
		{"dataset.ErrDataNotFound", dataset.ErrDataNotFound, nil},
		{"dataset.ErrQAModelUnavailable", dataset.ErrQAModelUnavailable, nil},
		{"dataset.ErrRerankUnavailable", dataset.ErrRerankUnavailable, nil},
		{"dataset.ErrLinkRefused", dataset.ErrLinkRefused, nil},
		{"dataset.ErrLinkUnreachable", dataset.ErrLinkUnreachable, nil},
		{"dataset.ErrExtensionModel", dataset.ErrExtensionModel, nil},
		{"dataset.ErrClosed", dataset.ErrClosed, nil},
		{"dataset.ErrRepeat", dataset.ErrRepeat, nil},
		{"dataset.ErrFileImportUnavailable", dataset.ErrFileImportUnavailable, nil},
		{"extract.ErrUnsupported", extract.ErrUnsupported, nil},
		{"extract.ErrInvalid", extract.ErrInvalid, nil},
		{"billing.ErrBillNotFound", billing.ErrBillNotFound, nil},
		{"billing.ErrBudgetSpent", billing.ErrBudgetSpent, nil},
		{"shareauth.ErrLinkNotFound", shareauth.ErrLinkNotFound, nil},
		{"shareauth.ErrLinkExpired", shareauth.ErrLinkExpired, nil},
		{"shareauth.ErrQPM", shareauth.ErrQPM, nil},
		{"shareauth.ErrLinkQuota", shareauth.ErrLinkQuota, nil},
		{"shareauth.ErrNoToken", shareauth.ErrNoToken, nil},
		{"shareauth.ErrMissingSignature", shareauth.ErrMissingSignature, nil},
		{"shareauth.ErrBadSignature", shareauth.ErrBadSignature, nil},
		{"shareauth.ErrStale", shareauth.ErrStale, nil},
		{"shareauth.ErrInitRate", shareauth.ErrInitRate, nil},
		{"shareauth.ErrHookFailed", shareauth.ErrHookFailed, nil},
		{"dataset.ErrCollectionExists", dataset.ErrCollectionExists, nil},
		{"billing.ErrDuplicate", billing.ErrDuplicate, nil},
		{"billing.ErrLedgerClosed", billing.ErrLedgerClosed, nil},
		{"auth.ErrAuditSeq", auth.ErrAuditSeq, nil},
	}
}

// The table above is complete: every exported Err... variable of the
// domain packages is in it, so a new sentinel cannot skip the checks.
func TestErrorSentinelTableComplete(t *testing.T) {
	listed := map[string]bool{}
	for _, s := range idSentinels() {
		listed[s.name] = true
	}
	for _, pkg := range []string{"apierror", "auth", "chat", "dataset", "billing", "shareauth"} {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, "../"+pkg, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			for _, f := range p.Files {
				for _, d := range f.Decls {
					gd, ok := d.(*ast.GenDecl)
					if !ok || gd.Tok != token.VAR {
						continue
					}
					for _, spec := range gd.Specs {
						for _, n := range spec.(*ast.ValueSpec).Names {
							if n.IsExported() && strings.HasPrefix(n.Name, "Err") && !listed[pkg+"."+n.Name] {
								t.Errorf("%s.%s is not in idSentinels", pkg, n.Name)
							}
						}
					}
				}
			}
		}
	}
}

// Every sentinel is itself and no other, even those sharing a status and a
// statusText (the four not_found ones, the 429s): errors.Is(a, b) holds
// only for a == b, or when a was made from b.
func TestErrorSentinelsAreDistinct(t *testing.T) {
	all := idSentinels()
	for _, a := range all {
		for _, b := range all {
			want := a.err == b.err || a.parent == b.err
			if got := errors.Is(a.err, b.err); got != want {
				t.Errorf("errors.Is(%s, %s) = %v, want %v", a.name, b.name, got, want)
			}
			// Wrapped as callers wrap them, the answer is the same.
			if got := errors.Is(fmt.Errorf("context: %w", a.err), b.err); got != want {
				t.Errorf("errors.Is(wrapped %s, %s) = %v, want %v", a.name, b.name, got, want)
			}
		}
	}
}

// Errors made for one call match the sentinel they were made from, and no
// other; a category is matched through errors.As or Reason.
func TestDerivedErrorsMatchTheirSentinel(t *testing.T) {
	rateLimited := func() error {
		// a real rate-limit error, with its Retry-After, from a key of 1 rpm
		store := auth.NewMemoryStore()
		a := auth.NewAuthenticator(store, auth.Options{FlushInterval: time.Hour})
		defer a.Close(t.Context())
		_, secret, err := auth.NewManager(store, a).Create(t.Context(), auth.KeySpec{Name: "slow", Limit: auth.Limit{RPM: 1}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = a.Authenticate(t.Context(), secret, loopbackAddr)
		_, err = a.Authenticate(t.Context(), secret, loopbackAddr)
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.RetryAfterSeconds() < 1 {
			t.Fatalf("the second request of a 1 rpm key: %v", err)
		}
		return err
	}()
	_, missing := auth.ParseBearer("")
	_, basic := auth.ParseBearer("Basic abc")
	cases := []struct {
		name   string
		err    error
		parent error
		status int
		text   string
		msg    string
	}{
		{"InvalidRequest", apierror.InvalidRequest("name", "is required"), apierror.ErrInvalidRequest, 400, "invalid_request", `invalid field "name": is required`},
		{"NotFound", apierror.NotFound("key"), apierror.ErrNotFound, 404, "not_found", "key not found"},
		{"ScopeDenied", auth.ScopeDenied(auth.ScopeDatasetWrite), auth.ErrScopeDenied, 403, "scope_denied", "API key lacks the scope this route needs: dataset:write"},
		{"WithMessage", apierror.ErrConflict.WithMessage("an app with this id exists"), apierror.ErrConflict, 409, "conflict", "an app with this id exists"},
		{"rate limited", rateLimited, auth.ErrRateLimited, 429, "rate_limit_exceeded", "API key rate limit exceeded"},
		{"missing header", missing, auth.ErrInvalidKey, 401, "invalid_api_key", "API key is missing: send the header Authorization: Bearer <API key>"},
		{"not Bearer", basic, auth.ErrInvalidKey, 401, "invalid_api_key", "Authorization header is not a Bearer token: send Authorization: Bearer <API key>"},
	}
	for _, tc := range cases {
		for _, s := range idSentinels() {
			if got := errors.Is(tc.err, s.err); got != (s.err == tc.parent) {
				t.Errorf("errors.Is(%s, %s) = %v", tc.name, s.name, got)
			}
		}
		var ae *apierror.Error
		if !errors.As(tc.err, &ae) || ae.HTTPStatus() != tc.status || ae.StatusText() != tc.text || ae.Error() != tc.msg ||
			apierror.Reason(tc.err) != tc.text {
			t.Errorf("%s: %d %s %q", tc.name, ae.HTTPStatus(), ae.StatusText(), ae.Error())
		}
	}
	// Two errors made the same way are equal under errors.Is only through
	// their sentinel: the one call's error is not the other's.
	if a, b := apierror.NotFound("key"), apierror.NotFound("key"); errors.Is(a, b) {
		t.Error("one NotFound matches another by value")
	}
	// A category: every not_found, whichever package made it.
	for _, err := range []error{apierror.NotFound("x"), dataset.ErrDataNotFound, dataset.ErrDatasetNotFound, shareauth.ErrLinkNotFound, billing.ErrBillNotFound} {
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.HTTPStatus() != http.StatusNotFound || apierror.Reason(err) != "not_found" {
			t.Errorf("%v is not in the not_found category", err)
		}
	}
	// A body or field that cannot be decoded or fails its check (the
	// internal/field validators every domain uses) is an invalid request
	// made for one call: it matches apierror.ErrInvalidRequest, as the errors
	// apierror.InvalidRequest makes do, and no other sentinel, not even one
	// made from ErrInvalidRequest.
	de := httpjson.DecodeErr(errors.New("json: unknown field \"x\""))
	var dec *httpjson.DecodeError
	if !errors.Is(de, apierror.ErrInvalidRequest) || !errors.As(de, &dec) || dec.Field != "x" || apierror.Reason(de) != "invalid_request" {
		t.Errorf("decode error: %v", de)
	}
	for _, s := range idSentinels() {
		if s.err != apierror.ErrInvalidRequest && errors.Is(de, s.err) {
			t.Errorf("a decode error matches %s", s.name)
		}
	}
	if errors.Is(de, apierror.InvalidRequest("x", "unknown field")) {
		t.Error("a decode error matches another call's invalid request")
	}
}
