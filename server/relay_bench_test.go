package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/server"
)

// relayUpstream is the fake OpenAI upstream of BenchmarkRelayOverhead: it
// answers a non-stream request with one JSON body and a stream with
// tokens chunks (each event flushed, as a model's are), a finish chunk, a usage
// chunk when asked and [DONE]. Its bodies are built once so that its own
// cost is the same small floor under the direct client and under chatgate.
// conns counts the connections it accepted.
type relayUpstream struct {
	*httptest.Server
	conns atomic.Int64
}

func newRelayUpstream(b *testing.B, tokens int) *relayUpstream {
	u := &relayUpstream{}
	whole := []byte(fmt.Sprintf(`{"id":"up-1","object":"chat.completion","created":1,"model":"gpt-up","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}`,
		strings.Repeat("tok ", tokens), tokens, 9+tokens))
	chunk := []byte(`data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}` + "\n\n")
	finish := []byte(`data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	usage := []byte(fmt.Sprintf(`data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n", tokens, 9+tokens))
	done := []byte("data: [DONE]\n\n")
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(whole)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for range tokens {
			_, _ = w.Write(chunk)
			fl.Flush()
		}
		_, _ = w.Write(finish)
		fl.Flush()
		if bytes.Contains(body, []byte(`"include_usage":true`)) {
			_, _ = w.Write(usage)
			fl.Flush()
		}
		_, _ = w.Write(done)
		fl.Flush() // as real upstreams do: the body's end comes after [DONE]
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	b.Cleanup(u.Close)
	return u
}

// newBareRelay is the thinnest relay Go offers, the floor under any relay's
// cost: net/http/httputil's ReverseProxy on loopback, forwarding every
// request to the upstream with the upstream's key, no auth, no parsing, no
// record (it flushes event streams at once, as chatgate does).
func newBareRelay(b *testing.B, upstream, key string) *httptest.Server {
	target, err := url.Parse(upstream)
	if err != nil {
		b.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = "/v1/chat/completions"
			r.Out.Header.Set("Authorization", "Bearer "+key)
		},
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256},
	}
	// The body is read whole before it is forwarded, as chatgate reads
	// it: an HTTP/1 server may not be read from once its handler has
	// begun to answer (golang/go#40747), which streaming it through
	// risks, and a request body this size costs the same either way.
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(s.Close)
	return s
}

// relayTarget is where a phase of the benchmark sends its requests.
type relayTarget struct {
	url, key string
	client   *http.Client
}

// do sends one chat and reads its answer to the end; it returns the time
// to the first byte of the body, to the end of the last line that holds
// answer text (a stream's last token: chatgate writes the usage record
// after it, before the finish chunk) and to the body's end.
func (t relayTarget) do(body []byte) (ttfb, last, total time.Duration, err error) {
	req, _ := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.key)
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.Peek(1); err != nil {
		return 0, 0, 0, err
	}
	ttfb = time.Since(start)
	var n int
	for {
		line, rerr := br.ReadSlice('\n')
		n += len(line)
		if bytes.Contains(line, []byte(`"content":"`)) {
			last = time.Since(start)
		}
		if rerr == bufio.ErrBufferFull {
			continue
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, 0, rerr
		}
	}
	total = time.Since(start)
	if resp.StatusCode != http.StatusOK || n < 16 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return ttfb, last, total, err
}

// relayPhase is what one side (direct or chatgate) measured over a run.
type relayPhase struct {
	reqs              int
	wall, cpu         time.Duration
	ttfb, last, total []time.Duration
	conns             int64
}

// run sends conc*per requests from conc workers and adds what it measured.
func (p *relayPhase) run(b *testing.B, t relayTarget, body []byte, conc, per int, u *relayUpstream) {
	conns := u.conns.Load()
	cpu := processCPU()
	start := time.Now()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		bad atomic.Value
	)
	for range conc {
		wg.Go(func() {
			ttfbs, lasts, totals := make([]time.Duration, 0, per), make([]time.Duration, 0, per), make([]time.Duration, 0, per)
			for range per {
				ttfb, last, total, err := t.do(body)
				if err != nil {
					bad.CompareAndSwap(nil, err)
					return
				}
				ttfbs, lasts, totals = append(ttfbs, ttfb), append(lasts, last), append(totals, total)
			}
			mu.Lock()
			p.ttfb, p.last, p.total = append(p.ttfb, ttfbs...), append(p.last, lasts...), append(p.total, totals...)
			mu.Unlock()
		})
	}
	wg.Wait()
	p.wall += time.Since(start)
	p.cpu += processCPU() - cpu
	p.conns += u.conns.Load() - conns
	p.reqs += conc * per
	if err := bad.Load(); err != nil {
		b.Fatal(err)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkRelayOverhead measures what chatgate adds to a chat against an
// OpenAI-compatible upstream. The reference server (server.New, bbolt in a
// temporary directory, the upstream declared in Config.Models, so through
// chat/llm's OpenAI client) and a direct HTTP client talk to the same
// in-process fake upstream on loopback; each iteration runs a round
// straight to the upstream and then the same round through chatgate, so
// both sides see the same machine state. Per request it reports req/s,
// process CPU (getrusage, which counts the client and the upstream on both
// sides, so that the difference is chatgate's own cost), p50 latency (and,
// for streams, p50 time to the first byte, the time per token after it,
// and the time per token up to the last one, which leaves out the usage
// record's durable write that chatgate makes between the last token and
// the finish chunk), and the upstream connections each side opened per
// 1,000 requests.
// "added" figures are chatgate's minus the direct client's. A third side,
// the bare relay (newBareRelay: httputil.ReverseProxy), is the floor any
// relay pays for its second HTTP hop: "floor-added" is its cost over the
// direct client's, "over-floor" chatgate's over the bare relay's. The data
// directory is a temporary one unless CHATGATE_BENCH_DATA names another
// (a tmpfs, to leave the disk's fdatasync out of the latency). It runs on
// the embedded deployment, then on Postgres (a schema of
// CHATGATE_TEST_POSTGRES's database; skipped without it).
// CHATGATE_BENCH_RELAY_SIDE runs one side alone instead (benchRelaySide).
func BenchmarkRelayOverhead(b *testing.B) {
	b.Run("embedded", func(b *testing.B) { benchRelay(b, "") })
	// The scale-out deployment: the same relay with records and the usage
	// ledger on Postgres.
	b.Run("postgres", func(b *testing.B) { benchRelay(b, pgtest.DSN(b)) })
}

func benchRelay(b *testing.B, dsn string) {
	const tokens = 64
	u := newRelayUpstream(b, tokens)
	base, _ := sdkServerTB(b, func(c *server.Config) {
		if dir := os.Getenv("CHATGATE_BENCH_DATA"); dir != "" {
			d, err := os.MkdirTemp(dir, "relaybench")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(d) })
			c.Server.Data = d
		}
		c.Storage.DSN = dsn
		c.Models = []server.ModelConfig{{Name: "relay", Provider: "openai", BaseURL: u.URL + "/v1", APIKey: "upstream-key", Model: "gpt-up"}}
		c.Apps = []server.AppConfig{{ID: "relay", Name: "relay", Model: "relay"}}
	})
	key := sdkKeyTB(b, base, map[string]any{"name": "bench", "appId": "relay"})
	bareRelay := newBareRelay(b, u.URL, "upstream-key")
	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	}
	for _, mode := range []struct {
		name   string
		stream bool
	}{{"nonstream", false}, {"stream64", true}} {
		msg := map[string]any{"model": "gpt-up", "messages": []map[string]string{{"role": "user", "content": "say tok"}}}
		if mode.stream {
			msg["stream"] = true
			msg["stream_options"] = map[string]bool{"include_usage": true}
		}
		body, _ := json.Marshal(msg)
		for _, conc := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/c=%d", mode.name, conc), func(b *testing.B) {
				direct := relayTarget{url: u.URL + "/v1/chat/completions", key: "upstream-key", client: client()}
				bare := relayTarget{url: bareRelay.URL + "/v1/chat/completions", key: "none", client: client()}
				gate := relayTarget{url: base + "/v1/chat/completions", key: key, client: client()}
				defer direct.client.CloseIdleConnections()
				defer bare.client.CloseIdleConnections()
				defer gate.client.CloseIdleConnections()
				per := max(32/conc, 4)
				// warm both sides' connections up, outside the counts
				var warm relayPhase
				warm.run(b, direct, body, conc, 1, u)
				warm.run(b, bare, body, conc, 1, u)
				warm.run(b, gate, body, conc, 1, u)
				var d, f, g relayPhase
				if side := os.Getenv("CHATGATE_BENCH_RELAY_SIDE"); side != "" {
					benchRelaySide(b, side, map[string]relayTarget{"direct": direct, "bare": bare, "gate": gate}, body, conc, per, u)
					return
				}
				for b.Loop() {
					d.run(b, direct, body, conc, per, u)
					f.run(b, bare, body, conc, per, u)
					g.run(b, gate, body, conc, per, u)
				}
				rate := func(p relayPhase) float64 { return float64(p.reqs) / p.wall.Seconds() }
				cpu := func(p relayPhase) time.Duration { return p.cpu / time.Duration(p.reqs) }
				b.ReportMetric(rate(d), "direct-req/s")
				b.ReportMetric(rate(g), "gate-req/s")
				b.ReportMetric(us(cpu(d)), "direct-cpu-us/req")
				b.ReportMetric(us(cpu(g)-cpu(d)), "added-cpu-us/req")
				b.ReportMetric(us(p50(g.total)-p50(d.total)), "added-p50-us")
				b.ReportMetric(us(cpu(f)-cpu(d)), "floor-added-cpu-us/req")
				b.ReportMetric(us(p50(f.total)-p50(d.total)), "floor-added-p50-us")
				b.ReportMetric(us(cpu(g)-cpu(f)), "over-floor-cpu-us/req")
				b.ReportMetric(float64(d.conns)*1000/float64(d.reqs), "direct-conns/1k")
				b.ReportMetric(float64(g.conns)*1000/float64(g.reqs), "gate-conns/1k")
				if mode.stream {
					b.ReportMetric(us(p50(g.ttfb)-p50(d.ttfb)), "added-ttfb-p50-us")
					after := func(p relayPhase) time.Duration { return p50(p.total) - p50(p.ttfb) }
					b.ReportMetric(us(after(g)-after(d))/tokens, "added-us/token")
					// the same to the last token: the tokens' relay without
					// the usage record's durable write after the last one
					toLast := func(p relayPhase) time.Duration { return p50(p.last) - p50(p.ttfb) }
					b.ReportMetric(us(toLast(g)-toLast(d))/(tokens-1), "added-us/token-to-last")
				}
			})
		}
	}
}

// benchRelaySide runs one side of BenchmarkRelayOverhead alone (the
// process then holds that side's work only) and reports its CPU per
// request: set CHATGATE_BENCH_RELAY_SIDE to direct, bare or gate, one run
// per side, to see what the sides cost without sharing a heap, a
// scheduler and the background work of the others, which the alternating
// rounds of one run attribute to whichever round is running.
func benchRelaySide(b *testing.B, side string, targets map[string]relayTarget, body []byte, conc, per int, u *relayUpstream) {
	t, ok := targets[side]
	if !ok {
		b.Fatalf("CHATGATE_BENCH_RELAY_SIDE=%q: want direct, bare or gate", side)
	}
	var p relayPhase
	for b.Loop() {
		p.run(b, t, body, conc, per, u)
	}
	b.ReportMetric(us(p.cpu/time.Duration(p.reqs)), side+"-cpu-us/req")
	b.ReportMetric(us(p50(p.total)), side+"-p50-us")
}
