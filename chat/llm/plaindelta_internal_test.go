package llm

import (
	"encoding/json"
	"testing"
)

// TestPlainDelta: the fast path takes a chunk only when the decoder would
// read the same text from it and nothing else, and leaves every other
// chunk to the decoder.
func TestPlainDelta(t *testing.T) {
	for _, tc := range []struct {
		chunk string
		fast  bool
	}{
		{`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}`, true},
		{`{"id":"x","choices":[{"index":12,"delta":{"content":"héllo"},"logprobs":null,"finish_reason":null}]}`, true},
		{`{"choices":[{"delta":{"content":"a"},"finish_reason":null}]}`, true},
		{`{"choices":[{"index":0,"delta":{"content":"say \"hi\"\n"},"finish_reason":null}]}`, false}, // escapes
		{`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`, false},          // finish
		{`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":1}}`, false},
		{`{"usage":{"prompt_tokens":1},"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`, false},
		{`{"choices":[{"index":0,"delta":{"content":"a","tool_calls":[]},"finish_reason":null}]}`, false},
		{`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":null}]}`, false},
		{`{"choices":[{"index":1,"delta":{"content":"b"},"finish_reason":null},{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`, false},
		{`{"choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"finish_reason":null}]}`, false},
	} {
		text, ok := plainDelta([]byte(tc.chunk))
		if ok != tc.fast {
			t.Fatalf("%s: fast path %v, want %v", tc.chunk, ok, tc.fast)
		}
		if !ok {
			continue
		}
		var c streamChunk
		if err := json.Unmarshal([]byte(tc.chunk), &c); err != nil || len(c.Choices) != 1 || c.Choices[0].Delta.Content != text {
			t.Fatalf("%s: fast path read %q; the decoder %+v %v", tc.chunk, text, c, err)
		}
	}
}
