package chat

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/id"
	"github.com/chatgate/chatgate/tokens"
)

// Request is one chat turn, as the engine sees it: already authenticated
// and decoded.
type Request struct {
	// ID is the completion id; NewCompletionID() when empty.
	ID     string
	TeamID string
	KeyID  string
	AppID  string
	// ChatID names a stored conversation. Empty means stateless: the context
	// is Messages alone and nothing is stored.
	ChatID    string
	Messages  []Message
	Variables map[string]any
	// MaxTokens and Temperature override the app's settings when set.
	MaxTokens   int
	Temperature *float64
	// Tools, ToolChoice and ParallelToolCalls pass to a model that
	// supports FeatureTools (see ModelRequest); a request with tools for
	// another model is refused.
	Tools             json.RawMessage
	ToolChoice        json.RawMessage
	ParallelToolCalls *bool
	ShareID           string // set for share-link chats
	UID               string // the share-link visitor, if known
	// CustomUID is the caller's end user: a new conversation is theirs, and
	// one of another end user's (or of none) is ErrOtherEndUser.
	CustomUID string
	// ResponseID is the dataId of the answer's record; a new id when empty.
	// A dataId the conversation holds already is a conflict.
	ResponseID string
	// Whole: the caller wants the finished answer only (a non-stream
	// completion), so the model may ask its upstream for it whole rather
	// than as a stream (see ModelRequest.Whole); the sink then gets no
	// EventDelta or EventToolCall from a model that does.
	Whole bool
}

// EngineOptions hold what an Engine works with. Apps and History are
// required; every other field may be left zero.
type EngineOptions struct {
	Apps    AppStore
	History HistoryStore
	// Models resolves an app's model name; nil knows no models, so every
	// turn fails with ErrUnknownModel. *Models is the registry chatgate ships.
	Models ModelLookup
	// Retriever, when set, searches an app's datasets before it answers.
	Retriever Retriever
	// Usage, when set, receives the usage of every module of every turn.
	Usage UsageRecorder
	// Price, when set, prices a module's tokens in points; responseData's
	// price field is points x 100000, as FastGPT reports it. Nil prices
	// everything at 0.
	Price Pricer
	// Budget, when set, is asked before any work whether an app with a
	// budget (App.MaxUsagePoints) may spend more.
	Budget BudgetReserver
	// Tokens counts a turn's tokens when the model reports none; nil:
	// tokens.Estimate. Pass a *cl100k.Counter to count as OpenAI does.
	Tokens tokens.Counter
	// HistoryLimit is how many stored messages a turn sees; 0: 30.
	HistoryLimit int
	Logger       *slog.Logger
}

// Engine runs chat turns. It is safe for concurrent use.
type Engine struct {
	cfg EngineOptions
	log *slog.Logger
}

// NewEngine returns an Engine on opts.
func NewEngine(opts EngineOptions) *Engine {
	if opts.Tokens == nil {
		opts.Tokens = tokens.Estimate{}
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 30
	}
	if opts.Models == nil {
		opts.Models = new(Models)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Engine{cfg: opts, log: log}
}

// settleTimeout bounds the work a run owes once the model has answered or
// the search has run: storing and billing it. That work is done
// whether or not the client is still there, so it runs on a context the
// client's leaving does not end; the bound keeps a hung database from
// holding the goroutine, and the app's budget reservation, for good. Each
// step is one short transaction, milliseconds when the database is well:
// 10s rides out a pool briefly exhausted or a slow fsync, and is under the
// server's default 30s shutdown grace, so a shutdown that starts as a
// client hangs up still sees the turn stored and billed.
const settleTimeout = 10 * time.Second

// settle returns the context of work already paid for: ctx's values, not
// its cancellation.
func settle(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// Errors a run can end with, besides the model's own.
var (
	ErrNoQuestion = apierror.InvalidRequest("messages", "the last message must come from the user")
)

// Run answers req, sending its events to sink, and returns the result. It
// sends EventDone on success and EventError on failure (unless the sink
// itself failed), and stores the turn only when it succeeded, so a failed
// run, or one cancelled before the model answered, leaves no half-written
// history. Once the model has answered and the turn is counted, it is
// stored and its usage recorded even if ctx ends meanwhile; a sink that
// then fails on EventDone makes Run return the result with the sink's
// error.
func (e *Engine) Run(ctx context.Context, req Request, sink Sink) (*Result, error) {
	res, err := e.run(ctx, req, sink)
	if err != nil {
		var se *sinkError
		if !errors.As(err, &se) {
			_ = sink.Send(Event{Kind: EventError, Err: err})
		} else {
			err = se.err
		}
		return nil, err
	}
	if err := sink.Send(Event{Kind: EventDone, Result: res}); err != nil {
		return res, err
	}
	return res, nil
}

// sinkError marks an error that came from the sink, which is not told of it.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

func (e *Engine) send(sink Sink, ev Event) error {
	if err := sink.Send(ev); err != nil {
		return &sinkError{err}
	}
	return nil
}

func (e *Engine) run(ctx context.Context, req Request, sink Sink) (*Result, error) {
	now := time.Now()
	app, err := e.cfg.Apps.App(ctx, req.TeamID, req.AppID) // another team's app is as missing as a missing one
	if err != nil {
		return nil, err
	}
	model, err := e.cfg.Models.Lookup(app.Model)
	if err != nil {
		return nil, err
	}
	if e.cfg.Budget != nil && app.MaxUsagePoints > 0 {
		end, err := e.cfg.Budget.ReserveBudget(ctx, app.TeamID, app.ID, app.MaxUsagePoints)
		if err != nil {
			return nil, err
		}
		defer end()
	}
	if err := checkFeatures(model, app.Model, req); err != nil {
		return nil, err
	}
	question, err := questionOf(req)
	if err != nil {
		return nil, err
	}

	// History and variables: a stored conversation keeps its variables, and
	// the request's override them.
	var (
		conv    *Conversation
		history []Record
		vars    = req.Variables
	)
	if req.ChatID != "" {
		conv, history, err = e.cfg.History.Conversation(ctx, req.TeamID, app.ID, req.ChatID, e.cfg.HistoryLimit)
		switch {
		case errors.Is(err, ErrChatNotFound):
			conv = &Conversation{TeamID: req.TeamID, AppID: app.ID, ChatID: req.ChatID, KeyID: req.KeyID,
				ShareID: req.ShareID, OutLinkUID: req.UID, CustomUID: req.CustomUID,
				Title: title(question), CreateTime: now.UTC()}
		case err != nil:
			return nil, fmt.Errorf("chat: load history: %w", err)
		case req.CustomUID != "" && conv.CustomUID != req.CustomUID:
			return nil, otherEndUser(req.CustomUID)
		case req.ResponseID != "":
			if err := e.checkResponseID(ctx, conv, req.ResponseID); err != nil {
				return nil, err
			}
		}
		vars = maps.Clone(conv.Variables)
		if vars == nil {
			vars = map[string]any{}
		}
		maps.Copy(vars, req.Variables)
		if len(req.Variables) > 0 && !reflect.DeepEqual(vars, conv.Variables) {
			if err := e.send(sink, Event{Kind: EventVariables, Variables: vars}); err != nil {
				return nil, err
			}
		}
	}

	if req.ID == "" {
		req.ID = NewCompletionID()
	}
	res := &Result{ID: req.ID, Created: now, AppID: app.ID, Model: app.Model, ChatID: req.ChatID, Variables: vars}

	// Retrieval.
	var quotes []Quote
	if len(app.DatasetIDs) > 0 && e.cfg.Retriever != nil {
		quotes, err = e.search(ctx, req, app, question, sink, res)
		if err != nil {
			return nil, err
		}
	}

	// The prompt: system prompt, quotes, then history or the request's messages.
	msgs := make([]Message, 0, len(history)+len(req.Messages)+2)
	if p := strings.TrimSpace(substitute(app.SystemPrompt, vars)); p != "" {
		msgs = append(msgs, Message{Role: RoleSystem, Content: p})
	}
	if len(quotes) > 0 {
		msgs = append(msgs, Message{Role: RoleSystem, Content: quotePrompt(app.QuoteTemplate, quotes)})
	}
	if req.ChatID != "" {
		for _, r := range history {
			role := RoleUser
			if r.Obj == "AI" {
				role = RoleAssistant
			}
			msgs = append(msgs, Message{Role: role, Content: r.Value})
		}
		msgs = append(msgs, Message{Role: RoleUser, Content: question})
	} else {
		msgs = append(msgs, req.Messages...)
	}

	if err := e.send(sink, Event{Kind: EventNodeStatus, Node: NodeStatus{Status: "running", Name: "AI Chat"}}); err != nil {
		return nil, err
	}
	mreq := ModelRequest{Model: app.Model, Messages: msgs, Question: question, Quotes: quotes,
		EmptyAnswer: app.EmptyAnswer, MaxTokens: app.MaxTokens, Temperature: app.Temperature,
		Tools: req.Tools, ToolChoice: req.ToolChoice, ParallelToolCalls: req.ParallelToolCalls,
		OnToolCall: func(c ToolCall) error { return e.send(sink, Event{Kind: EventToolCall, ToolCall: c}) }, Whole: req.Whole}
	if req.MaxTokens > 0 {
		mreq.MaxTokens = req.MaxTokens
	}
	if req.Temperature != nil {
		mreq.Temperature = req.Temperature
	}
	var (
		answer strings.Builder
		ahead  bool // the model has the next token in hand
	)
	mreq.Ahead = func() { ahead = true }
	started := time.Now()
	out, err := model.Generate(ctx, mreq, func(delta string) error {
		more := ahead
		ahead = false
		if delta == "" {
			return nil
		}
		answer.WriteString(delta)
		return e.send(sink, Event{Kind: EventDelta, Delta: delta, More: more})
	})
	if err != nil {
		var se *sinkError
		if errors.As(err, &se) || ctx.Err() != nil {
			return nil, errors.Join(err, ctx.Err())
		}
		var ue *UpstreamError
		if !errors.As(err, &ue) {
			err = &UpstreamError{Provider: app.Model, Err: err}
		}
		return nil, err
	}
	res.Text = out.Text
	if res.Text == "" {
		res.Text = answer.String()
	}
	res.FinishReason, res.ToolCalls = out.FinishReason, out.ToolCalls
	switch {
	case res.FinishReason == "" && len(res.ToolCalls) > 0:
		res.FinishReason = "tool_calls"
	case res.FinishReason == "":
		res.FinishReason = "stop"
	}
	res.Usage = out.Usage
	if res.Usage.PromptTokens == 0 && res.Usage.CompletionTokens == 0 {
		prompt, err := CountMessages(ctx, e.cfg.Tokens, msgs)
		if err != nil {
			return nil, fmt.Errorf("chat: count prompt tokens: %w", err)
		}
		res.Usage = Usage{PromptTokens: prompt, CompletionTokens: e.cfg.Tokens.Count(res.Text)}
		for _, c := range res.ToolCalls { // the calls are the model's output too
			res.Usage.CompletionTokens += e.cfg.Tokens.Count(c.Function.Name + c.Function.Arguments)
		}
	}
	res.Usage.TotalTokens = res.Usage.PromptTokens + res.Usage.CompletionTokens
	// The turn is answered and counted (counting a long prompt stops when
	// the client leaves, and then nothing is stored or billed): a client that
	// hangs up from here on must not leave it stored unbilled, the store
	// having committed and the ledger refused the ended ctx.
	ctx, cancel := settle(ctx)
	defer cancel()

	complete := make([]CompleteMessage, 0, len(msgs)+1)
	for _, m := range msgs {
		complete = append(complete, CompleteMessage{Obj: objOf(m.Role), Value: m.Content})
	}
	complete = append(complete, CompleteMessage{Obj: "AI", Value: res.Text})
	var preview []CompleteMessage
	for _, m := range complete {
		if m.Obj != "System" {
			preview = append(preview, m)
		}
	}
	points := e.points(app.Model, res.Usage.PromptTokens, res.Usage.CompletionTokens)
	res.Responses = append(res.Responses, ModuleResponse{
		ModuleName: "AI Chat", ModuleType: ModuleTypeChat, Model: app.Model, Tokens: res.Usage.TotalTokens,
		InputTokens: res.Usage.PromptTokens, OutputTokens: res.Usage.CompletionTokens,
		Price: priceOf(points), TotalPoints: points, Query: question, HistoryPreview: preview, ContextTotalLen: len(preview),
		Question: question, Answer: res.Text, MaxToken: mreq.MaxTokens, QuoteList: quotes,
		CompleteMessages: complete, RunningTime: roundSeconds(time.Since(started)),
	})

	// Store the turn whole, then account for it, before the client hears "done".
	if conv != nil {
		conv.Variables, conv.UpdateTime = vars, time.Now().UTC()
		t := conv.UpdateTime
		recs := []Record{
			{DataID: id.New(), Obj: "Human", Value: question, Time: t},
			{DataID: cmp.Or(req.ResponseID, id.New()), Obj: "AI", Value: res.Text, Time: t, ResponseData: res.Responses},
		}
		if err := e.cfg.History.AppendTurn(ctx, conv, recs); err != nil {
			return nil, fmt.Errorf("chat: store history: %w", err)
		}
	}
	if err := e.record(ctx, req, app, "AI Chat", app.Model, res.Usage.PromptTokens, res.Usage.CompletionTokens); err != nil {
		return nil, err
	}
	return res, nil
}

func otherEndUser(uid string) error {
	return ErrOtherEndUser.WithMessage("chat not found for customUid %q", uid)
}

// checkResponseID refuses a responseChatItemId the conversation holds
// already, so that dataIds name one record.
func (e *Engine) checkResponseID(ctx context.Context, c *Conversation, dataID string) error {
	hs, ok := e.cfg.History.(HistorySearcher)
	if !ok {
		return nil
	}
	_, err := hs.Record(ctx, c.TeamID, c.AppID, c.ChatID, dataID)
	switch {
	case err == nil:
		return apierror.ErrConflict.WithMessage("responseChatItemId %q is already a record of chat %q", dataID, c.ChatID)
	case errors.Is(err, ErrRecordNotFound), errors.Is(err, ErrChatNotFound):
		return nil
	}
	return fmt.Errorf("chat: load history: %w", err)
}

func (e *Engine) search(ctx context.Context, req Request, app *App, question string, sink Sink, res *Result) ([]Quote, error) {
	if err := e.send(sink, Event{Kind: EventNodeStatus, Node: NodeStatus{Status: "running", Name: "KB Search"}}); err != nil {
		return nil, err
	}
	limit := app.Search.Limit
	if limit == 0 {
		limit = 5
	}
	started := time.Now()
	rr, err := e.cfg.Retriever.Retrieve(ctx, RetrieveRequest{TeamID: req.TeamID, DatasetIDs: app.DatasetIDs, Query: question,
		Limit: limit, Similarity: app.Search.Similarity, Mode: app.Search.Mode, BillKeyID: req.KeyID})
	if err != nil {
		return nil, fmt.Errorf("chat: knowledge-base search: %w", err)
	}
	// The search cost tokens whether or not the client waits for the answer.
	sctx, cancel := settle(ctx)
	defer cancel()
	sim := app.Search.Similarity
	points := e.points(rr.Model, rr.Tokens, 0)
	res.Responses = append(res.Responses, ModuleResponse{ModuleName: "KB Search", ModuleType: ModuleTypeDatasetSearch,
		Model: rr.Model, Tokens: rr.Tokens, InputTokens: rr.Tokens, Price: priceOf(points), TotalPoints: points,
		Similarity: &sim, Limit: limit, SearchMode: app.Search.Mode, QuoteList: rr.Quotes, RunningTime: roundSeconds(time.Since(started))})
	if err := e.record(sctx, req, app, "KB Search", rr.Model, rr.Tokens, 0); err != nil {
		return nil, err
	}
	return rr.Quotes, nil
}

func (e *Engine) record(ctx context.Context, req Request, app *App, module, model string, in, out int) error {
	if e.cfg.Usage == nil {
		return nil
	}
	err := e.cfg.Usage.RecordChatUsage(ctx, UsageRecord{TeamID: req.TeamID, KeyID: req.KeyID, AppID: app.ID, ChatID: req.ChatID,
		ShareID: req.ShareID, Module: module, Model: model, InputTokens: in, OutputTokens: out, Time: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("chat: record usage: %w", err)
	}
	return nil
}

// points is what tokens of model cost, 0 without a price list.
func (e *Engine) points(model string, in, out int) float64 {
	if e.cfg.Price == nil {
		return 0
	}
	return e.cfg.Price.Points(model, in, out)
}

// priceOf is FastGPT's older price field for points: points x 100000.
func priceOf(points float64) float64 {
	return math.Round(points*100000*1000) / 1000
}

// questionOf is the text of req's last user message, which must end
// the messages, or be followed only by the tool calls it led to and their
// results.
func questionOf(req Request) (string, error) {
	n := len(req.Messages)
	if n > 0 && req.Messages[n-1].Role == RoleTool {
		if req.ChatID != "" {
			return "", errToolsNeedMessages
		}
		for i := n - 1; i >= 0; i-- {
			if req.Messages[i].Role == RoleUser {
				return req.Messages[i].Content, nil
			}
		}
		return "", nil // a conversation a system prompt began: tools answer it
	}
	if n == 0 || req.Messages[n-1].Role != RoleUser {
		return "", ErrNoQuestion
	}
	if req.ChatID != "" && (req.Tools != nil || usesTools(req.Messages)) {
		return "", errToolsNeedMessages
	}
	return req.Messages[n-1].Content, nil
}

// NewCompletionID returns a new completion id, chatcmpl-<random>.
func NewCompletionID() string { return "chatcmpl-" + id.New() }

// quotePrompt renders quotes into the app's quote template.
func quotePrompt(tmpl string, quotes []Quote) string {
	var b strings.Builder
	for i, q := range quotes {
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(". [")
		b.WriteString(q.Q)
		if q.A != "" {
			b.WriteString("\n")
			b.WriteString(q.A)
		}
		b.WriteString("]\n")
	}
	return strings.ReplaceAll(tmpl, "{{quote}}", b.String())
}

// title is the first line of the first question, cut to 50 characters.
func title(q string) string {
	q = strings.TrimSpace(strings.SplitN(q, "\n", 2)[0])
	if r := []rune(q); len(r) > 50 {
		return string(r[:50]) + "…"
	}
	return q
}

func roundSeconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}
