package chat

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// The history routes of FastGPT's chat.mdx ("对话 CRUD"). They take any key
// with the chat scope, as getHistories does, name the app in appId and,
// like a completion, may name the end user in customUid: then only that
// end user's conversations exist for them.

// historyRoutes are the routes of this file, for Routes.
func (h *Handler) historyRoutes() []auth.Route {
	api := h.opts.MaxAPIBody
	return []auth.Route{
		{Pattern: "POST /api/core/chat/getHistories", MaxBody: api, Handler: http.HandlerFunc(h.SearchHistories)},
		{Pattern: "POST /api/core/chat/getPaginationRecords", MaxBody: api, Handler: http.HandlerFunc(h.PaginationRecords)},
		{Pattern: "POST /api/core/chat/updateHistory", MaxBody: api, Handler: http.HandlerFunc(h.UpdateHistory)},
		{Pattern: "DELETE /api/core/chat/delHistory", Handler: http.HandlerFunc(h.DelHistory)},
		{Pattern: "DELETE /api/core/chat/clearHistories", Handler: http.HandlerFunc(h.ClearHistories)},
		{Pattern: "DELETE /api/core/chat/item/delete", Handler: http.HandlerFunc(h.DeleteItem)},
		{Pattern: "POST /api/core/chat/feedback/updateUserFeedback", MaxBody: api, Handler: http.HandlerFunc(h.UpdateUserFeedback)},
		{Pattern: "GET /api/core/chat/init", Handler: http.HandlerFunc(h.InitChat)},
		{Pattern: "GET /api/core/chat/getResData", Handler: http.HandlerFunc(h.ResData)},
		{Pattern: "POST /api/core/ai/agent/v2/createQuestionGuide", MaxBody: api, Handler: http.HandlerFunc(h.QuestionGuideV2)},
		{Pattern: "POST /api/core/ai/agent/createQuestionGuide", MaxBody: api, Handler: http.HandlerFunc(h.QuestionGuideV1)},
	}
}

// fastGPTSources are the sources getHistories may name. chatgate's
// conversations are SourceAPI or SourceShare; the others match none.
var fastGPTSources = []string{"", SourceAPI, SourceShare, "online", "test", "team", "cronJob", "feishu", "official_account", "wecom", "mcp"}

// Sentinels of the history routes.
var (
	errNoSearch = apierror.New(http.StatusNotImplemented, "not_implemented", "this server's history store cannot filter conversations or find records")
	errNoEdit   = apierror.New(http.StatusNotImplemented, "not_implemented", "this server's history store cannot change conversations")
	errNoUpdate = apierror.InvalidRequest("", "give customTitle or top")
)

// MaxCustomTitleBytes bounds updateHistory's customTitle and the feedback texts.
const MaxCustomTitleBytes = 1000

// chatRef is what names a conversation on the history routes.
type chatRef struct {
	p         *auth.Principal
	appID     string
	chatID    string
	customUID string
}

// ref checks the app, chatId and customUid a history route names. With
// needChat false, chatId is not read. It checks the app exists and the key
// may use it; not the conversation (see own).
func (h *Handler) ref(r *http.Request, appID, chatID, uid string, needChat bool) (chatRef, error) {
	p := auth.MustFromContext(r.Context())
	if appID == "" {
		return chatRef{}, apierror.InvalidRequest("appId", "is required")
	}
	app, err := appFor(p, appID, "appId")
	if err != nil {
		return chatRef{}, err
	}
	if needChat {
		if chatID == "" {
			return chatRef{}, apierror.InvalidRequest("chatId", "is required")
		}
		if err := checkChatID("chatId", chatID); err != nil {
			return chatRef{}, err
		}
	}
	if err := checkChatID("customUid", uid); err != nil {
		return chatRef{}, err
	}
	if _, err := h.app(r.Context(), p, app); err != nil {
		return chatRef{}, err
	}
	return chatRef{p: p, appID: app, chatID: chatID, customUID: uid}, nil
}

// own loads the conversation ref names, if it is the end user's.
func (h *Handler) own(ctx context.Context, ref chatRef) (*Conversation, error) {
	c, _, err := h.e.cfg.History.Conversation(ctx, ref.p.TeamID, ref.appID, ref.chatID, 1)
	if err != nil {
		return nil, err
	}
	if ref.customUID != "" && c.CustomUID != ref.customUID {
		return nil, otherEndUser(ref.customUID)
	}
	return c, nil
}

func (h *Handler) searcher() (HistorySearcher, error) {
	hs, ok := h.e.cfg.History.(HistorySearcher)
	if !ok {
		return nil, errNoSearch
	}
	return hs, nil
}

func (h *Handler) editor() (HistoryEditor, error) {
	he, ok := h.e.cfg.History.(HistoryEditor)
	if !ok {
		return nil, errNoEdit
	}
	return he, nil
}

// bodyPage reads a body's offset and pageSize by httpjson.Page's rules.
func bodyPage(offset, size *int) (int, int, error) {
	q := url.Values{}
	if offset != nil {
		q.Set("offset", strconv.Itoa(*offset))
	}
	if size != nil {
		q.Set("pageSize", strconv.Itoa(*size))
	}
	return httpjson.Page(q)
}

// list answers a page of the conversations f matches.
func (h *Handler) list(w http.ResponseWriter, r *http.Request, ref chatRef, f ConversationFilter, offset, size int) {
	if !slices.Contains(fastGPTSources, f.Source) {
		h.envelopeError(w, r, apierror.InvalidRequest("source", "must be one of FastGPT's sources (api, share, online, ...), not %q", f.Source))
		return
	}
	var (
		convs []Conversation
		total int
		err   error
	)
	if f == (ConversationFilter{}) {
		convs, total, err = h.e.cfg.History.Conversations(r.Context(), ref.p.TeamID, ref.appID, offset, size)
	} else {
		var hs HistorySearcher
		if hs, err = h.searcher(); err == nil {
			convs, total, err = hs.SearchConversations(r.Context(), ref.p.TeamID, ref.appID, f, offset, size)
		}
	}
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if convs == nil {
		convs = []Conversation{}
	}
	httpjson.WriteData(w, map[string]any{"list": convs, "total": total})
}

type historiesBody struct {
	AppID     string `json:"appId"`
	Offset    *int   `json:"offset"`
	PageSize  *int   `json:"pageSize"`
	Source    string `json:"source"`
	CustomUID string `json:"customUid"`
}

// SearchHistories serves POST /api/core/chat/getHistories {appId, offset,
// pageSize, source, customUid}: the app's conversations, pinned first,
// then the most recent.
func (h *Handler) SearchHistories(w http.ResponseWriter, r *http.Request) {
	var b historiesBody
	if err := httpjson.Decode(w, r, &b, h.opts.MaxAPIBody); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	ref, err := h.ref(r, b.AppID, "", b.CustomUID, false)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	offset, size, err := bodyPage(b.Offset, b.PageSize)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	h.list(w, r, ref, ConversationFilter{CustomUID: b.CustomUID, Source: b.Source}, offset, size)
}

type recordsBody struct {
	AppID               string `json:"appId"`
	ChatID              string `json:"chatId"`
	Offset              *int   `json:"offset"`
	PageSize            *int   `json:"pageSize"`
	LoadCustomFeedbacks bool   `json:"loadCustomFeedbacks"`
	CustomUID           string `json:"customUid"`
}

// PaginationRecords serves POST /api/core/chat/getPaginationRecords
// {appId, chatId, offset, pageSize, loadCustomFeedbacks, customUid}: a page
// of the conversation's records, oldest first, in FastGPT's shape (value
// as a list of text items, the answer's totals; responseData is
// getResData's).
func (h *Handler) PaginationRecords(w http.ResponseWriter, r *http.Request) {
	var b recordsBody
	if err := httpjson.Decode(w, r, &b, h.opts.MaxAPIBody); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	ref, err := h.ref(r, b.AppID, b.ChatID, b.CustomUID, true)
	if err == nil {
		_, err = h.own(r.Context(), ref)
	}
	offset, size := 0, 0
	if err == nil {
		offset, size, err = bodyPage(b.Offset, b.PageSize)
	}
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	recs, total, err := h.e.cfg.History.Records(r.Context(), ref.p.TeamID, ref.appID, ref.chatID, offset, size)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	list := make([]fastGPTRecord, len(recs))
	for i := range recs {
		list[i] = fastGPTRecordOf(&recs[i], b.LoadCustomFeedbacks)
	}
	httpjson.WriteData(w, map[string]any{"list": list, "total": total})
}

// fastGPTRecord is a record as FastGPT's getPaginationRecords lists it.
type fastGPTRecord struct {
	ID               string         `json:"_id"`
	DataID           string         `json:"dataId"`
	Obj              string         `json:"obj"`
	Value            []fastGPTValue `json:"value"`
	Time             time.Time      `json:"time"`
	CustomFeedbacks  *[]string      `json:"customFeedbacks,omitempty"`
	UserGoodFeedback string         `json:"userGoodFeedback,omitempty"`
	UserBadFeedback  string         `json:"userBadFeedback,omitempty"`
	// the answer's totals over its modules
	LLMModuleAccount     *int     `json:"llmModuleAccount,omitempty"`
	TotalQuoteList       *[]Quote `json:"totalQuoteList,omitempty"`
	TotalRunningTime     *float64 `json:"totalRunningTime,omitempty"`
	HistoryPreviewLength *int     `json:"historyPreviewLength,omitempty"`
}

type fastGPTValue struct {
	Type string `json:"type"`
	Text struct {
		Content string `json:"content"`
	} `json:"text"`
}

func fastGPTRecordOf(rec *Record, feedbacks bool) fastGPTRecord {
	out := fastGPTRecord{ID: rec.DataID, DataID: rec.DataID, Obj: rec.Obj, Value: []fastGPTValue{{Type: "text"}},
		Time: rec.Time, UserGoodFeedback: rec.UserGoodFeedback, UserBadFeedback: rec.UserBadFeedback}
	out.Value[0].Text.Content = rec.Value
	if feedbacks {
		out.CustomFeedbacks = &[]string{} // chatgate's apps add none
	}
	if rec.Obj == "AI" {
		llm, preview, quotes, running := 0, 0, []Quote{}, 0.0
		for _, m := range rec.ResponseData {
			running += m.RunningTime
			switch m.ModuleName {
			case "AI Chat":
				llm++
				preview = len(m.CompleteMessages)
			case "KB Search":
				quotes = append(quotes, m.QuoteList...)
			}
		}
		out.LLMModuleAccount, out.TotalQuoteList, out.HistoryPreviewLength = &llm, &quotes, &preview
		out.TotalRunningTime = &running
	}
	return out
}

type updateHistoryBody struct {
	AppID       string  `json:"appId"`
	ChatID      string  `json:"chatId"`
	CustomTitle *string `json:"customTitle"`
	Top         *bool   `json:"top"`
	CustomUID   string  `json:"customUid"`
}

// UpdateHistory serves POST /api/core/chat/updateHistory {appId, chatId,
// customTitle?, top?, customUid?}: it renames or pins a conversation.
func (h *Handler) UpdateHistory(w http.ResponseWriter, r *http.Request) {
	var b updateHistoryBody
	if err := httpjson.Decode(w, r, &b, h.opts.MaxAPIBody); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	ref, err := h.ref(r, b.AppID, b.ChatID, b.CustomUID, true)
	switch {
	case err != nil:
	case b.CustomTitle == nil && b.Top == nil:
		err = errNoUpdate
	case b.CustomTitle != nil:
		err = field.Line("customTitle", *b.CustomTitle, MaxCustomTitleBytes)
	}
	var he HistoryEditor
	if err == nil {
		he, err = h.editor()
	}
	if err == nil {
		_, err = h.own(r.Context(), ref)
	}
	if err == nil {
		err = he.UpdateConversation(r.Context(), ref.p.TeamID, ref.appID, ref.chatID, ConversationUpdate{CustomTitle: b.CustomTitle, Top: b.Top})
	}
	h.done(w, r, err)
}

// done answers err, or FastGPT's data: null.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, json.RawMessage("null"))
}

// DelHistory serves DELETE /api/core/chat/delHistory?appId=&chatId=: it
// deletes the conversation with its records; one that does not exist (or
// is another end user's) is 404 and nothing is deleted.
func (h *Handler) DelHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := h.ref(r, q.Get("appId"), q.Get("chatId"), q.Get("customUid"), true)
	if err == nil {
		_, err = h.own(r.Context(), ref)
	}
	if err == nil {
		err = h.e.cfg.History.DeleteConversation(r.Context(), ref.p.TeamID, ref.appID, ref.chatID)
	}
	h.done(w, r, err)
}

// ClearHistories serves DELETE /api/core/chat/clearHistories?appId=: it
// deletes the app's conversations started with a key (of the end user
// customUid names, if it names one), as FastGPT clears only those; share
// links' stay. Clearing none is not an error.
func (h *Handler) ClearHistories(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := h.ref(r, q.Get("appId"), "", q.Get("customUid"), false)
	var he HistoryEditor
	if err == nil {
		he, err = h.editor()
	}
	if err == nil {
		_, err = he.DeleteConversations(r.Context(), ref.p.TeamID, ref.appID, ConversationFilter{CustomUID: ref.customUID, Source: SourceAPI})
	}
	h.done(w, r, err)
}

// recordID reads the record id a route names in param.
func recordID(param, v string) error {
	if v == "" {
		return apierror.InvalidRequest(param, "is required")
	}
	return checkChatID(param, v)
}

// DeleteItem serves DELETE /api/core/chat/item/delete?appId=&chatId=&contentId=:
// it deletes one record (contentId is its dataId).
func (h *Handler) DeleteItem(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := h.ref(r, q.Get("appId"), q.Get("chatId"), q.Get("customUid"), true)
	if err == nil {
		err = recordID("contentId", q.Get("contentId"))
	}
	var he HistoryEditor
	if err == nil {
		he, err = h.editor()
	}
	if err == nil {
		_, err = h.own(r.Context(), ref)
	}
	if err == nil {
		err = he.DeleteRecord(r.Context(), ref.p.TeamID, ref.appID, ref.chatID, q.Get("contentId"))
	}
	h.done(w, r, err)
}

type feedbackBody struct {
	AppID            string  `json:"appId"`
	ChatID           string  `json:"chatId"`
	DataID           string  `json:"dataId"`
	UserGoodFeedback *string `json:"userGoodFeedback"`
	UserBadFeedback  *string `json:"userBadFeedback"`
	CustomUID        string  `json:"customUid"`
}

// UpdateUserFeedback serves POST /api/core/chat/feedback/updateUserFeedback
// {appId, chatId, dataId, userGoodFeedback?, userBadFeedback?}: the body
// is the record's feedback, so a field left out withdraws that verdict,
// as FastGPT's doc says to cancel a like.
func (h *Handler) UpdateUserFeedback(w http.ResponseWriter, r *http.Request) {
	var b feedbackBody
	if err := httpjson.Decode(w, r, &b, h.opts.MaxAPIBody); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	var fb Feedback
	if b.UserGoodFeedback != nil {
		fb.Good = *b.UserGoodFeedback
	}
	if b.UserBadFeedback != nil {
		fb.Bad = *b.UserBadFeedback
	}
	ref, err := h.ref(r, b.AppID, b.ChatID, b.CustomUID, true)
	if err == nil {
		err = field.First(recordID("dataId", b.DataID),
			field.Line("userGoodFeedback", fb.Good, MaxCustomTitleBytes), field.Line("userBadFeedback", fb.Bad, MaxCustomTitleBytes))
	}
	var he HistoryEditor
	if err == nil {
		he, err = h.editor()
	}
	if err == nil {
		_, err = h.own(r.Context(), ref)
	}
	if err == nil {
		err = he.SetFeedback(r.Context(), ref.p.TeamID, ref.appID, ref.chatID, b.DataID, fb)
	}
	h.done(w, r, err)
}

// InitChat serves GET /api/core/chat/init?appId=&chatId=: the
// conversation's title and variables and what a chat window shows of the
// app.
func (h *Handler) InitChat(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := h.ref(r, q.Get("appId"), q.Get("chatId"), q.Get("customUid"), true)
	var c *Conversation
	if err == nil {
		c, err = h.own(r.Context(), ref)
	}
	var app *App
	if err == nil {
		app, err = h.app(r.Context(), ref.p, ref.appID)
	}
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	vars := c.Variables
	if vars == nil {
		vars = map[string]any{}
	}
	httpjson.WriteData(w, map[string]any{
		"chatId": c.ChatID, "appId": c.AppID, "title": c.Title, "customTitle": c.CustomTitle, "variables": vars,
		"app": map[string]any{
			"chatConfig": map[string]any{"welcomeText": "", "variables": []any{}, "questionGuide": false, "instruction": ""},
			"chatModels": []string{app.Model}, "name": app.Name, "avatar": "", "intro": "", "type": "simple", "pluginInputs": []any{},
		},
	})
}

// ResData serves GET /api/core/chat/getResData?appId=&chatId=&dataId=: the
// module responses of one record ([] for a question).
func (h *Handler) ResData(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := h.ref(r, q.Get("appId"), q.Get("chatId"), q.Get("customUid"), true)
	if err == nil {
		err = recordID("dataId", q.Get("dataId"))
	}
	var hs HistorySearcher
	if err == nil {
		hs, err = h.searcher()
	}
	if err == nil {
		_, err = h.own(r.Context(), ref)
	}
	var rec *Record
	if err == nil {
		rec, err = hs.Record(r.Context(), ref.p.TeamID, ref.appID, ref.chatID, q.Get("dataId"))
	}
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	data := rec.ResponseData
	if data == nil {
		data = []ModuleResponse{}
	}
	httpjson.WriteData(w, data)
}
