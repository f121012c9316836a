package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/server"
)

// bdTrickle is one client that sends its headers at once and then its body
// a byte at a time, never finishing it.
type bdTrickle struct {
	path    string
	elapsed time.Duration // from the headers being sent to the server's answer or close
	status  int           // 0 when the connection closed without an answer
	body    string
	err     error
}

// bdTrickler opens a connection to addr, sends a POST to path announcing a
// body of 64 KiB, sends prefix and then a space every 50 ms. started is
// called once the headers are out; the result is reported when the server
// answers or closes, or after give-up.
func bdTrickler(addr, path, prefix string, giveUp time.Duration, started func()) bdTrickle {
	res := bdTrickle{path: path}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		res.err = err
		started()
		return res
	}
	defer conn.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: chatgate\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, 64<<10)
	if _, err := io.WriteString(conn, head+prefix); err != nil {
		res.err = err
		started()
		return res
	}
	sent := time.Now()
	started()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer close(stop)
	_ = conn.SetReadDeadline(sent.Add(giveUp))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	res.elapsed = time.Since(sent)
	if err != nil {
		// Closed (EOF, reset) without an answer still counts as cut; a
		// client-side timeout does not.
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			res.err = fmt.Errorf("not cut after %s", giveUp)
		}
		return res
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.status, res.body = resp.StatusCode, string(b)
	return res
}

// bdHealthz times n sequential GET /healthz on one keep-alive connection
// and returns the median, stopping early at until.
func bdHealthz(t *testing.T, client *http.Client, base string, n int, until time.Time) (p50 time.Duration, samples int) {
	t.Helper()
	var ds []time.Duration
	for i := 0; i < n && time.Now().Before(until); i++ {
		start := time.Now()
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ds = append(ds, time.Since(start))
		if resp.StatusCode != 200 {
			t.Fatalf("healthz %d", resp.StatusCode)
		}
	}
	if len(ds) == 0 {
		t.Fatal("no healthz sample in time")
	}
	slices.Sort(ds)
	return ds[len(ds)/2], len(ds)
}

// bdStream runs a streaming chat and returns the answer text it carried.
func bdStream(client *http.Client, url, key, body string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("stream cut: %w after %q", err, raw)
	}
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "[DONE]") {
		return "", fmt.Errorf("status %d: %.300s", resp.StatusCode, raw)
	}
	var text strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(d), &chunk) == nil {
			for _, c := range chunk.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
	}
	return text.String(), nil
}

// 200 clients trickling bodies to the two keyless routes are all cut at
// the body deadline with a 408 naming it; streaming chats that run longer
// than the deadline, keyed and through a share link, are not cut; and
// /healthz answers as fast with the tricklers connected as without.
func TestBodyReadDeadline(t *testing.T) {
	const (
		limit  = 2 * time.Second
		words  = 12
		pause  = 300 * time.Millisecond // the stream lasts 3.6 s, longer than limit
		slack  = 3 * time.Second        // generous: two shared cores, 200 connections
		chats  = 100
		inits  = 100
		sample = 300
	)
	up := slowUpstream(t, words, pause)
	base, _ := sdkServer(t, func(c *server.Config) {
		c.Server.BodyReadTimeout = server.Duration(limit)
		c.Models = []server.ModelConfig{{Name: "up", Provider: "openai", BaseURL: up.URL + "/v1", APIKey: "k"}}
		c.Apps = []server.AppConfig{{ID: "slow", Name: "slow", Model: "up"}}
	})
	addr := strings.TrimPrefix(base, "http://")
	key := sdkKey(t, base, map[string]any{"name": "streamer", "appId": "slow"})
	shareID, _ := createLink(t, base, `{"appId":"slow","name":"pub"}`)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	quiet, quietN := bdHealthz(t, client, base, sample, time.Now().Add(time.Minute))

	want := ""
	for i := range words {
		want += fmt.Sprintf("w%d ", i)
	}
	streamBody := `{"stream":true,"messages":[{"role":"user","content":"go"}]}`
	streams := []struct{ name, key, body string }{
		{"keyed", key, streamBody},
		{"share link", "", `{"shareId":"` + shareID + `","stream":true,"messages":[{"role":"user","content":"go"}]}`},
	}
	streamErrs := make([]error, len(streams))
	var swg sync.WaitGroup
	for i, st := range streams {
		swg.Go(func() {
			got, err := bdStream(&http.Client{}, base+"/api/v1/chat/completions", st.key, st.body)
			if err == nil && got != want {
				err = fmt.Errorf("answer %q, want %q", got, want)
			}
			streamErrs[i] = err
		})
	}

	results := make([]bdTrickle, chats+inits)
	var started, done sync.WaitGroup
	started.Add(len(results))
	first := time.Now()
	for i := range results {
		path, prefix := "/api/v1/chat/completions", `{"shareId":"`+shareID+`",`
		if i >= chats {
			path, prefix = "/api/core/chat/outLink/init", `{"shareId":"`+shareID+`",`
		}
		done.Go(func() {
			results[i] = bdTrickler(addr, path, prefix, limit+slack, started.Done)
		})
	}
	started.Wait()
	// Measure while every trickler is still connected: stop well before the
	// first one reaches its deadline.
	loaded, loadedN := bdHealthz(t, client, base, sample, first.Add(limit-300*time.Millisecond))
	done.Wait()

	var answered, closed int
	var worst time.Duration
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", r.path, r.err)
		}
		worst = max(worst, r.elapsed)
		if r.elapsed > limit+slack {
			t.Errorf("%s: cut after %s, deadline %s", r.path, r.elapsed, limit)
		}
		if r.status == 0 {
			closed++
			continue
		}
		answered++
		if r.status != http.StatusRequestTimeout || !strings.Contains(r.body, "request_timeout") || !strings.Contains(r.body, limit.String()) {
			t.Errorf("%s: %d %s; want 408 request_timeout naming %s", r.path, r.status, r.body, limit)
		}
		if strings.HasPrefix(r.path, "/api/v1/") && !strings.Contains(r.body, `"error":{`) {
			t.Errorf("%s: %s is not in OpenAI's error shape", r.path, r.body)
		}
	}
	swg.Wait()
	for i, err := range streamErrs {
		if err != nil {
			t.Errorf("%s stream outliving the body deadline: %v", streams[i].name, err)
		}
	}
	t.Logf("%d tricklers cut: %d answered 408, %d closed; slowest after %s (deadline %s)", len(results), answered, closed, worst.Round(time.Millisecond), limit)
	t.Logf("/healthz p50: %s alone (%d samples), %s with %d tricklers connected (%d samples): ratio %.2f",
		quiet, quietN, loaded, len(results), loadedN, float64(loaded)/float64(quiet))
}

func TestBodyReadTimeoutConfig(t *testing.T) {
	cfg, err := server.LoadConfig("")
	if err != nil || time.Duration(cfg.Server.BodyReadTimeout) != server.DefaultBodyReadTimeout {
		t.Fatalf("default %v, %v", time.Duration(cfg.Server.BodyReadTimeout), err)
	}
	cfg, err = server.LoadConfig(svWriteFile(t, "server:\n  body_read_timeout: 7s\n"))
	if err != nil || time.Duration(cfg.Server.BodyReadTimeout) != 7*time.Second {
		t.Fatalf("set %v, %v", time.Duration(cfg.Server.BodyReadTimeout), err)
	}
	if _, err := server.LoadConfig(svWriteFile(t, "server:\n  body_read_timeout: slow\n")); err == nil || !strings.Contains(err.Error(), "slow") {
		t.Fatalf("bad duration: %v", err)
	}
}
