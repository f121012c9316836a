package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Role is a message author, as OpenAI names them.
type Role string

// Message roles.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool carries a tool's result back to the model.
	RoleTool Role = "tool"
)

// Message is one message of a conversation.
type Message struct {
	Role Role `json:"role"`
	// Content is the message's text: its text parts joined when it has Parts.
	Content string `json:"content"`
	// Parts is the content as the client sent it, in order, when it holds
	// more than text (images); nil for text alone.
	Parts []ContentPart `json:"parts,omitempty"`
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID names the call a tool message answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ContentPart is one part of a message's content, as OpenAI names them.
type ContentPart struct {
	Type     string    `json:"type"` // "text" or "image_url"
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is an image_url part's image: an http(s) or data: URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"` // auto, low or high
}

// ToolCall is a call of a function tool, in OpenAI's shape. In a stream,
// a ToolCall is a fragment: Index says which call it continues, and
// Arguments is the next piece of that call's arguments.
type ToolCall struct {
	Index    int          `json:"index"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"` // "function"
	Function FunctionCall `json:"function"`
}

// FunctionCall is what a ToolCall calls.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Feature is something a request may need of its model beyond text.
type Feature string

// Features a request may need.
const (
	// FeatureTools: tools, tool_choice, tool calls and tool results.
	FeatureTools Feature = "tools"
	// FeatureImages: image_url content parts.
	FeatureImages Feature = "image_url"
)

// FeatureModel is a Model that takes more than text. The engine refuses a
// request needing a Feature its model does not support, naming the field,
// rather than drop it; a Model that is not a FeatureModel takes text only.
type FeatureModel interface {
	Model
	Supports(f Feature) bool
}

// Quote is a knowledge-base passage retrieved for a question.
type Quote struct {
	DatasetID    string  `json:"dataset_id"`
	CollectionID string  `json:"collectionId,omitempty"`
	ID           string  `json:"id"`
	Q            string  `json:"q"`
	A            string  `json:"a"`
	Source       string  `json:"source"`
	Score        float64 `json:"score"`
}

// ModelRequest is what a Model is asked to answer.
type ModelRequest struct {
	// Model is the app's model name, for providers that serve several.
	Model       string
	Messages    []Message // system prompt, quotes, history and the question
	Question    string    // the last user message
	Quotes      []Quote   // the retrieved quotes, also rendered into Messages
	EmptyAnswer string    // what to say when nothing in the quotes answers
	MaxTokens   int       // 0: the model's default
	Temperature *float64  // nil: the model's default
	// Tools, ToolChoice and ParallelToolCalls are the request's, as the
	// client sent them (JSON), for a FeatureModel that supports
	// FeatureTools; nil when absent.
	Tools             json.RawMessage
	ToolChoice        json.RawMessage
	ParallelToolCalls *bool
	// OnToolCall, when set, receives the tool-call fragments of a stream
	// as they come; a model that calls tools must call it, in order with
	// onToken, and stop with its error.
	OnToolCall func(ToolCall) error
	// Whole: nobody reads the answer before it is finished (a non-stream
	// completion). A model may then ask its upstream for the answer whole,
	// as one response, which costs the upstream and the relay less than a
	// stream, and call neither onToken nor OnToolCall; it returns the text
	// and the tool calls in its result. A model may also ignore it.
	Whole bool
	// Ahead, when set, is called by a streaming model just before it hands
	// onToken a token whose successor it already has (read from the
	// upstream, not awaited): the chat may then hold that token back from
	// the client's connection until the next, so that tokens which arrived
	// together leave in one write rather than one each. A model that calls
	// it must hand over the next token at once.
	Ahead func()
}

// Usage counts the tokens of one model call.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ModelResult is a finished answer.
type ModelResult struct {
	Text         string
	FinishReason string // "stop", "length" or "tool_calls"
	// ToolCalls are the finished calls the model made, whole.
	ToolCalls []ToolCall
	// Usage is the provider's count; zero when it gave none, and the engine
	// then counts with its tokenizer.
	Usage Usage
}

// Model answers a request, streaming the answer through onToken as it is
// produced. An error from onToken (the client went away) must stop the model
// and be returned. onToken may be nil: a caller that wants only the finished
// answer (QA-mode training asks for Q/A pairs that way) passes nil, and the
// model must then return the result without calling it. A Model must honour
// ctx cancellation.
type Model interface {
	Generate(ctx context.Context, req ModelRequest, onToken func(delta string) error) (ModelResult, error)
}

// ModelFunc adapts a function to Model. The function is called as is, so it
// must itself allow a nil onToken (see Model).
type ModelFunc func(ctx context.Context, req ModelRequest, onToken func(string) error) (ModelResult, error)

// Generate implements Model.
func (f ModelFunc) Generate(ctx context.Context, req ModelRequest, onToken func(string) error) (ModelResult, error) {
	return f(ctx, req, onToken)
}

// UpstreamError reports that a model provider failed. The chat route answers
// it with 502 before the stream starts, or an error event after.
type UpstreamError struct {
	Provider string
	Err      error
}

// Error describes the failed call and its cause.
func (e *UpstreamError) Error() string {
	return fmt.Sprintf("model provider %s failed: %v", e.Provider, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *UpstreamError) Unwrap() error { return e.Err }

// ModelLookup resolves an app's model name to the Model that answers it.
// *Models is the registry chatgate ships; a service that picks models its
// own way implements this.
type ModelLookup interface {
	// Lookup returns the model for name, or an error wrapping
	// ErrUnknownModel when none serves it.
	Lookup(name string) (Model, error)
}

// ModelLookupFunc adapts a function to ModelLookup.
type ModelLookupFunc func(name string) (Model, error)

// Lookup implements ModelLookup.
func (f ModelLookupFunc) Lookup(name string) (Model, error) { return f(name) }

// Models resolves an app's model name to a Model. Its zero value knows no
// models; Register adds them, and a fallback serves names not registered.
type Models struct {
	mu       sync.RWMutex
	byName   map[string]Model
	fallback Model
}

// Register makes m answer for name, replacing any model of that name.
func (r *Models) Register(name string, m Model) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName == nil {
		r.byName = map[string]Model{}
	}
	r.byName[name] = m
}

// SetFallback makes m answer every name that is not registered, as an
// OpenAI-compatible provider configured from OPENAI_BASE_URL does.
func (r *Models) SetFallback(m Model) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fallback = m
}

// Lookup returns the model for name, or ErrUnknownModel.
func (r *Models) Lookup(name string) (Model, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if m, ok := r.byName[name]; ok {
		return m, nil
	}
	if r.fallback != nil {
		return r.fallback, nil
	}
	return nil, fmt.Errorf("%w: %q (registered: %v)", ErrUnknownModel, name, r.namesLocked())
}

// Names returns the registered model names, sorted.
func (r *Models) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Models) namesLocked() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownModel reports an app whose model no provider serves.
var ErrUnknownModel = errors.New("chat: unknown model")
