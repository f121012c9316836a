package chat_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// A history store that can only do what HistoryStore says serves today's
// routes; the routes that need a capability it lacks answer 501
// not_implemented and change nothing.
func TestHistoryRoutesWithoutCapabilities(t *testing.T) {
	ctx := context.Background()
	store := chat.NewMemoryStore()
	plain := struct{ chat.HistoryStore }{store} // hides HistorySearcher and HistoryEditor
	models := new(chat.Models)
	models.Register(chat.ExtractiveModelName, chat.Extractive{})
	e := chat.NewEngine(chat.EngineOptions{Apps: store, History: plain, Models: models, Logger: slog.New(slog.DiscardHandler)})
	if err := e.SaveApp(ctx, &chat.App{ID: "app", Name: "App", Model: chat.ExtractiveModelName}); err != nil {
		t.Fatal(err)
	}
	keys := auth.NewMemoryStore()
	authn := auth.NewAuthenticator(keys, auth.Options{})
	defer authn.Close(ctx)
	_, key, err := auth.NewManager(keys, authn).Create(ctx, auth.KeySpec{Name: "app", AppID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	chat.NewHandler(e, chat.HandlerOptions{Logger: slog.New(slog.DiscardHandler)}).Register(mux, authn)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// a responseChatItemId is not checked for repeats without a searcher, and is kept
	if st, b := call("POST", "/api/v1/chat/completions", `{"chatId":"c","responseChatItemId":"r1","messages":[{"role":"user","content":"hi"}]}`); st != 200 {
		t.Fatalf("chat: %d %s", st, b)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/core/chat/getHistories", `{"appId":"app","offset":0,"pageSize":20}`, 200},
		{"POST", "/api/core/chat/getPaginationRecords", `{"appId":"app","chatId":"c"}`, 200},
		{"GET", "/api/core/chat/init?appId=app&chatId=c", "", 200},
		{"POST", "/api/core/chat/getHistories", `{"appId":"app","source":"api"}`, 501},
		{"POST", "/api/core/chat/updateHistory", `{"appId":"app","chatId":"c","top":true}`, 501},
		{"DELETE", "/api/core/chat/clearHistories?appId=app", "", 501},
		{"DELETE", "/api/core/chat/item/delete?appId=app&chatId=c&contentId=r1", "", 501},
		{"POST", "/api/core/chat/feedback/updateUserFeedback", `{"appId":"app","chatId":"c","dataId":"r1","userGoodFeedback":"yes"}`, 501},
		{"GET", "/api/core/chat/getResData?appId=app&chatId=c&dataId=r1", "", 501},
	} {
		st, b := call(c.method, c.path, c.body)
		if st != c.status || (st == 501 && !strings.Contains(b, `"statusText":"not_implemented"`)) {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, st, b, c.status)
		}
	}
	conv, recs, err := store.Conversation(ctx, auth.DefaultTeam, "app", "c", 0)
	if err != nil || conv.Top || len(recs) != 2 || recs[1].DataID != "r1" || recs[1].UserGoodFeedback != "" {
		t.Fatalf("after: %+v %+v %v", conv, recs, err)
	}
	// delHistory needs no capability
	if st, b := call("DELETE", "/api/core/chat/delHistory?appId=app&chatId=c", ""); st != 200 {
		t.Fatalf("delHistory: %d %s", st, b)
	}
}
