package chat

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultHeartbeat is how long a stream may stay silent before a comment
// line keeps proxies from closing it.
const DefaultHeartbeat = 15 * time.Second

// sseSink encodes a run as server-sent events. Nothing is written until the
// first piece of the answer (or the first heartbeat), so a run that fails
// before it can still be answered with a plain HTTP error; events that come
// earlier are held until then.
type sseSink struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	detail       bool
	includeUsage bool
	respEvent    string // flowResponses or appStreamResponse

	mu        sync.Mutex
	committed bool
	closed    bool
	pending   []byte // held events, before commit
	buf       []byte
	chunkHead []byte // {"id":...,"choices":[{"index":0,"delta":{
	sentRole  bool
	lastWrite time.Time
	err       error // the first write error: the client is gone
}

func newSSESink(w http.ResponseWriter, detail, includeUsage bool, respEvent string) *sseSink {
	// the silence a heartbeat waits for starts now, not at the first write
	return &sseSink{w: w, rc: http.NewResponseController(w), detail: detail, includeUsage: includeUsage, respEvent: respEvent,
		lastWrite: time.Now()}
}

// setChunkHead fixes the id, time and model every chunk repeats.
func (s *sseSink) setChunkHead(id string, created int64, model string) {
	b := append([]byte(nil), `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"choices":[{"index":0,"delta":{`...)
	s.chunkHead = b
}

// Send implements Sink.
func (s *sseSink) Send(ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	switch ev.Kind {
	case EventNodeStatus:
		if s.detail {
			s.event("flowNodeStatus", func(b []byte) []byte {
				b = append(b, `{"status":`...)
				b = appendJSONString(b, ev.Node.Status)
				b = append(b, `,"name":`...)
				b = appendJSONString(b, ev.Node.Name)
				return append(b, '}')
			})
		}
	case EventVariables:
		if s.detail {
			s.jsonEvent("updateVariables", ev.Variables)
		}
	case EventDelta:
		s.commit()
		s.put(s.answerEvent(), func(b []byte) []byte {
			b = append(b, s.chunkHead...)
			if !s.sentRole {
				b = append(b, `"role":"assistant",`...)
				s.sentRole = true
			}
			b = append(b, `"content":`...)
			b = appendJSONString(b, ev.Delta)
			return append(b, `},"finish_reason":null}]}`...)
		}, !ev.More)
	case EventToolCall:
		s.commit()
		c := ev.ToolCall
		s.event(s.answerEvent(), func(b []byte) []byte {
			b = append(b, s.chunkHead...)
			if !s.sentRole {
				b = append(b, `"role":"assistant","content":null,`...)
				s.sentRole = true
			}
			call, _ := json.Marshal([]ToolCall{c})
			b = append(b, `"tool_calls":`...)
			b = append(b, call...)
			return append(b, `},"finish_reason":null}]}`...)
		})
	case EventDone:
		s.commit()
		res := ev.Result
		s.event(s.answerEvent(), func(b []byte) []byte {
			b = append(b, s.chunkHead...)
			b = append(b, `},"finish_reason":`...)
			b = appendJSONString(b, res.FinishReason)
			return append(b, `}]}`...)
		})
		if s.includeUsage {
			s.event(s.answerEvent(), func(b []byte) []byte {
				b = append(b, s.chunkHead[:len(s.chunkHead)-len(`{"index":0,"delta":{`)]...)
				b = append(b, `],"usage":`...)
				u, _ := json.Marshal(res.Usage)
				return append(append(b, u...), '}')
			})
		}
		// FastGPT sends flowResponses before [DONE]; its older documents
		// show appStreamResponse after it, and clients written to them
		// read on past [DONE] for it.
		after := s.respEvent == "appStreamResponse"
		if s.detail && !after {
			s.jsonEvent(s.respEvent, res.Responses)
		}
		s.event(s.answerEvent(), func(b []byte) []byte { return append(b, "[DONE]"...) })
		if s.detail && after {
			s.jsonEvent(s.respEvent, res.Responses)
		}
		s.closed = true
	case EventError:
		if !s.committed {
			// The handler answers with a plain HTTP error; no heartbeat
			// may commit the stream under it.
			s.closed = true
			return nil
		}
		status, code, msg := errorParts(ev.Err)
		if s.detail {
			s.event("error", func(b []byte) []byte {
				b = append(b, `{"message":`...)
				b = appendJSONString(b, msg)
				b = append(b, `,"code":`...)
				b = appendJSONString(b, code)
				return append(b, '}')
			})
		} else {
			// OpenAI's SDKs raise an error for a data line holding "error".
			body, _ := json.Marshal(openAIError{Error: openAIErrorBody{Message: msg, Type: errType(status), Code: code}})
			s.event("", func(b []byte) []byte { return append(b, body...) })
		}
		s.closed = true
	}
	return s.err
}

func errType(status int) string {
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func (s *sseSink) answerEvent() string {
	if s.detail {
		return "answer"
	}
	return ""
}

func (s *sseSink) jsonEvent(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte("null")
	}
	s.event(name, func(b []byte) []byte { return append(b, data...) })
}

// event writes one event (held until commit) and flushes it.
func (s *sseSink) event(name string, data func([]byte) []byte) { s.put(name, data, true) }

// put sends one event; without flush it is written but not flushed, for
// an event that follows at once to flush both.
func (s *sseSink) put(name string, data func([]byte) []byte, flush bool) {
	b := s.buf[:0]
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = data(b)
	b = append(b, "\n\n"...)
	s.buf = b
	if !s.committed {
		s.pending = append(s.pending, b...)
		return
	}
	s.write(b, flush)
}

// commit writes the headers and whatever was held, unflushed: every caller
// writes an event next and flushes it, and headers sent alone would cost
// the client a read (and the server a write) for no byte of the answer.
func (s *sseSink) commit() {
	if s.committed {
		return
	}
	s.committed = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // tell nginx not to buffer the stream
	s.w.WriteHeader(http.StatusOK)
	if len(s.pending) > 0 {
		s.write(s.pending, false)
		s.pending = nil
	}
}

// write writes b and, with flush, flushes it to the client.
func (s *sseSink) write(b []byte, flush bool) {
	if s.err != nil {
		return
	}
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		return
	}
	if flush {
		s.flush()
	}
}

func (s *sseSink) flush() {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
	}
	s.lastWrite = time.Now()
}

// heartbeat writes a comment when the stream has been silent for every; it
// commits the stream first, since a client that waits that long for a first
// byte is better told the stream is alive.
func (s *sseSink) heartbeat(every time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.err != nil || time.Since(s.lastWrite) < every {
		return
	}
	s.commit()
	s.write([]byte(": keep-alive\n\n"), true)
}

// appendJSONString appends s as a JSON string. It escapes only what JSON
// requires (and U+2028/2029 for JavaScript readers), which keeps the
// per-token path free of the reflection encoding/json would cost.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
