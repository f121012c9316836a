package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
)

// handlerEnv serves the billing routes of an Accountant on a BoltLedger,
// behind a real Authenticator, with keys of two teams.
type handlerEnv struct {
	srv   *httptest.Server
	acct  *billing.Accountant
	authn *auth.Authenticator
	keys  *auth.Manager
	// secrets: an admin key and a global key of the default team, a global
	// key of team-b, an app (chat-only) key, a dataset:write-only key and a
	// billing:read-only key
	admin, global, teamB, chatOnly, writeOnly, readOnly string
	globalID, teamBID                                   string
}

func newHandlerEnv(t *testing.T) *handlerEnv {
	t.Helper()
	ctx := context.Background()
	store := auth.NewMemoryStore()
	quiet := slog.New(slog.DiscardHandler)
	authn := auth.NewAuthenticator(store, auth.Options{Logger: quiet})
	t.Cleanup(func() { _ = authn.Close(ctx) })
	ledger, _ := openBoltLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
	e := &handlerEnv{authn: authn, keys: auth.NewManager(store, authn),
		acct: billing.NewAccountant(billing.AccountantOptions{Ledger: ledger, Keys: authn, Logger: quiet})}
	var k *auth.Key
	e.admin, _ = e.key(t, auth.KeySpec{Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}})
	e.global, k = e.key(t, auth.KeySpec{Name: "global"})
	e.globalID = k.ID
	e.teamB, k = e.key(t, auth.KeySpec{Name: "b", TeamID: "team-b"})
	e.teamBID = k.ID
	e.chatOnly, _ = e.key(t, auth.KeySpec{Name: "app", AppID: "app1"})
	e.writeOnly, _ = e.key(t, auth.KeySpec{Name: "writer", Scopes: auth.Scopes{auth.ScopeDatasetWrite}})
	e.readOnly, _ = e.key(t, auth.KeySpec{Name: "reader", Scopes: auth.Scopes{auth.ScopeBillingRead}})
	mux := http.NewServeMux()
	billing.NewHandler(e.acct, billing.HandlerOptions{Logger: quiet}).Register(mux, authn)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *handlerEnv) key(t *testing.T, spec auth.KeySpec) (string, *auth.Key) {
	t.Helper()
	k, secret, err := e.keys.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return secret, k
}

// envelope is a FastGPT-style answer.
type envelope struct {
	Code       int             `json:"code"`
	StatusText string          `json:"statusText"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
}

// do sends a request; body nil sends no body with Content-Length 0.
func (e *handlerEnv) do(t *testing.T, req *http.Request, key string) envelope {
	t.Helper()
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s %s: not an envelope: %d %s", req.Method, req.URL, resp.StatusCode, raw)
	}
	if env.Code != resp.StatusCode {
		t.Fatalf("%s %s: HTTP %d but code %d: %s", req.Method, req.URL, resp.StatusCode, env.Code, raw)
	}
	return env
}

func (e *handlerEnv) get(t *testing.T, path, key string) envelope {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	return e.do(t, req, key)
}

func (e *handlerEnv) post(t *testing.T, path, key, body string) envelope {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.do(t, req, key)
}

func decodeData[T any](t *testing.T, env envelope) T {
	t.Helper()
	if env.Code != 200 {
		t.Fatalf("answer %d %s: %s", env.Code, env.StatusText, env.Message)
	}
	var v T
	if err := json.Unmarshal(env.Data, &v); err != nil {
		t.Fatalf("data %s: %v", env.Data, err)
	}
	return v
}

func TestCreateTrainingBillBodies(t *testing.T) {
	e := newHandlerEnv(t)
	const path = "/api/common/bill/createTrainingBill"
	bodies := []struct {
		name string
		req  func() *http.Request
	}{
		// FastGPT's documented curl: --data-raw '' sends Content-Length 0
		// and curl's form content type
		{"curl --data-raw ''", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(""))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
		{"no body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, nil)
			return r
		}},
		// an empty body of unknown length (chunked)
		{"chunked empty", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, io.NopCloser(strings.NewReader("")))
			r.ContentLength = -1
			return r
		}},
		{"white space", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(" \n"))
			r.Header.Set("Content-Type", "application/json")
			return r
		}},
		{"{}", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader("{}"))
			r.Header.Set("Content-Type", "application/json")
			return r
		}},
	}
	seen := map[string]bool{}
	for _, b := range bodies {
		id := decodeData[string](t, e.do(t, b.req(), e.global))
		if id == "" || seen[id] {
			t.Fatalf("%s: bill id %q", b.name, id)
		}
		seen[id] = true
		d := decodeData[map[string]any](t, e.get(t, "/api/common/bill/detail?id="+id, e.global))
		if d["id"] != id || d["name"] != "training" || d["totalTokens"] != 0.0 || d["totalPoints"] != 0.0 {
			t.Fatalf("%s: detail %v", b.name, d)
		}
		if items, ok := d["items"].([]any); !ok || len(items) != 0 {
			t.Fatalf("%s: items %v; want []", b.name, d["items"])
		}
	}
	id := decodeData[string](t, e.post(t, path, e.global, `{"name":"  nightly import ","datasetId":"ds1"}`))
	d := decodeData[map[string]any](t, e.get(t, "/api/common/bill/detail?billId="+id, e.global))
	if d["name"] != "nightly import" || d["datasetId"] != "ds1" {
		t.Fatalf("named bill: %v", d)
	}
	// dataset:write is what a bill is made for; billing:read alone may not
	if env := e.post(t, path, e.writeOnly, ""); env.Code != 200 {
		t.Fatalf("dataset:write key: %+v", env)
	}
}

// A bill sums what is recorded under it, per module and model, and its
// detail has FastGPT's fields.
func TestBillDetailAggregates(t *testing.T) {
	e := newHandlerEnv(t)
	ctx := context.Background()
	id := decodeData[string](t, e.post(t, "/api/common/bill/createTrainingBill", e.global, `{"name":"kb"}`))
	priced := billing.NewAccountant(billing.AccountantOptions{Ledger: e.acct.Ledger(), Keys: e.authn,
		Prices: &billing.Prices{Models: map[string]billing.Price{"gpt": {Input: 2, Output: 4}}}})
	for _, r := range []*billing.Record{
		{Module: "embedding", Model: "local", InputTokens: 1000},
		{Module: "embedding", Model: "local", InputTokens: 500},
		{Module: "qa", Model: "gpt", InputTokens: 1000, OutputTokens: 500},
	} {
		r.TeamID, r.KeyID, r.BillID, r.Source = auth.DefaultTeam, e.globalID, id, billing.SourceTraining
		if err := priced.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	env := e.get(t, "/api/common/bill/detail?id="+id, e.global)
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(env.Data, &raw)
	for _, f := range []string{"id", "name", "totalTokens", "totalPoints", "items"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("bill detail lacks %q: %s", f, env.Data)
		}
	}
	var d struct {
		ID          string  `json:"id"`
		TotalTokens int     `json:"totalTokens"`
		TotalPoints float64 `json:"totalPoints"`
		Items       []map[string]any
	}
	_ = json.Unmarshal(env.Data, &d)
	// default price: 1 point per 1,000 input tokens; gpt: 2 in, 4 out
	if d.ID != id || d.TotalTokens != 3000 || math.Abs(d.TotalPoints-5.5) > 1e-9 || len(d.Items) != 2 {
		t.Fatalf("detail %s", env.Data)
	}
	want := []map[string]any{
		{"module": "embedding", "model": "local", "tokens": 1500.0, "points": 1.5},
		{"module": "qa", "model": "gpt", "tokens": 1500.0, "points": 4.0},
	}
	for i, it := range d.Items {
		if len(it) != 4 || it["module"] != want[i]["module"] || it["model"] != want[i]["model"] ||
			it["tokens"] != want[i]["tokens"] || math.Abs(it["points"].(float64)-want[i]["points"].(float64)) > 1e-9 {
			t.Errorf("item %d = %v; want %v", i, it, want[i])
		}
	}
	// the records behind it are in the usage list, with the bill's id
	list := decodeData[struct {
		List  []billing.Record `json:"list"`
		Total int              `json:"total"`
	}](t, e.get(t, "/api/support/usage/list", e.global))
	if list.Total != 3 || list.List[0].BillID != id || list.List[0].Source != billing.SourceTraining {
		t.Fatalf("usage list %+v", list)
	}
	// a record naming another team's bill is kept, without the bill
	other := decodeData[string](t, e.post(t, "/api/common/bill/createTrainingBill", e.teamB, ""))
	if err := e.acct.Record(ctx, &billing.Record{TeamID: auth.DefaultTeam, KeyID: e.globalID, BillID: other,
		Module: "embedding", Model: "local", InputTokens: 100}); err != nil {
		t.Fatal(err)
	}
	if b := decodeData[billing.BillDetail](t, e.get(t, "/api/common/bill/detail?id="+other, e.teamB)); b.TotalTokens != 0 {
		t.Fatalf("team b's bill took team default's usage: %+v", b)
	}
	if s := decodeData[billing.Summary](t, e.get(t, "/api/support/usage/summary", e.global)); s.Total.Records != 4 {
		t.Fatalf("the record without its bill is missing: %+v", s.Total)
	}
}

func TestBillingRoutesReject(t *testing.T) {
	e := newHandlerEnv(t)
	bill := decodeData[string](t, e.post(t, "/api/common/bill/createTrainingBill", e.global, ""))
	billB := decodeData[string](t, e.post(t, "/api/common/bill/createTrainingBill", e.teamB, ""))
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		statusText, field       string
	}{
		// team isolation: another team's bill is as missing as a missing one
		{"GET", "/api/common/bill/detail?id=" + billB, e.global, "", 404, "not_found", "bill"},
		{"GET", "/api/common/bill/detail?id=" + bill, e.teamB, "", 404, "not_found", "bill"},
		{"GET", "/api/common/bill/detail?id=nope", e.global, "", 404, "not_found", "bill"},
		{"GET", "/api/common/bill/detail", e.global, "", 400, "invalid_request", "id"},
		// bad bodies
		{"POST", "/api/common/bill/createTrainingBill", e.global, `{"name":3}`, 400, "invalid_request", "name"},
		{"POST", "/api/common/bill/createTrainingBill", e.global, `{"nmae":"x"}`, 400, "invalid_request", "nmae"},
		{"POST", "/api/common/bill/createTrainingBill", e.global, `{"name":`, 400, "invalid_request", ""},
		{"POST", "/api/common/bill/createTrainingBill", e.global, `[]`, 400, "invalid_request", ""},
		// bad filters and pages, on both usage routes
		{"GET", "/api/support/usage/list?from=yesterday", e.global, "", 400, "invalid_request", "from"},
		{"GET", "/api/support/usage/list?to=2026-13-01", e.global, "", 400, "invalid_request", "to"},
		{"GET", "/api/support/usage/list?from=2026-03-02&to=2026-03-01", e.global, "", 400, "invalid_request", "to"},
		{"GET", "/api/support/usage/list?from=2026-03-01&to=2026-03-01", e.global, "", 400, "invalid_request", "to"},
		{"GET", "/api/support/usage/list?from=2026-03-01T10:00:00Z&to=2026-03-01T09:00:00Z", e.global, "", 400, "invalid_request", "to"},
		{"GET", "/api/support/usage/list?pageSize=0", e.global, "", 400, "invalid_request", "pageSize"},
		{"GET", "/api/support/usage/list?pageSize=2001", e.global, "", 400, "invalid_request", "pageSize"},
		{"GET", "/api/support/usage/list?pageSize=ten", e.global, "", 400, "invalid_request", "pageSize"},
		{"GET", "/api/support/usage/list?offset=-1", e.global, "", 400, "invalid_request", "offset"},
		{"GET", "/api/support/usage/summary?from=last%20week", e.global, "", 400, "invalid_request", "from"},
		{"GET", "/api/support/usage/summary?from=2026-03-02&to=2026-03-01", e.global, "", 400, "invalid_request", "to"},
		// scopes: a chat-only key reads and writes no bills
		{"POST", "/api/common/bill/createTrainingBill", e.chatOnly, "", 403, "scope_denied", ""},
		{"GET", "/api/common/bill/detail?id=" + bill, e.chatOnly, "", 403, "scope_denied", ""},
		{"GET", "/api/support/usage/list", e.chatOnly, "", 403, "scope_denied", ""},
		{"GET", "/api/support/usage/summary", e.chatOnly, "", 403, "scope_denied", ""},
		// reading needs billing:read; creating needs dataset:write
		{"GET", "/api/support/usage/list", e.writeOnly, "", 403, "scope_denied", ""},
		{"GET", "/api/common/bill/detail?id=" + bill, e.writeOnly, "", 403, "scope_denied", ""},
		{"POST", "/api/common/bill/createTrainingBill", e.readOnly, "", 403, "scope_denied", ""},
		// no key
		{"GET", "/api/support/usage/list", "", "", 401, "", ""},
		{"POST", "/api/common/bill/createTrainingBill", "", "", 401, "", ""},
	} {
		var env envelope
		if tc.method == "GET" {
			env = e.get(t, tc.path, tc.key)
		} else {
			env = e.post(t, tc.path, tc.key, tc.body)
		}
		if env.Code != tc.status || (tc.statusText != "" && env.StatusText != tc.statusText) ||
			!strings.Contains(env.Message, tc.field) {
			t.Errorf("%s %s %s: %d %s %q; want %d %s naming %q", tc.method, tc.path, tc.body, env.Code, env.StatusText,
				env.Message, tc.status, tc.statusText, tc.field)
		}
	}
	// the billing:read key may read
	if env := e.get(t, "/api/support/usage/list", e.readOnly); env.Code != 200 {
		t.Fatalf("billing:read key: %+v", env)
	}
	if env := e.get(t, "/api/common/bill/detail?id="+bill, e.admin); env.Code != 200 {
		t.Fatalf("admin key: %+v", env)
	}
}

type usagePage struct {
	List  []billing.Record `json:"list"`
	Total int              `json:"total"`
}

func TestUsageListAndSummaryRoutes(t *testing.T) {
	e := newHandlerEnv(t)
	ctx := context.Background()
	day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	// default team: 6 records over 3 days, by two keys and two apps
	var recs []*billing.Record
	for i := range 6 {
		r := &billing.Record{TeamID: auth.DefaultTeam, KeyID: []string{"k1", "k2"}[i%2], AppID: []string{"a1", "a1", "a2"}[i%3],
			Source: billing.SourceChat, Module: "AI Chat", Model: "m", InputTokens: 1000, OutputTokens: 500,
			Time: day.Add(time.Duration(i) * 10 * time.Hour)}
		if err := e.acct.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := e.acct.Record(ctx, &billing.Record{TeamID: "team-b", KeyID: "k1", AppID: "a1", Module: "AI Chat", Model: "m",
		InputTokens: 9000, Time: day}); err != nil {
		t.Fatal(err)
	}
	idsOf := func(p usagePage) []string {
		var out []string
		for _, r := range p.List {
			out = append(out, r.ID)
		}
		return out
	}
	want := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, recs[i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		total int
		ids   []string
	}{
		{"", 6, want(5, 4, 3, 2, 1, 0)},
		{"?pageSize=2", 6, want(5, 4)},
		{"?pageSize=2&offset=2", 6, want(3, 2)},
		{"?pageSize=4&offset=4", 6, want(1, 0)},
		{"?offset=6", 6, nil},
		{"?keyId=k1", 3, want(4, 2, 0)},
		{"?appId=a2", 2, want(5, 2)},
		{"?keyId=k2&appId=a1", 2, want(3, 1)},
		{"?from=2026-05-02", 3, want(5, 4, 3)}, // from 24:00: hours 30, 40, 50
		{"?to=2026-05-02", 3, want(2, 1, 0)},
		{"?from=2026-05-01T10:00:00Z&to=2026-05-01T20:00:00Z", 1, want(1)},
		{"?from=2026-05-01T12:00:00%2B02:00&to=2026-05-02T08:00:00%2B02:00", 2, want(2, 1)}, // [10:00, 30:00) UTC
		// another team's key is not seen
		{"?keyId=" + "nobody", 0, nil},
	} {
		p := decodeData[usagePage](t, e.get(t, "/api/support/usage/list"+tc.query, e.global))
		if p.Total != tc.total || !slices.Equal(idsOf(p), tc.ids) {
			t.Errorf("list%s = %d %v; want %d %v", tc.query, p.Total, idsOf(p), tc.total, tc.ids)
		}
	}
	// the record's fields, as JSON
	env := e.get(t, "/api/support/usage/list?pageSize=1", e.global)
	var raw struct {
		List []map[string]any `json:"list"`
	}
	_ = json.Unmarshal(env.Data, &raw)
	r := raw.List[0]
	for _, f := range []string{"id", "teamId", "keyId", "appId", "source", "module", "model", "inputTokens", "outputTokens", "points", "time"} {
		if _, ok := r[f]; !ok {
			t.Errorf("usage record lacks %q: %v", f, r)
		}
	}
	if r["points"] != 2.0 || r["teamId"] != auth.DefaultTeam { // 1 + 2x0.5
		t.Errorf("usage record %v", r)
	}

	// team b sees its record only, whatever it filters by
	for _, q := range []string{"", "?keyId=k1", "?appId=a1"} {
		p := decodeData[usagePage](t, e.get(t, "/api/support/usage/list"+q, e.teamB))
		if p.Total != 1 || p.List[0].TeamID != "team-b" {
			t.Errorf("team b list%s = %+v", q, p)
		}
	}

	s := decodeData[billing.Summary](t, e.get(t, "/api/support/usage/summary", e.global))
	if s.Total.Records != 6 || s.Total.Points != 12 || s.Total.InputTokens != 6000 || s.Total.OutputTokens != 3000 {
		t.Fatalf("summary total %+v", s.Total)
	}
	days := []string{}
	for _, d := range s.ByDay {
		days = append(days, d.Day)
	}
	// hours 0, 10, 20 | 30, 40 | 50
	if !slices.Equal(days, []string{"2026-05-01", "2026-05-02", "2026-05-03"}) || s.ByDay[0].Records != 3 || s.ByDay[1].Records != 2 {
		t.Fatalf("summary by day %+v", s.ByDay)
	}
	if len(s.ByKey) != 2 || s.ByKey[0].Points != 6 || s.ByKey[1].Points != 6 || s.ByKey[0].KeyID != "k1" {
		t.Fatalf("summary by key %+v", s.ByKey)
	}
	s = decodeData[billing.Summary](t, e.get(t, "/api/support/usage/summary?keyId=k2&from=2026-05-02", e.global))
	if s.Total.Records != 2 || len(s.ByKey) != 1 || s.ByKey[0].KeyID != "k2" || len(s.ByDay) != 2 {
		t.Fatalf("filtered summary %+v", s)
	}
	s = decodeData[billing.Summary](t, e.get(t, "/api/support/usage/summary", e.teamB))
	if s.Total.Records != 1 || s.Total.Points != 9 {
		t.Fatalf("team b summary %+v", s.Total)
	}
}

// Usage is charged to its key after the work; the key's next request is
// refused once the quota is spent, and Reconcile brings a counter that lost
// charges back up to the ledger.
func TestAccountantChargesAndReconciles(t *testing.T) {
	e := newHandlerEnv(t)
	ctx := context.Background()
	secret, k := e.key(t, auth.KeySpec{Name: "small", Limit: auth.Limit{MaxUsagePoints: 2}})
	charge := func(in int) {
		t.Helper()
		if err := e.acct.Record(ctx, &billing.Record{TeamID: auth.DefaultTeam, KeyID: k.ID, Module: "AI Chat", Model: "m",
			InputTokens: in}); err != nil {
			t.Fatal(err)
		}
	}
	charge(1500) // 1.5 points: within quota
	if env := e.get(t, "/api/support/usage/list", secret); env.Code != 200 {
		t.Fatalf("within quota: %+v", env)
	}
	charge(1500) // 3 points: the work that started within quota is charged in full
	if used, _ := e.authn.UsedPoints(ctx, k.ID); used != 3 {
		t.Fatalf("used %v; want 3", used)
	}
	env := e.get(t, "/api/support/usage/list", secret)
	if env.Code != 429 || env.StatusText != "insufficient_quota" {
		t.Fatalf("over quota: %+v", env)
	}

	// a counter behind the ledger (a crash before the flush) is caught up
	l := e.acct.Ledger()
	if err := l.Record(ctx, &billing.Record{TeamID: auth.DefaultTeam, KeyID: e.globalID, Module: "AI Chat", Points: 4.25}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, &billing.Record{TeamID: "team-b", KeyID: "deleted-key", Module: "AI Chat", Points: 1}); err != nil {
		t.Fatal(err)
	}
	n, err := e.acct.Reconcile(ctx, e.authn)
	if err != nil || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want 1 key caught up", n, err)
	}
	kp, _ := l.KeyPoints(ctx)
	for _, id := range []string{k.ID, e.globalID} {
		if used, _ := e.authn.UsedPoints(ctx, id); math.Abs(used-kp[id]) > 1e-9 {
			t.Errorf("key %s: counter %v, ledger %v", id, used, kp[id])
		}
	}
	// agreeing counters are left alone
	if n, err := e.acct.Reconcile(ctx, e.authn); err != nil || n != 0 {
		t.Fatalf("second Reconcile = %d, %v", n, err)
	}
}

// A record delivered again under its id (a training outbox replayed after
// a crash) is stored and charged once.
func TestAccountantRecordAgainChargesOnce(t *testing.T) {
	e := newHandlerEnv(t)
	ctx := context.Background()
	_, k := e.key(t, auth.KeySpec{Name: "trainer"})
	r := billing.Record{ID: "outbox-1", TeamID: auth.DefaultTeam, KeyID: k.ID, Module: "embedding", Model: "local", InputTokens: 2000}
	for range 3 {
		again := r
		if err := e.acct.Record(ctx, &again); err != nil {
			t.Fatalf("Record again: %v", err)
		}
	}
	if used, _ := e.authn.UsedPoints(ctx, k.ID); used != 2 {
		t.Fatalf("key charged %v points for one 2-point record delivered three times; want 2", used)
	}
	if _, total, _ := e.acct.Ledger().List(ctx, billing.Filter{TeamID: auth.DefaultTeam, KeyID: k.ID}); total != 1 {
		t.Fatalf("%d records stored; want 1", total)
	}
}

func TestAccountantReserveBudget(t *testing.T) {
	ctx := context.Background()
	a := billing.NewAccountant(billing.AccountantOptions{})
	check := func(team, app string, budget float64) error {
		t.Helper()
		end, err := a.ReserveBudget(ctx, team, app, budget)
		if err == nil {
			end()
		}
		return err
	}
	if err := check("t", "app", 1); err != nil {
		t.Fatalf("nothing spent: %v", err)
	}
	_ = a.Record(ctx, &billing.Record{TeamID: "t", AppID: "app", Module: "AI Chat", Model: "m", InputTokens: 999})
	if err := check("t", "app", 1); err != nil {
		t.Fatalf("0.999 of 1 spent: %v", err)
	}
	_ = a.Record(ctx, &billing.Record{TeamID: "t", AppID: "app", Module: "AI Chat", Model: "m", InputTokens: 1})
	err := check("t", "app", 1)
	var ae *apierror.Error
	if !errors.Is(err, billing.ErrBudgetSpent) || !errors.As(err, &ae) || ae.Status != 429 || ae.Code != "insufficient_quota" {
		t.Fatalf("budget spent: %v", err)
	}
	for _, budget := range []float64{0, -1} {
		if err := check("t", "app", budget); err != nil {
			t.Fatalf("budget %v means none: %v", budget, err)
		}
	}
	if err := check("t", "other-app", 1); err != nil {
		t.Fatalf("another app's spend counted: %v", err)
	}
	if err := check("other-team", "app", 1); err != nil {
		t.Fatalf("another team's app of the same id: its spend counted: %v", err)
	}
}

// Chats running count against the budget: with one chat's cost known, a
// budget of 3.5 chats admits the chats that fit beside those running.
func TestReserveBudgetCountsRunningChats(t *testing.T) {
	ctx := context.Background()
	a := billing.NewAccountant(billing.AccountantOptions{})
	end, err := a.ReserveBudget(ctx, "t", "app", 3.5)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Record(ctx, &billing.Record{TeamID: "t", AppID: "app", Module: "AI Chat", Model: "m", Points: 1})
	end()
	var ends []func()
	for {
		end, err := a.ReserveBudget(ctx, "t", "app", 3.5)
		if errors.Is(err, billing.ErrBudgetSpent) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, end)
	}
	for _, e := range ends {
		e()
	}
	// 1 spent, 1 a chat: 1 + 0, 1, 2 running < 3.5
	if len(ends) != 3 {
		t.Fatalf("%d chats admitted beside the spent one; want 3", len(ends))
	}
}
