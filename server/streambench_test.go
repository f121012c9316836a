package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/server"
)

// instantModel emits n one-word tokens with no delay.
func instantModel(n int) chat.ModelFunc {
	return func(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
		for i := 0; i < n; i++ {
			if err := onToken("tok "); err != nil {
				return chat.ModelResult{}, err
			}
		}
		return chat.ModelResult{Text: strings.Repeat("tok ", n), FinishReason: "stop",
			Usage: chat.Usage{PromptTokens: 5, CompletionTokens: n, TotalTokens: 5 + n}}, nil
	}
}

func benchEngine(b *testing.B, m chat.Model) *chat.Engine {
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register("bench", m)
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models})
	if err := e.SaveApp(context.Background(), &chat.App{ID: "bench", Name: "bench", TeamID: auth.DefaultTeam, Model: "bench"}); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkEngineTokens measures what the engine adds per streamed token,
// with a model that emits 1,000 tokens at once: into a no-op sink, and
// through the SSE handler (JSON chunk, write, flush) into a recorder.
func BenchmarkEngineTokens(b *testing.B) {
	const n = 1000
	e := benchEngine(b, instantModel(n))
	req := chat.Request{TeamID: auth.DefaultTeam, AppID: "bench",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "go"}}}
	b.Run("sink", func(b *testing.B) {
		b.ReportAllocs()
		sink := chat.SinkFunc(func(chat.Event) error { return nil })
		for b.Loop() {
			if _, err := e.Run(context.Background(), req, sink); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	})
	b.Run("sse", func(b *testing.B) {
		b.ReportAllocs()
		h := chat.NewHandler(e, chat.HandlerOptions{})
		p := &auth.Principal{TeamID: auth.DefaultTeam, AppID: "bench", Scopes: auth.Scopes{auth.ScopeChat}}
		body := `{"stream":true,"messages":[{"role":"user","content":"go"}]}`
		for b.Loop() {
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
			r = r.WithContext(auth.NewContext(r.Context(), p))
			w := httptest.NewRecorder()
			h.Completions(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	})
}

// slowUpstream is an OpenAI-compatible upstream that streams words tokens
// with a pause between them, and answers its first byte at once.
func slowUpstream(tb testing.TB, words int, pause time.Duration) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 0; i < words; i++ {
			fmt.Fprintf(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"},\"finish_reason\":null}]}\n\n", i)
			fl.Flush()
			if pause > 0 {
				time.Sleep(pause)
			}
		}
		fmt.Fprint(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	srv.Config.MaxHeaderBytes = 1 << 16
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv
}

func proxiedServer(b *testing.B, upstream string) (string, string) {
	base, _ := sdkServerTB(b, func(c *server.Config) {
		c.Models = []server.ModelConfig{{Name: "up", Provider: "openai", BaseURL: upstream + "/v1", APIKey: "k"}}
		c.Apps = []server.AppConfig{{ID: "proxied", Name: "proxied", Model: "up"}}
	})
	return base, sdkKeyTB(b, base, map[string]any{"name": "bench", "appId": "proxied"})
}

func streamChat(client *http.Client, url, key string) (ttfb time.Duration, err error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"stream":true,"model":"m","messages":[{"role":"user","content":"go"}]}`))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadByte(); err != nil {
		return 0, err
	}
	ttfb = time.Since(start)
	rest, err := io.ReadAll(br)
	if err != nil {
		return ttfb, err
	}
	if resp.StatusCode != 200 || !strings.Contains(string(rest), "[DONE]") {
		return ttfb, fmt.Errorf("status %d: %.200s", resp.StatusCode, rest)
	}
	return ttfb, nil
}

// BenchmarkConcurrentStreams runs 1,000 streaming chats at once through
// the reference server, each relayed from an upstream that streams 50
// tokens 2 ms apart, and reports the heap the streams held at their peak.
func BenchmarkConcurrentStreams(b *testing.B) {
	const streams = 1000
	up := slowUpstream(b, 50, 2*time.Millisecond)
	base, key := proxiedServer(b, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	var peakPerStream float64
	for b.Loop() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		baseline := ms.HeapInuse
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}
		}()
		var wg sync.WaitGroup
		var failed atomic.Int64
		var firstErr atomic.Value
		for range streams {
			wg.Go(func() {
				if _, err := streamChat(client, base+"/v1/chat/completions", key); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			})
		}
		wg.Wait()
		close(stop)
		<-sampled
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of %d streams failed; first: %v", n, streams, firstErr.Load())
		}
		if p := peak.Load(); p > baseline {
			peakPerStream = float64(p-baseline) / streams
		}
	}
	b.ReportMetric(peakPerStream/1024, "KiB-heap/stream")
	b.ReportMetric(streams, "streams")
}

// BenchmarkTTFB compares the time to the first byte of a streaming chat
// straight from an upstream and through chatgate in front of it.
func BenchmarkTTFB(b *testing.B) {
	up := slowUpstream(b, 20, 0)
	base, key := proxiedServer(b, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var direct, via time.Duration
	n := 0
	for b.Loop() {
		d, err := streamChat(client, up.URL+"/v1/chat/completions", "")
		if err != nil {
			b.Fatal(err)
		}
		v, err := streamChat(client, base+"/v1/chat/completions", key)
		if err != nil {
			b.Fatal(err)
		}
		direct += d
		via += v
		n++
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(n), "µs-direct")
	b.ReportMetric(float64(via.Microseconds())/float64(n), "µs-via-chatgate")
	b.ReportMetric(float64(via)/float64(direct), "ratio")
}
