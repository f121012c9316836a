package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/tokens"
)

// lastWordModel streams its whole answer, tells the test it has, and
// returns only once the client has hung up: the turn is complete, and
// everything after it runs on a request whose context has ended.
type lastWordModel struct {
	answered chan struct{}
}

func (m lastWordModel) Generate(ctx context.Context, _ chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	for _, p := range []string{"every ", "word ", "said"} {
		if err := onToken(p); err != nil {
			return chat.ModelResult{}, err
		}
	}
	close(m.answered)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		return chat.ModelResult{}, errors.New("the client never hung up")
	}
	return chat.ModelResult{Text: "every word said", FinishReason: "stop", Usage: chat.Usage{PromptTokens: 30, CompletionTokens: 3}}, nil
}

// A client that hangs up the moment the answer is complete, on a real
// connection, leaves the turn both stored and in the ledger, and the key
// charged for it: the server's history store and ledger (bbolt, or
// Postgres with CHATGATE_TEST_POSTGRES) are on the other side of the
// engine. Issue 13's soak saw such turns stored unbilled.
func TestClientHangsUpAsAnswerCompletes(t *testing.T) {
	for _, driver := range []string{"bbolt", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			cfg := Config{RootKey: "sk-root-cut-stream-0123456789", Stderr: io.Discard}
			cfg.Server.Data = t.TempDir()
			cfg.Logging.Level = "error"
			if driver == "postgres" {
				cfg.Storage.Driver, cfg.Storage.DSN = "postgres", pgtest.DSN(t)
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			for _, stream := range []bool{true, false} {
				t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) { testHangUp(t, s, stream) })
			}
		})
	}
}

func testHangUp(t *testing.T, s *Server, stream bool) {
	ctx := context.Background()
	m := lastWordModel{answered: make(chan struct{})}
	models := new(chat.Models)
	models.Register("last-word", m)
	// The server's engine with this one model: init builds it so.
	s.Chat = chat.NewEngine(chat.EngineOptions{Apps: s.be.chat, History: s.be.chat, Models: models,
		Retriever: retriever{s.Datasets}, Usage: chatUsage{s.Billing, newUsageMetrics(prometheus.NewRegistry()), s.Share},
		Tokens: tokens.Estimate{}, Price: s.Billing, Budget: s.Billing, Logger: s.log})
	s.handler = s.routes()
	app := fmt.Sprint("cut-", stream)
	if err := s.Chat.SaveApp(ctx, &chat.App{ID: app, Name: app, TeamID: auth.DefaultTeam, Model: "last-word"}); err != nil {
		t.Fatal(err)
	}
	key, secret, err := s.Keys.Create(ctx, auth.KeySpec{Name: app, AppID: app})
	if err != nil {
		t.Fatal(err)
	}

	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	rctx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	body := fmt.Sprintf(`{"chatId":"c1","stream":%v,"messages":[{"role":"user","content":"say it all"}]}`, stream)
	req, _ := http.NewRequestWithContext(rctx, "POST", srv.URL+"/api/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	client := &http.Client{Transport: &http.Transport{}}
	done := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-m.answered:
	case err := <-done:
		t.Fatalf("the chat ended before the model answered: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the model never answered")
	}
	hangUp()
	<-done
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after the client hung up")
	}

	_, records, err := s.be.chat.Records(ctx, auth.DefaultTeam, app, "c1", 0, 0)
	if err != nil && !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatal(err)
	}
	recs, total, err := s.be.ledger.List(ctx, billing.Filter{TeamID: auth.DefaultTeam, KeyID: key.ID})
	if err != nil {
		t.Fatal(err)
	}
	if records != 2 || total != 1 || recs[0].Module != "AI Chat" || recs[0].InputTokens != 30 || recs[0].OutputTokens != 3 {
		t.Fatalf("%d history records (want one turn, 2) and %d usage records (want AI Chat once): %+v", records, total, recs)
	}
	used, err := s.Authn.UsedPoints(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !(used > 0) || used != recs[0].Points {
		t.Fatalf("key charged %v points; the ledger has %v", used, recs[0].Points)
	}
}
