package chat

import (
	"errors"
	"net/http"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// modelEntry is an app as OpenAI's model list shows a model: the id is
// what a client sends as "model".
type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func entryOf(a *App) modelEntry {
	return modelEntry{ID: a.ID, Object: "model", Created: a.CreateTime.Unix(), OwnedBy: a.TeamID}
}

// chatApps returns the apps a principal may chat with: an app key's own
// app, or every app of the team for a key with the chat scope and no app.
func (h *Handler) chatApps(r *http.Request, p *auth.Principal) ([]*App, error) {
	if !p.Has(auth.ScopeChat) {
		if p.IsAppKey() {
			return nil, auth.ScopeDenied(auth.ScopeChat)
		}
		return nil, errAppKeyRequired
	}
	if p.IsAppKey() {
		a, err := h.e.cfg.Apps.App(r.Context(), p.TeamID, p.AppID)
		if errors.Is(err, ErrAppNotFound) {
			return nil, nil // the key outlived its app: it may address nothing
		}
		if err != nil {
			return nil, err
		}
		return []*App{a}, nil
	}
	return h.e.cfg.Apps.Apps(r.Context(), p.TeamID)
}

// ListModels serves GET /v1/models (and /api/v1/models): the apps the key
// may address, in OpenAI's list shape, which clients such as Open WebUI,
// LobeChat and LangChain ask for before they chat.
func (h *Handler) ListModels(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	if p == nil {
		WriteOpenAIError(w, r, auth.ErrInvalidKey)
		return
	}
	apps, err := h.chatApps(r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := make([]modelEntry, 0, len(apps))
	for _, a := range apps {
		data = append(data, entryOf(a))
	}
	httpjson.Write(w, http.StatusOK, struct {
		Object string       `json:"object"`
		Data   []modelEntry `json:"data"`
	}{"list", data})
}

// errModelNotFound answers a model id the key may not address, as OpenAI
// answers an unknown model.
var errModelNotFound = &apierror.Error{Status: http.StatusNotFound, Code: "model_not_found",
	Message: "no app of that id is open to this key"}

// Model serves GET /v1/models/{model}: one app of ListModels, or 404.
func (h *Handler) Model(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	if p == nil {
		WriteOpenAIError(w, r, auth.ErrInvalidKey)
		return
	}
	apps, err := h.chatApps(r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("model")
	for _, a := range apps {
		if a.ID == id {
			httpjson.Write(w, http.StatusOK, entryOf(a))
			return
		}
	}
	WriteOpenAIError(w, r, errModelNotFound)
}
