package chat

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// FastGPT's "猜你想问" (question guide): a few questions the user may ask
// next, written by a model from the end of the conversation.

// Limits of the question guide.
const (
	// QuestionGuideTurns is how many of the last turns the guide reads, as
	// FastGPT does (6 rounds).
	QuestionGuideTurns = 6
	// MaxGuideQuestions is how many questions a guide answers at most.
	MaxGuideQuestions = 5
	// MaxGuideQuestionRunes bounds each suggested question.
	MaxGuideQuestionRunes = 200
)

// ModuleQuestionGuide names the guide's usage records.
const ModuleQuestionGuide = "Question Guide"

// ErrQuestionGuideUnavailable answers a question guide asked of the offline
// model, which can only quote a knowledge base and cannot write questions.
var ErrQuestionGuideUnavailable = &apierror.Error{Status: http.StatusBadRequest, Code: "question_guide_unavailable",
	Message: "the question guide needs a language model; the app's model is the offline extractive one: name another in questionGuide.model"}

// defaultGuidePrompt asks for the questions as a JSON array, which
// guideQuestions reads (and, failing that, one question a line).
const defaultGuidePrompt = `You suggest what the user may ask next. Read the conversation above and write 3 short follow-up questions the user is likely to ask, in the language of the conversation, each under 20 words.`

const guideFormat = `Answer with a JSON array of strings only, for example ["question one?", "question two?", "question three?"].`

// GuideRequest is what QuestionGuide is asked.
type GuideRequest struct {
	TeamID, KeyID, AppID string
	// ChatID names the conversation whose last turns are read; empty when
	// Messages are given instead (the older route).
	ChatID   string
	Messages []Message
	// Model overrides the app's model; Prompt FastGPT's customPrompt.
	Model, Prompt string
}

// QuestionGuide asks a model for questions the user may ask next, bills
// what it cost like a chat of the app, and returns them (none when the
// model's answer holds none).
func (e *Engine) QuestionGuide(ctx context.Context, req GuideRequest) ([]string, error) {
	app, err := e.cfg.Apps.App(ctx, req.TeamID, req.AppID)
	if err != nil {
		return nil, err
	}
	model := cmp.Or(req.Model, app.Model)
	if model == ExtractiveModelName {
		return nil, ErrQuestionGuideUnavailable
	}
	m, err := e.cfg.Models.Lookup(model)
	if err != nil {
		return nil, apierror.InvalidRequest("questionGuide.model", "%q is not a model of this server", model)
	}
	if _, ok := m.(Extractive); ok {
		return nil, ErrQuestionGuideUnavailable
	}
	msgs := req.Messages
	if req.ChatID != "" {
		_, recs, err := e.cfg.History.Conversation(ctx, req.TeamID, req.AppID, req.ChatID, 2*QuestionGuideTurns)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			role := RoleUser
			if r.Obj == "AI" {
				role = RoleAssistant
			}
			msgs = append(msgs, Message{Role: role, Content: r.Value})
		}
	}
	ask := cmp.Or(req.Prompt, defaultGuidePrompt) + "\n\n" + guideFormat
	msgs = append(append([]Message(nil), msgs...), Message{Role: RoleUser, Content: ask})
	out, err := m.Generate(ctx, ModelRequest{Model: model, Messages: msgs, Question: ask}, nil)
	if err != nil {
		return nil, fmt.Errorf("chat: question guide: %w", err)
	}
	// The model has answered: what it cost is owed whether or not the
	// client still waits.
	sctx, cancel := settle(ctx)
	defer cancel()
	in, outTokens := out.Usage.PromptTokens, out.Usage.CompletionTokens
	if in == 0 && outTokens == 0 {
		if in, err = CountMessages(sctx, e.cfg.Tokens, msgs); err != nil {
			return nil, fmt.Errorf("chat: count prompt tokens: %w", err)
		}
		outTokens = e.cfg.Tokens.Count(out.Text)
	}
	if err := e.record(sctx, Request{TeamID: req.TeamID, KeyID: req.KeyID, ChatID: req.ChatID}, app,
		ModuleQuestionGuide, model, in, outTokens); err != nil {
		return nil, err
	}
	return guideQuestions(out.Text), nil
}

// guideQuestions reads the questions in a model's answer: a JSON array
// (in a code fence or amid prose too), else one question a line.
func guideQuestions(text string) []string {
	var qs []string
	if i, j := strings.Index(text, "["), strings.LastIndex(text, "]"); i >= 0 && j > i {
		if json.Unmarshal([]byte(text[i:j+1]), &qs) != nil {
			qs = nil
		}
	}
	if qs == nil {
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "-*•0123456789.)、 "))
			if line != "" && !strings.HasPrefix(line, "```") {
				qs = append(qs, line)
			}
		}
	}
	out := make([]string, 0, min(len(qs), MaxGuideQuestions))
	for _, q := range qs {
		q = strings.TrimSpace(q)
		if q == "" || utf8.RuneCountInString(q) > MaxGuideQuestionRunes {
			continue
		}
		if out = append(out, q); len(out) == MaxGuideQuestions {
			break
		}
	}
	return out
}

// guideBody is POST /api/core/ai/agent/v2/createQuestionGuide {appId,
// chatId, questionGuide?: {open, model?, customPrompt?}}, or the older
// /api/core/ai/agent/createQuestionGuide {messages} (appId for a key
// without an app). FastGPT's share-link fields are refused by name: a
// visitor's guide is not served here.
type guideBody struct {
	AppID         string `json:"appId"`
	ChatID        string `json:"chatId"`
	CustomUID     string `json:"customUid"`
	QuestionGuide *struct {
		Open         bool   `json:"open"`
		Model        string `json:"model"`
		CustomPrompt string `json:"customPrompt"`
	} `json:"questionGuide"`
	Messages   json.RawMessage `json:"messages"`
	ShareID    string          `json:"shareId"`
	OutLinkUID string          `json:"outLinkUid"`
	TeamID     string          `json:"teamId"`
	TeamToken  string          `json:"teamToken"`
}

// MaxGuidePromptBytes bounds customPrompt.
const MaxGuidePromptBytes = 4000

// QuestionGuideV2 serves POST /api/core/ai/agent/v2/createQuestionGuide.
func (h *Handler) QuestionGuideV2(w http.ResponseWriter, r *http.Request) {
	h.questionGuide(w, r, true)
}

// QuestionGuideV1 serves POST /api/core/ai/agent/createQuestionGuide, the
// route before FastGPT 4.8.16: the conversation comes in messages.
func (h *Handler) QuestionGuideV1(w http.ResponseWriter, r *http.Request) {
	h.questionGuide(w, r, false)
}

func (h *Handler) questionGuide(w http.ResponseWriter, r *http.Request, v2 bool) {
	var b guideBody
	if err := httpjson.Decode(w, r, &b, h.opts.MaxAPIBody); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	qs, err := h.guide(r, &b, v2)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, qs)
}

func (h *Handler) guide(r *http.Request, b *guideBody, v2 bool) ([]string, error) {
	for _, f := range []struct{ name, v string }{{"shareId", b.ShareID}, {"outLinkUid", b.OutLinkUID}, {"teamId", b.TeamID}, {"teamToken", b.TeamToken}} {
		if f.v != "" {
			return nil, apierror.InvalidRequest(f.name, "is not supported: question guides are served to app keys only")
		}
	}
	req := GuideRequest{}
	if b.QuestionGuide != nil {
		if !b.QuestionGuide.Open {
			return []string{}, nil // the guide is switched off: nothing to suggest
		}
		req.Model, req.Prompt = b.QuestionGuide.Model, b.QuestionGuide.CustomPrompt
		if err := field.First(field.Line("questionGuide.model", req.Model, 200),
			field.Text("questionGuide.customPrompt", req.Prompt, MaxGuidePromptBytes)); err != nil {
			return nil, err
		}
	}
	var p *auth.Principal
	if v2 {
		ref, err := h.ref(r, b.AppID, b.ChatID, b.CustomUID, true)
		if err != nil {
			return nil, err
		}
		if _, err := h.own(r.Context(), ref); err != nil {
			return nil, err
		}
		p, req.AppID, req.ChatID = ref.p, ref.appID, ref.chatID
	} else {
		msgs, err := decodeMessages(b.Messages)
		if err != nil {
			return nil, err
		}
		for i, m := range msgs {
			if m.Parts != nil || m.ToolCalls != nil || m.Role == RoleTool {
				return nil, apierror.InvalidRequest(fmt.Sprintf("messages[%d]", i), "must be text: the question guide reads the conversation's words")
			}
		}
		req.Messages = msgs
		p = auth.MustFromContext(r.Context())
		app, err := appFor(p, b.AppID, "appId")
		if err != nil {
			return nil, err
		}
		if _, err := h.app(r.Context(), p, app); err != nil {
			return nil, err
		}
		req.AppID = app
	}
	req.TeamID, req.KeyID = p.TeamID, p.KeyID
	return h.e.QuestionGuide(r.Context(), req)
}
