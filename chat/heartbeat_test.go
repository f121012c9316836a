package chat_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// A model silent for longer than the heartbeat gets the stream a keep-alive
// comment, and the stream still ends properly.
func TestHeartbeat(t *testing.T) {
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register("slow", chat.ModelFunc(func(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
		if err := onToken("first "); err != nil {
			return chat.ModelResult{}, err
		}
		select {
		case <-time.After(400 * time.Millisecond):
		case <-ctx.Done():
			return chat.ModelResult{}, ctx.Err()
		}
		if err := onToken("second"); err != nil {
			return chat.ModelResult{}, err
		}
		return chat.ModelResult{Text: "first second", FinishReason: "stop"}, nil
	}))
	e := chat.NewEngine(chat.EngineConfig{Apps: store, History: store, Models: models})
	if err := e.SaveApp(context.Background(), &chat.App{ID: "slow", Name: "slow", Model: "slow"}); err != nil {
		t.Fatal(err)
	}
	h := chat.NewHandler(e, chat.HandlerOptions{Heartbeat: 90 * time.Millisecond})
	p := &auth.Principal{TeamID: auth.DefaultTeam, AppID: "slow", Scopes: auth.Scopes{auth.ScopeChat}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Completions(w, r.WithContext(auth.NewContext(r.Context(), p)))
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	s := string(body)
	first, beat, second := strings.Index(s, `"first "`), strings.Index(s, "\n: keep-alive\n"), strings.Index(s, `"second"`)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || first < 0 || beat < first || second < beat ||
		!strings.HasSuffix(s, "data: [DONE]\n\n") {
		t.Fatalf("%s\n%s", resp.Header.Get("Content-Type"), s)
	}
}
