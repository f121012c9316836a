package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/pgstore"
)

// Each replica opens its own pool on the shared database and hands the
// store to its engine as both its apps and its history; a conversation
// started through one replica continues through any other.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("CHATGATE_POSTGRES_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool) // applies the chat migrations once, whoever starts first
	if err != nil {
		log.Fatal(err)
	}
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	engine := chat.NewEngine(chat.EngineOptions{Apps: store, History: store, Models: models})
	if err := engine.SaveApp(ctx, &chat.App{ID: "help", Name: "Help"}); err != nil {
		log.Fatal(err)
	}
	res, err := engine.Run(ctx, chat.Request{TeamID: "default", AppID: "help", ChatID: "ticket-42",
		Messages: []chat.Message{{Role: chat.RoleUser, Content: "How do I rotate a key?"}}}, chat.SinkFunc(func(chat.Event) error { return nil }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text)
}
