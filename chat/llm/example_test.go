package llm_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/llm"
)

// A chat app answered by an OpenAI-compatible server: here a stand-in that
// streams two pieces, as a real server behind BaseURL would.
func ExampleNewOpenAI() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, data := range []string{
			`{"choices":[{"index":0,"delta":{"content":"Hello"}}]}`,
			`{"choices":[{"index":0,"delta":{"content":" there."},"finish_reason":"stop"}]}`,
			`[DONE]`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", data)
		}
	}))
	defer upstream.Close()

	m, err := llm.NewOpenAI(llm.Config{BaseURL: upstream.URL + "/v1", APIKey: "sk-provider", Model: "gpt-4o-mini"})
	if err != nil {
		log.Fatal(err)
	}
	models := new(chat.Models)
	models.Register("assistant", m)
	store := chat.NewMemoryStore()
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "help", Name: "Help", Model: "assistant"}); err != nil {
		log.Fatal(err)
	}
	var pieces []string
	res, err := e.Run(ctx, chat.Request{TeamID: "default", AppID: "help",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "hi"}}},
		chat.SinkFunc(func(ev chat.Event) error {
			if ev.Kind == chat.EventDelta {
				pieces = append(pieces, ev.Delta)
			}
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Join(pieces, "|"))
	fmt.Println(res.Text, res.FinishReason)
	// Output:
	// Hello| there.
	// Hello there. stop
}
