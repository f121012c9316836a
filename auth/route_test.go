package auth_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
)

// routeEnv mounts routes on a mux behind a real Authenticator, with an
// admin key and an app (chat-only) key.
type routeEnv struct {
	*env
	mux         *http.ServeMux
	admin, chat string
}

func newRouteEnv(t *testing.T, routes ...auth.Route) *routeEnv {
	t.Helper()
	e := newEnv(t, nil, auth.Options{Logger: discardLogger()})
	_, admin := e.create(t, auth.KeySpec{Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}})
	_, chat := e.create(t, auth.KeySpec{Name: "bot", AppID: "app-1"})
	re := &routeEnv{env: e, mux: http.NewServeMux(), admin: admin, chat: chat}
	auth.Mount(re.mux, e.authn, routes...)
	return re
}

// serve sends a request with key as the bearer key (none when empty).
func (e *routeEnv) serve(method, path, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

// whoami answers 200 with the principal's key name, or "nobody".
func whoami() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "nobody"
		if p, ok := auth.FromContext(r.Context()); ok {
			name = p.KeyName
		}
		_, _ = io.WriteString(w, name)
	})
}

func wantAnswer(t *testing.T, w *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if w.Code != status || w.Body.String() != body {
		t.Fatalf("answer %d %q, want %d %q", w.Code, w.Body, status, body)
	}
}

func wantRefusal(t *testing.T, w *httptest.ResponseRecorder, status int, statusText string) {
	t.Helper()
	if code, st, _ := envelope(t, w); w.Code != status || code != status || st != statusText {
		t.Fatalf("answer %d %s, want %d %s", w.Code, w.Body, status, statusText)
	}
}

func TestMountScope(t *testing.T) {
	e := newRouteEnv(t,
		auth.Route{Pattern: "GET /admin", Scope: auth.ScopeAdmin, Handler: whoami()},
		auth.Route{Pattern: "GET /chat", Scope: auth.ScopeChat, Handler: whoami()},
		auth.Route{Pattern: "GET /any", Handler: whoami()},
	)
	wantAnswer(t, e.serve("GET", "/admin", e.admin, ""), 200, "admin")
	wantRefusal(t, e.serve("GET", "/admin", e.chat, ""), 403, "scope_denied")
	wantAnswer(t, e.serve("GET", "/chat", e.chat, ""), 200, "bot")
	wantAnswer(t, e.serve("GET", "/chat", e.admin, ""), 200, "admin") // admin holds every scope
	// An empty scope lets any key in, and only keys.
	wantAnswer(t, e.serve("GET", "/any", e.chat, ""), 200, "bot")
	wantAnswer(t, e.serve("GET", "/any", e.admin, ""), 200, "admin")
	wantRefusal(t, e.serve("GET", "/any", "", ""), 401, "invalid_api_key")
	wantRefusal(t, e.serve("GET", "/any", "cg-not-a-key", ""), 401, "invalid_api_key")
	// The pattern's method is the mux's to enforce.
	if w := e.serve("POST", "/any", e.admin, ""); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST on a GET route: %d", w.Code)
	}
}

func TestMountPublic(t *testing.T) {
	e := newRouteEnv(t, auth.Route{Pattern: "POST /open", Public: true, Scope: auth.ScopeAdmin, Handler: whoami(),
		OnError: func(w http.ResponseWriter, r *http.Request, err error) {
			t.Errorf("OnError called on a public route: %v", err)
		}})
	// No guard at all: no key is needed, and a key, good or bad, is not read.
	for _, key := range []string{"", "cg-not-a-key", e.chat} {
		wantAnswer(t, e.serve("POST", "/open", key, ""), 200, "nobody")
	}
}

func TestMountMaxBody(t *testing.T) {
	var sawLimit int64
	readAll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			sawLimit = mbe.Limit
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprint(w, len(b))
	})
	e := newRouteEnv(t,
		auth.Route{Pattern: "POST /capped", MaxBody: 16, Handler: readAll},
		auth.Route{Pattern: "POST /public", Public: true, MaxBody: 16, Handler: readAll},
		auth.Route{Pattern: "POST /free", Handler: readAll},
	)
	wantAnswer(t, e.serve("POST", "/capped", e.chat, strings.Repeat("x", 16)), 200, "16")
	if w := e.serve("POST", "/capped", e.chat, strings.Repeat("x", 17)); w.Code != http.StatusRequestEntityTooLarge || sawLimit != 16 {
		t.Fatalf("a body over MaxBody: %d, handler saw limit %d", w.Code, sawLimit)
	}
	sawLimit = 0
	if w := e.serve("POST", "/public", "", strings.Repeat("x", 17)); w.Code != http.StatusRequestEntityTooLarge || sawLimit != 16 {
		t.Fatalf("a body over a public route's MaxBody: %d, handler saw limit %d", w.Code, sawLimit)
	}
	// No MaxBody: no cap but the handler's own.
	wantAnswer(t, e.serve("POST", "/free", e.chat, strings.Repeat("x", 2<<20)), 200, fmt.Sprint(2<<20))
	// A refused request is refused for its key, whatever its body.
	wantRefusal(t, e.serve("POST", "/capped", "", strings.Repeat("x", 1<<10)), 401, "invalid_api_key")

	// A handler that decodes JSON answers a body over the cap as the
	// reference server does: 400 invalid_request naming the limit, and
	// nothing changed.
	keys := auth.NewHandler(e.mgr, auth.HandlerOptions{MaxBody: 512, Logger: discardLogger()})
	auth.Mount(e.mux, e.authn, keys.Routes()...)
	before := storeState(t, e.store)
	w := e.serve("POST", "/api/support/openapi/create", e.admin, fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", 600)))
	wantRefusal(t, w, 400, "invalid_request")
	if _, _, msg := envelope(t, w); !strings.Contains(msg, "512") {
		t.Fatalf("message %q does not name the limit", msg)
	}
	unchanged(t, e.store, before, "an oversized create")
}

func TestMountOnError(t *testing.T) {
	var errs []error
	custom := func(w http.ResponseWriter, r *http.Request, err error) {
		errs = append(errs, err)
		w.WriteHeader(499)
	}
	e := newRouteEnv(t,
		auth.Route{Pattern: "GET /custom", Scope: auth.ScopeAdmin, OnError: custom, Handler: whoami()},
		auth.Route{Pattern: "GET /envelope", Scope: auth.ScopeAdmin, Handler: whoami()},
	)
	// The route's writer answers every refusal, and only refusals.
	if w := e.serve("GET", "/custom", "", ""); w.Code != 499 || len(errs) != 1 || !errors.Is(errs[0], auth.ErrInvalidKey) {
		t.Fatalf("no key: %d, errors %v", w.Code, errs)
	}
	if w := e.serve("GET", "/custom", e.chat, ""); w.Code != 499 || len(errs) != 2 || !errors.Is(errs[1], auth.ErrScopeDenied) {
		t.Fatalf("scope denied: %d, errors %v", w.Code, errs)
	}
	wantAnswer(t, e.serve("GET", "/custom", e.admin, ""), 200, "admin")
	if len(errs) != 2 {
		t.Fatalf("OnError called for a request let in: %v", errs)
	}
	// Without one, refusals are answered in the envelope.
	w := e.serve("GET", "/envelope", "", "")
	wantRefusal(t, w, 401, "invalid_api_key")
	if want := `{"code":401,"statusText":"invalid_api_key","message":`; !strings.HasPrefix(w.Body.String(), want) {
		t.Fatalf("body %s, want prefix %s", w.Body, want)
	}
	wantRefusal(t, e.serve("GET", "/envelope", e.chat, ""), 403, "scope_denied")
}

func TestMountKeyless(t *testing.T) {
	var offered []string
	// The keyless handler serves requests naming a share link, and reads
	// the body to decide, as a share-link chat does.
	keyless := auth.KeylessHandlerFunc(func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		offered = append(offered, string(body))
		if !strings.HasPrefix(string(body), "share:") {
			return false
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "visitor")
		return true
	})
	e := newRouteEnv(t, auth.Route{Pattern: "POST /chat", Scope: auth.ScopeChat, Handler: whoami(), Keyless: keyless})

	// No Authorization header: offered to the keyless handler first.
	wantAnswer(t, e.serve("POST", "/chat", "", "share:abc"), http.StatusAccepted, "visitor")
	// Declined: the guard refuses it for want of a key.
	wantRefusal(t, e.serve("POST", "/chat", "", "hello"), 401, "invalid_api_key")
	if want := []string{"share:abc", "hello"}; !reflect.DeepEqual(offered, want) {
		t.Fatalf("offered %q, want %q", offered, want)
	}
	// A key present, valid or not, never reaches the keyless handler.
	offered = nil
	wantAnswer(t, e.serve("POST", "/chat", e.chat, "share:abc"), 200, "bot")
	wantRefusal(t, e.serve("POST", "/chat", "cg-not-a-key", "share:abc"), 401, "invalid_api_key")
	wantRefusal(t, e.serve("POST", "/chat", e.admin[:10], "share:abc"), 401, "invalid_api_key")
	r := httptest.NewRequest("POST", "/chat", strings.NewReader("share:abc"))
	r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	wantRefusal(t, w, 401, "invalid_api_key")
	if len(offered) != 0 {
		t.Fatalf("requests with a key were offered to the keyless handler: %q", offered)
	}
}

// A Guard other than the Authenticator is used as it is, with the route's
// scope and error writer (the envelope when the route names none); public
// routes never reach it.
func TestMountGuardFunc(t *testing.T) {
	var scopes []auth.Scope
	refuse := auth.GuardFunc(func(scope auth.Scope, h http.Handler, onError auth.ErrorWriter) http.Handler {
		scopes = append(scopes, scope)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			onError(w, r, apierror.NotFound("caller"))
		})
	})
	mux := http.NewServeMux()
	auth.Mount(mux, refuse,
		auth.Route{Pattern: "GET /a", Scope: auth.ScopeBillingRead, Handler: whoami()},
		auth.Route{Pattern: "GET /b", Public: true, Handler: whoami()},
		auth.Route{Pattern: "GET /c", OnError: func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(499) }, Handler: whoami()},
	)
	if want := []auth.Scope{auth.ScopeBillingRead, ""}; !reflect.DeepEqual(scopes, want) {
		t.Fatalf("guard called with scopes %q, want %q", scopes, want)
	}
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	wantRefusal(t, get("/a"), 404, "not_found")
	wantAnswer(t, get("/b"), 200, "nobody")
	if w := get("/c"); w.Code != 499 {
		t.Fatalf("GET /c: %d, want the route's own writer's 499", w.Code)
	}
}
