package chat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// ShareLinks lets share-link visitors chat without a key. Set it in
// HandlerOptions and the completions route offers it every request that
// has no Authorization header; without it, such requests are refused for
// want of a key. chatgate's server implements it over package shareauth;
// chat only declares what it needs.
type ShareLinks interface {
	// Admit decides whether the visitor may ask req.Question through link
	// req.ShareID. Its error is answered as it is, in OpenAI's shape:
	// apierror's categories give the status.
	Admit(ctx context.Context, req ShareRequest) (*Visit, error)
	// Finish reports a visit's chat once it has succeeded, with every
	// module response whatever the link hides from the visitor. It is
	// called before the answer's last bytes are written, so that a report
	// made durable here (a callback queued for the link's owner) is never
	// missing for a visitor who got the whole answer; ctx is not cancelled
	// when the visitor leaves. An error is logged.
	Finish(ctx context.Context, v *Visit, responses []ModuleResponse) error
}

// ShareRequest is what a keyless completion request says of its link: in
// the body (shareId, authToken or outLinkUid) or the query string.
type ShareRequest struct {
	ShareID string
	// Token identifies the visitor to the link's owner: authToken, else
	// outLinkUid, from the body before the query string.
	Token string
	// Question is the text of the request's last user message.
	Question string
}

// Visit is a share-link visitor let in for one question.
type Visit struct {
	// TeamID and AppID are the link's app, which the visitor talks to.
	TeamID string
	AppID  string
	// LinkID is the link, recorded on the usage and the history.
	LinkID   string
	LinkName string
	// UID identifies the visitor: the link owner's uid for them, or their
	// token. Conversations are kept per visitor, so one visitor cannot
	// read another's history by guessing a chatId.
	UID string
	// Token is the token the visitor presented, for Finish to hand back.
	Token string
	// HideDetail strips responseData and quotes from what the visitor sees.
	HideDetail bool
	// With detail shown: HideNodeStatus drops the flowNodeStatus events,
	// HideQuoteText the quotes' text (q, a, and the completeMessages that
	// hold them), HideSources the quotes' source names.
	HideNodeStatus, HideQuoteText, HideSources bool
	// Report says the link's owner asked, when the visitor came, to hear
	// of the finished chat; the ShareLinks implementation reads it in
	// Finish, so that a link changed mid-chat is judged as it was when the
	// visitor was let in.
	Report bool
	// End, when set, is called once the visit's chat is over, whatever
	// its outcome, after its usage is recorded: the link's quota stops
	// counting it as running.
	End func()
}

// visitorChatID scopes a visitor's chatId to the link and the visitor.
func visitorChatID(v *Visit, chatID string) string {
	if chatID == "" {
		return ""
	}
	return "share:" + v.LinkID + ":" + v.UID + ":" + chatID
}

// keyless serves the completions of share-link visitors.
type keyless struct {
	h     *Handler
	links ShareLinks
}

// ServeKeyless implements auth.KeylessHandler. It reads the body once and
// declines, leaving the request to the guard's 401, when it names no link;
// a malformed body that names one is admitted first and then answered 400,
// as a keyed call's would be.
func (k keyless) ServeKeyless(w http.ResponseWriter, r *http.Request) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, k.h.opts.MaxBody))
	if err != nil {
		WriteOpenAIError(w, r, httpjson.DecodeErr(err))
		return true
	}
	if err := httpjson.CheckUTF8(raw); err != nil {
		WriteOpenAIError(w, r, err) // before a shareId with U+FFFD in it goes to the link's owner
		return true
	}
	wr, derr := decodeWire(raw)
	var share, token, question string
	if json.Valid(raw) { // else nothing in the body counts, as encoding/json would have it
		share, token = lenientString(wr.RawShareID), cmp.Or(lenientString(wr.RawAuthToken), lenientString(wr.RawOutLinkUID))
		question = lastQuestion(wr.RawMessages)
	}
	q := r.URL.Query()
	if v := q.Get("shareId"); share != "" && v != "" && v != share {
		WriteOpenAIError(w, r, apierror.InvalidRequest("shareId", "differs between the body and the query string; give one"))
		return true
	}
	share = cmp.Or(share, q.Get("shareId"))
	if share == "" {
		r.Body = io.NopCloser(bytes.NewReader(raw)) // no key, no link: the guard's, unread
		return false
	}
	token = cmp.Or(token, q.Get("authToken"), q.Get("outLinkUid"))
	v, err := k.links.Admit(r.Context(), ShareRequest{ShareID: share, Token: token, Question: question})
	if err != nil {
		WriteOpenAIError(w, r, err)
		return true
	}
	if v.End != nil {
		defer v.End()
	}
	req, err := wr.check(derr)
	if err != nil {
		WriteOpenAIError(w, r, err)
		return true
	}
	if v.HideDetail {
		req.Detail = false
	}
	if v.HideNodeStatus || v.HideQuoteText || v.HideSources {
		req.view = &visitorView{hideNodes: v.HideNodeStatus, hideQuoteText: v.HideQuoteText, hideSources: v.HideSources}
	}
	// The visit is reported before the answer's last bytes go out, so
	// that a visitor who holds the whole answer has had it reported even
	// if the process dies the moment after.
	k.h.answer(w, r, Request{TeamID: v.TeamID, AppID: v.AppID, ChatID: visitorChatID(v, req.conversationID()),
		ShareID: v.LinkID, UID: v.UID}, req, func(res *Result) {
		if err := k.links.Finish(context.WithoutCancel(r.Context()), v, res.Responses); err != nil {
			k.h.log.ErrorContext(r.Context(), "share link: finishing the visit", "link", v.LinkID, "err", err)
		}
	})
	return true
}

// lastQuestion returns the text of the last user message of raw, a
// request's messages, read leniently: Admit sees the question before the
// request is checked.
func lastQuestion(raw json.RawMessage) string {
	var msgs []json.RawMessage
	_ = json.Unmarshal(raw, &msgs)
	for i := len(msgs) - 1; i >= 0; i-- {
		var m struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(msgs[i], &m) != nil || m.Role != "user" {
			continue
		}
		var text string
		if json.Unmarshal(m.Content, &text) == nil {
			return text
		}
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(m.Content, &parts) == nil {
			var b bytes.Buffer
			for _, p := range parts {
				if p.Type == "text" {
					b.WriteString(p.Text)
				}
			}
			return b.String()
		}
		return ""
	}
	return ""
}

// visitorView is what a share link shows its visitor of a chat with
// detail: the finish callback and the stored history keep everything.
type visitorView struct {
	hideNodes, hideQuoteText, hideSources bool
}

// sink filters the events a visitor's stream is sent.
func (v *visitorView) sink(next Sink) Sink {
	if v == nil {
		return next
	}
	return SinkFunc(func(ev Event) error {
		switch ev.Kind {
		case EventNodeStatus:
			if v.hideNodes {
				return nil
			}
		case EventDone:
			ev.Result = v.result(ev.Result)
		}
		return next.Send(ev)
	})
}

// result returns res as the visitor may see it, res itself unchanged.
func (v *visitorView) result(res *Result) *Result {
	if v == nil || (!v.hideQuoteText && !v.hideSources) || len(res.Responses) == 0 {
		return res
	}
	out := *res
	out.Responses = make([]ModuleResponse, len(res.Responses))
	for i, m := range res.Responses {
		if len(m.QuoteList) > 0 {
			qs := make([]Quote, len(m.QuoteList))
			for j, q := range m.QuoteList {
				if v.hideQuoteText {
					q.Q, q.A = "", ""
				}
				if v.hideSources {
					q.Source = ""
				}
				qs[j] = q
			}
			m.QuoteList = qs
		}
		if v.hideQuoteText {
			m.CompleteMessages = nil // the prompt quotes the passages
		}
		out.Responses[i] = m
	}
	return &out
}
