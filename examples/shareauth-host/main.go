// Command shareauth-host is a minimal share-link auth host: the server an
// app owner runs so that chatgate asks it who may use a share link. It
// approves the tokens listed in -tokens, refuses the rest, checks that every
// call is signed with the link's secret, and logs each finished chat.
//
//	SHARE_SECRET=cgs_... go run ./examples/shareauth-host -addr 127.0.0.1:9700 -tokens alice,bob
//
// Then create the share link with "hookUrl": "http://127.0.0.1:9700". chatgate
// refuses loopback and other internal auth hosts unless listed, so for this
// one set share.allow_hosts: ["127.0.0.1/32"] in its config.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/chatgate/chatgate/shareauth"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9700", "listen address")
	tokens := flag.String("tokens", "", "comma-separated tokens to approve")
	flag.Parse()
	secret := os.Getenv("SHARE_SECRET")
	if secret == "" {
		slog.Error("set SHARE_SECRET to the share link's secret")
		os.Exit(2)
	}
	allowed := map[string]bool{}
	for _, t := range strings.Split(*tokens, ",") {
		if t = strings.TrimSpace(t); t != "" {
			allowed[t] = true
		}
	}
	if err := http.ListenAndServe(*addr, NewHost(secret, allowed)); !errors.Is(err, http.ErrServerClosed) {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

// NewHost returns the auth host's handler: /shareAuth/init and /start
// approve the allowed tokens, /shareAuth/finish logs the result.
func NewHost(secret string, allowed map[string]bool) http.Handler {
	v := &shareauth.Verifier{Secret: secret}
	mux := http.NewServeMux()
	verdict := func(w http.ResponseWriter, r *http.Request) (token string, ok bool) {
		body, err := v.Verify(r)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return "", false
		}
		var req struct {
			Token    string `json:"token"`
			Question string `json:"question"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return "", false
		}
		return req.Token, true
	}
	approve := func(w http.ResponseWriter, r *http.Request) {
		token, ok := verdict(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !allowed[token] {
			_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "message": "token not allowed"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "message": "", "data": map[string]string{"uid": "user-" + token}})
	}
	mux.HandleFunc("POST /shareAuth/init", approve)
	mux.HandleFunc("POST /shareAuth/start", approve)
	mux.HandleFunc("POST /shareAuth/finish", func(w http.ResponseWriter, r *http.Request) {
		if token, ok := verdict(w, r); ok {
			slog.Info("chat finished", "token", token)
			_ = json.NewEncoder(w).Encode(map[string]any{"success": true})
		}
	})
	return mux
}
