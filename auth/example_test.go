package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
)

func Example() {
	ctx := context.Background()
	store := auth.NewMemoryStore() // auth.NewBoltStore in production
	authn := auth.NewAuthenticator(store, auth.Options{})
	defer authn.Close(ctx) // flushes usage; call before closing the store
	mgr := auth.NewManager(store, authn)

	// An app key: it may chat with app-1. The secret is shown only now.
	key, secret, err := mgr.Create(ctx, auth.KeySpec{Name: "support bot", AppID: "app-1"})
	if err != nil {
		panic(err)
	}
	fmt.Println("prefix:", strings.HasPrefix(secret, auth.DefaultPrefix), "length:", len(secret))
	fmt.Println("hint hides the key:", !strings.Contains(key.Hint, secret[3:]))

	client := netip.MustParseAddr("192.0.2.10")
	p, err := authn.Authenticate(ctx, secret, client)
	if err != nil {
		panic(err)
	}
	fmt.Println("scopes:", p.Scopes, "app:", p.AppID, "same key:", p.KeyID == key.ID)
	fmt.Println("may chat:", p.Has(auth.ScopeChat), "may write datasets:", p.Has(auth.ScopeDatasetWrite))

	_, err = authn.Authenticate(ctx, "cg-not-a-real-key", client)
	fmt.Println("wrong key:", errors.Is(err, auth.ErrInvalidKey), apierror.Reason(err))

	// Disabling through the Manager applies at once.
	disabled := true
	if _, err := mgr.Update(ctx, "", key.ID, auth.KeyUpdate{Disabled: &disabled}); err != nil {
		panic(err)
	}
	_, err = authn.Authenticate(ctx, secret, client)
	fmt.Println("disabled:", errors.Is(err, auth.ErrKeyDisabled), apierror.Reason(err))

	// Output:
	// prefix: true length: 52
	// hint hides the key: true
	// scopes: [chat] app: app-1 same key: true
	// may chat: true may write datasets: false
	// wrong key: true invalid_api_key
	// disabled: true api_key_disabled
}

func ExampleAuthenticator_Require() {
	ctx := context.Background()
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{})
	defer authn.Close(ctx)
	_, secret, err := auth.NewManager(store, authn).Create(ctx, auth.KeySpec{Name: "bot", AppID: "app-1"})
	if err != nil {
		panic(err)
	}

	chat := authn.Require(auth.ScopeChat, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "hello, %s of %s", p.KeyName, p.AppID)
	}))
	datasets := authn.Require(auth.ScopeDatasetRead, http.NotFoundHandler())

	call := func(h http.Handler, authorization string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	call(chat, "Bearer "+secret)
	call(chat, "")
	call(datasets, "Bearer "+secret)

	// Output:
	// 200 hello, bot of app-1
	// 401 {"code":401,"statusText":"invalid_api_key","message":"API key is missing: send the header Authorization: Bearer <API key>"}
	// 403 {"code":403,"statusText":"scope_denied","message":"API key lacks the scope this route needs: dataset:read"}
}

// Mount puts each of a service's routes behind the guard with what it
// needs: a scope, a body limit, no key at all, or a way in for callers
// without one.
func ExampleMount() {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", auth.MustFromContext(r.Context()).KeyName)
	})
	// Visitors of a shared page come without a key; the rest are left to the guard.
	visitors := auth.KeylessHandlerFunc(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("share") == "" {
			return false
		}
		fmt.Fprint(w, "hello, visitor")
		return true
	})

	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{})
	defer authn.Close(context.Background())
	mux := http.NewServeMux()
	auth.Mount(mux, authn,
		auth.Route{Pattern: "POST /ask", Scope: auth.ScopeChat, MaxBody: 64 << 10, Handler: hello, Keyless: visitors},
		auth.Route{Pattern: "GET /report", Scope: auth.ScopeBillingRead, Handler: hello},
		auth.Route{Pattern: "GET /healthz", Public: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "ok")
		})},
	)
	_, secret, err := auth.NewManager(store, authn).Create(context.Background(), auth.KeySpec{Name: "bot", AppID: "app-1"})
	if err != nil {
		panic(err)
	}

	call := func(method, target, authorization string) {
		r := httptest.NewRequest(method, target, nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(method, target, w.Code, strings.TrimSpace(w.Body.String()))
	}
	call("POST", "/ask", "Bearer "+secret)
	call("POST", "/ask?share=s1", "")
	call("POST", "/ask", "")
	call("GET", "/report", "Bearer "+secret)
	call("GET", "/healthz", "")

	// Output:
	// POST /ask 200 hello, bot
	// POST /ask?share=s1 200 hello, visitor
	// POST /ask 401 {"code":401,"statusText":"invalid_api_key","message":"API key is missing: send the header Authorization: Bearer <API key>"}
	// GET /report 403 {"code":403,"statusText":"scope_denied","message":"API key lacks the scope this route needs: billing:read"}
	// GET /healthz 200 ok
}
