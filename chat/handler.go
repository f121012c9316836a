package chat

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// HandlerOptions configure a Handler. The zero value is usable.
type HandlerOptions struct {
	// MaxBody limits a chat completion's body; 4 MiB when zero.
	MaxBody int64
	// MaxAPIBody limits the bodies of the routes other than completions
	// (sessions/clear, the history and the app routes); 1 MiB when zero.
	MaxAPIBody int64
	// Heartbeat is the silence after which a stream gets a keep-alive
	// comment; DefaultHeartbeat when zero.
	Heartbeat time.Duration
	// ResponsesEvent names the SSE event that carries the module responses
	// with detail=true: "flowResponses" (default) or FastGPT's older
	// "appStreamResponse".
	ResponsesEvent string
	// ShareLinks, when set, lets share-link visitors chat without a key;
	// nil refuses requests without one.
	ShareLinks ShareLinks
	Logger     *slog.Logger
}

// Handler serves the chat routes. Register mounts them behind a guard, each
// with its scope and its error shape; Routes lists them for a caller that
// mounts them itself.
type Handler struct {
	e    *Engine
	opts HandlerOptions
	log  *slog.Logger
}

// NewHandler returns the chat routes on e.
func NewHandler(e *Engine, opts HandlerOptions) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 4 << 20
	}
	if opts.MaxAPIBody <= 0 {
		opts.MaxAPIBody = 1 << 20
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.ResponsesEvent == "" {
		opts.ResponsesEvent = "flowResponses"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{e: e, opts: opts, log: log}
}

// Routes lists the chat routes. Completions, on /api/v1/chat/completions
// and on /v1/chat/completions (for SDKs whose base URL ends in /v1), take
// any key and check its scope themselves, to tell a key without an app that
// it needs one, and answer refusals in OpenAI's shape, so that OpenAI's SDKs
// raise their typed errors; with ShareLinks set, they also serve visitors
// without a key. The model routes list the apps a key may address, in
// OpenAI's shape, for clients that ask before they chat. The history
// routes take any key and check it against the app; the app routes need
// the admin scope.
func (h *Handler) Routes() []auth.Route {
	completions := auth.Route{MaxBody: h.opts.MaxBody, OnError: WriteOpenAIError, Handler: http.HandlerFunc(h.Completions)}
	if h.opts.ShareLinks != nil {
		completions.Keyless = keyless{h: h, links: h.opts.ShareLinks}
	}
	v1 := completions
	completions.Pattern, v1.Pattern = "POST /api/v1/chat/completions", "POST /v1/chat/completions"
	api := h.opts.MaxAPIBody
	models := func(pattern string, fn http.HandlerFunc) auth.Route {
		return auth.Route{Pattern: pattern, OnError: WriteOpenAIError, Handler: fn}
	}
	return append([]auth.Route{
		completions, v1,
		models("GET /v1/models", h.ListModels), models("GET /api/v1/models", h.ListModels),
		models("GET /v1/models/{model}", h.Model), models("GET /api/v1/models/{model}", h.Model),
		{Pattern: "POST /api/v1/sessions/clear", MaxBody: api, Handler: http.HandlerFunc(h.ClearSession)},
		{Pattern: "GET /api/core/chat/getHistories", Handler: http.HandlerFunc(h.Histories)},
		{Pattern: "GET /api/core/chat/getPaginationRecords", Handler: http.HandlerFunc(h.Records)},
		{Pattern: "POST /api/core/app/create", Scope: auth.ScopeAdmin, MaxBody: api, Handler: http.HandlerFunc(h.CreateApp)},
		{Pattern: "GET /api/core/app/list", Scope: auth.ScopeAdmin, MaxBody: api, Handler: http.HandlerFunc(h.ListApps)},
		{Pattern: "GET /api/core/app/detail", Scope: auth.ScopeAdmin, MaxBody: api, Handler: http.HandlerFunc(h.AppDetail)},
		{Pattern: "PUT /api/core/app/update", Scope: auth.ScopeAdmin, MaxBody: api, Handler: http.HandlerFunc(h.UpdateApp)},
		{Pattern: "DELETE /api/core/app/del", Scope: auth.ScopeAdmin, MaxBody: api, Handler: http.HandlerFunc(h.DeleteApp)},
	}, h.historyRoutes()...)
}

// Register mounts the chat routes on mux behind g.
func (h *Handler) Register(mux *http.ServeMux, g auth.Guard) { auth.Mount(mux, g, h.Routes()...) }

// appFor returns the app a principal talks to: an app key's own app, or, for
// a key with the chat scope and no app, the one it names. Keys without the
// chat scope get app_key_required. param is the request field that names
// the app, for the error when it is missing.
func appFor(p *auth.Principal, named, param string) (string, error) {
	if !p.Has(auth.ScopeChat) {
		if p.IsAppKey() {
			return "", auth.ScopeDenied(auth.ScopeChat)
		}
		return "", errAppKeyRequired
	}
	if p.IsAppKey() {
		if named != "" && named != p.AppID {
			// An app key always talks to its own app; for chat, "model" is
			// ignored as FastGPT does, but elsewhere naming another app is a mistake.
			return p.AppID, errOtherApp
		}
		return p.AppID, nil
	}
	if named == "" {
		return "", apierror.InvalidRequest(param, "name the app (this key is not bound to one)")
	}
	if err := field.ID(param, named); err != nil {
		return "", err
	}
	return named, nil
}

var errOtherApp = apierror.NotFound("app")

// Completions serves POST /api/v1/chat/completions for the key in the
// request's context.
func (h *Handler) Completions(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	if p == nil {
		WriteOpenAIError(w, r, auth.ErrInvalidKey)
		return
	}
	req, err := decodeCompletion(w, r, h.opts.MaxBody)
	if err != nil {
		WriteOpenAIError(w, r, err)
		return
	}
	appID, err := appFor(p, req.Model, "model")
	if err != nil && !errors.Is(err, errOtherApp) {
		WriteOpenAIError(w, r, err)
		return
	}
	h.answer(w, r, Request{TeamID: p.TeamID, KeyID: p.KeyID, AppID: appID, ChatID: req.conversationID(), CustomUID: req.endUser()}, req, nil)
}

// answer runs er, completed from req, and answers it; it returns the result
// of a chat that finished.
//
// done, when set, is called with the result of a chat that succeeded
// before its last bytes are written: what it makes durable is so before
// the client holds the whole answer. A chat whose client left once its
// turn was stored and billed succeeded too.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, er Request, req *CompletionRequest, done func(*Result)) *Result {
	er.Messages, er.Variables, er.Temperature = req.Messages, req.Variables, req.Temperature
	er.Tools, er.ToolChoice, er.ParallelToolCalls = req.Tools, req.ToolChoice, req.ParallelToolCalls
	er.ResponseID = req.ResponseChatItemID
	switch {
	case req.MaxCompletionTokens != nil:
		er.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		er.MaxTokens = *req.MaxTokens
	}
	if req.Stream {
		return h.stream(w, r, er, req, done)
	}
	er.Whole = true // nothing is shown before the answer is finished
	res, err := h.e.Run(r.Context(), er, SinkFunc(func(Event) error { return r.Context().Err() }))
	if res != nil && done != nil {
		// With an error too: the client left after the turn was stored and
		// billed, and what done reports is owed for it, as a stream's is.
		done(res)
	}
	if err != nil {
		h.fail(w, r, err)
		return nil
	}
	httpjson.Write(w, http.StatusOK, completionJSON(req.view.result(res), req.Detail))
	return res
}

// stream answers as SSE and returns the result of a chat that finished.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, er Request, req *CompletionRequest, done func(*Result)) *Result {
	sse := newSSESink(w, req.Detail, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, h.opts.ResponsesEvent)
	seen := req.view.sink(sse)
	sink := seen
	if done != nil {
		sink = SinkFunc(func(ev Event) error {
			if ev.Kind == EventDone {
				done(ev.Result) // before the chunk that ends the stream
			}
			return seen.Send(ev)
		})
	}
	ctx, cancel := context.WithCancel(r.Context())
	beats := make(chan struct{})
	defer func() { cancel(); <-beats }() // no write may follow the handler's return
	go func() {
		defer close(beats)
		t := time.NewTicker(h.opts.Heartbeat / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sse.heartbeat(h.opts.Heartbeat)
			}
		}
	}()
	er.ID = NewCompletionID()
	sse.setChunkHead(er.ID, time.Now().Unix(), er.AppID)
	res, err := h.e.Run(ctx, er, sink)
	sse.mu.Lock()
	committed := sse.committed
	sse.mu.Unlock()
	if err != nil && !committed {
		h.fail(w, r, err)
		return nil
	}
	if err != nil && r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "chat stream ended with an error", "app", er.AppID, "err", err)
	}
	if err != nil {
		return nil
	}
	return res
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client is gone; nobody reads the answer
	}
	if status, _, _ := errorParts(err); status >= 500 {
		h.log.ErrorContext(r.Context(), "chat failed", "path", r.URL.Path, "err", err)
	}
	WriteOpenAIError(w, r, err)
}

// completionJSON is the non-stream answer: OpenAI's chat.completion, plus
// FastGPT's responseData with detail=true.
func completionJSON(res *Result, detail bool) any {
	type message struct {
		Role      string          `json:"role"`
		Content   *string         `json:"content"` // null when the model only called tools
		ToolCalls []wholeToolCall `json:"tool_calls,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		FinishReason string  `json:"finish_reason"`
	}
	out := struct {
		ID           string           `json:"id"`
		Object       string           `json:"object"`
		Created      int64            `json:"created"`
		Model        string           `json:"model"`
		Choices      []choice         `json:"choices"`
		Usage        Usage            `json:"usage"`
		ResponseData []ModuleResponse `json:"responseData,omitempty"`
		NewVariables map[string]any   `json:"newVariables,omitempty"`
	}{
		ID: res.ID, Object: "chat.completion", Created: res.Created.Unix(), Model: res.AppID,
		Choices: []choice{{Message: message{Role: "assistant", Content: &res.Text, ToolCalls: wholeToolCalls(res.ToolCalls)}, FinishReason: res.FinishReason}},
		Usage:   res.Usage,
	}
	if res.Text == "" && len(res.ToolCalls) > 0 {
		out.Choices[0].Message.Content = nil
	}
	if detail {
		out.ResponseData = res.Responses
		if out.ResponseData == nil {
			out.ResponseData = []ModuleResponse{}
		}
		out.NewVariables = res.Variables
	}
	return out
}

// wholeToolCall is a finished tool call as a non-stream answer shows it:
// without the index that orders a stream's fragments.
type wholeToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

func wholeToolCalls(cs []ToolCall) []wholeToolCall {
	if len(cs) == 0 {
		return nil
	}
	out := make([]wholeToolCall, len(cs))
	for i, c := range cs {
		out[i] = wholeToolCall{ID: c.ID, Type: cmp.Or(c.Type, "function"), Function: c.Function}
	}
	return out
}

type clearBody struct {
	AgentID    string `json:"agentId"`
	SessionKey string `json:"sessionKey"`
}

// ClearSession serves POST /api/v1/sessions/clear {agentId, sessionKey}:
// it deletes a conversation's history. Clearing one that does not exist
// succeeds with deleted=false, so retries are safe.
func (h *Handler) ClearSession(w http.ResponseWriter, r *http.Request) {
	p := auth.MustFromContext(r.Context())
	var b clearBody
	if err := httpjson.Decode(w, r, &b, 16<<10); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if b.SessionKey == "" {
		h.envelopeError(w, r, apierror.InvalidRequest("sessionKey", "is required"))
		return
	}
	if err := checkChatID("sessionKey", b.SessionKey); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	appID, err := appFor(p, b.AgentID, "agentId")
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if _, err := h.app(r.Context(), p, appID); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	err = h.e.cfg.History.DeleteConversation(r.Context(), p.TeamID, appID, b.SessionKey)
	if err != nil && !errors.Is(err, ErrChatNotFound) {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, map[string]any{"agentId": appID, "sessionKey": b.SessionKey, "deleted": err == nil})
}

// Histories serves GET /api/core/chat/getHistories?appId=&offset=&pageSize=
// (and source= and customUid=, as the POST form takes them).
func (h *Handler) Histories(w http.ResponseWriter, r *http.Request) {
	p, appID, offset, size, err := h.historyQuery(r)
	uid := r.URL.Query().Get("customUid")
	if err == nil {
		err = checkChatID("customUid", uid)
	}
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	h.list(w, r, chatRef{p: p, appID: appID}, ConversationFilter{CustomUID: uid, Source: r.URL.Query().Get("source")}, offset, size)
}

// Records serves GET /api/core/chat/getPaginationRecords?appId=&chatId=&offset=&pageSize=
// (and customUid=).
func (h *Handler) Records(w http.ResponseWriter, r *http.Request) {
	p, appID, offset, size, err := h.historyQuery(r)
	chatID, uid := r.URL.Query().Get("chatId"), r.URL.Query().Get("customUid")
	if err == nil && chatID == "" {
		err = apierror.InvalidRequest("chatId", "is required")
	}
	if err == nil {
		err = field.First(checkChatID("chatId", chatID), checkChatID("customUid", uid))
	}
	if err == nil && uid != "" {
		_, err = h.own(r.Context(), chatRef{p: p, appID: appID, chatID: chatID, customUID: uid})
	}
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	recs, total, err := h.e.cfg.History.Records(r.Context(), p.TeamID, appID, chatID, offset, size)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if recs == nil {
		recs = []Record{}
	}
	httpjson.WriteData(w, map[string]any{"list": recs, "total": total})
}

// historyQuery reads the app and page of a history route and checks that
// the caller may read that app's history.
func (h *Handler) historyQuery(r *http.Request) (p *auth.Principal, appID string, offset, size int, err error) {
	p = auth.MustFromContext(r.Context())
	q := r.URL.Query()
	if appID, err = appFor(p, q.Get("appId"), "appId"); err != nil {
		return
	}
	if _, err = h.app(r.Context(), p, appID); err != nil {
		return
	}
	offset, size, err = httpjson.Page(q)
	return
}

// app loads an app of the principal's team; another team's is not found.
func (h *Handler) app(ctx context.Context, p *auth.Principal, appID string) (*App, error) {
	a, err := h.e.cfg.Apps.App(ctx, p.TeamID, appID)
	if errors.Is(err, ErrAppNotFound) {
		return nil, apierror.NotFound("app")
	}
	return a, err
}

func (h *Handler) envelopeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrAppNotFound), errors.Is(err, errOtherApp):
		err = apierror.NotFound("app")
	case errors.Is(err, ErrChatNotFound):
		err = apierror.NotFound("chat")
	case errors.Is(err, ErrRecordNotFound):
		err = apierror.NotFound("record")
	}
	httpjson.WriteError(w, r, h.log, err)
}
