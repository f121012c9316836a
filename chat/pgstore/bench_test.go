package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// benchTurn is a turn as the engine stores it: a question, and an answer
// with what the knowledge-base search and the model reported.
func benchTurn(i int) []chat.Record {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).Add(time.Duration(i) * time.Second)
	quotes := make([]chat.Quote, 5)
	for j := range quotes {
		quotes[j] = chat.Quote{DatasetID: "d", CollectionID: "col", ID: fmt.Sprintf("q%02d", j), Q: strings.Repeat("quoted text ", 20), Source: "faq.md", Score: 0.8}
	}
	sim := 0.5
	return []chat.Record{
		{DataID: fmt.Sprintf("h%d", i), Obj: "Human", Value: fmt.Sprintf("question %d: how do I rotate a key?", i), Time: at},
		{DataID: fmt.Sprintf("a%d", i), Obj: "AI", Value: strings.Repeat("an answer ", 50), Time: at, ResponseData: []chat.ModuleResponse{
			{ModuleName: "KB Search", Similarity: &sim, Limit: 5, SearchMode: "embedding", QuoteList: quotes, RunningTime: 0.01},
			{ModuleName: "AI Chat", Model: "gpt", Tokens: 900, Question: "how do I rotate a key?", Answer: strings.Repeat("an answer ", 50), RunningTime: 1.2},
		}},
	}
}

// The read each chat turn makes: the conversation and its last 30 records
// (the engine's default history), of a conversation of 200.
func BenchmarkConversation(b *testing.B) {
	s := open(b, pgtest.Pool(b))
	ctx := context.Background()
	c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: "c", Title: "bench", Variables: map[string]any{"name": "Ada"}}
	for i := range 100 {
		if err := s.AppendTurn(ctx, c, benchTurn(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, recs, err := s.Conversation(ctx, "t", "app", "c", 30); err != nil || len(recs) != 30 {
			b.Fatal(len(recs), err)
		}
	}
}

// The app read each chat makes: one row, decoded or, when its bytes are
// those last decoded, copied from the store's cache (internal/decodecache).
func BenchmarkApp(b *testing.B) {
	s := open(b, pgtest.Pool(b))
	ctx := context.Background()
	temp := 0.3
	app := &chat.App{ID: "app", TeamID: "t", Name: "support", Model: "gpt-4o-mini", MaxTokens: 800, Temperature: &temp,
		SystemPrompt: strings.Repeat("You answer questions about chatgate's API keys. ", 8), DatasetIDs: []string{"faq", "docs"},
		Search: chat.SearchSettings{Limit: 5, Similarity: 0.4, Mode: "mixedRecall"}, QuoteTemplate: "Use these quotes:\n{{quote}}",
		CreateTime: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), UpdateTime: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	if err := s.PutApp(ctx, app); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if a, err := s.App(ctx, "t", "app"); err != nil || a.Name != "support" {
			b.Fatal(a, err)
		}
	}
}

// The write each chat turn makes: the conversation and the turn's two
// records. "one chat" appends to one growing conversation; "parallel"
// appends from GOMAXPROCS goroutines, each to its own conversation, and
// "parallel, one chat" from all of them to the same one, where appends
// queue on its row.
func BenchmarkAppendTurn(b *testing.B) {
	ctx := context.Background()
	b.Run("one chat", func(b *testing.B) {
		s := open(b, pgtest.Pool(b))
		c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: "c", Title: "bench"}
		recs := benchTurn(0)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.AppendTurn(ctx, c, recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, shared := range []bool{false, true} {
		name := "parallel"
		if shared {
			name = "parallel, one chat"
		}
		b.Run(name, func(b *testing.B) {
			s := open(b, pgtest.Pool(b))
			recs := benchTurn(0)
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				chatID := "c"
				if !shared {
					chatID = fmt.Sprint("c", n.Add(1))
				}
				c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: chatID, Title: "bench"}
				for pb.Next() {
					if err := s.AppendTurn(ctx, c, recs); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
