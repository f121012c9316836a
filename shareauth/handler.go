package shareauth

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// Handler serves the share-link admin routes (admin scope) and the
// visitor's init route (no key).
type Handler struct {
	s       *Service
	log     *slog.Logger
	maxBody int64
}

// HandlerOptions configures a Handler. The zero value works.
type HandlerOptions struct {
	// MaxBody caps the admin routes' request bodies; default 1 MiB. Each
	// also reads at most 64 KiB of JSON.
	MaxBody int64
	Logger  *slog.Logger // default slog.Default()
}

// NewHandler returns a Handler on s.
func NewHandler(s *Service, opts HandlerOptions) *Handler {
	return &Handler{s: s, log: cmp.Or(opts.Logger, slog.Default()), maxBody: cmp.Or(max(opts.MaxBody, 0), 1<<20)}
}

// Routes lists the routes: the admin ones need auth.ScopeAdmin and carry
// the body limit; init is public, since a visitor has no key.
func (h *Handler) Routes() []auth.Route {
	admin := func(pattern string, fn http.HandlerFunc) auth.Route {
		return auth.Route{Pattern: pattern, Scope: auth.ScopeAdmin, MaxBody: h.maxBody, Handler: fn}
	}
	return []auth.Route{
		admin("POST /api/support/outLink/create", h.Create),
		admin("GET /api/support/outLink/list", h.List),
		admin("PUT /api/support/outLink/update", h.Update),
		admin("DELETE /api/support/outLink/delete", h.Delete),
		{Pattern: "POST /api/core/chat/outLink/init", Public: true, Handler: http.HandlerFunc(h.Init)},
	}
}

// Register mounts Routes on mux behind g.
func (h *Handler) Register(mux *http.ServeMux, g auth.Guard) { auth.Mount(mux, g, h.Routes()...) }

// limitWire is Limit on the wire: expiredTime is RFC 3339 or "" for never,
// maxUsagePoints positive, or -1 (or absent) for unlimited; 0 is refused,
// as on keys.
type limitWire struct {
	ExpiredTime    string   `json:"expiredTime"`
	QPM            int      `json:"qpm"`
	MaxUsagePoints *float64 `json:"maxUsagePoints"`
	HookURL        string   `json:"hookUrl"`
}

func (w *limitWire) limit() (Limit, error) {
	l := Limit{QPM: w.QPM, HookURL: strings.TrimSpace(w.HookURL)}
	if w.ExpiredTime != "" {
		t, err := time.Parse(time.RFC3339, w.ExpiredTime)
		if err != nil {
			return l, apierror.InvalidRequest("limit.expiredTime", "must be an RFC 3339 time")
		}
		l.ExpiredTime = t.UTC()
	}
	if p := w.MaxUsagePoints; p != nil {
		if *p == 0 {
			return l, apierror.InvalidRequest("limit.maxUsagePoints", "must be positive, or -1 for unlimited")
		}
		l.MaxUsagePoints = *p // the Service refuses other negatives
	}
	return l, nil
}

// displayWire is Display on the wire, each field optional.
type displayWire struct {
	ShowNodeStatus    *bool   `json:"showNodeStatus"`
	ShowCompleteQuote *bool   `json:"showCompleteQuote"`
	ShowFullText      *bool   `json:"showFullText"` // FastGPT's other name for showCompleteQuote
	ShowRawSource     *bool   `json:"showRawSource"`
	ImmediateResponse *string `json:"immediateResponse"`
	DefaultResponse   *string `json:"defaultResponse"`
}

func (w displayWire) update() DisplayUpdate {
	return DisplayUpdate{ShowNodeStatus: w.ShowNodeStatus, ShowCompleteQuote: cmp.Or(w.ShowCompleteQuote, w.ShowFullText),
		ShowRawSource: w.ShowRawSource, ImmediateResponse: w.ImmediateResponse, DefaultResponse: w.DefaultResponse}
}

// linkView is a link on the wire: an unlimited quota is -1, as on keys.
type linkView struct {
	*Link
	Limit limitView `json:"limit"`
}

type limitView struct {
	ExpiredTime    time.Time `json:"expiredTime,omitzero"`
	QPM            int       `json:"qpm"`
	MaxUsagePoints float64   `json:"maxUsagePoints"`
	HookURL        string    `json:"hookUrl,omitempty"`
}

func viewLink(l *Link) linkView {
	v := linkView{Link: l, Limit: limitView{ExpiredTime: l.Limit.ExpiredTime, QPM: l.Limit.QPM,
		MaxUsagePoints: l.Limit.MaxUsagePoints, HookURL: l.Limit.HookURL}}
	if v.Limit.MaxUsagePoints <= 0 {
		v.Limit.MaxUsagePoints = -1
	}
	return v
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var de *httpjson.DecodeError
	if errors.As(err, &de) {
		// encoding/json names fields of an embedded struct by its type
		de.Field = strings.TrimPrefix(de.Field, "displayWire.")
	}
	httpjson.WriteError(w, r, h.log, err)
}

// Create serves POST /api/support/outLink/create {appId, name, limit?,
// responseDetail?, showNodeStatus?, showCompleteQuote? (or showFullText),
// showRawSource?, immediateResponse?, defaultResponse?}; data is the link with its shareId and secret, shown
// this once.
func (h *Handler) Create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AppID          string    `json:"appId"`
		Name           string    `json:"name"`
		Type           string    `json:"type"` // FastGPT's "share"/"apikey"; accepted, ignored
		Limit          limitWire `json:"limit"`
		ResponseDetail bool      `json:"responseDetail"`
		displayWire
	}
	if err := httpjson.Decode(w, r, &body, 64<<10); err != nil {
		h.fail(w, r, err)
		return
	}
	lim, err := body.Limit.limit()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var d Display
	body.update().apply(&d)
	l, secret, err := h.s.CreateLink(r.Context(), LinkSpec{TeamID: auth.MustFromContext(r.Context()).TeamID, AppID: body.AppID,
		Name: body.Name, Limit: lim, ResponseDetail: body.ResponseDetail, Display: d})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, struct {
		linkView
		Secret string `json:"secret"`
	}{viewLink(l), secret})
}

// List serves GET /api/support/outLink/list[?appId=]: the team's links,
// without secrets.
func (h *Handler) List(w http.ResponseWriter, r *http.Request) {
	appID := r.URL.Query().Get("appId")
	if err := field.OptionalID("appId", appID); err != nil {
		h.fail(w, r, err)
		return
	}
	ls, err := h.s.Links(r.Context(), auth.MustFromContext(r.Context()).TeamID, appID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	views := make([]linkView, 0, len(ls))
	for _, l := range ls {
		views = append(views, viewLink(l))
	}
	httpjson.WriteData(w, views)
}

// Update serves PUT /api/support/outLink/update {shareId|id, name?, limit?,
// responseDetail?, and Create's display fields?}.
func (h *Handler) Update(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID             string     `json:"id"`
		ShareID        string     `json:"shareId"`
		Name           *string    `json:"name"`
		Limit          *limitWire `json:"limit"`
		ResponseDetail *bool      `json:"responseDetail"`
		displayWire
	}
	if err := httpjson.Decode(w, r, &body, 64<<10); err != nil {
		h.fail(w, r, err)
		return
	}
	u := LinkUpdate{ID: cmp.Or(body.ShareID, body.ID), Name: body.Name, ResponseDetail: body.ResponseDetail, Display: body.update()}
	if body.ShareID != "" && body.ID != "" && body.ShareID != body.ID {
		h.fail(w, r, apierror.InvalidRequest("id", "differs from shareId; give one of them"))
		return
	}
	if err := field.ID("shareId", u.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Limit != nil {
		lim, err := body.Limit.limit()
		if err != nil {
			h.fail(w, r, err)
			return
		}
		u.Limit = &lim
	}
	l, err := h.s.UpdateLink(r.Context(), auth.MustFromContext(r.Context()).TeamID, u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, viewLink(l))
}

// Delete serves DELETE /api/support/outLink/delete?id= (or shareId=).
func (h *Handler) Delete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if a, b := q.Get("id"), q.Get("shareId"); a != "" && b != "" && a != b {
		h.fail(w, r, apierror.InvalidRequest("shareId", "differs from id; give one of them"))
		return
	}
	id := cmp.Or(q.Get("id"), q.Get("shareId"))
	if err := field.ID("id", id); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.s.DeleteLink(r.Context(), auth.MustFromContext(r.Context()).TeamID, id); err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, nil)
}

// Init serves POST /api/core/chat/outLink/init {shareId, authToken} (also
// outLinkUid, or the query string), for a visitor opening a link: the
// owner's /shareAuth/init decides.
func (h *Handler) Init(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ShareID    string `json:"shareId"`
		AuthToken  string `json:"authToken"`
		OutLinkUID string `json:"outLinkUid"`
	}
	if r.ContentLength != 0 {
		if err := httpjson.Decode(w, r, &body, 64<<10); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	q := r.URL.Query()
	if v := q.Get("shareId"); body.ShareID != "" && v != "" && v != body.ShareID {
		h.fail(w, r, apierror.InvalidRequest("shareId", "differs between the body and the query string; give one"))
		return
	}
	shareID := cmp.Or(body.ShareID, q.Get("shareId"))
	token := cmp.Or(body.AuthToken, body.OutLinkUID, q.Get("authToken"), q.Get("outLinkUid"))
	adm, err := h.s.Init(r.Context(), shareID, token)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, map[string]any{"shareId": adm.Link.ID, "appId": adm.Link.AppID, "name": adm.Link.Name,
		"uid": adm.UID, "responseDetail": adm.Link.ResponseDetail, "showNodeStatus": adm.Link.ShowNodeStatus,
		"showCompleteQuote": adm.Link.ShowCompleteQuote, "showRawSource": adm.Link.ShowRawSource})
}
