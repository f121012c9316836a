package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tmc/langchaingo/llms"

	"github.com/chatgate/chatgate/chat"
)

// Tool calls go through langchaingo's OpenAI client, which builds the
// request (messages, images, tool calls and results, auth) and reads the
// status and the stream, but two of its parts are worked around here, on
// the wire, by the transport of the client it is given:
//
//   - It has no parallel_tool_calls, and it rebuilds tools from
//     llms.Tool, sending "parameters": null for a tool without them.
//     tools, tool_choice and parallel_tool_calls are therefore set in the
//     request body as the client sent them.
//   - Its stream drops each tool-call fragment's index, appends argument
//     fragments to the last call (which mixes up parallel calls whose
//     fragments interleave) and hands the streaming callback a JSON dump
//     of the fragments that cannot be told from text. The transport
//     therefore reads the stream itself as langchaingo reads it, and the
//     text and tool-call fragments go to the chat from there, in order.

// toolCall is what a call with tools tells the transport, through the
// request's context.
type toolCall struct {
	fields map[string]json.RawMessage // set at the top of the request body
	watch  *streamWatch
}

type toolCallKey struct{}

// wireTransport applies a call's toolCall to its request and response.
type wireTransport struct {
	base http.RoundTripper
}

func (t wireTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tc, _ := r.Context().Value(toolCallKey{}).(*toolCall)
	if tc == nil || r.Body == nil {
		return t.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("llm: the request body is not a JSON object: %w", err)
	}
	for k, v := range tc.fields {
		m[k] = v
	}
	if body, err = json.Marshal(m); err != nil {
		return nil, err
	}
	r = r.Clone(r.Context()) // a RoundTripper must not change its request
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && tc.watch != nil {
		resp.Body = &watchedBody{ReadCloser: resp.Body, w: tc.watch}
	}
	return resp, err
}

// streamWatch reads an OpenAI stream's events: text deltas and tool-call
// fragments go to the chat as they come, and the calls are put together
// by index.
type streamWatch struct {
	// emit is called, under the Model's lock, with each text delta or
	// tool-call fragment; it returns the chat's error to stop the stream.
	emit  func(text string, call *chat.ToolCall) error
	line  []byte
	calls []chat.ToolCall // by index
}

type watchedBody struct {
	io.ReadCloser
	w   *streamWatch
	err error
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.ReadCloser.Read(p)
	if werr := b.w.feed(p[:n]); werr != nil {
		// the chat's error: langchaingo sees a failed read and stops
		b.err = werr
		return 0, werr
	}
	return n, err
}

// feed takes the next bytes of the stream and handles every line they end.
func (w *streamWatch) feed(p []byte) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			return nil
		}
		w.line = append(w.line, p[:i]...)
		p = p[i+1:]
		line := bytes.TrimSpace(w.line)
		w.line = w.line[:0]
		if err := w.event(line); err != nil {
			return err
		}
	}
	return nil
}

type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content   string          `json:"content"`
			ToolCalls []chat.ToolCall `json:"tool_calls"`
		} `json:"delta"`
	} `json:"choices"`
}

func (w *streamWatch) event(line []byte) error {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return nil
	}
	data = bytes.TrimSpace(data)
	var c streamChunk
	if len(data) == 0 || data[0] != '{' || json.Unmarshal(data, &c) != nil || len(c.Choices) == 0 {
		return nil // [DONE], a usage chunk, or what langchaingo skips too
	}
	d := c.Choices[0].Delta
	if d.Content != "" {
		if err := w.emit(d.Content, nil); err != nil {
			return err
		}
	}
	for _, f := range d.ToolCalls {
		if f.Index < 0 || f.Index > len(w.calls) {
			return fmt.Errorf("upstream sent tool call index %d after %d calls", f.Index, len(w.calls))
		}
		if f.Index == len(w.calls) {
			w.calls = append(w.calls, chat.ToolCall{Index: f.Index})
		}
		call := &w.calls[f.Index]
		if f.ID != "" {
			call.ID = f.ID
		}
		if f.Type != "" {
			call.Type = f.Type
		}
		call.Function.Name += f.Function.Name
		call.Function.Arguments += f.Function.Arguments
		if err := w.emit("", &f); err != nil {
			return err
		}
	}
	return nil
}

// wireFields are a request's tool fields as the body carries them.
func wireFields(req chat.ModelRequest) map[string]json.RawMessage {
	f := map[string]json.RawMessage{"tools": req.Tools}
	if req.ToolChoice != nil {
		f["tool_choice"] = req.ToolChoice
	}
	if req.ParallelToolCalls != nil {
		f["parallel_tool_calls"] = json.RawMessage(fmt.Sprint(*req.ParallelToolCalls))
	}
	return f
}

// messages converts the chat's messages to langchaingo's, with their
// images, tool calls and tool results.
func messages(in []chat.Message) ([]llms.MessageContent, error) {
	out := make([]llms.MessageContent, 0, len(in))
	for i, m := range in {
		mc := llms.MessageContent{Role: llms.ChatMessageTypeHuman}
		switch m.Role {
		case chat.RoleSystem:
			mc.Role = llms.ChatMessageTypeSystem
		case chat.RoleAssistant:
			mc.Role = llms.ChatMessageTypeAI
		case chat.RoleTool:
			mc.Role = llms.ChatMessageTypeTool
			mc.Parts = []llms.ContentPart{llms.ToolCallResponse{ToolCallID: m.ToolCallID, Content: m.Content}}
			out = append(out, mc)
			continue
		}
		switch {
		case m.Parts != nil:
			for _, p := range m.Parts {
				switch {
				case p.Type == "image_url" && p.ImageURL != nil:
					mc.Parts = append(mc.Parts, llms.ImageURLWithDetailPart(p.ImageURL.URL, p.ImageURL.Detail))
				case p.Type == "text":
					mc.Parts = append(mc.Parts, llms.TextPart(p.Text))
				default:
					return nil, fmt.Errorf("llm: messages[%d]: content part of type %q", i, p.Type)
				}
			}
		case m.Content != "" || len(m.ToolCalls) == 0:
			mc.Parts = []llms.ContentPart{llms.TextPart(m.Content)}
		}
		for _, c := range m.ToolCalls {
			mc.Parts = append(mc.Parts, llms.ToolCall{ID: c.ID, Type: "function",
				FunctionCall: &llms.FunctionCall{Name: c.Function.Name, Arguments: c.Function.Arguments}})
		}
		out = append(out, mc)
	}
	return out, nil
}

// wireClient returns c with the transport that carries tool calls.
func wireClient(c *http.Client) *http.Client {
	cc := *c
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = wireTransport{base: base}
	return &cc
}

// withToolCall returns ctx carrying tc for the transport.
func withToolCall(ctx context.Context, tc *toolCall) context.Context {
	return context.WithValue(ctx, toolCallKey{}, tc)
}

// errToolsUnsupported is returned by a provider that cannot take tools,
// should the chat ask it anyway.
var errToolsUnsupported = errors.New("this provider does not take tools or images")
