package chat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
	"github.com/chatgate/chatgate/internal/id"
)

// ErrConfigApp answers attempts to change an app declared in the config file.
var ErrConfigApp = &apierror.Error{Status: http.StatusConflict, Code: "app_managed_by_config",
	Message: "app is declared in the config file and cannot be changed through the API"}

// SaveApp validates a and stores it, checking that its model is served.
// Handlers and the config loader both create apps through it.
func (e *Engine) SaveApp(ctx context.Context, a *App) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if _, err := e.cfg.Models.Lookup(a.Model); err != nil {
		return apierror.InvalidRequest("model", "%v", err)
	}
	return e.cfg.Apps.PutApp(ctx, a)
}

// App returns a team's app; another team's is ErrAppNotFound.
func (e *Engine) App(ctx context.Context, teamID, id string) (*App, error) {
	return e.cfg.Apps.App(ctx, teamID, id)
}

// CreateApp serves POST /api/core/app/create. The body is an App; id is
// generated when absent.
func (h *Handler) CreateApp(w http.ResponseWriter, r *http.Request) {
	p := auth.MustFromContext(r.Context())
	var a App
	if err := httpjson.Decode(w, r, &a, 256<<10); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if a.ID == "" {
		a.ID = id.New()
	}
	if a.TeamID != "" && a.TeamID != p.TeamID {
		h.envelopeError(w, r, apierror.InvalidRequest("teamId", "may only name your own team"))
		return
	}
	if _, err := h.e.cfg.Apps.App(r.Context(), p.TeamID, a.ID); err == nil {
		h.envelopeError(w, r, apierror.ErrConflict.WithMessage("an app with this id exists"))
		return
	} else if !errors.Is(err, ErrAppNotFound) {
		h.envelopeError(w, r, err)
		return
	}
	now := time.Now().UTC()
	a.TeamID, a.Source, a.CreateTime, a.UpdateTime = p.TeamID, "", now, now
	if err := h.e.SaveApp(r.Context(), &a); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, &a)
}

// ListApps serves GET /api/core/app/list: the team's apps.
func (h *Handler) ListApps(w http.ResponseWriter, r *http.Request) {
	p := auth.MustFromContext(r.Context())
	apps, err := h.e.cfg.Apps.Apps(r.Context(), p.TeamID)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if apps == nil {
		apps = []*App{}
	}
	httpjson.WriteData(w, apps)
}

// AppDetail serves GET /api/core/app/detail?appId=.
func (h *Handler) AppDetail(w http.ResponseWriter, r *http.Request) {
	p := auth.MustFromContext(r.Context())
	appID := r.URL.Query().Get("appId")
	if err := field.ID("appId", appID); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	a, err := h.app(r.Context(), p, appID)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, a)
}

// UpdateApp serves PUT /api/core/app/update {id, ...fields}: the fields
// present replace the app's; id, teamId and times cannot change.
func (h *Handler) UpdateApp(w http.ResponseWriter, r *http.Request) {
	p := auth.MustFromContext(r.Context())
	var raw json.RawMessage
	if err := httpjson.Decode(w, r, &raw, 256<<10); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	var ident struct {
		ID    string `json:"id"`
		AppID string `json:"appId"`
	}
	_ = json.Unmarshal(raw, &ident)
	if ident.ID != "" && ident.AppID != "" && ident.ID != ident.AppID {
		h.envelopeError(w, r, apierror.InvalidRequest("appId", "differs from id; give one of them"))
		return
	}
	appID := cmp.Or(ident.ID, ident.AppID)
	if err := field.ID("id", appID); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	old, err := h.app(r.Context(), p, appID)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if old.Source == "config" {
		h.envelopeError(w, r, ErrConfigApp)
		return
	}
	a := *old
	// appId is accepted as an alias of id; drop it before the strict decode.
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	delete(fields, "appId")
	clean, _ := json.Marshal(fields)
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		h.envelopeError(w, r, httpjson.DecodeErr(err))
		return
	}
	if a.ID != old.ID || a.TeamID != old.TeamID || !a.CreateTime.Equal(old.CreateTime) || a.Source != old.Source {
		h.envelopeError(w, r, apierror.InvalidRequest("", "id, teamId, source and createTime cannot be changed"))
		return
	}
	a.UpdateTime = time.Now().UTC()
	if err := h.e.SaveApp(r.Context(), &a); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, &a)
}

// DeleteApp serves DELETE /api/core/app/del?appId=: the app and its history.
func (h *Handler) DeleteApp(w http.ResponseWriter, r *http.Request) {
	p := auth.MustFromContext(r.Context())
	appID := r.URL.Query().Get("appId")
	if err := field.ID("appId", appID); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	a, err := h.app(r.Context(), p, appID)
	if err != nil {
		h.envelopeError(w, r, err)
		return
	}
	if a.Source == "config" {
		h.envelopeError(w, r, ErrConfigApp)
		return
	}
	if err := h.e.cfg.Apps.DeleteApp(r.Context(), a.TeamID, a.ID); err != nil {
		h.envelopeError(w, r, err)
		return
	}
	httpjson.WriteData(w, map[string]string{"appId": a.ID})
}
