package auth

import (
	"cmp"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// HandlerOptions configure a Handler. The zero value is usable.
type HandlerOptions struct {
	// MaxBody caps the body of the admin routes' requests; 1 MiB when zero.
	MaxBody int64
	// Logger receives the errors answered as 500; slog.Default() when nil.
	Logger *slog.Logger
}

// Handler serves the key API, FastGPT's /api/support/openapi routes. Every
// method expects the principal in the context (Register mounts them behind
// a Guard); the caller manages its own team's keys only.
type Handler struct {
	m       *Manager
	log     *slog.Logger
	maxBody int64
}

// NewHandler returns the key API on m.
func NewHandler(m *Manager, opts HandlerOptions) *Handler {
	h := &Handler{m: m, log: cmp.Or(opts.Logger, slog.Default()), maxBody: opts.MaxBody}
	if h.maxBody <= 0 {
		h.maxBody = 1 << 20
	}
	return h
}

// Routes lists the key API: managing keys takes ScopeAdmin, and /me answers
// any key about itself.
func (h *Handler) Routes() []Route {
	admin := func(pattern string, fn http.HandlerFunc) Route {
		return Route{Pattern: pattern, Scope: ScopeAdmin, MaxBody: h.maxBody, Handler: fn}
	}
	return []Route{
		admin("POST /api/support/openapi/create", h.Create),
		admin("POST /api/support/openapi/import", h.Import),
		admin("GET /api/support/openapi/list", h.List),
		admin("PUT /api/support/openapi/update", h.Update),
		admin("DELETE /api/support/openapi/delete", h.Delete),
		admin("POST /api/support/openapi/rotate", h.Rotate),
		admin("GET /api/support/openapi/audit", h.Audit),
		{Pattern: "GET /api/support/openapi/me", Handler: http.HandlerFunc(h.Me)},
	}
}

// Register mounts Routes on mux behind g.
func (h *Handler) Register(mux *http.ServeMux, g Guard) { Mount(mux, g, h.Routes()...) }

// KeyView is a key as the API shows it: never the key or its hash.
type KeyView struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Hint         string     `json:"hint"`
	AppID        string     `json:"appId,omitempty"`
	TeamID       string     `json:"teamId"`
	Scopes       Scopes     `json:"scopes"`
	Limit        LimitView  `json:"limit"`
	AllowedIPs   []string   `json:"allowedIPs"`
	UsagePoints  float64    `json:"usagePoints"`
	LastUsedTime *time.Time `json:"lastUsedTime"`
	CreateTime   time.Time  `json:"createTime"`
	Disabled     bool       `json:"disabled"`
	Source       Source     `json:"source"`
}

// LimitView is a Limit on the wire: -1 for an unlimited quota, null for no expiry.
type LimitView struct {
	ExpiredTime    *time.Time `json:"expiredTime"`
	MaxUsagePoints float64    `json:"maxUsagePoints"`
	RPM            int        `json:"rpm"`
}

// View returns the API view of k.
func View(k *Key) KeyView {
	v := KeyView{
		ID: k.ID, Name: k.Name, Hint: k.Hint, AppID: k.AppID, TeamID: k.TeamID, Scopes: k.Scopes,
		AllowedIPs: make([]string, 0, len(k.AllowedIPs)), UsagePoints: k.UsagePoints,
		CreateTime: k.CreateTime, Disabled: k.Disabled, Source: k.Source,
		Limit: LimitView{MaxUsagePoints: -1, RPM: k.Limit.RPM},
	}
	if v.Scopes == nil {
		v.Scopes = Scopes{}
	}
	if !k.Limit.unlimitedPoints() {
		v.Limit.MaxUsagePoints = k.Limit.MaxUsagePoints
	}
	if t := k.Limit.ExpiredTime; !t.IsZero() {
		v.Limit.ExpiredTime = &t
	}
	if t := k.LastUsedTime; !t.IsZero() {
		v.LastUsedTime = &t
	}
	for _, p := range k.AllowedIPs {
		v.AllowedIPs = append(v.AllowedIPs, p.String())
	}
	return v
}

// limitBody is a limit as clients send it.
type limitBody struct {
	ExpiredTime    *string  `json:"expiredTime"`
	MaxUsagePoints *float64 `json:"maxUsagePoints"`
	RPM            *int     `json:"rpm"`
}

// apply sets the fields present in b on l.
func (b *limitBody) apply(l *Limit) error {
	if b == nil {
		return nil
	}
	if b.ExpiredTime != nil {
		if *b.ExpiredTime == "" {
			l.ExpiredTime = time.Time{}
		} else {
			t, err := time.Parse(time.RFC3339, *b.ExpiredTime)
			if err != nil {
				return apierror.InvalidRequest("limit.expiredTime", "must be an RFC 3339 time such as 2027-01-02T15:04:05Z")
			}
			l.ExpiredTime = t.UTC()
		}
	}
	if p := b.MaxUsagePoints; p != nil {
		switch {
		case *p == -1:
			l.MaxUsagePoints = 0
		case *p > 0 && !math.IsInf(*p, 0):
			l.MaxUsagePoints = *p
		default:
			return apierror.InvalidRequest("limit.maxUsagePoints", "must be positive, or -1 for unlimited")
		}
	}
	if b.RPM != nil {
		if *b.RPM < 0 {
			return apierror.InvalidRequest("limit.rpm", "must be 0 (unlimited) or positive")
		}
		l.RPM = *b.RPM
	}
	return nil
}

type createBody struct {
	Name       string     `json:"name"`
	AppID      string     `json:"appId"`
	TeamID     string     `json:"teamId"`
	Scopes     Scopes     `json:"scopes"`
	Limit      *limitBody `json:"limit"`
	AllowedIPs []string   `json:"allowedIPs"`
	Key        string     `json:"key"` // import only
}

func (h *Handler) spec(r *http.Request, p *Principal, b *createBody) (KeySpec, error) {
	spec := KeySpec{Name: b.Name, AppID: strings.TrimSpace(b.AppID), TeamID: p.TeamID, Scopes: b.Scopes, Actor: p.KeyID}
	if b.TeamID != "" && b.TeamID != p.TeamID {
		// Only the bootstrap key may start keys for other teams.
		if p.Source != SourceRoot {
			return spec, apierror.InvalidRequest("teamId", "may only name your own team")
		}
		spec.TeamID = b.TeamID
	}
	if err := b.Limit.apply(&spec.Limit); err != nil {
		return spec, err
	}
	ips, err := ParsePrefixes("allowedIPs", b.AllowedIPs)
	if err != nil {
		return spec, err
	}
	if len(ips) > 0 {
		spec.AllowedIPs = ips
	}
	return spec, nil
}

// created is the answer to create and rotate: the only time the key is shown.
type created struct {
	KeyView
	Key string `json:"key"`
}

// Create serves POST /api/support/openapi/create.
func (h *Handler) Create(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	var b createBody
	if err := httpjson.Decode(w, r, &b, 64<<10); err != nil {
		h.fail(w, r, err)
		return
	}
	if b.Key != "" {
		h.fail(w, r, apierror.InvalidRequest("key", "is only accepted by /api/support/openapi/import"))
		return
	}
	spec, err := h.spec(r, p, &b)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	k, secret, err := h.m.Create(r.Context(), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, created{KeyView: View(k), Key: secret})
}

// Import serves POST /api/support/openapi/import.
func (h *Handler) Import(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	var b createBody
	if err := httpjson.Decode(w, r, &b, 64<<10); err != nil {
		h.fail(w, r, err)
		return
	}
	spec, err := h.spec(r, p, &b)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	k, err := h.m.Import(r.Context(), spec, b.Key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, View(k))
}

// List serves GET /api/support/openapi/list[?appId=].
func (h *Handler) List(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	appID := r.URL.Query().Get("appId")
	if err := field.OptionalID("appId", appID); err != nil {
		h.fail(w, r, err)
		return
	}
	ks, err := h.m.List(r.Context(), Filter{TeamID: p.TeamID, AppID: appID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]KeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, View(k))
	}
	httpjson.WriteData(w, out)
}

type updateBody struct {
	ID         string     `json:"id"`
	Name       *string    `json:"name"`
	Scopes     *Scopes    `json:"scopes"`
	Limit      *limitBody `json:"limit"`
	AllowedIPs *[]string  `json:"allowedIPs"`
	Disabled   *bool      `json:"disabled"`
}

// Update serves PUT /api/support/openapi/update.
func (h *Handler) Update(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	var b updateBody
	if err := httpjson.Decode(w, r, &b, 64<<10); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := field.ID("id", b.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	u := KeyUpdate{Name: b.Name, Scopes: b.Scopes, Disabled: b.Disabled, Actor: p.KeyID}
	if b.Limit != nil || b.AllowedIPs != nil {
		cur, err := h.m.Get(r.Context(), p.TeamID, b.ID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if b.Limit != nil {
			l := cur.Limit
			if err := b.Limit.apply(&l); err != nil {
				h.fail(w, r, err)
				return
			}
			u.Limit = &l
		}
		if b.AllowedIPs != nil {
			ips, err := ParsePrefixes("allowedIPs", *b.AllowedIPs)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			u.AllowedIPs = &ips
		}
	}
	k, err := h.m.Update(r.Context(), p.TeamID, b.ID, u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, View(k))
}

// Delete serves DELETE /api/support/openapi/delete?id=.
func (h *Handler) Delete(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	keyID := r.URL.Query().Get("id")
	if err := field.ID("id", keyID); err != nil {
		h.fail(w, r, err)
		return
	}
	if keyID == p.KeyID {
		h.fail(w, r, apierror.InvalidRequest("id", "is the key making this request; use another admin key to revoke it"))
		return
	}
	if err := h.m.Revoke(r.Context(), p.TeamID, keyID, p.KeyID); err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, map[string]string{"id": keyID})
}

type rotateBody struct {
	ID           string `json:"id"`
	GraceSeconds *int64 `json:"graceSeconds"`
}

// Rotate serves POST /api/support/openapi/rotate.
func (h *Handler) Rotate(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	var b rotateBody
	if err := httpjson.Decode(w, r, &b, 4<<10); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := field.ID("id", b.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	var grace time.Duration
	if b.GraceSeconds != nil {
		if *b.GraceSeconds < 0 || *b.GraceSeconds > int64(MaxGrace/time.Second) {
			h.fail(w, r, apierror.InvalidRequest("graceSeconds", "must be between 0 and %d", int64(MaxGrace/time.Second)))
			return
		}
		grace = time.Duration(*b.GraceSeconds) * time.Second
	}
	k, secret, err := h.m.Rotate(r.Context(), p.TeamID, b.ID, grace, p.KeyID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, created{KeyView: View(k), Key: secret})
}

// Me serves GET /api/support/openapi/me: the caller's principal and limits.
func (h *Handler) Me(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	k, err := h.m.Get(r.Context(), p.TeamID, p.KeyID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, struct {
		Principal *Principal `json:"principal"`
		Key       KeyView    `json:"key"`
	}{p, View(k)})
}

// Audit serves GET /api/support/openapi/audit[?keyId=&action=&limit=]: the
// team's audit trail, newest first.
func (h *Handler) Audit(w http.ResponseWriter, r *http.Request) {
	p := MustFromContext(r.Context())
	q := AuditQuery{TeamID: p.TeamID, KeyID: r.URL.Query().Get("keyId"), Action: AuditAction(r.URL.Query().Get("action"))}
	if err := field.First(field.OptionalID("keyId", q.KeyID), field.OptionalID("action", string(q.Action))); err != nil {
		h.fail(w, r, err)
		return
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		var n int
		if err := json.Unmarshal([]byte(s), &n); err != nil || n < 1 || n > 1000 {
			h.fail(w, r, apierror.InvalidRequest("limit", "must be an integer from 1 to 1000"))
			return
		}
		q.Limit = n
	}
	evs, err := h.m.Audit(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if evs == nil {
		evs = []AuditEvent{}
	}
	httpjson.WriteData(w, evs)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrKeyNotFound):
		err = apierror.NotFound("key")
	case errors.Is(err, ErrHashInUse):
		err = errImportRefused
	}
	httpjson.WriteError(w, r, h.log, err)
}
