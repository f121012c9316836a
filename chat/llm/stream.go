package llm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// drainLimit and drainTimeout bound what a stream's close reads of the
// body's end after [DONE]: Go's client reuses a connection only once its
// body is read to the end, a well-behaved upstream ends it right after
// [DONE], and one that does not loses its connection rather than holding
// up the chat.
const (
	drainLimit   = 4 << 10
	drainTimeout = 200 * time.Millisecond
)

// streamBuffer is the read buffer of a stream: its chunks are a few
// hundred bytes, a longer line is put together in stream.long, and each
// stream allocates the buffer anew.
const streamBuffer = 4 << 10

// maxEventLine bounds one line of a stream: a chunk is a few hundred bytes,
// and an upstream that never ends a line must not fill the memory.
const maxEventLine = 8 << 20

// stream reads one OpenAI event stream: text deltas and tool-call
// fragments go to the chat as they come, in order, and the calls are put
// together by index.
type stream struct {
	body       io.ReadCloser
	cancel     func() // cancels the request: gives up on the body's end
	alive      func() // bytes arrived: holds off the idle timeout
	onToken    func(string) error
	onToolCall func(chat.ToolCall) error
	ahead      func() // chat.ModelRequest.Ahead; may be nil

	br   *bufio.Reader
	long []byte // a line longer than br's buffer, put together
	text strings.Builder
	// held is a text delta read but not yet handed to the chat: it waits,
	// never for the upstream, only to learn whether the next line already
	// read is a delta too (see chat.ModelRequest.Ahead).
	held    string
	holding bool
	calls   []chat.ToolCall // by index
	finish  string
	usage   *wireUsage
	done    bool // [DONE] came: the body's end is next
}

// aliveReader tells the idle timer of every read that brought bytes.
type aliveReader struct {
	r     io.Reader
	alive func()
}

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.alive()
	}
	return n, err
}

// read reads the stream to its end and returns the answer.
func (s *stream) read() (chat.ModelResult, error) {
	s.br = bufio.NewReaderSize(aliveReader{s.body, s.alive}, streamBuffer)
	for !s.done {
		if s.holding && !s.lineBuffered() {
			if err := s.hand(false); err != nil {
				return chat.ModelResult{}, err
			}
		}
		line, err := s.line()
		if err != nil && err != io.EOF {
			if herr := s.hand(false); herr != nil {
				return chat.ModelResult{}, herr
			}
			return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: err}
		}
		if len(line) > 0 {
			if herr := s.event(line); herr != nil {
				return chat.ModelResult{}, herr
			}
		}
		if err == io.EOF {
			break
		}
	}
	if err := s.hand(false); err != nil {
		return chat.ModelResult{}, err
	}
	if s.finish == "" {
		// a stream that ends without a finish reason was cut off upstream
		return chat.ModelResult{}, &chat.UpstreamError{Provider: provider, Err: errNoFinish}
	}
	return chat.ModelResult{Text: s.text.String(), FinishReason: s.finish, ToolCalls: s.calls, Usage: s.usage.usage()}, nil
}

// lineBuffered reports whether a whole line has been read from the
// upstream and waits in the buffer.
func (s *stream) lineBuffered() bool {
	b, _ := s.br.Peek(s.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// hand gives the held delta to the chat; more says the next delta is
// already in hand.
func (s *stream) hand(more bool) error {
	if !s.holding {
		return nil
	}
	s.holding = false
	if more && s.ahead != nil {
		s.ahead()
	}
	return s.onToken(s.held)
}

// line returns the stream's next line, without its end.
func (s *stream) line() ([]byte, error) {
	s.long = s.long[:0]
	for {
		b, err := s.br.ReadSlice('\n')
		if len(s.long)+len(b) > maxEventLine {
			return nil, fmt.Errorf("a line of the stream is over %d bytes", maxEventLine)
		}
		if err == bufio.ErrBufferFull {
			s.long = append(s.long, b...)
			continue
		}
		if len(s.long) > 0 {
			b = append(s.long, b...)
			s.long = b
		}
		if err == io.EOF && len(b) > 0 {
			err = nil // the last line, without its end; EOF comes next
		}
		return bytes.TrimSpace(b), err
	}
}

// streamChunk is a chunk the fast path (plainDelta) did not take.
type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content   string          `json:"content"`
			ToolCalls []chat.ToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
	Error *wireError `json:"error"`
}

// event handles one line of the stream.
func (s *stream) event(line []byte) error {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return nil // a comment, event: or id:
	}
	data = bytes.TrimSpace(data)
	if text, ok := plainDelta(data); ok {
		return s.emitText(text)
	}
	// whatever else comes goes to the chat after the delta before it
	if err := s.hand(false); err != nil {
		return err
	}
	if string(data) == "[DONE]" {
		s.done = true
		return nil
	}
	var c streamChunk
	if err := json.Unmarshal(data, &c); err != nil {
		return &chat.UpstreamError{Provider: provider, Err: fmt.Errorf("a chunk of the stream is not JSON: %w", err)}
	}
	if c.Error != nil {
		return &chat.UpstreamError{Provider: provider, Err: upstreamSaid(c.Error)}
	}
	if c.Usage != nil {
		s.usage = c.Usage
	}
	if len(c.Choices) == 0 {
		return nil
	}
	ch := c.Choices[0] // chatgate never asks for more than one
	if err := s.emitText(ch.Delta.Content); err != nil {
		return err
	}
	for _, f := range ch.Delta.ToolCalls {
		if err := s.toolCall(f); err != nil {
			return err
		}
	}
	if ch.FinishReason != nil && *ch.FinishReason != "" {
		s.finish = *ch.FinishReason
	}
	return nil
}

// emitText holds text, handing the delta held before it to the chat.
func (s *stream) emitText(text string) error {
	if text == "" {
		return nil
	}
	s.text.WriteString(text)
	if err := s.hand(true); err != nil {
		return err
	}
	s.held, s.holding = text, true
	return nil
}

// toolCall adds fragment f to its call and hands it to the chat.
func (s *stream) toolCall(f chat.ToolCall) error {
	if f.Index < 0 || f.Index > len(s.calls) {
		return &chat.UpstreamError{Provider: provider, Err: fmt.Errorf("upstream sent tool call index %d after %d calls", f.Index, len(s.calls))}
	}
	if f.Index == len(s.calls) {
		s.calls = append(s.calls, chat.ToolCall{Index: f.Index})
	}
	call := &s.calls[f.Index]
	if f.ID != "" {
		call.ID = f.ID
	}
	if f.Type != "" {
		call.Type = f.Type
	}
	call.Function.Name += f.Function.Name
	call.Function.Arguments += f.Function.Arguments
	if s.onToolCall == nil {
		return nil
	}
	return s.onToolCall(f)
}

// close closes the body: after [DONE] it first reads the body's end, for
// the connection's reuse; a stream cut short is closed at once, which
// cancels it upstream.
func (s *stream) close() {
	if s.done && s.br != nil {
		t := time.AfterFunc(drainTimeout, s.cancel)
		_, _ = io.CopyN(io.Discard, s.br, drainLimit)
		t.Stop()
	}
	_ = s.body.Close()
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
	if i < 0 || bytes.Contains(data[:i], []byte(`"usage":{`)) || bytes.Contains(data[:i], []byte(`"error":`)) {
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
