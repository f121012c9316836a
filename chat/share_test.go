package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
)

// fakeLinks admits every visitor of link "L" to app1 with the given visit,
// and records what it was asked.
type fakeLinks struct {
	visit chat.Visit
	err   error

	mu       sync.Mutex
	admitted []chat.ShareRequest
	finished []finishedVisit
}

type finishedVisit struct {
	visit     chat.Visit
	responses []chat.ModuleResponse
	ctxErr    error
}

func (l *fakeLinks) Admit(_ context.Context, req chat.ShareRequest) (*chat.Visit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.admitted = append(l.admitted, req)
	if l.err != nil {
		return nil, l.err
	}
	v := l.visit
	return &v, nil
}

func (l *fakeLinks) Finish(ctx context.Context, v *chat.Visit, responses []chat.ModuleResponse) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finished = append(l.finished, finishedVisit{*v, responses, ctx.Err()})
	return nil
}

func (l *fakeLinks) calls() ([]chat.ShareRequest, []finishedVisit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]chat.ShareRequest(nil), l.admitted...), append([]finishedVisit(nil), l.finished...)
}

func shareGateway(t *testing.T, links *fakeLinks) *gateway {
	links.visit = chat.Visit{TeamID: auth.DefaultTeam, AppID: "app1", LinkID: "L", LinkName: "public", UID: "u1", Token: "tok", HideDetail: true}
	usage := &usageLog{}
	return newGateway(t, gatewayConfig{usage: usage, opts: chat.HandlerOptions{ShareLinks: links}})
}

// A visitor without a key chats through ShareLinks: admitted with the
// link, token and question the body names, answered under the link's app
// with the link's detail, their conversation kept apart, and the visit
// finished with every module response before they hold the whole answer
// (so a visit a visitor was answered is never unreported).
func TestShareLinkVisitor(t *testing.T) {
	links := &fakeLinks{}
	g := shareGateway(t, links)
	resp, err := g.request(context.Background(), http.MethodPost, "/api/v1/chat/completions", "",
		`{"shareId":"L","authToken":"tok","outLinkUid":"other","chatId":"c","detail":true,"model":"app2",`+
			`"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"sec"},{"type":"text","text":"ond"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		ResponseData json.RawMessage `json:"responseData"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	// Finish was called before the answer was written
	if _, finished := links.calls(); len(finished) != 1 {
		t.Fatalf("the visitor holds the answer, and %d visits were finished", len(finished))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if out.Choices[0].Message.Content != "The answer is 42." || out.ResponseData != nil {
		t.Fatalf("answer %+v (the link hides responseData)", out)
	}
	admitted, finished := links.calls()
	if len(admitted) != 1 || admitted[0] != (chat.ShareRequest{ShareID: "L", Token: "tok", Question: "second"}) {
		t.Fatalf("admitted %+v", admitted)
	}
	if len(finished) != 1 || finished[0].visit.LinkID != "L" || len(finished[0].responses) != 1 ||
		finished[0].responses[0].ModuleName != "AI Chat" || finished[0].ctxErr != nil {
		t.Fatalf("finished %+v", finished)
	}
	if _, _, err := g.store.Conversation(context.Background(), auth.DefaultTeam, "app1", "share:L:u1:c", 0); err != nil {
		t.Fatalf("the visitor's conversation: %v", err)
	}
	if g.conversations("app1") != 1 {
		t.Fatalf("app1 has %d conversations", g.conversations("app1"))
	}
}

// The token is authToken, else outLinkUid, from the body before the query
// string; a shareId in both must agree.
func TestShareLinkRequestFields(t *testing.T) {
	links := &fakeLinks{}
	g := shareGateway(t, links)
	const q = `"messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct{ query, body, token string }{
		{"", `{"shareId":"L","authToken":"a","outLinkUid":"o",` + q, "a"},
		{"?authToken=qa", `{"shareId":"L","outLinkUid":"o",` + q, "o"},
		{"?authToken=qa&outLinkUid=qo", `{"shareId":"L",` + q, "qa"},
		{"?shareId=L&outLinkUid=qo", `{` + q, "qo"},
		{"?shareId=L", `{"shareId":"L","authToken":5,` + q, ""},
	} {
		links.admitted = nil
		resp, b := g.do(http.MethodPost, "/v1/chat/completions"+tc.query, "", tc.body)
		admitted, _ := links.calls()
		if resp.StatusCode != http.StatusOK || len(admitted) != 1 || admitted[0].ShareID != "L" || admitted[0].Token != tc.token {
			t.Fatalf("%s %s: %d %s, admitted %+v; want token %q", tc.query, tc.body, resp.StatusCode, b, admitted, tc.token)
		}
	}
	resp, b := g.do(http.MethodPost, "/api/v1/chat/completions?shareId=M", "", `{"shareId":"L",`+q)
	checkOpenAIError(t, resp, b, http.StatusBadRequest, "invalid_request_error", "invalid_request", "shareId")
}

// Without a link the visitor is the guard's: 401 in OpenAI's shape, and
// ShareLinks is not asked. Nor is it for a keyed call, which may name a
// link and still chats as its key.
func TestShareLinkDeclined(t *testing.T) {
	links := &fakeLinks{}
	g := shareGateway(t, links)
	for _, body := range []string{`{"messages":[{"role":"user","content":"hi"}]}`, `not json {"shareId":"L"}`, `{"shareId":"L"} {"x":1}`, ``} {
		resp, b := g.do(http.MethodPost, "/api/v1/chat/completions", "", body)
		checkOpenAIError(t, resp, b, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "API key is missing")
	}
	resp, b := g.chat("app2", `{"shareId":"L","chatId":"k","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "I am app two.") {
		t.Fatalf("keyed call naming a link: %d %s", resp.StatusCode, b)
	}
	if admitted, finished := links.calls(); len(admitted)+len(finished) != 0 {
		t.Fatalf("ShareLinks asked: %+v %+v", admitted, finished)
	}
	// without ShareLinks, a visitor naming a link is refused as well
	plain := newGateway(t, gatewayConfig{})
	resp, b = plain.do(http.MethodPost, "/api/v1/chat/completions", "", `{"shareId":"L","messages":[{"role":"user","content":"hi"}]}`)
	checkOpenAIError(t, resp, b, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "API key is missing")
}

// Admit's refusal is answered as it is, in OpenAI's shape; a body that is
// not valid UTF-8 is refused before Admit sees it; a malformed request
// that names a link is admitted first, then refused as a keyed one would
// be; and a visit whose chat failed is not finished.
func TestShareLinkFailures(t *testing.T) {
	links := &fakeLinks{}
	g := shareGateway(t, links)
	links.err = apierror.ErrNotFound.WithMessage("share link not found")
	resp, b := g.do(http.MethodPost, "/api/v1/chat/completions", "", `{"shareId":"L","messages":[{"role":"user","content":"hi"}]}`)
	checkOpenAIError(t, resp, b, http.StatusNotFound, "invalid_request_error", "not_found", "share link not found")
	links.err = nil

	links.admitted = nil
	resp, b = g.do(http.MethodPost, "/api/v1/chat/completions", "", "{\"shareId\":\"L\xff\",\"messages\":[]}")
	checkOpenAIError(t, resp, b, http.StatusBadRequest, "invalid_request_error", "invalid_request", "UTF-8")
	if admitted, _ := links.calls(); len(admitted) != 0 {
		t.Fatalf("admitted %+v", admitted)
	}

	resp, b = g.do(http.MethodPost, "/api/v1/chat/completions", "", `{"shareId":"L","temperature":9,"messages":[{"role":"user","content":"hi"}]}`)
	checkOpenAIError(t, resp, b, http.StatusBadRequest, "invalid_request_error", "invalid_request", "temperature")
	if admitted, finished := links.calls(); len(admitted) != 1 || admitted[0].Question != "hi" || len(finished) != 0 {
		t.Fatalf("admitted %+v, finished %+v", admitted, finished)
	}
}

// A visitor's stream is finished once it has ended.
func TestShareLinkStream(t *testing.T) {
	links := &fakeLinks{}
	g := shareGateway(t, links)
	resp, b := g.do(http.MethodPost, "/api/v1/chat/completions", "", `{"shareId":"L","stream":true,"detail":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), "flowResponses") || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if _, finished := links.calls(); len(finished) != 1 || len(finished[0].responses) != 1 {
		t.Fatalf("finished %+v", finished)
	}
}
