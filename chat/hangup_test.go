package chat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// pgLikeStore is a MemoryStore whose AppendTurn refuses an ended context,
// as Postgres may; with ignoreCtx it stores regardless, as bbolt does (and
// as Postgres does when ctx ends while the commit is under way).
type pgLikeStore struct {
	*chat.MemoryStore
	ignoreCtx bool
	fail      error // when set, AppendTurn fails with it
}

func (s *pgLikeStore) AppendTurn(ctx context.Context, c *chat.Conversation, recs []chat.Record) error {
	if err := ctx.Err(); err != nil && !s.ignoreCtx {
		return err
	}
	if s.fail != nil {
		return s.fail
	}
	return s.MemoryStore.AppendTurn(ctx, c, recs)
}

// pgLikeLedger is a UsageRecorder that refuses an ended context, as the
// Postgres and bbolt ledgers do.
type pgLikeLedger struct {
	mu   sync.Mutex
	recs []chat.UsageRecord
}

func (u *pgLikeLedger) RecordChatUsage(ctx context.Context, r chat.UsageRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.recs = append(u.recs, r)
	return nil
}

func (u *pgLikeLedger) modules() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.recs {
		out = append(out, r.Module)
	}
	return out
}

// hangUpModel answers in full, then the client hangs up just before
// Generate returns: the answer exists and cost tokens, but ctx has ended.
// Without hangUp it is a model that honours ctx.
type hangUpModel struct {
	hangUp func()
}

func (m *hangUpModel) Generate(ctx context.Context, _ chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	if err := ctx.Err(); err != nil {
		return chat.ModelResult{}, err
	}
	for _, p := range []string{"All ", "of ", "it."} {
		if err := onToken(p); err != nil {
			return chat.ModelResult{}, err
		}
	}
	if m.hangUp != nil {
		m.hangUp()
	}
	return chat.ModelResult{Text: "All of it.", FinishReason: "stop", Usage: chat.Usage{PromptTokens: 9, CompletionTokens: 4}}, nil
}

// hangUpRetriever searches, then the client hangs up before it returns.
type hangUpRetriever struct {
	hangUp func()
}

func (r *hangUpRetriever) Retrieve(context.Context, chat.RetrieveRequest) (chat.RetrieveResult, error) {
	r.hangUp()
	return chat.RetrieveResult{Quotes: []chat.Quote{{ID: "q", Q: "What?", A: "That.", Score: 0.9}}, Model: "embed-x", Tokens: 5}, nil
}

type hangUpFixture struct {
	e      *chat.Engine
	store  *pgLikeStore
	ledger *pgLikeLedger
	model  *hangUpModel
	ret    *hangUpRetriever
}

func newHangUpFixture(t *testing.T) *hangUpFixture {
	t.Helper()
	f := &hangUpFixture{store: &pgLikeStore{MemoryStore: chat.NewMemoryStore()}, ledger: &pgLikeLedger{},
		model: &hangUpModel{}, ret: &hangUpRetriever{}}
	f.e = chat.NewEngine(chat.EngineOptions{Apps: f.store, History: f.store, Models: modelsWith("m", f.model),
		Retriever: f.ret, Usage: f.ledger, Tokens: testTokens})
	for _, a := range []*chat.App{
		{ID: "plain", Name: "plain", Model: "m"},
		{ID: "kb", Name: "kb", Model: "m", DatasetIDs: []string{"d1"}},
	} {
		if err := f.e.SaveApp(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *hangUpFixture) turns(t *testing.T, app, chatID string) int {
	t.Helper()
	_, total, err := f.store.Records(context.Background(), auth.DefaultTeam, app, chatID, 0, 0)
	if errors.Is(err, chat.ErrChatNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return total / 2
}

// A client that hangs up as the answer completes still has the turn it
// was given stored, and billed once: a turn is stored if and only if its
// usage is recorded. (A model that reports no usage leaves the engine to
// count the prompt, which stops when the client leaves: then nothing is
// stored or billed, as TestRunClientLeavesBeforeCounting holds.)
func TestRunClientHangsUpAsAnswerCompletes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ignoreCtx bool
	}{{"store honours ctx", false}, {"store ignores ctx", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHangUpFixture(t)
			f.store.ignoreCtx = tc.ignoreCtx
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.model.hangUp = cancel
			sink := &eventLog{tl: &timeline{}, fail: func(chat.Event) error { return ctx.Err() }}
			res, err := f.e.Run(ctx, chat.Request{TeamID: auth.DefaultTeam, KeyID: "k", AppID: "plain", ChatID: "h1",
				Messages: user("all?")}, sink)
			stored, billed := f.turns(t, "plain", "h1"), f.ledger.modules()
			if stored != 1 || len(billed) != 1 || billed[0] != "AI Chat" {
				t.Fatalf("%d turns stored, usage recorded %v (Run: %v); want 1 turn and AI Chat once", stored, billed, err)
			}
			// the client is gone, so it cannot hear "done"; the turn is over all the same
			if !errors.Is(err, context.Canceled) || res == nil || res.Text != "All of it." {
				t.Fatalf("Run = %+v, %v; want the result and the client's cancellation", res, err)
			}
			if u := f.ledger.recs[0]; u.InputTokens != 9 || u.OutputTokens != 4 || u.KeyID != "k" || u.ChatID != "h1" {
				t.Fatalf("usage %+v", u)
			}
		})
	}
}

// A search that ran is billed though the client left before the answer:
// the answer, cut off, is neither stored nor billed.
func TestRunClientHangsUpAfterSearch(t *testing.T) {
	f := newHangUpFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.ret.hangUp = cancel
	_, err := f.e.Run(ctx, chat.Request{TeamID: auth.DefaultTeam, KeyID: "k", AppID: "kb", ChatID: "h2", Messages: user("what?")},
		&eventLog{tl: &timeline{}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want the client's cancellation", err)
	}
	if got := f.ledger.modules(); len(got) != 1 || got[0] != "KB Search" {
		t.Fatalf("usage recorded %v, want KB Search once", got)
	}
	if u := f.ledger.recs[0]; u.Model != "embed-x" || u.InputTokens != 5 || u.KeyID != "k" {
		t.Fatalf("KB Search usage %+v", u)
	}
	if n := f.turns(t, "kb", "h2"); n != 0 {
		t.Fatalf("%d turns stored for an answer the model never finished", n)
	}
}

// A turn the store refused is not billed, and the run fails.
func TestRunStoreFailureBillsNothing(t *testing.T) {
	f := newHangUpFixture(t)
	f.store.fail = errors.New("disk full")
	_, err := f.e.Run(context.Background(), chat.Request{TeamID: auth.DefaultTeam, AppID: "plain", ChatID: "h3", Messages: user("q")},
		&eventLog{tl: &timeline{}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run = %v, want the store's error", err)
	}
	if got := f.ledger.modules(); len(got) != 0 {
		t.Fatalf("usage recorded %v for a turn that was not stored", got)
	}
}

// leaveModel answers in full, then has the client leave and waits until
// the server has noticed, so the turn completes on an ended request.
type leaveModel struct {
	mu    sync.Mutex
	leave func()
}

func (m *leaveModel) Generate(ctx context.Context, _ chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	for _, p := range []string{"All ", "of ", "it."} {
		if err := onToken(p); err != nil {
			return chat.ModelResult{}, err
		}
	}
	m.mu.Lock()
	leave := m.leave
	m.mu.Unlock()
	leave()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		return chat.ModelResult{}, errors.New("the server never saw the client leave")
	}
	return chat.ModelResult{Text: "All of it.", FinishReason: "stop", Usage: chat.Usage{PromptTokens: 9, CompletionTokens: 4}}, nil
}

// A share-link visitor who hangs up as the answer completes has the visit
// reported to the link, as the turn is stored and billed, streamed or not:
// the link's owner hears of every chat it pays for.
func TestShareLinkVisitorHangsUpAsAnswerCompletes(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			m, links, ledger := &leaveModel{}, &fakeLinks{}, &pgLikeLedger{}
			ended := make(chan struct{})
			links.visit = chat.Visit{TeamID: auth.DefaultTeam, AppID: "app1", LinkID: "L", UID: "u1", Token: "tok",
				End: func() { close(ended) }}
			g := newGateway(t, gatewayConfig{usage: ledger, models: map[string]chat.Model{"script": m, "script2": m},
				opts: chat.HandlerOptions{ShareLinks: links}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m.mu.Lock()
			m.leave = cancel
			m.mu.Unlock()
			resp, err := g.request(ctx, http.MethodPost, "/api/v1/chat/completions", "",
				fmt.Sprintf(`{"shareId":"L","chatId":"c","stream":%v,"messages":[{"role":"user","content":"all?"}]}`, stream))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the visit never ended")
			}
			_, total, err := g.store.Records(context.Background(), auth.DefaultTeam, "app1", "share:L:u1:c", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, finished := links.calls()
			if billed := ledger.modules(); total != 2 || len(billed) != 1 || billed[0] != "AI Chat" || len(finished) != 1 {
				t.Fatalf("%d records stored, usage %v, %d visits finished; want one turn, AI Chat, one visit", total, billed, len(finished))
			}
			if f := finished[0]; f.ctxErr != nil || len(f.responses) != 1 || f.responses[0].ModuleName != "AI Chat" {
				t.Fatalf("finished %+v", f)
			}
		})
	}
}
