package llm

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// eventReader hands out one of its parts per Read, as a network hands out
// what has arrived.
type eventReader struct{ parts []string }

func (r *eventReader) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.parts[0])
	if r.parts[0] = r.parts[0][n:]; r.parts[0] == "" {
		r.parts = r.parts[1:]
	}
	return n, nil
}

func (r *eventReader) Close() error { return nil }

func deltaLine(text string) string {
	return `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` + text + `"},"finish_reason":null}]}` + "\n\n"
}

const (
	finishLine = `data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	doneLine   = "data: [DONE]\n\n"
)

// readLog reads a stream of parts and logs what the chat was told, in order:
// "+" for each call of Ahead, the text of each token.
func readLog(t *testing.T, parts ...string) ([]string, chat.ModelResult, error) {
	t.Helper()
	var log []string
	s := &stream{body: &eventReader{parts: parts}, cancel: func() {}, alive: func() {},
		ahead:   func() { log = append(log, "+") },
		onToken: func(tok string) error { log = append(log, tok); return nil }}
	defer s.close()
	res, err := s.read()
	return log, res, err
}

// TestStreamAheadOnlyForWhatArrived: a token is announced as followed at
// once (Ahead) only when the next delta has already arrived with it; one
// whose successor is still upstream is handed over alone, without waiting.
// Either way the tokens and the answer are the same.
func TestStreamAheadOnlyForWhatArrived(t *testing.T) {
	burst := deltaLine("a") + deltaLine("b") + deltaLine("c") + finishLine + doneLine
	for _, tc := range []struct {
		name  string
		parts []string
		want  []string // what the chat is told
		text  string
	}{
		{"one burst", []string{burst}, []string{"+", "a", "+", "b", "c"}, "abc"},
		{"one event a read", []string{deltaLine("a"), deltaLine("b"), deltaLine("c"), finishLine, doneLine}, []string{"a", "b", "c"}, "abc"},
		{"a delta cut in two", []string{deltaLine("a") + deltaLine("b")[:20], deltaLine("b")[20:] + deltaLine("c"), finishLine + doneLine},
			[]string{"a", "+", "b", "c"}, "abc"},
		{"comments between", []string{deltaLine("a") + ": ping\n\n" + deltaLine("b"), finishLine + doneLine}, []string{"+", "a", "b"}, "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, res, err := readLog(t, tc.parts...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(log, tc.want) {
				t.Fatalf("the chat was told %q, want %q", log, tc.want)
			}
			if res.Text != tc.text || res.FinishReason != "stop" {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// TestStreamHandsHeldTokenBeforeFailure: a token held for its successor
// reaches the chat before the error that follows it, whether the upstream
// reports one or the stream is cut off.
func TestStreamHandsHeldTokenBeforeFailure(t *testing.T) {
	for _, tc := range []struct {
		name, tail, err string
	}{
		{"error event", `data: {"error":{"message":"model overloaded"}}` + "\n\n", "model overloaded"},
		{"cut off", "", errNoFinish.Error()},
		{"not JSON", "data: {oops\n\n", "not JSON"},
		{"tool call out of order", `data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"name":"f"}}]},"finish_reason":null}]}` + "\n\n", "index 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _, err := readLog(t, deltaLine("a")+deltaLine("b")+tc.tail)
			var ue *chat.UpstreamError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want an UpstreamError saying %q", err, tc.err)
			}
			if want := []string{"+", "a", "b"}; !slices.Equal(log, want) {
				t.Fatalf("the chat was told %q before the error, want %q", log, want)
			}
		})
	}
}

// A line longer than the stream's read buffer (a tool call's arguments, a
// long delta) is put together whole, however it arrives; one longer than
// maxEventLine is refused rather than held in memory without end.
func TestStreamLinesLongerThanTheBuffer(t *testing.T) {
	long := strings.Repeat("x", 3*streamBuffer+17)
	line := deltaLine(long)
	for _, tc := range []struct {
		name  string
		parts []string
	}{
		{"in one read", []string{deltaLine("a") + line + finishLine + doneLine}},
		{"in small reads", chunks(deltaLine("a")+line+finishLine+doneLine, 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, res, err := readLog(t, tc.parts...)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "a"+long || len(log) < 2 || log[len(log)-1] != long {
				t.Fatalf("text of %d bytes, last token of %d, want %d", len(res.Text), len(log[len(log)-1]), len(long))
			}
		})
	}
	_, _, err := readLog(t, deltaLine("a")+deltaLine(strings.Repeat("y", maxEventLine)))
	var ue *chat.UpstreamError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("a line over maxEventLine: %v, want an UpstreamError", err)
	}
}

// chunks cuts s into reads of n bytes.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
