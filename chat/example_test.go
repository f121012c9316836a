package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// An engine runs without HTTP: here with the offline extractive model and a
// retriever standing in for a knowledge base, streaming into a sink.
func Example() {
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models,
		Retriever: films{}})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "films", Name: "Films", Model: chat.ExtractiveModelName,
		DatasetIDs: []string{"kb"}}); err != nil {
		fmt.Println(err)
		return
	}
	var streamed strings.Builder
	res, err := e.Run(ctx, chat.Request{TeamID: "default", AppID: "films",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "导演是谁"}}},
		chat.SinkFunc(func(ev chat.Event) error {
			if ev.Kind == chat.EventDelta {
				streamed.WriteString(ev.Delta)
			}
			return nil
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(streamed.String())
	fmt.Println(res.Text == streamed.String(), res.Responses[0].ModuleName)
	// Output:
	// 电影《铃芽之旅》的导演是新海诚。
	// true KB Search
}

type films struct{}

func (films) Retrieve(ctx context.Context, req chat.RetrieveRequest) (chat.RetrieveResult, error) {
	return chat.RetrieveResult{Quotes: []chat.Quote{{ID: "1", Q: "电影《铃芽之旅》的导演是谁?", A: "电影《铃芽之旅》的导演是新海诚。", Score: 0.8}}}, nil
}

// Run streams a turn's events to a sink. With a ChatID the turn is stored
// once it has succeeded; without a retriever, the extractive model answers
// with the app's empty-answer text.
func ExampleEngine_Run() {
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "help", Name: "Help", EmptyAnswer: "Sorry, I don't know."}); err != nil {
		fmt.Println(err)
		return
	}
	sink := chat.SinkFunc(func(ev chat.Event) error {
		switch ev.Kind {
		case chat.EventVariables:
			fmt.Println("variables:", ev.Variables)
		case chat.EventNodeStatus:
			fmt.Println("module:", ev.Node.Name, ev.Node.Status)
		case chat.EventDelta:
			fmt.Printf("delta: %q\n", ev.Delta)
		case chat.EventDone:
			fmt.Println("done:", ev.Result.FinishReason)
		case chat.EventError:
			fmt.Println("error:", ev.Err)
		}
		return nil
	})
	_, err := e.Run(ctx, chat.Request{TeamID: "default", AppID: "help", ChatID: "c1", Variables: map[string]any{"lang": "en"},
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "What is the capital of Mars?"}}}, sink)
	if err != nil {
		fmt.Println(err)
		return
	}
	conv, recs, _ := store.Conversation(ctx, "default", "help", "c1", 0)
	fmt.Printf("stored %q: %d messages\n", conv.Title, conv.Messages)
	for _, r := range recs {
		fmt.Printf("%s: %s\n", r.Obj, r.Value)
	}
	// Output:
	// variables: map[lang:en]
	// module: AI Chat running
	// delta: "Sorry, "
	// delta: "I "
	// delta: "don't "
	// delta: "know."
	// done: stop
	// stored "What is the capital of Mars?": 2 messages
	// Human: What is the capital of Mars?
	// AI: Sorry, I don't know.
}

// Register mounts the chat routes beside a service's own, each behind the
// scope it needs; completions answer refusals in OpenAI's error shape.
func ExampleHandler_Register() {
	ctx := context.Background()
	store := chat.NewMemoryStore()
	// every app's model is the extractive one
	extractive := chat.ModelLookupFunc(func(string) (chat.Model, error) { return chat.Extractive{}, nil })
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: extractive})
	if err := e.SaveApp(ctx, &chat.App{ID: "help", Name: "Help", EmptyAnswer: "Ask me later."}); err != nil {
		fmt.Println(err)
		return
	}
	keys := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(keys, auth.Options{})
	defer authn.Close(ctx)
	_, appKey, err := auth.NewManager(keys, authn).Create(ctx, auth.KeySpec{Name: "help", AppID: "help"})
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /my/status", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	chat.NewHandler(e, chat.HandlerOptions{}).Register(mux, authn)

	for _, key := range []string{"", appKey} {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var out struct {
			Choices []struct {
				Message chat.Message `json:"message"`
			} `json:"choices"`
			Error struct{ Type string } `json:"error"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		if w.Code != http.StatusOK {
			fmt.Println(w.Code, out.Error.Type)
			continue
		}
		fmt.Println(w.Code, out.Choices[0].Message.Content)
	}
	// Output:
	// 401 authentication_error
	// 200 Ask me later.
}
