package chat_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// step is what a paced model does next: wait, then send a piece or fail.
type step struct {
	wait  time.Duration
	piece string
	fail  error
}

// pacedModel plays its steps, honouring ctx while it waits.
func pacedModel(steps ...step) chat.Model {
	return chat.ModelFunc(func(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
		var text strings.Builder
		for _, s := range steps {
			if s.wait > 0 {
				select {
				case <-time.After(s.wait):
				case <-ctx.Done():
					return chat.ModelResult{}, ctx.Err()
				}
			}
			if s.fail != nil {
				return chat.ModelResult{}, s.fail
			}
			if err := onToken(s.piece); err != nil {
				return chat.ModelResult{}, err
			}
			text.WriteString(s.piece)
		}
		return chat.ModelResult{Text: text.String(), FinishReason: "stop"}, nil
	})
}

func pacedGateway(t *testing.T, heartbeat time.Duration, steps ...step) *gateway {
	return newGateway(t, gatewayConfig{opts: chat.HandlerOptions{Heartbeat: heartbeat},
		models: map[string]chat.Model{"paced": pacedModel(steps...)},
		apps:   []*chat.App{{ID: "app1", Name: "Paced", Model: "paced"}}})
}

var errUpstreamDown = &chat.UpstreamError{Provider: "paced", Err: errors.New("down")}

// TestHeartbeatAfterSilence: a model silent for several heartbeats mid-answer
// gets keep-alive comments, and the detail stream still ends properly.
func TestHeartbeatAfterSilence(t *testing.T) {
	const hb = 80 * time.Millisecond
	g := pacedGateway(t, hb, step{piece: "first "}, step{wait: 6 * hb, piece: "second"})
	resp, b := g.chat("app1", `{"stream":true,"detail":true,"chatId":"c","messages":[{"role":"user","content":"hi"}]}`)
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	events, comments := parseSSE(t, body)
	first, beat, second := strings.Index(body, `"first "`), strings.Index(body, "\n\n: keep-alive\n\n"), strings.Index(body, `"second"`)
	if comments < 2 || comments > 8 || beat < first || second < beat {
		t.Fatalf("%d comments, not between the pieces:\n%s", comments, body)
	}
	if text, _ := streamSummary(t, events, "app1"); text != "first second" || events[len(events)-2].name != "flowResponses" {
		t.Fatalf("the stream did not finish properly:\n%s", body)
	}
	if g.conversations("app1") != 1 {
		t.Fatal("the chat was not stored")
	}
}

// TestNoHeartbeatWhileTokensFlow: pieces more frequent than the heartbeat
// leave no room for comments.
func TestNoHeartbeatWhileTokensFlow(t *testing.T) {
	const hb = 200 * time.Millisecond
	steps := []step{{piece: "a "}}
	for range 10 {
		steps = append(steps, step{wait: hb / 5, piece: "b "})
	}
	g := pacedGateway(t, hb, steps...)
	_, b := g.chat("app1", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	events, comments := parseSSE(t, string(b))
	if text, _ := streamSummary(t, events, "app1"); comments != 0 || text != "a "+strings.Repeat("b ", 10) {
		t.Fatalf("%d comments:\n%s", comments, b)
	}
}

// TestHeartbeatWaitsForSilence: a model that fails before its first piece,
// and before a heartbeat's worth of silence, is answered with a plain 502:
// no heartbeat may commit the stream earlier than the configured silence.
func TestHeartbeatWaitsForSilence(t *testing.T) {
	const hb = 600 * time.Millisecond
	g := pacedGateway(t, hb, step{wait: hb / 2, fail: errUpstreamDown})
	resp, b := g.chat("app1", `{"stream":true,"detail":true,"messages":[{"role":"user","content":"hi"}]}`)
	checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "down")
}

// TestHeartbeatBeforeFirstPiece: a long silence before the first piece
// commits the stream with the events held so far, then keep-alives; a
// failure after that ends the stream with an error event.
func TestHeartbeatBeforeFirstPiece(t *testing.T) {
	const hb = 80 * time.Millisecond
	g := pacedGateway(t, hb, step{wait: 5 * hb, fail: errUpstreamDown})
	resp, b := g.chat("app1", `{"stream":true,"detail":true,"chatId":"c","messages":[{"role":"user","content":"hi"}]}`)
	body := string(b)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	events, comments := parseSSE(t, body)
	if !strings.HasPrefix(body, "event: flowNodeStatus\ndata: {\"status\":\"running\",\"name\":\"AI Chat\"}\n\n: keep-alive\n\n") ||
		comments < 2 || len(events) != 2 || events[1].name != "error" || !strings.Contains(events[1].data, `"code":"upstream_error"`) {
		t.Fatalf("%d comments:\n%s", comments, body)
	}
	if g.conversations("app1") != 0 {
		t.Fatal("a failed chat was stored")
	}
}

// TestHeartbeatRacesFailure: a model that fails about when the first
// heartbeat is due gets either a clean 502 or a stream that ends with an
// error chunk, never a heartbeat with an HTTP error appended to it.
func TestHeartbeatRacesFailure(t *testing.T) {
	const hb = 9 * time.Millisecond
	var plain, streamed int
	for i := range 60 {
		wait := hb - 3*time.Millisecond + time.Duration(i%7)*time.Millisecond
		g := pacedGateway(t, hb, step{wait: wait, fail: errUpstreamDown})
		resp, b := g.chat("app1", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		g.close()
		if resp.StatusCode == http.StatusBadGateway {
			checkOpenAIError(t, resp, b, http.StatusBadGateway, "api_error", "upstream_error", "down")
			plain++
			continue
		}
		events, _ := parseSSE(t, string(b))
		if resp.StatusCode != http.StatusOK || len(events) != 1 || !strings.Contains(events[0].data, `"code":"upstream_error"`) {
			t.Fatalf("attempt %d (model fails after %v): %d\n%s", i, wait, resp.StatusCode, b)
		}
		streamed++
	}
	t.Logf("%d plain 502s, %d streams ended by an error chunk", plain, streamed)
}

// TestDeltasInHandLeaveTogether: deltas the model hands over with
// ModelRequest.Ahead (it has the next one already) are written without a
// flush of their own, so a burst of tokens costs the client's connection
// one flush; the answer the client reads is the same either way.
func TestDeltasInHandLeaveTogether(t *testing.T) {
	pieces := []string{"one ", "two ", "three ", "four"}
	burst := func(ahead bool) chat.Model {
		return chat.ModelFunc(func(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
			for i, p := range pieces {
				if ahead && i < len(pieces)-1 && req.Ahead != nil {
					req.Ahead()
				}
				if err := onToken(p); err != nil {
					return chat.ModelResult{}, err
				}
			}
			return chat.ModelResult{Text: strings.Join(pieces, ""), FinishReason: "stop"}, nil
		})
	}
	run := func(ahead bool) (int64, string) {
		var flushes atomic.Int64
		g := newGateway(t, gatewayConfig{inProcess: true, flushes: &flushes,
			models: map[string]chat.Model{"burst": burst(ahead)},
			apps:   []*chat.App{{ID: "app1", Name: "Burst", Model: "burst"}}})
		_, b := g.chat("app1", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		events, _ := parseSSE(t, string(b))
		text, _ := streamSummary(t, events, "app1")
		return flushes.Load(), text
	}
	each, eachText := run(false)
	together, togetherText := run(true)
	if eachText != "one two three four" || togetherText != eachText {
		t.Fatalf("answers %q and %q", eachText, togetherText)
	}
	if together != each-int64(len(pieces)-1) {
		t.Fatalf("%d flushes with the deltas in hand, %d without: want %d fewer", together, each, len(pieces)-1)
	}
}
