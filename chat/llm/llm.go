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
	"github.com/tmc/langchaingo/llms/openai"

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
// callback and reading token usage from its generation info. NewOpenAI and
// NewOllama return one; wrap another langchaingo model by setting LLM.
type Model struct {
	LLM      llms.Model
	Provider string // for errors: "openai", "ollama"
	// Name is the upstream model name; when empty, the app's model name is sent.
	Name string
	// IdleTimeout abandons a call whose upstream sends nothing for this long;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// WholeTimeout abandons a non-stream call that has no answer after
	// this long; DefaultWholeTimeout when zero.
	WholeTimeout time.Duration
	// requireFinish treats a stream without a finish reason as cut off;
	// langchaingo reports one for OpenAI but not for Ollama.
	requireFinish bool
	// tools: the provider takes tools and images (chat.FeatureModel).
	tools bool
	// wire: the LLM's client goes through wireTransport (tools.go), which
	// reads its streams and lets it make non-stream calls.
	wire bool
}

var _ chat.FeatureModel = (*Model)(nil)

// Supports implements chat.FeatureModel: the OpenAI provider takes tools
// and images; Ollama, through langchaingo, neither.
func (l *Model) Supports(f chat.Feature) bool {
	return l.tools && (f == chat.FeatureTools || f == chat.FeatureImages)
}

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

// NewOpenAI returns a Model for any OpenAI-compatible server.
func NewOpenAI(c Config) (*Model, error) {
	if c.BaseURL == "" {
		return nil, errors.New("llm: openai provider needs a base URL")
	}
	key := c.APIKey
	if key == "" {
		key = "none" // local OpenAI-compatible servers often need no key; langchaingo insists on one
	}
	opts := []openai.Option{openai.WithBaseURL(c.BaseURL), openai.WithToken(key), openai.WithHTTPClient(wireClient(c.client()))}
	if c.Model != "" {
		opts = append(opts, openai.WithModel(c.Model))
	}
	llm, err := openai.New(opts...)
	m, err := c.model("openai", llm, err, true)
	if m != nil {
		m.tools, m.wire = true, true
	}
	return m, err
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
	return c.model("ollama", llm, err, false)
}

// model is the Model of llm, which provider's constructor returned with err.
func (c Config) model(provider string, llm llms.Model, err error, requireFinish bool) (*Model, error) {
	if err != nil {
		return nil, fmt.Errorf("llm: %s provider: %w", provider, err)
	}
	return &Model{LLM: llm, Provider: provider, Name: c.Model, IdleTimeout: c.IdleTimeout, WholeTimeout: c.WholeTimeout,
		requireFinish: requireFinish}, nil
}

var (
	errStalled  = errors.New("upstream sent nothing within the idle timeout")
	errNoAnswer = errors.New("upstream sent no answer within the timeout of a non-stream call")
)

// Generate implements chat.Model. A call that nobody reads before it is
// finished (onToken nil, or req.Whole) asks an OpenAI-compatible provider
// for the whole answer in one response, bounded by WholeTimeout; any
// other call streams, and the idle timeout tells a stalled upstream from a
// slow one.
func (l *Model) Generate(ctx context.Context, req chat.ModelRequest, onToken func(string) error) (chat.ModelResult, error) {
	whole := l.wire && (onToken == nil || req.Whole)
	if onToken == nil {
		onToken = func(string) error { return nil }
	}
	if !l.tools && (req.Tools != nil || needsMore(req.Messages)) {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errToolsUnsupported}
	}
	msgs, err := messages(req.Messages)
	if err != nil {
		return chat.ModelResult{}, err
	}
	model := l.Name
	if model == "" {
		model = req.Model
	}
	idle, limit, stall := l.IdleTimeout, l.IdleTimeout, errStalled
	if idle <= 0 {
		idle, limit = DefaultIdleTimeout, DefaultIdleTimeout
	}
	if whole {
		limit, stall = cmp.Or(l.WholeTimeout, DefaultWholeTimeout), errNoAnswer
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu    sync.Mutex
		timer = time.AfterFunc(limit, func() { cancel(stall) })
	)
	defer timer.Stop()

	var (
		sinkErr  error
		streamed strings.Builder
		watch    *streamWatch
		over     bool // Generate has returned: nothing more reaches the chat
	)
	opts := []llms.CallOption{llms.WithModel(model)}
	switch {
	case whole:
		// no streaming func: langchaingo asks for, and reads, one response
		ctx = withWireCall(ctx, &wireCall{fields: wireFields(req)})
	case l.wire:
		// the transport reads the stream (see tools.go); langchaingo's
		// callback then only tells the idle timer the upstream is alive
		watch = &streamWatch{
			alive: func() {
				mu.Lock()
				defer mu.Unlock()
				timer.Reset(idle)
			},
			emit: func(text string, call *chat.ToolCall) error {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case over:
					return context.Canceled
				case call != nil:
					if req.OnToolCall != nil {
						sinkErr = req.OnToolCall(*call)
					}
				case text != "":
					streamed.WriteString(text)
					sinkErr = onToken(text)
				}
				return sinkErr
			}}
		ctx = withWireCall(ctx, &wireCall{fields: wireFields(req), watch: watch})
		opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error {
			mu.Lock()
			defer mu.Unlock()
			timer.Reset(idle)
			return nil
		}))
	default:
		opts = append(opts, llms.WithStreamingFunc(func(_ context.Context, chunk []byte) error {
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
		}))
	}
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
	if cause := context.Cause(ctx); errors.Is(cause, stall) {
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: stall}
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
	if l.requireFinish && (c.StopReason == "" || c.StopReason == "<nil>") {
		// A stream that ends without a finish reason was cut off upstream.
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errors.New("the answer ended without a finish reason")}
	}
	if !l.requireFinish && c.Content != streamed.String() {
		// langchaingo's Ollama client ignores read errors and fills the
		// content only from the final (done) message: a stream cut off
		// upstream ends without an error and without that content.
		return chat.ModelResult{}, &chat.UpstreamError{Provider: l.Provider, Err: errors.New("stream ended before its final message")}
	}
	res := chat.ModelResult{Text: c.Content, FinishReason: c.StopReason}
	switch {
	case whole:
		res.ToolCalls = wholeToolCalls(c.ToolCalls)
	case watch != nil:
		// langchaingo saw none of the deltas
		res.Text, res.ToolCalls = streamed.String(), watch.calls
	}
	if res.FinishReason == "" {
		res.FinishReason = "stop"
	}
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
