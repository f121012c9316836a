// Command embed mounts chatgate's key authentication, key API and chat
// routes inside an existing net/http service, beside its own routes,
// without the reference server.
//
//	go run ./examples/embed
//
// It keeps keys, apps and history in memory and prints an admin key and an
// app key at start; a real service would use auth.NewBoltStore and
// chat.NewBoltStore on its own bbolt file. Its app answers with a model of
// its own (a chat.ModelFunc), so it links no provider client and no
// tokenizer tables: chat/llm and cl100k are there to import when wanted.
//
//	curl -s localhost:9528/v1/chat/completions -H "Authorization: Bearer $APP_KEY" \
//	  -d '{"messages":[{"role":"user","content":"hello"}]}'
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	store := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(store, auth.Options{})
	defer authn.Close(context.Background()) // flush usage before exit
	keys := auth.NewManager(store, authn)

	_, admin, err := keys.Create(ctx, auth.KeySpec{Name: "admin", Scopes: auth.Scopes{auth.ScopeAdmin}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("admin key:", admin)

	// A chat app on a model of the service's own: it echoes the question.
	apps := chat.NewMemoryStore()
	models := new(chat.Models)
	models.Register("echo", chat.ModelFunc(func(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
		answer := "You said: " + req.Question
		for _, word := range strings.SplitAfter(answer, " ") {
			if onToken != nil {
				if err := onToken(word); err != nil {
					return chat.ModelResult{}, err
				}
			}
		}
		return chat.ModelResult{Text: answer, FinishReason: "stop"}, nil
	}))
	engine := chat.NewEngine(chat.EngineOptions{Apps: apps, History: apps, Models: models})
	if err := engine.SaveApp(ctx, &chat.App{ID: "echo", Name: "Echo", Model: "echo"}); err != nil {
		log.Fatal(err)
	}
	_, appKey, err := keys.Create(ctx, auth.KeySpec{Name: "echo app", AppID: "echo"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("app key:", appKey)

	mux := http.NewServeMux()
	// The service's own route, now behind chatgate keys with the chat scope.
	mux.Handle("POST /my/ask", authn.Require(auth.ScopeChat, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "hello, %s (team %s)\n", p.KeyName, p.TeamID)
	})))
	// chatgate's key API, with the reference server's paths and scopes.
	auth.NewHandler(keys, auth.HandlerOptions{}).Register(mux, authn)
	// chatgate's chat routes (completions, history, apps), each behind the
	// key scope it needs and answering in its clients' error shape.
	chat.NewHandler(engine, chat.HandlerOptions{}).Register(mux, authn)

	srv := &http.Server{Addr: "127.0.0.1:9528", Handler: mux}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	log.Printf("listening on http://%s", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
