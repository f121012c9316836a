package llm_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/upstreamtest"
	"github.com/chatgate/chatgate/chat/llm"
)

// TestStreamNeverWaitsForTheNextToken: the upstream sends its second token
// only once the chat has the first: were the client holding the first for
// its successor, neither would come (the upstream gives up after a while
// and the test fails).
func TestStreamNeverWaitsForTheNextToken(t *testing.T) {
	got := make(chan string, 4)
	gaveUp := make(chan struct{}, 1)
	u := upstreamtest.New(t, func(u *upstreamtest.Upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
		upstreamtest.SSEHeaders(w)
		for _, p := range upstreamtest.Pieces {
			upstreamtest.SSEData(w, upstreamtest.OpenAIDelta(p))
			select {
			case tok := <-got:
				if tok != p {
					return
				}
			case <-time.After(10 * time.Second):
				gaveUp <- struct{}{}
				return
			}
		}
		upstreamtest.SSEData(w, upstreamtest.OpenAIFinish)
		upstreamtest.SSEData(w, "[DONE]")
	})
	m := upstreamtest.NewOpenAIModel(t, u, 0)
	req := upstreamtest.Request
	aheads := 0
	req.Ahead = func() { aheads++ }
	var pieces []string
	res, err := m.Generate(context.Background(), req, func(tok string) error {
		pieces = append(pieces, tok)
		got <- tok
		return nil
	})
	select {
	case <-gaveUp:
		t.Fatal("the client waited for the next token before handing over the one it had")
	default:
	}
	if err != nil || !slices.Equal(pieces, upstreamtest.Pieces) || res.Text != "Hello from upstream." {
		t.Fatalf("pieces %q, result %+v, err %v", pieces, res, err)
	}
	if aheads != 0 {
		t.Fatalf("Ahead was called %d times for tokens sent one at a time", aheads)
	}
}

// TestStatusError: a refusal reaches the caller as an *UpstreamError
// holding a *StatusError with the status and the upstream's message, read
// from an OpenAI error body or, failing that, the body's start.
func TestStatusError(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		msg    string
	}{
		{http.StatusUnauthorized, `{"error":{"message":"bad provider key","type":"invalid_request_error"}}`, "bad provider key"},
		{http.StatusTooManyRequests, `{"error":"slow down"}`, "slow down"},
		{http.StatusInternalServerError, "upstream is down\n", "upstream is down"},
		{http.StatusBadGateway, "", ""},
	} {
		u := upstreamtest.New(t, func(u *upstreamtest.Upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		for _, onToken := range []func(string) error{nil, func(string) error { return nil }} {
			_, err := upstreamtest.NewOpenAIModel(t, u, 0).Generate(context.Background(), upstreamtest.Request, onToken)
			var ue *chat.UpstreamError
			var se *llm.StatusError
			if !errors.As(err, &ue) || !errors.As(err, &se) || se.StatusCode != tc.status || se.Message != tc.msg {
				t.Fatalf("status %d: err = %v (%#v), want status %d message %q", tc.status, err, se, tc.status, tc.msg)
			}
		}
	}
}

// TestStreamAnsweredWhole: a server that ignores "stream" and answers a
// stream request with one JSON body is read whole, and its text reaches
// the chat as one token.
func TestStreamAnsweredWhole(t *testing.T) {
	u := upstreamtest.New(t, func(u *upstreamtest.Upstream, w http.ResponseWriter, r *http.Request, body map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, upstreamtest.OpenAIWhole)
	})
	res, pieces, err := upstreamtest.Generate(context.Background(), upstreamtest.NewOpenAIModel(t, u, 0), upstreamtest.Request)
	if err != nil || !slices.Equal(pieces, []string{"Hello from upstream."}) || res.Text != "Hello from upstream." ||
		res.FinishReason != "stop" || res.Usage.CompletionTokens != 5 {
		t.Fatalf("pieces %q, result %+v, err %v", pieces, res, err)
	}
	if _, bodies := u.Requests(); !upstreamtest.Streams(bodies[0]) {
		t.Fatal("the upstream was not asked for a stream")
	}
}
