package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/tokens"
)

// Every one-method interface an engine takes has a func adapter; an engine
// built from functions alone calls each as its interface says.
func TestFuncAdapters(t *testing.T) {
	var (
		looked, budgeted []string
		retrieved        []chat.RetrieveRequest
		recorded         []chat.UsageRecord
	)
	store := chat.NewMemoryStore()
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store,
		Models: chat.ModelLookupFunc(func(name string) (chat.Model, error) {
			looked = append(looked, name)
			if name != "fn" {
				return nil, fmt.Errorf("%w: %q", chat.ErrUnknownModel, name)
			}
			return chat.Extractive{}, nil
		}),
		Retriever: chat.RetrieverFunc(func(_ context.Context, req chat.RetrieveRequest) (chat.RetrieveResult, error) {
			retrieved = append(retrieved, req)
			return chat.RetrieveResult{Quotes: []chat.Quote{{ID: "q", Q: "What is the answer?", A: "Forty-two."}}, Model: "emb", Tokens: 5}, nil
		}),
		Usage: chat.UsageRecorderFunc(func(_ context.Context, u chat.UsageRecord) error {
			recorded = append(recorded, u)
			return nil
		}),
		Budget: chat.BudgetReserverFunc(func(_ context.Context, teamID, appID string, budget float64) (func(), error) {
			budgeted = append(budgeted, fmt.Sprintf("%s/%s/%v", teamID, appID, budget))
			return func() { budgeted = append(budgeted, "ended") }, nil
		}),
		Price:  chat.PricerFunc(func(model string, in, out int) float64 { return float64(in + 10*out) }),
		Tokens: tokens.CounterFunc(func(text string) int { return len(strings.Fields(text)) }),
	})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "a", Name: "a", Model: "fn", DatasetIDs: []string{"d"}, MaxUsagePoints: 7}); err != nil {
		t.Fatal(err)
	}
	if err := e.SaveApp(ctx, &chat.App{ID: "b", Name: "b", Model: "nope"}); err == nil || !strings.Contains(err.Error(), "unknown model") {
		t.Fatalf("an app whose model the lookup does not know: %v", err)
	}
	res, err := e.Run(ctx, chat.Request{TeamID: auth.DefaultTeam, KeyID: "k", AppID: "a", Messages: user("What is the answer?")},
		chat.SinkFunc(func(chat.Event) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Forty-two." || len(retrieved) != 1 || retrieved[0].Query != "What is the answer?" || retrieved[0].BillKeyID != "k" {
		t.Fatalf("answer %q, retrieved %+v", res.Text, retrieved)
	}
	if len(budgeted) != 2 || budgeted[0] != auth.DefaultTeam+"/a/7" || budgeted[1] != "ended" {
		t.Fatalf("budget asked %v; want the reservation, then its end", budgeted)
	}
	// the prompt is the quote prompt and the question; the tokenizer counts words
	if res.Usage.CompletionTokens != 1 || res.Usage.PromptTokens == 0 {
		t.Fatalf("usage %+v", res.Usage)
	}
	if len(recorded) != 2 || recorded[0].Module != "KB Search" || recorded[0].InputTokens != 5 ||
		recorded[1].Module != "AI Chat" || recorded[1].OutputTokens != 1 {
		t.Fatalf("usage recorded %+v", recorded)
	}
	kb, ai := res.Responses[0], res.Responses[1]
	if kb.Price != 5*100000 || ai.Price != float64(res.Usage.PromptTokens+10)*100000 {
		t.Fatalf("prices %v and %v", kb.Price, ai.Price)
	}
	if !strings.Contains(strings.Join(looked, ","), "fn") {
		t.Fatalf("lookups %v", looked)
	}
}

// A usage recorder can be a function: here one that totals tokens by module.
func ExampleUsageRecorderFunc() {
	totals := map[string]int{}
	store := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models,
		Tokens: tokens.CounterFunc(func(text string) int { return len(strings.Fields(text)) }),
		Usage: chat.UsageRecorderFunc(func(_ context.Context, u chat.UsageRecord) error {
			totals[u.Module] += u.InputTokens + u.OutputTokens
			return nil
		})})
	ctx := context.Background()
	if err := e.SaveApp(ctx, &chat.App{ID: "help", Name: "Help", EmptyAnswer: "Ask me later."}); err != nil {
		fmt.Println(err)
		return
	}
	_, err := e.Run(ctx, chat.Request{TeamID: "default", AppID: "help",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "Are you there?"}}}, chat.SinkFunc(func(chat.Event) error { return nil }))
	if err != nil {
		fmt.Println(err)
		return
	}
	// 3 words asked, each message framed by 4 tokens, 3 to prime the reply; 3 words answered
	fmt.Println(totals)
	// Output:
	// map[AI Chat:13]
}
