package llm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/ollama"

	"github.com/chatgate/chatgate/chat"
)

// DefaultIdleTimeout is how long an upstream model may go without sending a
// token before the call is abandoned as stalled.
const DefaultIdleTimeout = 60 * time.Second

// DefaultWholeTimeout bounds a non-stream call. Its upstream sends nothing
// until it has the whole answer, so silence cannot tell a stalled upstream
// from a long answer there; a deadline as long as OpenAI's own SDKs give a
// request stands in for the idle timeout.
const DefaultWholeTimeout = 10 * time.Minute

// Model adapts a langchaingo model to chat.Model, streaming through its
// callback and reading token usage from its generation info. NewOllama
// returns one; wrap another langchaingo model by setting LLM. It takes
// text only.
type Model struct {
	LLM      llms.Model
	Provider string // for errors: "ollama"
	// Name is the upstream model name; when empty, the app's model name is sent.
	Name string
	// IdleTimeout abandons a call whose upstream sends nothing for this long;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// wholeStream: the answer's content must equal what was streamed
	// (see Generate); true for Ollama.
	wholeStream bool
}

var _ chat.FeatureModel = (*Model)(nil)

// Supports implements chat.FeatureModel: a langchaingo model takes
// neither tools nor images here.
func (l *Model) Supports(chat.Feature) bool { return false }

// needsMore reports whether msgs hold images, tool calls or tool results.
func needsMore(msgs []chat.Message) bool {
	for _, m := range msgs {
		if m.Parts != nil || len(m.ToolCalls) > 0 || m.Role == chat.RoleTool {
			return true
		}
	}
	return false
}

// Config declares an upstream model provider.
type Config struct {
	// BaseURL of an OpenAI-compatible API (…/v1) or of an Ollama server.
	BaseURL string
	// APIKey for OpenAI-compatible providers. It is chatgate's own credential:
	// the caller's chatgate key is never forwarded.
	APIKey string
	// Model is the upstream model name; empty means the app's model name.
	Model       string
	HTTPClient  *http.Client // nil: one that keeps up to 256 idle connections to the provider
	IdleTimeout time.Duration
	// WholeTimeout bounds a non-stream call to an OpenAI-compatible
	// provider; DefaultWholeTimeout when zero.
	WholeTimeout time.Duration
}

// NewOllama returns a Model for an Ollama server.
func NewOllama(c Config) (*Model, error) {
	if c.BaseURL == "" {
		return nil, errors.New("llm: ollama provider needs a base URL")
	}
	opts := []ollama.Option{ollama.WithServerURL(c.BaseURL), ollama.WithHTTPClient(c.client())}
	if c.Model != "" {
		opts = append(opts, ollama.WithModel(c.Model))
	}
	llm, err := ollama.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("llm: ollama provider: %w", err)
	}
	return &Model{LLM: llm, Provider: "ollama", Name: c.Model, IdleTimeout: c.IdleTimeout, wholeStream: true}, nil
}

// errToolsUnsupported is returned by a langchaingo model asked for tools
// or images, which it is not given here.
var errToolsUnsupported = errors.New("this provider does not take tools or images")

// Generate implements chat.Model. The call streams, and the idle timeout
// tells a stalled upstream from a slow one; a nil onToken only collects
// the answer.
func (l *Model) Generate(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	if onToken == nil {
		onToken = func(string) error { return nil }
	}
	if req.Tools != nil || needsMore(req.Messages) {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errToolsUnsupported}
	}
	msgs := make([]llms.MessageContent, 0, len(req.Messages))
	for _, m := range req.Messages {
		role := llms.ChatMessageTypeHuman
		switch m.Role {
		case chat.RoleSystem:
			role = llms.ChatMessageTypeSystem
		case chat.RoleAssistant:
			role = llms.ChatMessageTypeAI
		}
		msgs = append(msgs, llms.TextParts(role, m.Content))
	}
	model := cmp.Or(l.Name, req.Model)
	idle := cmp.Or(l.IdleTimeout, DefaultIdleTimeout)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu    sync.Mutex
		timer = time.AfterFunc(idle, func() { cancel(errStalled) })
	)
	defer timer.Stop()

	var (
		sinkErr  error
		streamed strings.Builder
		over     bool // Generate has returned: nothing more reaches the chat
	)
	opts := []llms.CallOption{llms.WithModel(model), llms.WithStreamingFunc(func(_ context.Context, chunk []byte) error {
		// langchaingo calls this from a goroutine of its own
		mu.Lock()
		defer mu.Unlock()
		timer.Reset(idle)
		if len(chunk) == 0 || over {
			return nil
		}
		streamed.Write(chunk)
		if err := onToken(string(chunk)); err != nil {
			sinkErr = err
			return err
		}
		return nil
	})}
	if req.MaxTokens > 0 {
		opts = append(opts, llms.WithMaxTokens(req.MaxTokens))
	}
	if req.Temperature != nil {
		opts = append(opts, llms.WithTemperature(*req.Temperature))
	}
	resp, err := l.LLM.GenerateContent(ctx, msgs, opts...)
	mu.Lock()
	over = true
	mu.Unlock()
	if sinkErr != nil {
		return chat.ModelResult{}, sinkErr
	}
	if errors.Is(context.Cause(ctx), errStalled) {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errStalled}
	}
	if ctx.Err() != nil {
		// langchaingo's Ollama client ends a cancelled stream without an error
		return chat.ModelResult{}, ctx.Err()
	}
	if err != nil {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: err}
	}
	if len(resp.Choices) == 0 {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errors.New("no choices in the response")}
	}
	c := resp.Choices[0]
	if l.wholeStream && c.Content != streamed.String() {
		// langchaingo's Ollama client ignores read errors and fills the
		// content only from the final (done) message: a stream cut off
		// upstream ends without an error and without that content.
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errors.New("stream ended before its final message")}
	}
	res := chat.ModelResult{Text: c.Content, FinishReason: cmp.Or(c.StopReason, "stop")}
	res.Usage.PromptTokens = intInfo(c.GenerationInfo, "PromptTokens")
	res.Usage.CompletionTokens = intInfo(c.GenerationInfo, "CompletionTokens")
	return res, nil
}

func intInfo(m map[string]any, k string) int {
	switch v := m[k].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

// client returns c.HTTPClient, or one whose transport keeps enough idle
// connections to the provider for concurrent streams to reuse them: Go's
// default keeps two per host, so a burst of chats would open (and, over
// TLS, handshake) most of its connections anew each time.
func (c Config) client() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr}
}
