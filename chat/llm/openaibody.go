package llm

import (
	"cmp"
	"encoding/json"
	"fmt"

	"github.com/chatgate/chatgate/chat"
)

// wireRequest is the body of a chat-completions call. The tool fields go
// as the client sent them: the upstream, not chatgate, judges tools.
type wireRequest struct {
	Model               string             `json:"model"`
	Messages            []wireMessage      `json:"messages"`
	Stream              bool               `json:"stream,omitempty"`
	StreamOptions       *wireStreamOptions `json:"stream_options,omitempty"`
	MaxCompletionTokens int                `json:"max_completion_tokens,omitempty"`
	Temperature         *float64           `json:"temperature,omitempty"`
	Tools               json.RawMessage    `json:"tools,omitempty"`
	ToolChoice          json.RawMessage    `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool              `json:"parallel_tool_calls,omitempty"`
}

// wireStreamOptions asks a stream to end with its usage, which is what
// the ledger bills.
type wireStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// wireMessage is one message as OpenAI takes it. Content is a string, or
// the parts of a message with images; an assistant message that only
// calls tools has none.
type wireMessage struct {
	Role       chat.Role      `json:"role"`
	Content    any            `json:"content,omitempty"`
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

// wireToolCall is a call an assistant message made: chat.ToolCall without
// the index, which only stream fragments carry.
type wireToolCall struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Function chat.FunctionCall `json:"function"`
}

// requestBody encodes req for the upstream model (the app's when model is
// empty), as a stream or not.
func requestBody(model string, req chat.ModelRequest, stream bool) ([]byte, error) {
	w := wireRequest{Model: cmp.Or(model, req.Model), Messages: make([]wireMessage, len(req.Messages)), Stream: stream,
		MaxCompletionTokens: req.MaxTokens, Temperature: req.Temperature,
		Tools: req.Tools, ToolChoice: req.ToolChoice, ParallelToolCalls: req.ParallelToolCalls}
	if stream {
		w.StreamOptions = &wireStreamOptions{IncludeUsage: true}
	}
	if req.Tools == nil {
		w.ToolChoice, w.ParallelToolCalls = nil, nil
	}
	for i, m := range req.Messages {
		wm := wireMessage{Role: m.Role, ToolCallID: m.ToolCallID}
		switch {
		case m.Parts != nil:
			for _, p := range m.Parts {
				switch {
				case p.Type == "text", p.Type == "image_url" && p.ImageURL != nil:
				default:
					return nil, fmt.Errorf("llm: messages[%d]: content part of type %q", i, p.Type)
				}
			}
			wm.Content = m.Parts
		case m.Content != "" || len(m.ToolCalls) == 0:
			wm.Content = m.Content
		}
		for _, c := range m.ToolCalls {
			wm.ToolCalls = append(wm.ToolCalls, wireToolCall{ID: c.ID, Type: "function", Function: c.Function})
		}
		w.Messages[i] = wm
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("llm: encode the request: %w", err)
	}
	return b, nil
}
