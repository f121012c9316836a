// Command embed mounts chatgate's key authentication and key API inside an
// existing net/http service, without the reference server.
//
//	go run ./examples/embed
//
// It keeps keys in memory and prints an admin key at start; a real service
// would use auth.NewBoltStore on its own bbolt file.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/chatgate/chatgate/auth"
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

	mux := http.NewServeMux()
	// The service's own route, now behind chatgate keys with the chat scope.
	mux.Handle("POST /my/ask", authn.Require(auth.ScopeChat, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "hello, %s (team %s)\n", p.KeyName, p.TeamID)
	})))
	// chatgate's key API, with the reference server's paths and scopes.
	auth.NewHandler(keys, auth.HandlerOptions{}).Register(mux, authn)

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
