package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

// BenchmarkShareStartOverhead compares the same non-stream chat through an
// app key and through a share link whose auth host (on loopback) approves
// at once: the difference is what the /shareAuth/start callback adds.
func BenchmarkShareStartOverhead(b *testing.B) {
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "data": map[string]string{"uid": "u"}})
	}))
	defer host.Close()
	base, _ := sdkServerTB(b, func(c *server.Config) { c.Share.AllowHosts = []string{"127.0.0.1/32"} })
	key := sdkKeyTB(b, base, map[string]any{"name": "app", "appId": "main"})
	body, _ := json.Marshal(map[string]any{"appId": "main", "name": "bench", "limit": map[string]any{"hookUrl": host.URL}})
	req, _ := http.NewRequest("POST", base+"/api/support/outLink/create", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+sdkAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var env struct {
		Data struct{ ShareID string } `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	const q = `,"messages":[{"role":"user","content":"hello"}]}`
	send := func(auth, payload string) time.Duration {
		r, _ := http.NewRequest("POST", base+"/api/v1/chat/completions", strings.NewReader(payload))
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d: %v", resp.StatusCode, out)
		}
		return time.Since(start)
	}
	var keyed, shared []time.Duration
	for b.Loop() {
		keyed = append(keyed, send(key, `{"stream":false`+q))
		shared = append(shared, send("", `{"shareId":"`+env.Data.ShareID+`","authToken":"t"`+q))
	}
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	k, s := med(keyed), med(shared)
	b.ReportMetric(k, "p50-ms-key")
	b.ReportMetric(s, "p50-ms-share")
	b.ReportMetric(s-k, "p50-ms-start-overhead")
}
