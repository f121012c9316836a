package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/server"
)

// cbTokens is a model that emits n tokens at once.
func cbTokens(n int) chat.ModelFunc {
	return func(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
		for i := 0; i < n; i++ {
			if err := onToken("token "); err != nil {
				return chat.ModelResult{}, err
			}
		}
		return chat.ModelResult{FinishReason: "stop", Usage: chat.Usage{PromptTokens: 3, CompletionTokens: n}}, nil
	}
}

// BenchmarkChatEngineTokens is the engine's cost per streamed token: a
// model emitting 1,000 tokens instantly into a no-op sink; then the same run
// through the SSE handler served on loopback by httptest, read to [DONE]
// by an HTTP client (chunk encoding, write, flush, TCP and the read).
func BenchmarkChatEngineTokens(b *testing.B) {
	const n = 1000
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register("instant", cbTokens(n))
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "bench", Name: "bench", TeamID: auth.DefaultTeam, Model: "instant"}); err != nil {
		b.Fatal(err)
	}
	req := chat.Request{TeamID: auth.DefaultTeam, AppID: "bench", Messages: []chat.Message{{Role: chat.RoleUser, Content: "go"}}}

	b.Run("sink", func(b *testing.B) {
		var deltas int
		sink := chat.SinkFunc(func(ev chat.Event) error {
			if ev.Kind == chat.EventDelta {
				deltas++
			}
			return nil
		})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Run(ctx, req, sink); err != nil {
				b.Fatal(err)
			}
		}
		if deltas != b.N*n {
			b.Fatalf("%d deltas for %d runs", deltas, b.N)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	})

	b.Run("sse-http", func(b *testing.B) {
		h := chat.NewHandler(e, chat.HandlerOptions{})
		p := &auth.Principal{TeamID: auth.DefaultTeam, AppID: "bench", Scopes: auth.Scopes{auth.ScopeChat}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.Completions(w, r.WithContext(auth.NewContext(r.Context(), p)))
		}))
		defer srv.Close()
		client := srv.Client()
		body := []byte(`{"stream":true,"messages":[{"role":"user","content":"go"}]}`)
		tail := []byte("data: [DONE]\n\n")
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			_, err = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.HasSuffix(buf.Bytes(), tail) {
				b.Fatalf("status %d, %v: %.200s", resp.StatusCode, err, buf.Bytes())
			}
		}
		if c := bytes.Count(buf.Bytes(), []byte(`"content":"token "`)); c != n {
			b.Fatalf("last stream carried %d tokens", c)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	})
}

// cbUpstream is an OpenAI-compatible upstream streaming tokens chunks,
// pause apart. With hold set, every stream sends its first chunk and then
// waits until hold streams are open at once (or the wait times out), so the
// peak really has them all in flight.
type cbUpstream struct {
	*httptest.Server
	tokens int
	pause  time.Duration

	mu       sync.Mutex
	hold     int
	arrived  int
	release  chan struct{}
	atPeak   func() // called once, when the last stream of a round arrives
	timedOut atomic.Int64
}

func newCBUpstream(tb testing.TB, tokens int, pause time.Duration) *cbUpstream {
	u := &cbUpstream{tokens: tokens, pause: pause}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	tb.Cleanup(u.Close)
	return u
}

// round arms the barrier for n streams.
func (u *cbUpstream) round(n int, atPeak func()) {
	u.mu.Lock()
	u.hold, u.arrived, u.release, u.atPeak = n, 0, make(chan struct{}), atPeak
	u.mu.Unlock()
}

func (u *cbUpstream) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	for i := 0; i < u.tokens; i++ {
		fmt.Fprintf(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d \"},\"finish_reason\":null}]}\n\n", i)
		fl.Flush()
		if i == 0 {
			u.wait()
		}
		if u.pause > 0 {
			time.Sleep(u.pause)
		}
	}
	fmt.Fprint(w, "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
}

func (u *cbUpstream) wait() {
	u.mu.Lock()
	if u.hold == 0 {
		u.mu.Unlock()
		return
	}
	u.arrived++
	release := u.release
	if u.arrived == u.hold {
		if u.atPeak != nil {
			u.atPeak()
		}
		close(release)
	}
	u.mu.Unlock()
	select {
	case <-release:
	case <-time.After(20 * time.Second):
		u.timedOut.Add(1)
	}
}

// cbProxied starts the reference server with one app whose model is the
// upstream, declared under models:, and returns its base URL and app key.
func cbProxied(tb testing.TB, upstream string) (string, string) {
	base, s := ccServe(tb, func(c *server.Config) {
		c.Models = []server.ModelConfig{{Name: "up", Provider: "openai", BaseURL: upstream + "/v1", APIKey: "upstream-secret"}}
		c.Apps = []server.AppConfig{{ID: "proxied", Name: "proxied", Model: "up"}}
	})
	_, key := ccKey(tb, s, auth.KeySpec{Name: "bench", AppID: "proxied"})
	return base, key
}

// cbStream posts a streaming chat and reads it to the end. It returns the
// time to the first byte of the body and to the first content chunk.
func cbStream(client *http.Client, url, key string) (firstByte, firstToken time.Duration, err error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}`))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.Peek(1); err != nil {
		return 0, 0, err
	}
	firstByte = time.Since(start)
	sawDone := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if firstToken == 0 && bytes.Contains(line, []byte(`"content":"`)) {
				firstToken = time.Since(start)
			}
			sawDone = sawDone || bytes.HasPrefix(line, []byte("data: [DONE]"))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return firstByte, firstToken, err
		}
	}
	if resp.StatusCode != 200 || !sawDone || firstToken == 0 {
		return firstByte, firstToken, fmt.Errorf("status %d, [DONE] %v, content %v", resp.StatusCode, sawDone, firstToken > 0)
	}
	return firstByte, firstToken, nil
}

func cbHeapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// cbRound runs streams concurrent streaming chats against url and returns
// the heap in use, above the baseline taken before, at the moment all of
// them were open, and the highest sample taken every 5 ms.
func cbRound(b *testing.B, up *cbUpstream, client *http.Client, url, key string, streams int) (atPeak, sampled uint64) {
	runtime.GC()
	baseline := cbHeapInuse()
	var peakAll atomic.Uint64
	up.round(streams, func() { peakAll.Store(cbHeapInuse()) })
	var high atomic.Uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if h := cbHeapInuse(); h > high.Load() {
					high.Store(h)
				}
			}
		}
	}()
	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr atomic.Value
	)
	for range streams {
		wg.Go(func() {
			if _, _, err := cbStream(client, url, key); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	wg.Wait()
	close(stop)
	<-stopped
	up.round(0, nil)
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d streams failed; first: %v", n, streams, firstErr.Load())
	}
	if n := up.timedOut.Load(); n > 0 {
		b.Fatalf("%d streams waited in vain for all %d to be open", n, streams)
	}
	sub := func(v uint64) uint64 {
		if v > baseline {
			return v - baseline
		}
		return 0
	}
	return sub(peakAll.Load()), sub(max(high.Load(), peakAll.Load()))
}

// BenchmarkChatConcurrentStreams holds 1,000 streaming chats open at once
// through the reference server on loopback, each relayed from an upstream
// model that streams 50 tokens 2 ms apart, and reports the heap per stream
// with all of them open: in total (server, upstream and clients share the
// process), for the same 1,000 streams straight to the upstream, and the
// difference, which is what chatgate adds.
func BenchmarkChatConcurrentStreams(b *testing.B) {
	const streams = 1000
	up := newCBUpstream(b, 50, 2*time.Millisecond)
	base, key := cbProxied(b, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConns: 2 * streams, MaxIdleConnsPerHost: 2 * streams}}
	defer client.CloseIdleConnections()
	var viaPeak, viaHigh, directPeak uint64
	for b.Loop() {
		p, h := cbRound(b, up, client, base+"/v1/chat/completions", key, streams)
		viaPeak, viaHigh = max(viaPeak, p), max(viaHigh, h)
		p, _ = cbRound(b, up, client, up.URL+"/v1/chat/completions", "", streams)
		directPeak = max(directPeak, p)
	}
	kib := func(v uint64) float64 { return float64(v) / streams / 1024 }
	b.ReportMetric(kib(viaPeak), "KiB-heap/stream")
	b.ReportMetric(kib(viaHigh), "KiB-heap-sampled/stream")
	b.ReportMetric(kib(directPeak), "KiB-heap-direct/stream")
	b.ReportMetric(kib(viaPeak)-kib(directPeak), "KiB-heap-chatgate/stream")
	b.ReportMetric(streams, "streams")
}

// BenchmarkChatTTFB compares the time to the first byte, and to the first
// content chunk, of a streaming chat straight from an OpenAI-compatible
// upstream and through chatgate in front of it (an app whose model is
// that upstream, declared under models:). Medians; the order alternates.
func BenchmarkChatTTFB(b *testing.B) {
	up := newCBUpstream(b, 20, 0)
	base, key := cbProxied(b, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var direct, via, directTok, viaTok []time.Duration
	i := 0
	for b.Loop() {
		run := func(u, k string, fb, ft *[]time.Duration) {
			b1, t1, err := cbStream(client, u, k)
			if err != nil {
				b.Fatal(err)
			}
			*fb, *ft = append(*fb, b1), append(*ft, t1)
		}
		if i%2 == 0 {
			run(up.URL+"/v1/chat/completions", "", &direct, &directTok)
			run(base+"/v1/chat/completions", key, &via, &viaTok)
		} else {
			run(base+"/v1/chat/completions", key, &via, &viaTok)
			run(up.URL+"/v1/chat/completions", "", &direct, &directTok)
		}
		i++
	}
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	b.ReportMetric(med(direct), "ns-direct")
	b.ReportMetric(med(via), "ns-via-chatgate")
	b.ReportMetric(med(via)/med(direct), "ratio")
	b.ReportMetric(med(viaTok)/med(directTok), "ratio-first-token")
}
