package chat_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/chatgate/chatgate/chat"
)

// An engine runs without HTTP: here with the offline extractive model and a
// retriever standing in for a knowledge base, streaming into a sink.
func Example() {
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	e := chat.NewEngine(chat.EngineConfig{Apps: store, History: store, Models: models,
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
