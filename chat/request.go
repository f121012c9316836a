package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// CompletionRequest is the body of POST /api/v1/chat/completions: OpenAI's
// request plus FastGPT's and the agent API channel's extensions. Fields
// OpenAI defines that chatgate does not use are accepted and ignored, so
// SDKs that send them keep working; the fields below are checked strictly.
type CompletionRequest struct {
	Model         string         `json:"model"`
	Messages      []Message      `json:"-"`
	Stream        bool           `json:"stream"`
	StreamOptions *StreamOptions `json:"stream_options"`
	Temperature   *float64       `json:"temperature"`
	MaxTokens     *int           `json:"max_tokens"`
	// MaxCompletionTokens is OpenAI's newer name for MaxTokens.
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	ChatID              *string        `json:"chatId"`
	SessionID           *string        `json:"sessionId"`
	Variables           map[string]any `json:"-"`
	Detail              bool           `json:"detail"`
	// Tools, ToolChoice and ParallelToolCalls go to the model as sent;
	// only models that support FeatureTools take them.
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	// CustomUID (FastGPT) or User (OpenAI) names the caller's end user: a
	// chat is theirs alone (see Conversation.CustomUID).
	CustomUID string `json:"customUid"`
	User      string `json:"user"`
	// ResponseChatItemID, when set, is the dataId of the answer's record.
	ResponseChatItemID string `json:"responseChatItemId"`
	// ShareID and AuthToken (or its older name OutLinkUID) are how a
	// share-link visitor, who has no key, names the link and proves who
	// they are (see ShareLinks). They are read leniently, as strings or
	// not at all, and keyed calls ignore them.
	ShareID    string `json:"-"`
	AuthToken  string `json:"-"`
	OutLinkUID string `json:"-"`

	view *visitorView // a share link's filter of what its visitor sees
}

// StreamOptions are OpenAI's stream options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// wireRequest is CompletionRequest as it arrives, with the fields whose
// errors must name their position decoded by hand.
type wireRequest struct {
	CompletionRequest
	RawMessages   json.RawMessage `json:"messages"`
	RawVariables  json.RawMessage `json:"variables"`
	RawShareID    json.RawMessage `json:"shareId"`
	RawAuthToken  json.RawMessage `json:"authToken"`
	RawOutLinkUID json.RawMessage `json:"outLinkUid"`
}

type wireMessage struct {
	Role       *string         `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID *string         `json:"tool_call_id"`
}

type contentPart struct {
	Type     string    `json:"type"`
	Text     *string   `json:"text"`
	ImageURL *ImageURL `json:"image_url"`
}

// decodeCompletion reads and checks a completion request. Every error is a
// 400 invalid_request whose message names the field.
func decodeCompletion(w http.ResponseWriter, r *http.Request, maxBody int64) (*CompletionRequest, error) {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apierror.InvalidRequest("", "body exceeds %d bytes", mbe.Limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, httpjson.DecodeErr(err) // 408 naming the server's body deadline
		}
		return nil, apierror.InvalidRequest("", "reading body: %v", err)
	}
	if err := httpjson.CheckUTF8(buf.Bytes()); err != nil {
		return nil, err // encoding/json would store U+FFFD for it
	}
	wr, err := decodeWire(buf.Bytes())
	return wr.check(err)
}

// decodeWire decodes a body whose UTF-8 has been checked. Like
// encoding/json, it fills what it can when a field has the wrong type and
// returns the first such error.
func decodeWire(raw []byte) (*wireRequest, error) {
	wr := new(wireRequest)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(wr); err != nil {
		return wr, err
	}
	if dec.More() {
		return wr, errNotOneObject
	}
	return wr, nil
}

var errNotOneObject = apierror.InvalidRequest("", "body must hold a single JSON object")

// check finishes decoding wr, which decodeWire returned with err, and
// checks its fields.
func (wr *wireRequest) check(err error) (*CompletionRequest, error) {
	if errors.Is(err, errNotOneObject) {
		return nil, err
	}
	if err != nil {
		var de *httpjson.DecodeError
		if errors.As(httpjson.DecodeErr(err), &de) {
			// encoding/json names fields of the embedded struct by its type
			return nil, apierror.InvalidRequest(strings.TrimPrefix(de.Field, "CompletionRequest."), "%s", de.Reason)
		}
		return nil, apierror.InvalidRequest("", "%v", err)
	}
	req := &wr.CompletionRequest
	req.ShareID, req.AuthToken, req.OutLinkUID = lenientString(wr.RawShareID), lenientString(wr.RawAuthToken), lenientString(wr.RawOutLinkUID)
	if req.Messages, err = decodeMessages(wr.RawMessages); err != nil {
		return nil, err
	}
	if len(wr.RawVariables) > 0 && string(wr.RawVariables) != "null" {
		if wr.RawVariables[0] != '{' {
			return nil, apierror.InvalidRequest("variables", "must be an object")
		}
		if err := json.Unmarshal(wr.RawVariables, &req.Variables); err != nil {
			return nil, apierror.InvalidRequest("variables", "must be an object: %v", err)
		}
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return nil, apierror.InvalidRequest("temperature", "must be between 0 and 2")
	}
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_tokens", req.MaxTokens}, {"max_completion_tokens", req.MaxCompletionTokens}} {
		if mt.v != nil && *mt.v < 1 {
			return nil, apierror.InvalidRequest(mt.name, "must be a positive integer")
		}
	}
	for _, c := range []struct {
		name string
		v    *string
	}{{"chatId", req.ChatID}, {"sessionId", req.SessionID}} {
		if c.v != nil {
			if err := checkChatID(c.name, *c.v); err != nil {
				return nil, err
			}
		}
	}
	if req.ChatID != nil && req.SessionID != nil && *req.ChatID != *req.SessionID && *req.ChatID != "" && *req.SessionID != "" {
		return nil, apierror.InvalidRequest("sessionId", "differs from chatId; send one of them")
	}
	if err := checkTools(req); err != nil {
		return nil, err
	}
	if err := checkEndUser(req); err != nil {
		return nil, err
	}
	return req, nil
}

// lenientString is raw's value if it is a JSON string, else "": a field
// of another type is ignored, not an error.
func lenientString(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// conversationID returns chatId or sessionId; empty means stateless.
func (r *CompletionRequest) conversationID() string {
	if r.ChatID != nil && *r.ChatID != "" {
		return *r.ChatID
	}
	if r.SessionID != nil {
		return *r.SessionID
	}
	return ""
}

// checkEndUser checks customUid, user and responseChatItemId, which name
// things as chatId does.
func checkEndUser(req *CompletionRequest) error {
	for _, f := range []struct{ name, v string }{{"customUid", req.CustomUID}, {"user", req.User}, {"responseChatItemId", req.ResponseChatItemID}} {
		if err := checkChatID(f.name, f.v); err != nil {
			return err
		}
	}
	if req.CustomUID != "" && req.User != "" && req.CustomUID != req.User {
		return apierror.InvalidRequest("user", "differs from customUid; send one of them")
	}
	return nil
}

// endUser returns customUid or user; empty means none.
func (r *CompletionRequest) endUser() string {
	if r.CustomUID != "" {
		return r.CustomUID
	}
	return r.User
}

func checkChatID(field, s string) error {
	if len(s) > 256 {
		return apierror.InvalidRequest(field, "is longer than 256 bytes")
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return apierror.InvalidRequest(field, "must be valid UTF-8 without control characters")
	}
	return nil
}

func decodeMessages(raw json.RawMessage) ([]Message, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, apierror.InvalidRequest("messages", "is required")
	}
	var wms []wireMessage
	if err := json.Unmarshal(raw, &wms); err != nil {
		return nil, apierror.InvalidRequest("messages", "must be an array of {role, content} objects")
	}
	if len(wms) == 0 {
		return nil, apierror.InvalidRequest("messages", "must not be empty")
	}
	out := make([]Message, 0, len(wms))
	for i, wm := range wms {
		field := fmt.Sprintf("messages[%d]", i)
		if wm.Role == nil {
			return nil, apierror.InvalidRequest(field+".role", "is required")
		}
		var role Role
		switch *wm.Role {
		case "system", "developer":
			role = RoleSystem
		case "user":
			role = RoleUser
		case "assistant":
			role = RoleAssistant
		case "tool":
			role = RoleTool
		default:
			return nil, apierror.InvalidRequest(field+".role", "must be system, developer, user, assistant or tool, not %q", *wm.Role)
		}
		m, err := decodeMessage(field, role, wm)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, checkToolResults(out)
}

// decodeContent accepts a string, or an array of parts: text parts are
// joined into the text, and parts are returned too when an image_url part
// is among them, for the models that read images.
func decodeContent(field string, raw json.RawMessage) (string, []ContentPart, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, apierror.InvalidRequest(field, "is required")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, apierror.InvalidRequest(field, "is not a valid JSON string")
		}
		return s, nil, nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", nil, apierror.InvalidRequest(field, "must be a string or an array of {type: \"text\", text} or {type: \"image_url\", image_url: {url}} parts")
		}
		var (
			b      strings.Builder
			out    = make([]ContentPart, 0, len(parts))
			images bool
		)
		for j, p := range parts {
			pf := fmt.Sprintf("%s[%d]", field, j)
			switch {
			case p.Type == "text" && p.Text != nil:
				b.WriteString(*p.Text)
				out = append(out, ContentPart{Type: "text", Text: *p.Text})
			case p.Type == "image_url":
				if err := checkImageURL(pf+".image_url", p.ImageURL); err != nil {
					return "", nil, err
				}
				images = true
				out = append(out, ContentPart{Type: "image_url", ImageURL: p.ImageURL})
			case p.Type == "text":
				return "", nil, apierror.InvalidRequest(pf+".text", "is required")
			default:
				return "", nil, apierror.InvalidRequest(pf, "only text and image_url parts are supported (type %q)", p.Type)
			}
		}
		if !images {
			out = nil
		}
		return b.String(), out, nil
	}
	return "", nil, apierror.InvalidRequest(field, "must be a string or an array of parts")
}

// openAIError is OpenAI's error body.
type openAIError struct {
	Error openAIErrorBody `json:"error"`
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    string  `json:"code"`
	Param   *string `json:"param"`
}

// WriteOpenAIError answers err in OpenAI's error shape with the status the
// envelope would use, so OpenAI SDKs raise their typed errors.
func WriteOpenAIError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := errorParts(err)
	var typ string
	switch {
	case status == http.StatusUnauthorized:
		typ = "authentication_error"
	case status == http.StatusForbidden:
		typ = "permission_error"
	case code == apierror.CodeInsufficientQuota:
		typ = "insufficient_quota"
	case status == http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case status >= 500:
		typ = "api_error"
	default:
		typ = "invalid_request_error"
	}
	var ra interface{ RetryAfterSeconds() int }
	if errors.As(err, &ra) && ra.RetryAfterSeconds() > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(ra.RetryAfterSeconds()))
	}
	httpjson.Write(w, status, openAIError{Error: openAIErrorBody{Message: msg, Type: typ, Code: code}})
}

// errorParts maps any error of a chat call to its status, code and message.
func errorParts(err error) (int, string, string) {
	var (
		ae httpjson.APIError
		ue *UpstreamError
	)
	switch {
	case errors.As(err, &ae):
		return ae.HTTPStatus(), ae.StatusText(), ae.Error()
	case errors.Is(err, ErrAppNotFound):
		return http.StatusNotFound, "app_not_found", "app not found"
	case errors.Is(err, ErrUnknownModel):
		return http.StatusInternalServerError, "model_unavailable", err.Error()
	case errors.As(err, &ue):
		return http.StatusBadGateway, "upstream_error", ue.Error()
	}
	return http.StatusInternalServerError, "internal_error", "internal error"
}

// errAppKeyRequired answers keys that may not chat.
var errAppKeyRequired = &apierror.Error{Status: http.StatusForbidden, Code: "app_key_required",
	Message: "chat needs an app key (a key created with an appId), or a key with the chat scope that names the app in \"model\""}
