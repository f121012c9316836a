package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/server"
)

// blRoot is the admin key of the billing tests' servers.
const blRoot = "billing-test-root-key-0123456789"

// blQuestion is what every billed chat asks: the same messages cost the
// same points each time.
const blQuestion = "how many points does this question cost"

// blStart runs the reference server on dir behind a loopback listener
// until the test ends, and returns its base URL.
func blStart(t *testing.T, dir string, mutate func(*server.Config)) string {
	t.Helper()
	base, _ := blStartStop(t, dir, mutate)
	return base
}

// blStartStop is blStart that also returns a function stopping the
// server before the test ends, for tests that restart it; stopping twice
// is fine.
func blStartStop(t *testing.T, dir string, mutate func(*server.Config)) (string, func()) {
	t.Helper()
	cfg := server.Config{RootKey: blRoot, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			// connections dialled for a burst but never used would hold the
			// graceful shutdown for 5s (http.Server waits for new ones)
			blClient.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// blClient has room for the concurrent chats' connections.
var blClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}

func blDo(t testing.TB, method, url, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := blClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

type blEnvelope struct {
	Code       int             `json:"code"`
	StatusText string          `json:"statusText"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
}

// blCall calls a FastGPT-style route and decodes its data into out (when
// not nil), failing the test unless it answers 200.
func blCall(t testing.TB, method, url, key, body string, out any) blEnvelope {
	t.Helper()
	env := blCallAny(t, method, url, key, body)
	if env.Code != 200 {
		t.Fatalf("%s %s: %d %s %s", method, url, env.Code, env.StatusText, env.Message)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			t.Fatalf("%s %s: data %s: %v", method, url, env.Data, err)
		}
	}
	return env
}

func blCallAny(t testing.TB, method, url, key, body string) blEnvelope {
	t.Helper()
	status, raw := blDo(t, method, url, key, body)
	var env blEnvelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Code != status {
		t.Fatalf("%s %s: HTTP %d, not an envelope with that code: %s", method, url, status, raw)
	}
	return env
}

// blKey creates a key through the key API and returns its id and secret.
func blKey(t testing.TB, base string, spec map[string]any) (id, secret string) {
	t.Helper()
	body, _ := json.Marshal(spec)
	var k struct{ ID, Key string }
	blCall(t, "POST", base+"/api/support/openapi/create", blRoot, string(body), &k)
	if k.ID == "" || k.Key == "" {
		t.Fatalf("created key %+v", k)
	}
	return k.ID, k.Key
}

type blUsagePage struct {
	List  []billing.Record `json:"list"`
	Total int              `json:"total"`
}

func blUsage(t testing.TB, base, query string) blUsagePage {
	t.Helper()
	var p blUsagePage
	sep := "?"
	if strings.Contains(query, "?") {
		sep = "&"
	}
	blCall(t, "GET", base+"/api/support/usage/list"+query+sep+"pageSize=2000", blRoot, "", &p)
	if p.Total != len(p.List) {
		t.Fatalf("usage list%s: %d of %d records on one page", query, len(p.List), p.Total)
	}
	return p
}

func blSummary(t testing.TB, base, query string) billing.Summary {
	t.Helper()
	var s billing.Summary
	blCall(t, "GET", base+"/api/support/usage/summary"+query, blRoot, "", &s)
	return s
}

// blKeyUsage returns the usagePoints the key list shows for a key.
func blKeyUsage(t testing.TB, base, keyID string) float64 {
	t.Helper()
	var keys []struct {
		ID          string  `json:"id"`
		UsagePoints float64 `json:"usagePoints"`
	}
	blCall(t, "GET", base+"/api/support/openapi/list", blRoot, "", &keys)
	for _, k := range keys {
		if k.ID == keyID {
			return k.UsagePoints
		}
	}
	t.Fatalf("key %s is not listed", keyID)
	return 0
}

// blCompletion is a non-stream chat answer with detail=true.
type blCompletion struct {
	Object string `json:"object"`
	Usage  struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	ResponseData []struct {
		ModuleName string  `json:"moduleName"`
		Model      string  `json:"model"`
		Tokens     int     `json:"tokens"`
		Price      float64 `json:"price"`
	} `json:"responseData"`
}

// blOpenAIError is the chat route's error shape.
type blOpenAIError struct {
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

func blChat(t testing.TB, base, key string, detail bool) (int, []byte) {
	t.Helper()
	return blDo(t, "POST", base+"/api/v1/chat/completions", key,
		fmt.Sprintf(`{"detail":%v,"messages":[{"role":"user","content":%q}]}`, detail, blQuestion))
}

// blQuotaError checks a chat answer is OpenAI's insufficient_quota error.
func blQuotaError(t testing.TB, status int, raw []byte) {
	t.Helper()
	var e blOpenAIError
	if status != 429 || json.Unmarshal(raw, &e) != nil || e.Error == nil || e.Error.Code != "insufficient_quota" ||
		e.Error.Type != "insufficient_quota" || e.Error.Message == "" {
		t.Fatalf("want 429 insufficient_quota in OpenAI's shape: %d %s", status, raw)
	}
}

func blNear(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// Every chat call writes a usage record priced by the table, before its
// response ends; responseData's price is its points x 100000.
func TestBillingChatUsage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prices  map[string]billing.Price
		in, out float64 // points per 1,000 tokens
	}{
		{"default price", nil, billing.DefaultInputPrice, billing.DefaultOutputPrice},
		{"priced model", map[string]billing.Price{chat.ExtractiveModelName: {Input: 3, Output: 7.5}}, 3, 7.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := blStart(t, t.TempDir(), func(c *server.Config) { c.Billing.Prices = tc.prices })
			keyID, key := blKey(t, base, map[string]any{"name": "app", "appId": "main"})

			status, raw := blChat(t, base, key, true)
			var c blCompletion
			if status != 200 || json.Unmarshal(raw, &c) != nil || c.Object != "chat.completion" {
				t.Fatalf("chat: %d %s", status, raw)
			}
			// the record is there as soon as the answer is
			u := blUsage(t, base, "?keyId="+keyID)
			if u.Total != 1 {
				t.Fatalf("after one chat the key has %d usage records", u.Total)
			}
			r := u.List[0]
			if r.Source != billing.SourceChat || r.Module != "AI Chat" || r.Model != chat.ExtractiveModelName ||
				r.AppID != "main" || r.TeamID != "default" || r.KeyID != keyID || r.ID == "" || time.Since(r.Time) > time.Minute {
				t.Fatalf("usage record %+v", r)
			}
			if r.InputTokens != c.Usage.PromptTokens || r.OutputTokens != c.Usage.CompletionTokens || r.InputTokens == 0 {
				t.Fatalf("record tokens %d+%d; the answer's usage %+v", r.InputTokens, r.OutputTokens, c.Usage)
			}
			want := (float64(r.InputTokens)*tc.in + float64(r.OutputTokens)*tc.out) / 1000
			if r.Points <= 0 || !blNear(r.Points, want) {
				t.Fatalf("points %v; want %v", r.Points, want)
			}
			var ai int
			for ai = range c.ResponseData {
				if c.ResponseData[ai].ModuleName == "AI Chat" {
					break
				}
			}
			m := c.ResponseData[ai]
			if m.ModuleName != "AI Chat" || m.Tokens != r.InputTokens+r.OutputTokens || math.Abs(m.Price-r.Points*billing.PriceScale) > 1e-3 {
				t.Fatalf("responseData %+v; want price %v (points %v x 100000)", c.ResponseData, r.Points*billing.PriceScale, r.Points)
			}
			t.Logf("one chat: %d+%d tokens, %v points, responseData price %v", r.InputTokens, r.OutputTokens, r.Points, m.Price)

			// a stream writes its record before [DONE] too, and so does detail=false
			status, raw = blDo(t, "POST", base+"/api/v1/chat/completions", key,
				fmt.Sprintf(`{"stream":true,"messages":[{"role":"user","content":%q}]}`, blQuestion))
			if status != 200 || !bytes.Contains(raw, []byte("data: [DONE]")) {
				t.Fatalf("stream: %d %s", status, raw)
			}
			if status, raw = blChat(t, base, key, false); status != 200 || bytes.Contains(raw, []byte("responseData")) {
				t.Fatalf("detail=false: %d %s", status, raw)
			}
			u = blUsage(t, base, "?keyId="+keyID)
			if u.Total != 3 {
				t.Fatalf("after three chats the key has %d usage records", u.Total)
			}
			sum := 0.0
			for _, r := range u.List {
				sum += r.Points
			}
			// the summary by key, and the key's counter, agree with the records
			s := blSummary(t, base, "")
			if s.Total.Records != 3 || len(s.ByKey) != 1 || s.ByKey[0].KeyID != keyID || s.ByKey[0].Records != 3 ||
				!blNear(s.ByKey[0].Points, sum) || len(s.ByDay) != 1 {
				t.Fatalf("summary %+v; want 3 records, %v points, on key %s", s, sum, keyID)
			}
			if used := blKeyUsage(t, base, keyID); !blNear(used, sum) {
				t.Fatalf("key usagePoints %v; ledger %v", used, sum)
			}
			if s := blSummary(t, base, "?appId=main"); s.Total.Records != 3 {
				t.Fatalf("summary by app: %+v", s.Total)
			}
		})
	}
}

// A training bill aggregates the embedding of the data pushed under it.
func TestBillingTrainingBill(t *testing.T) {
	base := blStart(t, t.TempDir(), nil)
	keyID, key := blKey(t, base, map[string]any{"name": "importer"}) // dataset:write, billing:read
	var ds, coll string
	blCall(t, "POST", base+"/api/core/dataset/create", key, `{"name":"kb"}`, &ds)
	blCall(t, "POST", base+"/api/core/dataset/collection/create", key, fmt.Sprintf(`{"datasetId":%q,"name":"faq"}`, ds), &coll)

	// FastGPT's curl sends --data-raw '': an empty body
	var bill string
	status, raw := blDo(t, "POST", base+"/api/common/bill/createTrainingBill", key, "")
	var env blEnvelope
	if status != 200 || json.Unmarshal(raw, &env) != nil || json.Unmarshal(env.Data, &bill) != nil || bill == "" {
		t.Fatalf("createTrainingBill with an empty body: %d %s", status, raw)
	}

	var tokens cl100k.Counter
	want := 0
	var items []map[string]string
	for i := range 40 {
		q := fmt.Sprintf("What is the refund window for order class %d? It depends on the %d-th rule.", i, i*7)
		items = append(items, map[string]string{"q": q, "a": fmt.Sprintf("%d days", i+3)})
		want += tokens.Count(q) // index mode embeds q
	}
	push := func(items []map[string]string) {
		body, _ := json.Marshal(map[string]any{"collectionId": coll, "trainingType": "chunk", "billId": bill, "data": items})
		var res struct {
			InsertLen int `json:"insertLen"`
		}
		blCall(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body), &res)
		if res.InsertLen != len(items) {
			t.Fatalf("pushData inserted %d of %d", res.InsertLen, len(items))
		}
	}
	push(items[:25]) // a bill can be used again
	push(items[25:])

	// an unknown bill, or another team's, is refused before anything is queued
	_, other := blKey(t, base, map[string]any{"name": "b", "teamId": "team-b"})
	var billB string
	blCall(t, "POST", base+"/api/common/bill/createTrainingBill", other, `{"name":"b"}`, &billB)
	for _, id := range []string{"no-such-bill", billB} {
		body, _ := json.Marshal(map[string]any{"collectionId": coll, "billId": id, "data": []map[string]string{{"q": "x"}}})
		if env := blCallAny(t, "POST", base+"/api/core/dataset/data/pushData", key, string(body)); env.Code != 404 {
			t.Fatalf("pushData with bill %s: %+v", id, env)
		}
	}
	if env := blCallAny(t, "GET", base+"/api/common/bill/detail?id="+bill, other, ""); env.Code != 404 {
		t.Fatalf("team b reads team default's bill: %+v", env)
	}

	// training is asynchronous: the bill fills as items are trained
	var d struct {
		ID          string  `json:"id"`
		Name        string  `json:"name"`
		TotalTokens int     `json:"totalTokens"`
		TotalPoints float64 `json:"totalPoints"`
		Items       []struct {
			Module string  `json:"module"`
			Model  string  `json:"model"`
			Tokens int     `json:"tokens"`
			Points float64 `json:"points"`
		} `json:"items"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &d)
		if d.TotalTokens >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // nothing more arrives
	blCall(t, "GET", base+"/api/common/bill/detail?id="+bill, key, "", &d)
	if d.ID != bill || d.Name != "training" || d.TotalTokens != want || !blNear(d.TotalPoints, float64(want)/1000) || len(d.Items) != 1 {
		t.Fatalf("bill detail %+v; want %d embedding tokens, %v points", d, want, float64(want)/1000)
	}
	if it := d.Items[0]; it.Module != "embedding" || it.Model != "local" || it.Tokens != want || !blNear(it.Points, d.TotalPoints) {
		t.Fatalf("bill item %+v", it)
	}
	// the usage behind it: training records of the key, with the bill's id
	u := blUsage(t, base, "?keyId="+keyID)
	tok := 0
	for _, r := range u.List {
		if r.Source != billing.SourceTraining || r.BillID != bill || r.DatasetID != ds || r.Module != "embedding" {
			t.Fatalf("usage record %+v", r)
		}
		tok += r.InputTokens
	}
	if u.Total == 0 || tok != want {
		t.Fatalf("%d training records with %d tokens; want %d", u.Total, tok, want)
	}
	s := blSummary(t, base, "")
	if len(s.ByKey) != 1 || s.ByKey[0].KeyID != keyID || s.ByKey[0].InputTokens != want {
		t.Fatalf("summary by key %+v", s.ByKey)
	}
	if used := blKeyUsage(t, base, keyID); !blNear(used, d.TotalPoints) {
		t.Fatalf("key usagePoints %v; bill %v", used, d.TotalPoints)
	}
}

// A key's quota is checked before a chat and charged after it: the chat
// that starts within the quota finishes, the next is refused.
func TestBillingKeyQuotaSequential(t *testing.T) {
	base := blStart(t, t.TempDir(), nil)
	p := blChatPoints(t, base)
	quota := 2.5 * p
	keyID, key := blKey(t, base, map[string]any{"name": "small", "appId": "main", "limit": map[string]any{"maxUsagePoints": quota}})
	for i := range 3 { // used 0, p, 2p: all under 2.5p
		if status, raw := blChat(t, base, key, false); status != 200 {
			t.Fatalf("chat %d within quota: %d %s", i+1, status, raw)
		}
	}
	status, raw := blChat(t, base, key, false)
	blQuotaError(t, status, raw)
	// the refused chat wrote nothing, and the third was charged in full
	u := blUsage(t, base, "?keyId="+keyID)
	if u.Total != 3 || !blNear(blKeyUsage(t, base, keyID), 3*p) {
		t.Fatalf("%d records, %v points; want 3, %v", u.Total, blKeyUsage(t, base, keyID), 3*p)
	}
}

// blChatPoints returns the points one chat of blQuestion costs, measured
// with a key of its own.
func blChatPoints(t *testing.T, base string) float64 {
	t.Helper()
	probeID, probe := blKey(t, base, map[string]any{"name": "probe", "appId": "main"})
	if status, raw := blChat(t, base, probe, false); status != 200 {
		t.Fatalf("probe chat: %d %s", status, raw)
	}
	u := blUsage(t, base, "?keyId="+probeID)
	if u.Total != 1 || u.List[0].Points <= 0 {
		t.Fatalf("probe usage %+v", u)
	}
	return u.List[0].Points
}

// 50 chats at once against a quota of about five: the requests admitted
// before the quota was reached all finish and are charged, so the key
// overspends, but by no more than the chats in flight.
func TestBillingKeyQuotaConcurrent(t *testing.T) {
	base := blStart(t, t.TempDir(), nil)
	p := blChatPoints(t, base)
	quota := 5.5 * p
	keyID, key := blKey(t, base, map[string]any{"name": "small", "appId": "main", "limit": map[string]any{"maxUsagePoints": quota}})

	const n = 50
	type result struct {
		status     int
		raw        []byte
		start, end time.Time
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-ready
			r := &results[i]
			r.start = time.Now()
			r.status, r.raw = blChat(t, base, key, false)
			r.end = time.Now()
		})
	}
	close(ready)
	wg.Wait()

	var ok []result
	refused := 0
	for _, r := range results {
		switch r.status {
		case 200:
			ok = append(ok, r)
		case 429:
			blQuotaError(t, r.status, r.raw)
			refused++
		default:
			t.Fatalf("chat: %d %s", r.status, r.raw)
		}
	}
	// inFlight is the most successful chats running at one instant: every
	// chat admitted before the quota was reached and charged after it is
	// one of them.
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, r := range ok {
		edges = append(edges, edge{r.start, 1}, edge{r.end, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.d - b.d // an end before a start at the same instant
	})
	inFlight, cur := 0, 0
	for _, e := range edges {
		cur += e.d
		inFlight = max(inFlight, cur)
	}

	var lat []time.Duration
	for _, r := range results {
		lat = append(lat, r.end.Sub(r.start))
	}
	slices.Sort(lat)
	t.Logf("chat latency: min %v, median %v, max %v", lat[0], lat[n/2], lat[n-1])

	u := blUsage(t, base, "?keyId="+keyID)
	spent, maxPoints := 0.0, 0.0
	for _, r := range u.List {
		spent += r.Points
		maxPoints = max(maxPoints, r.Points)
	}
	overspend := spent - quota
	t.Logf("50 concurrent chats, quota %.6f points (%.1f chats of %.6f): %d answered 200, %d refused 429 insufficient_quota; "+
		"spent %.6f, overspend %.6f points = %.2f chats; at most %d successful chats were in flight at once",
		quota, quota/p, p, len(ok), refused, spent, overspend, overspend/p, inFlight)

	// each answered chat is charged once, and the refused ones not at all
	if u.Total != len(ok) || len(ok)+refused != n {
		t.Fatalf("%d usage records for %d answered chats", u.Total, len(ok))
	}
	if used := blKeyUsage(t, base, keyID); !blNear(used, spent) {
		t.Fatalf("key usagePoints %v; ledger %v", used, spent)
	}
	// no chat is refused before the quota is reached
	if float64(len(ok)) < math.Ceil(quota/p-1e-9) {
		t.Fatalf("only %d chats answered; the quota allows %v", len(ok), math.Ceil(quota/p))
	}
	// the overspend is bounded by the chats in flight
	if overspend > maxPoints*float64(inFlight)+1e-9 {
		t.Fatalf("overspent %v points; at most %d chats of %v points were in flight", overspend, inFlight, maxPoints)
	}
	// and when they are done, the quota holds
	status, raw := blChat(t, base, key, false)
	blQuotaError(t, status, raw)
	if blUsage(t, base, "?keyId="+keyID).Total != len(ok) {
		t.Fatal("the refused chat wrote usage")
	}
}

// An app's budget (maxUsagePoints) counts every key's chats with it; once
// spent, chats with the app are refused in OpenAI's shape.
func TestBillingAppBudget(t *testing.T) {
	dir := t.TempDir()
	var p float64
	{
		// one chat's points with the app's settings, on a server of its own
		base := blStart(t, t.TempDir(), func(c *server.Config) {
			c.Apps = []server.AppConfig{{ID: "budget", Model: chat.ExtractiveModelName}}
		})
		id, k := blKey(t, base, map[string]any{"name": "probe", "appId": "budget"})
		if status, raw := blChat(t, base, k, false); status != 200 {
			t.Fatalf("probe: %d %s", status, raw)
		}
		p = blUsage(t, base, "?keyId="+id).List[0].Points
	}
	budget := 1.5 * p
	base := blStart(t, dir, func(c *server.Config) {
		c.Apps = []server.AppConfig{{ID: "budget", Model: chat.ExtractiveModelName, MaxUsagePoints: budget}}
	})
	_, k1 := blKey(t, base, map[string]any{"name": "one", "appId": "budget"})
	_, k2 := blKey(t, base, map[string]any{"name": "two", "appId": "budget"})
	_, other := blKey(t, base, map[string]any{"name": "main", "appId": "main"})
	if status, raw := blChat(t, base, k1, false); status != 200 { // spent 0
		t.Fatalf("first chat: %d %s", status, raw)
	}
	if status, raw := blChat(t, base, k2, false); status != 200 { // spent p < 1.5p, by another key
		t.Fatalf("second chat: %d %s", status, raw)
	}
	for _, k := range []string{k1, k2} { // spent 2p
		status, raw := blChat(t, base, k, false)
		blQuotaError(t, status, raw)
		var e blOpenAIError
		_ = json.Unmarshal(raw, &e)
		if !strings.Contains(e.Error.Message, "app") {
			t.Fatalf("the error does not say the app's budget is spent: %s", raw)
		}
		// a stream is refused before it starts
		status, raw = blDo(t, "POST", base+"/api/v1/chat/completions", k,
			fmt.Sprintf(`{"stream":true,"messages":[{"role":"user","content":%q}]}`, blQuestion))
		blQuotaError(t, status, raw)
	}
	s := blSummary(t, base, "?appId=budget")
	if s.Total.Records != 2 || !blNear(s.Total.Points, 2*p) {
		t.Fatalf("app spend %+v; want 2 chats, %v points", s.Total, 2*p)
	}
	// other apps are not held by it
	if status, raw := blChat(t, base, other, false); status != 200 {
		t.Fatalf("another app: %d %s", status, raw)
	}
}
