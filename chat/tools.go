package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chatgate/chatgate/apierror"
)

// decodeMessage reads one message of the role, at field.
func decodeMessage(field string, role Role, wm wireMessage) (Message, error) {
	m := Message{Role: role}
	hasCalls := len(wm.ToolCalls) > 0 && string(wm.ToolCalls) != "null"
	switch {
	case hasCalls && role != RoleAssistant:
		return m, apierror.InvalidRequest(field+".tool_calls", "only assistant messages make tool calls")
	case wm.ToolCallID != nil && role != RoleTool:
		return m, apierror.InvalidRequest(field+".tool_call_id", "belongs to tool messages only")
	case role == RoleTool && (wm.ToolCallID == nil || *wm.ToolCallID == ""):
		return m, apierror.InvalidRequest(field+".tool_call_id", "is required: it names the call this tool message answers")
	}
	if role == RoleTool {
		m.ToolCallID = *wm.ToolCallID
	}
	if hasCalls {
		if err := json.Unmarshal(wm.ToolCalls, &m.ToolCalls); err != nil || len(m.ToolCalls) == 0 {
			return m, apierror.InvalidRequest(field+".tool_calls", "must be a non-empty array of {id, type: \"function\", function: {name, arguments}}")
		}
		for j, c := range m.ToolCalls {
			cf := fmt.Sprintf("%s.tool_calls[%d]", field, j)
			switch {
			case c.ID == "":
				return m, apierror.InvalidRequest(cf+".id", "is required")
			case c.Type != "function":
				return m, apierror.InvalidRequest(cf+".type", "must be \"function\"")
			case c.Function.Name == "":
				return m, apierror.InvalidRequest(cf+".function.name", "is required")
			}
			m.ToolCalls[j].Index = j
		}
		if c := bytes.TrimSpace(wm.Content); len(c) == 0 || string(c) == "null" {
			return m, nil // an assistant message that only calls tools has no content
		}
	}
	var err error
	m.Content, m.Parts, err = decodeContent(field+".content", wm.Content)
	if err == nil && m.Parts != nil && role != RoleUser {
		err = apierror.InvalidRequest(field+".content", "image_url parts belong to user messages only")
	}
	return m, err
}

// checkToolResults checks that every tool message answers a call an
// earlier assistant message made, as OpenAI requires.
func checkToolResults(msgs []Message) error {
	calls := map[string]bool{}
	for i, m := range msgs {
		for _, c := range m.ToolCalls {
			calls[c.ID] = true
		}
		if m.Role == RoleTool && !calls[m.ToolCallID] {
			return apierror.InvalidRequest(fmt.Sprintf("messages[%d].tool_call_id", i),
				"%q names no tool call of an earlier assistant message", m.ToolCallID)
		}
	}
	return nil
}

// checkImageURL checks an image_url part's image: a URL the model's
// provider can fetch, or the image itself as a data: URL.
func checkImageURL(field string, img *ImageURL) error {
	switch {
	case img == nil || img.URL == "":
		return apierror.InvalidRequest(field+".url", "is required")
	case !strings.HasPrefix(img.URL, "https://") && !strings.HasPrefix(img.URL, "http://") && !strings.HasPrefix(img.URL, "data:image/"):
		return apierror.InvalidRequest(field+".url", "must be an http(s) URL or a data:image/ URL")
	}
	switch img.Detail {
	case "", "auto", "low", "high":
	default:
		return apierror.InvalidRequest(field+".detail", "must be auto, low or high, not %q", img.Detail)
	}
	return nil
}

// checkTools checks tools and tool_choice as far as their shape: the
// model's provider judges the schemas.
func checkTools(req *CompletionRequest) error {
	if isNull(req.Tools) {
		req.Tools = nil
	}
	if isNull(req.ToolChoice) {
		req.ToolChoice = nil
	}
	if req.Tools != nil {
		var tools []struct {
			Type     string `json:"type"`
			Function *struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if err := json.Unmarshal(req.Tools, &tools); err != nil {
			return apierror.InvalidRequest("tools", "must be an array of {type: \"function\", function: {name, description, parameters}}")
		}
		for i, t := range tools {
			f := fmt.Sprintf("tools[%d]", i)
			switch {
			case t.Type != "function":
				return apierror.InvalidRequest(f+".type", "must be \"function\", not %q", t.Type)
			case t.Function == nil || t.Function.Name == "":
				return apierror.InvalidRequest(f+".function.name", "is required")
			}
		}
		if len(tools) == 0 {
			req.Tools = nil
		}
	}
	if req.ToolChoice != nil {
		var s string
		var obj struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(req.ToolChoice, &s) == nil:
			if s != "none" && s != "auto" && s != "required" {
				return apierror.InvalidRequest("tool_choice", "must be none, auto, required or {type: \"function\", function: {name}}, not %q", s)
			}
		case json.Unmarshal(req.ToolChoice, &obj) == nil && obj.Type == "function" && obj.Function.Name != "":
		default:
			return apierror.InvalidRequest("tool_choice", "must be none, auto, required or {type: \"function\", function: {name}}")
		}
		if req.Tools == nil && s != "none" {
			return apierror.InvalidRequest("tool_choice", "needs tools")
		}
	}
	if req.ParallelToolCalls != nil && req.Tools == nil {
		return apierror.InvalidRequest("parallel_tool_calls", "needs tools")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// checkFeatures refuses, naming the field, a request that needs what the
// app's model (named name) cannot take: silently dropping tools or images
// would make the model answer another question than the one asked.
func checkFeatures(m Model, name string, req Request) error {
	fm, _ := m.(FeatureModel)
	supports := func(f Feature) bool { return fm != nil && fm.Supports(f) }
	refuse := func(field string, f Feature) error {
		return apierror.InvalidRequest(field, "the app's model %q does not take %s", name, f)
	}
	if req.Tools != nil && !supports(FeatureTools) {
		return refuse("tools", FeatureTools)
	}
	for i, msg := range req.Messages {
		field := fmt.Sprintf("messages[%d]", i)
		switch {
		case len(msg.ToolCalls) > 0 && !supports(FeatureTools):
			return refuse(field+".tool_calls", FeatureTools)
		case msg.Role == RoleTool && !supports(FeatureTools):
			return refuse(field+".role", FeatureTools)
		}
		for j, p := range msg.Parts {
			if p.Type == "image_url" && !supports(FeatureImages) {
				return refuse(fmt.Sprintf("%s.content[%d].image_url", field, j), FeatureImages)
			}
		}
	}
	return nil
}

// usesTools reports whether msgs hold tool calls or results.
func usesTools(msgs []Message) bool {
	for _, m := range msgs {
		if len(m.ToolCalls) > 0 || m.Role == RoleTool {
			return true
		}
	}
	return false
}

// errToolsNeedMessages refuses tools in a conversation kept by chatId:
// its history holds text turns only, so the calls a turn made could not
// be continued from it.
var errToolsNeedMessages = apierror.InvalidRequest("chatId",
	"a conversation kept by chatId stores text turns only; send tools, tool calls and tool results without chatId, with the whole conversation in messages")
