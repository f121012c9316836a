package llm

import (
	"strings"
	"testing"
)

// BenchmarkStreamRead reads a 64-token stream as an upstream sends it (a
// delta a chunk, then the finish, the usage and [DONE]) from memory, in
// reads of 2 KiB: the relay's per-token parsing, without the network.
func BenchmarkStreamRead(b *testing.B) {
	var sb strings.Builder
	for range 64 {
		sb.WriteString(`data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}` + "\n\n")
	}
	sb.WriteString(`data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	sb.WriteString(`data: {"id":"up-1","object":"chat.completion.chunk","created":1,"model":"gpt-up","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":64,"total_tokens":73}}` + "\n\n")
	sb.WriteString(doneLine)
	body := sb.String()
	b.ReportAllocs()
	for b.Loop() {
		s := &stream{body: &eventReader{parts: chunks(body, 2048)}, cancel: func() {}, alive: func() {},
			onToken: func(string) error { return nil }, ahead: func() {}}
		if _, err := s.read(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/token")
}
