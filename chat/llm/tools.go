package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/chatgate/chatgate/chat"
)

// Calls to an OpenAI-compatible provider go through langchaingo's OpenAI
// client, which builds the request (messages, images, tool calls and
// results, auth) and reads the status, the usage and the finish reason;
// the transport of the client it is given does the rest, on the wire:
//
//   - langchaingo has no parallel_tool_calls, and it rebuilds tools from
//     llms.Tool, sending "parameters": null for a tool without them.
//     tools, tool_choice and parallel_tool_calls are therefore set in the
//     request body as the client sent them.
//   - Its stream reading costs a goroutine hop, a JSON decoder and a
//     string concatenation per token; it drops each tool-call fragment's
//     index, appends argument fragments to the last call (which mixes up
//     parallel calls whose fragments interleave) and hands the streaming
//     callback a JSON dump of the fragments that cannot be told from
//     text. The transport therefore reads the stream itself: the text and
//     tool-call fragments go to the chat from there, in order, and
//     langchaingo is shown only the events it still has to see (the
//     finish reason, the usage, [DONE] and whatever the transport does not
//     understand).
//   - It stops reading at [DONE] and closes the body before its end,
//     which makes Go's client drop the connection instead of reusing it;
//     the transport reads the body's end first.

// wireCall is what a call tells the transport, through the request's
// context.
type wireCall struct {
	fields map[string]json.RawMessage // set at the top of the request body
	watch  *streamWatch               // nil for a non-stream call
}

type wireCallKey struct{}

// drainLimit and drainTimeout bound what a closed body reads of its end:
// a well-behaved upstream ends its body right after the answer, and one
// that does not loses its connection rather than holding up the chat.
const (
	drainLimit   = 4 << 10
	drainTimeout = 200 * time.Millisecond
)

// wireTransport applies a call's wireCall to its request and response.
type wireTransport struct {
	base http.RoundTripper
}

func (t wireTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tc, _ := r.Context().Value(wireCallKey{}).(*wireCall)
	if tc == nil {
		return t.base.RoundTrip(r)
	}
	if len(tc.fields) > 0 && r.Body != nil {
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
	}
	// a context of its own, that a body whose end does not come can be
	// given up on (see wireBody.Close)
	ctx, cancel := context.WithCancel(r.Context())
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	b := &wireBody{ReadCloser: resp.Body, cancel: cancel}
	if resp.StatusCode == http.StatusOK {
		b.w = tc.watch
	}
	resp.Body = b
	return resp, nil
}

// streamWatch reads an OpenAI stream's events: text deltas and tool-call
// fragments go to the chat as they come, and the calls are put together
// by index.
type streamWatch struct {
	// emit is called, under the Model's lock, with each text delta or
	// tool-call fragment; it returns the chat's error to stop the stream.
	emit func(text string, call *chat.ToolCall) error
	// alive is called whenever bytes arrive, to hold off the idle timeout.
	alive func()
	line  []byte
	calls []chat.ToolCall // by index
	done  bool            // [DONE] came: the body's end is next
}

// wireBody is a response body on its way to langchaingo: a stream's is
// read by its streamWatch and passed on without the events the watch
// handled; any body reads its end on Close, so that its connection is
// reused.
type wireBody struct {
	io.ReadCloser
	w      *streamWatch // nil: passed on as it is
	cancel context.CancelFunc
	buf    []byte // read from upstream
	out    []byte // for langchaingo; out[off:] is left
	off    int
	err    error
}

func (b *wireBody) Read(p []byte) (int, error) {
	if b.w == nil {
		return b.ReadCloser.Read(p)
	}
	for b.off == len(b.out) {
		if b.err != nil {
			return 0, b.err
		}
		if b.buf == nil {
			b.buf = make([]byte, 8<<10)
		}
		b.out, b.off = b.out[:0], 0
		n, err := b.ReadCloser.Read(b.buf)
		if n > 0 {
			b.w.alive()
			var werr error
			if b.out, werr = b.w.feed(b.buf[:n], b.out); werr != nil {
				// the chat's error: langchaingo sees a failed read and stops
				b.err, b.out = werr, b.out[:0]
				return 0, werr
			}
		}
		if err != nil {
			b.err = err
		}
	}
	n := copy(p, b.out[b.off:])
	b.off += n
	return n, nil
}

// Close reads what is left of a body whose answer is complete (a
// non-stream body once its JSON is read, a stream after [DONE]), so that
// Go's client keeps the connection; a stream cut short is closed at once,
// which cancels it upstream.
func (b *wireBody) Close() error {
	defer b.cancel()
	if b.w == nil || b.w.done {
		t := time.AfterFunc(drainTimeout, b.cancel)
		_, _ = io.CopyN(io.Discard, b.ReadCloser, drainLimit)
		t.Stop()
	}
	return b.ReadCloser.Close()
}

// feed takes the next bytes of the stream, handles every line they end and
// appends to out the lines langchaingo is to see.
func (w *streamWatch) feed(p, out []byte) ([]byte, error) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			return out, nil
		}
		line := p[:i]
		if len(w.line) > 0 {
			w.line = append(w.line, line...)
			line = w.line
		}
		p = p[i+1:]
		line = bytes.TrimSpace(line)
		keep, err := w.event(line)
		w.line = w.line[:0]
		if err != nil {
			return out, err
		}
		if keep {
			out = append(append(out, line...), '\n', '\n')
		}
	}
	return out, nil
}

type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content   string          `json:"content"`
			ToolCalls []chat.ToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

// event handles one line of the stream and reports whether langchaingo is
// to see it: not a chunk of one choice that carries only a delta, which
// the chat has had.
func (w *streamWatch) event(line []byte) (keep bool, err error) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return len(line) > 0, nil
	}
	data = bytes.TrimSpace(data)
	if string(data) == "[DONE]" {
		w.done = true
		return true, nil
	}
	if text, ok := plainDelta(data); ok {
		return false, w.emit(text, nil)
	}
	var c streamChunk
	if len(data) == 0 || data[0] != '{' || json.Unmarshal(data, &c) != nil || len(c.Choices) == 0 {
		return true, nil // a usage chunk, an error, or what langchaingo skips too
	}
	keep = len(c.Choices) > 1 || c.Choices[0].FinishReason != nil || (len(c.Usage) > 0 && string(c.Usage) != "null")
	d := c.Choices[0].Delta
	if d.Content != "" {
		if err := w.emit(d.Content, nil); err != nil {
			return false, err
		}
	}
	for _, f := range d.ToolCalls {
		if f.Index < 0 || f.Index > len(w.calls) {
			return false, fmt.Errorf("upstream sent tool call index %d after %d calls", f.Index, len(w.calls))
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
			return false, err
		}
	}
	return keep, nil
}

// The chunk of one text delta, as OpenAI and the servers that copy it
// send it: {..."choices":[{"index":0,"delta":{"content":"…"},"finish_reason":null}]}
// (with "logprobs":null before finish_reason, or without "index").
var (
	deltaChoices = []byte(`"choices":[{`)
	deltaContent = []byte(`"delta":{"content":"`)
	deltaEnds    = [][]byte{[]byte(`},"finish_reason":null}]}`), []byte(`},"logprobs":null,"finish_reason":null}]}`)}
)

// plainDelta reads the text of a chunk that carries nothing but one text
// delta without decoding it as a whole: that is nearly every chunk of a
// stream, and encoding/json would cost more than the rest of the relay.
// Any chunk it is not sure of (another field after the delta, a second
// choice, a usage, an escape it does not take) is left to the decoder.
func plainDelta(data []byte) (string, bool) {
	i := bytes.Index(data, deltaChoices)
	if i < 0 || bytes.Contains(data[:i], []byte(`"usage":{`)) {
		return "", false
	}
	rest := data[i+len(deltaChoices):]
	j := bytes.Index(rest, deltaContent)
	if j < 0 || bytes.ContainsAny(rest[:j], `{}[]"`) && !plainIndex(rest[:j]) {
		return "", false
	}
	rest = rest[j+len(deltaContent):]
	k := bytes.IndexByte(rest, '"')
	if k < 0 || bytes.IndexByte(rest[:k], '\\') >= 0 {
		return "", false // escapes: the decoder unquotes them
	}
	text, tail := rest[:k], rest[k+1:]
	for _, end := range deltaEnds {
		if bytes.Equal(tail, end) {
			for _, c := range text {
				if c < 0x20 {
					return "", false
				}
			}
			return string(text), true
		}
	}
	return "", false
}

// plainIndex reports whether what stands between a choice's "{" and its
// delta is only its index: "index":0,
func plainIndex(b []byte) bool {
	b, ok := bytes.CutPrefix(b, []byte(`"index":`))
	if !ok {
		return false
	}
	b, ok = bytes.CutSuffix(b, []byte(","))
	if !ok || len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// wireFields are a request's tool fields as the body carries them.
func wireFields(req chat.ModelRequest) map[string]json.RawMessage {
	if req.Tools == nil {
		return nil
	}
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

// withWireCall returns ctx carrying wc for the transport.
func withWireCall(ctx context.Context, wc *wireCall) context.Context {
	return context.WithValue(ctx, wireCallKey{}, wc)
}

// wholeToolCalls are the tool calls of a non-stream answer, in order.
func wholeToolCalls(in []llms.ToolCall) []chat.ToolCall {
	var out []chat.ToolCall
	for i, c := range in {
		tc := chat.ToolCall{Index: i, ID: c.ID, Type: c.Type}
		if c.FunctionCall != nil {
			tc.Function = chat.FunctionCall{Name: c.FunctionCall.Name, Arguments: c.FunctionCall.Arguments}
		}
		out = append(out, tc)
	}
	return out
}

// errToolsUnsupported is returned by a provider that cannot take tools,
// should the chat ask it anyway.
var errToolsUnsupported = errors.New("this provider does not take tools or images")
