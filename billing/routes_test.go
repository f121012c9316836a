package billing_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
)

type routeEnv struct {
	srv                  *httptest.Server
	acct                 *billing.Accountant
	admin, other, chatty string
}

func newRouteEnv(t *testing.T) *routeEnv {
	t.Helper()
	ctx := context.Background()
	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	m := auth.NewManager(store, authn)
	key := func(spec auth.KeySpec) string {
		_, secret, err := m.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	e := &routeEnv{acct: &billing.Accountant{Ledger: billing.NewMemoryLedger(), Keys: authn, Logger: slog.New(slog.DiscardHandler)}}
	e.admin = key(auth.KeySpec{Name: "global"})
	e.other = key(auth.KeySpec{Name: "other", TeamID: "team-b"})
	e.chatty = key(auth.KeySpec{Name: "chat", AppID: "app"})
	mux := http.NewServeMux()
	billing.NewHandler(e.acct, slog.New(slog.DiscardHandler)).Register(mux, authn.Require)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *routeEnv) call(t *testing.T, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if body == "" {
		req.ContentLength = 0
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s %s: %s", method, path, raw)
	}
	if int(env["code"].(float64)) != resp.StatusCode {
		t.Fatalf("HTTP %d, envelope %v", resp.StatusCode, env)
	}
	return resp.StatusCode, env
}

func TestBillRoutes(t *testing.T) {
	e := newRouteEnv(t)
	ctx := context.Background()
	// FastGPT's documented call sends an empty body
	code, env := e.call(t, "POST", "/api/common/bill/createTrainingBill", e.admin, "")
	billID, _ := env["data"].(string)
	if code != 200 || billID == "" {
		t.Fatalf("createTrainingBill: %d %v", code, env)
	}
	if code, env = e.call(t, "POST", "/api/common/bill/createTrainingBill", e.admin, `{"name":"nightly","datasetId":"ds1"}`); code != 200 {
		t.Fatalf("with a body: %v", env)
	}
	if err := e.acct.Record(ctx, &billing.Record{TeamID: auth.DefaultTeam, BillID: billID, Module: "embedding", Model: "local", InputTokens: 2000}); err != nil {
		t.Fatal(err)
	}
	code, env = e.call(t, "GET", "/api/common/bill/detail?id="+billID, e.admin, "")
	d := env["data"].(map[string]any)
	if code != 200 || d["totalTokens"].(float64) != 2000 || d["totalPoints"].(float64) != 2 || len(d["items"].([]any)) != 1 {
		t.Fatalf("detail: %v", env)
	}
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		statusText, field       string
	}{
		{"GET", "/api/common/bill/detail?id=" + billID, e.other, "", 404, "not_found", ""},
		{"GET", "/api/common/bill/detail", e.admin, "", 400, "invalid_request", "id"},
		{"POST", "/api/common/bill/createTrainingBill", e.admin, `{"name":3}`, 400, "invalid_request", "name"},
		{"POST", "/api/common/bill/createTrainingBill", e.admin, `{"bogus":1}`, 400, "invalid_request", "bogus"},
		{"POST", "/api/common/bill/createTrainingBill", e.chatty, "", 403, "scope_denied", ""},
		{"GET", "/api/support/usage/list", e.chatty, "", 403, "scope_denied", ""},
		{"GET", "/api/support/usage/list?from=yesterday", e.admin, "", 400, "invalid_request", "from"},
		{"GET", "/api/support/usage/list?from=2026-03-02&to=2026-03-01", e.admin, "", 400, "invalid_request", "to"},
		{"GET", "/api/support/usage/list?pageSize=0", e.admin, "", 400, "invalid_request", "pageSize"},
		{"GET", "/api/support/usage/list?pageSize=2001", e.admin, "", 400, "invalid_request", "pageSize"},
		{"GET", "/api/support/usage/summary?to=later", e.admin, "", 400, "invalid_request", "to"},
	} {
		code, env := e.call(t, tc.method, tc.path, tc.key, tc.body)
		if code != tc.status || env["statusText"] != tc.statusText || !strings.Contains(env["message"].(string), tc.field) {
			t.Errorf("%s %s: %d %v; want %d %s naming %q", tc.method, tc.path, code, env, tc.status, tc.statusText, tc.field)
		}
	}
}

func TestUsageRoutes(t *testing.T) {
	e := newRouteEnv(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		_ = e.acct.Record(ctx, &billing.Record{TeamID: auth.DefaultTeam, KeyID: []string{"k1", "k2"}[i%2], AppID: "app",
			Module: "AI Chat", Model: "m", InputTokens: 1000, Time: t0.Add(time.Duration(i) * 12 * time.Hour)})
	}
	_ = e.acct.Record(ctx, &billing.Record{TeamID: "team-b", KeyID: "kb", Module: "AI Chat", Model: "m", InputTokens: 1000, Time: t0})
	_, env := e.call(t, "GET", "/api/support/usage/list?pageSize=2&offset=1", e.admin, "")
	d := env["data"].(map[string]any)
	if d["total"].(float64) != 5 || len(d["list"].([]any)) != 2 {
		t.Fatalf("list: %v", env)
	}
	_, env = e.call(t, "GET", "/api/support/usage/list?keyId=k2&from=2026-05-01T00:00:00Z&to=2026-05-04", e.admin, "")
	if d = env["data"].(map[string]any); d["total"].(float64) != 2 {
		t.Fatalf("filtered list: %v", env)
	}
	_, env = e.call(t, "GET", "/api/support/usage/summary", e.admin, "")
	s := env["data"].(map[string]any)
	if s["total"].(map[string]any)["records"].(float64) != 5 || len(s["byDay"].([]any)) != 3 || len(s["byKey"].([]any)) != 2 {
		t.Fatalf("summary: %v", env)
	}
	_, env = e.call(t, "GET", "/api/support/usage/list", e.other, "")
	if d = env["data"].(map[string]any); d["total"].(float64) != 1 {
		t.Fatalf("team b sees %v", env)
	}
}
