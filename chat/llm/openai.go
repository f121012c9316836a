package llm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// OpenAI is a chat.FeatureModel answered by any OpenAI-compatible server,
// through its chat-completions protocol: text, images, tools, tool calls
// and results. It speaks the protocol itself, rather than through
// langchaingo as Ollama does, because it is the relay's hot path: a
// request costs it one encoding of the body and, per streamed token, a
// scan of the chunk's bytes (see stream.go), where langchaingo compiled
// regular expressions and re-encoded the body on every call and rebuilt
// the tool fields it lacks.
//
// Set BaseURL; the zero value of every other field works. NewOpenAI
// returns one with a client that keeps connections to the provider.
type OpenAI struct {
	// BaseURL of the API (…/v1); requests go to BaseURL/chat/completions.
	BaseURL string
	// APIKey is sent as a bearer token. It is chatgate's own credential:
	// the caller's chatgate key is never forwarded. Empty sends none.
	APIKey string
	// Name is the upstream model name; when empty, the app's is sent.
	Name string
	// HTTPClient makes the calls; nil is http.DefaultClient.
	HTTPClient *http.Client
	// IdleTimeout abandons a stream whose upstream sends nothing for this
	// long; DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// WholeTimeout abandons a non-stream call that has no answer after
	// this long; DefaultWholeTimeout when zero.
	WholeTimeout time.Duration
}

var _ chat.FeatureModel = (*OpenAI)(nil)

// NewOpenAI returns the OpenAI model c declares.
func NewOpenAI(c Config) (*OpenAI, error) {
	if c.BaseURL == "" {
		return nil, errors.New("llm: openai provider needs a base URL")
	}
	return &OpenAI{BaseURL: c.BaseURL, APIKey: c.APIKey, Name: c.Model, HTTPClient: c.client(),
		IdleTimeout: c.IdleTimeout, WholeTimeout: c.WholeTimeout}, nil
}

// Supports implements chat.FeatureModel: tools and images.
func (o *OpenAI) Supports(f chat.Feature) bool {
	return f == chat.FeatureTools || f == chat.FeatureImages
}

// StatusError is an upstream's refusal: a status other than 200, with the
// message its body gave. It reaches the caller inside a
// *chat.UpstreamError.
type StatusError struct {
	StatusCode int
	Message    string // the body's error.message, or the start of the body
}

// Error reports the status and the upstream's message.
func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("status %d", e.StatusCode)
	}
	return fmt.Sprintf("status %d: %s", e.StatusCode, e.Message)
}

const provider = "openai"

var (
	errStalled  = errors.New("upstream sent nothing within the idle timeout")
	errNoAnswer = errors.New("upstream sent no answer within the timeout of a non-stream call")
	errNoFinish = errors.New("the answer ended without a finish reason")
)

// maxWholeBody bounds a non-stream answer, and maxErrorBody what is read
// of a refusal: an upstream's body is not trusted to end.
const (
	maxWholeBody = 64 << 20
	maxErrorBody = 64 << 10
)

// Generate implements chat.Model. A call that nobody reads before it is
// finished (onToken nil, or req.Whole) asks for the whole answer in one
// response, bounded by WholeTimeout; any other call streams, and the idle
// timeout tells a stalled upstream from a slow one.
func (o *OpenAI) Generate(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	whole := onToken == nil || req.Whole
	body, err := requestBody(o.Name, req, !whole)
	if err != nil {
		return chat.ModelResult{}, err
	}
	limit, stall := cmp.Or(o.IdleTimeout, DefaultIdleTimeout), errStalled
	if whole {
		limit, stall = cmp.Or(o.WholeTimeout, DefaultWholeTimeout), errNoAnswer
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(limit, func() { cancel(stall) })
	defer timer.Stop()

	res, err := o.call(ctx, body, whole, req, onToken, timer, limit)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(context.Cause(ctx), stall):
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: stall}
	case ctx.Err() != nil:
		return chat.ModelResult{}, ctx.Err()
	}
	return chat.ModelResult{}, err
}

// call makes the request and reads its answer; errors of the upstream's
// making come back as *chat.UpstreamError, the chat's own as they are.
func (o *OpenAI) call(ctx context.Context, body []byte, whole bool, req chat.ModelRequest, onToken func(string) error,
	timer *time.Timer, idle time.Duration) (chat.ModelResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return chat.ModelResult{}, fmt.Errorf("llm: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if whole {
		hr.Header.Set("Accept", "application/json")
	} else {
		hr.Header.Set("Accept", "text/event-stream")
	}
	if o.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: refusal(resp)}
	}
	if whole || !isEventStream(resp.Header.Get("Content-Type")) {
		// a server that ignores "stream" answers whole too
		defer resp.Body.Close()
		res, err := readWhole(resp.Body)
		if err == nil && !whole && res.Text != "" {
			err = onToken(res.Text)
		}
		return res, err
	}
	s := &stream{body: resp.Body, cancel: cancel, alive: func() { timer.Reset(idle) }, onToken: onToken, onToolCall: req.OnToolCall, ahead: req.Ahead}
	defer s.close()
	return s.read()
}

func isEventStream(ct string) bool {
	return strings.HasPrefix(strings.TrimSpace(ct), "text/event-stream")
}

// refusal is the error a non-200 response stands for.
func refusal(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &StatusError{StatusCode: resp.StatusCode}
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Error) > 0 {
		var obj struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(env.Error, &obj) == nil && obj.Message != "" {
			e.Message = obj.Message
		} else if json.Unmarshal(env.Error, &e.Message) != nil {
			e.Message = string(env.Error)
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(b[:min(len(b), 512)]))
	}
	return e
}

// wireUsage and wireError are the usage and error objects of OpenAI's
// responses and chunks.
type (
	wireUsage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
	wireError struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	}
)

func (u *wireUsage) usage() chat.Usage {
	if u == nil {
		return chat.Usage{}
	}
	return chat.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

// upstreamSaid is the error an upstream reported in a 200 response.
func upstreamSaid(e *wireError) error {
	if e.Message == "" {
		return fmt.Errorf("upstream reported an error of type %q", e.Type)
	}
	return fmt.Errorf("upstream reported an error: %s", e.Message)
}

// readWhole reads a non-stream answer.
func readWhole(body io.Reader) (chat.ModelResult, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxWholeBody+1))
	if err != nil {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: err}
	}
	if len(b) > maxWholeBody {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: fmt.Errorf("the answer is over %d bytes", maxWholeBody)}
	}
	var r struct {
		Choices []struct {
			Message struct {
				Content   *string         `json:"content"`
				ToolCalls []chat.ToolCall `json:"tool_calls"`
			} `json:"message"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *wireUsage `json:"usage"`
		Error *wireError `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: fmt.Errorf("the answer is not JSON: %w", err)}
	}
	if r.Error != nil {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: upstreamSaid(r.Error)}
	}
	if len(r.Choices) == 0 {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: errors.New("no choices in the response")}
	}
	c := r.Choices[0]
	if c.FinishReason == nil || *c.FinishReason == "" {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: errNoFinish}
	}
	res := chat.ModelResult{FinishReason: *c.FinishReason, Usage: r.Usage.usage()}
	if c.Message.Content != nil {
		res.Text = *c.Message.Content
	}
	for i, tc := range c.Message.ToolCalls {
		tc.Index = i
		res.ToolCalls = append(res.ToolCalls, tc)
	}
	return res, nil
}
