package chat_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// toolModel calls one tool, without text, and reports no usage.
type toolModel struct{}

func (toolModel) Supports(f chat.Feature) bool { return f == chat.FeatureTools }

func (toolModel) Generate(_ context.Context, req chat.ModelRequest, _ func(string) error) (chat.ModelResult, error) {
	frags := []chat.ToolCall{{Index: 0, ID: "c1", Type: "function", Function: chat.FunctionCall{Name: "lookup"}},
		{Index: 0, Function: chat.FunctionCall{Arguments: `{"q":"x"}`}}}
	for _, f := range frags {
		if req.OnToolCall != nil {
			if err := req.OnToolCall(f); err != nil {
				return chat.ModelResult{}, err
			}
		}
	}
	return chat.ModelResult{ToolCalls: []chat.ToolCall{{ID: "c1", Type: "function", Function: chat.FunctionCall{Name: "lookup", Arguments: `{"q":"x"}`}}}}, nil
}

// A model that only calls tools answers content null with the calls and
// finish_reason tool_calls; its stream's first chunk carries the role with
// content null, in detail streams too; tokens are counted with the calls.
func TestToolCallsWithoutText(t *testing.T) {
	g := newGateway(t, gatewayConfig{models: map[string]chat.Model{"script": toolModel{}, "script2": toolModel{}}})
	const body = `"tools":[{"type":"function","function":{"name":"lookup"}}],"messages":[{"role":"user","content":"find x"}]}`
	resp, b := g.chat("app1", `{`+body)
	var out struct {
		Choices []struct {
			Message      map[string]json.RawMessage `json:"message"`
			FinishReason string                     `json:"finish_reason"`
		} `json:"choices"`
		Usage chat.Usage `json:"usage"`
	}
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	m := out.Choices[0].Message
	if string(m["content"]) != "null" || string(m["tool_calls"]) != `[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]` ||
		out.Choices[0].FinishReason != "tool_calls" || out.Usage.CompletionTokens == 0 {
		t.Fatalf("answer %s", b)
	}
	for _, detail := range []string{"", `"detail":true,`} {
		resp, b = g.chat("app1", `{"stream":true,`+detail+body)
		events, _ := parseSSE(t, string(b))
		var deltas []string
		for _, ev := range events {
			if ev.name != "" && ev.name != "answer" {
				continue
			}
			var c struct {
				Choices []struct {
					Delta        json.RawMessage `json:"delta"`
					FinishReason *string         `json:"finish_reason"`
				} `json:"choices"`
			}
			if json.Unmarshal([]byte(ev.data), &c) == nil && len(c.Choices) == 1 {
				d := string(c.Choices[0].Delta)
				if c.Choices[0].FinishReason != nil {
					d += " " + *c.Choices[0].FinishReason
				}
				deltas = append(deltas, d)
			}
		}
		want := `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"lookup","arguments":""}}]}` + "\n" +
			`{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":\"x\"}"}}]}` + "\n" + `{} tool_calls`
		if resp.StatusCode != http.StatusOK || strings.Join(deltas, "\n") != want || events[len(events)-1].data != "[DONE]" {
			t.Fatalf("stream (%s): %d\n%s", detail, resp.StatusCode, strings.Join(deltas, "\n"))
		}
	}
}
