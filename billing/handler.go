package billing

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// HandlerOptions configure a Handler. The zero value is usable.
type HandlerOptions struct {
	// Logger receives the errors answered as 500; slog.Default() when nil.
	Logger *slog.Logger
}

// Handler serves the bill and usage routes on an Accountant. Every method
// expects the principal in the context (Register mounts them behind a
// Guard), and shows the caller its own team's bills and usage only.
type Handler struct {
	a   *Accountant
	log *slog.Logger
}

// NewHandler returns a Handler on a.
func NewHandler(a *Accountant, opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{a: a, log: opts.Logger}
}

// Routes lists the bill and usage routes: creating a training bill, at
// either of its paths, needs dataset:write (it is for pushData), reading
// bills and usage needs billing:read.
func (h *Handler) Routes() []auth.Route {
	return []auth.Route{
		{Pattern: "POST /api/common/bill/createTrainingBill", Scope: auth.ScopeDatasetWrite, Handler: http.HandlerFunc(h.CreateTrainingBill)},
		{Pattern: "POST /api/support/wallet/usage/createTrainingUsage", Scope: auth.ScopeDatasetWrite, Handler: http.HandlerFunc(h.CreateTrainingBill)},
		{Pattern: "GET /api/common/bill/detail", Scope: auth.ScopeBillingRead, Handler: http.HandlerFunc(h.BillDetail)},
		{Pattern: "GET /api/support/usage/list", Scope: auth.ScopeBillingRead, Handler: http.HandlerFunc(h.UsageList)},
		{Pattern: "GET /api/support/usage/summary", Scope: auth.ScopeBillingRead, Handler: http.HandlerFunc(h.UsageSummary)},
	}
}

// Register mounts Routes on mux behind g.
func (h *Handler) Register(mux *http.ServeMux, g auth.Guard) { auth.Mount(mux, g, h.Routes()...) }

// CreateTrainingBill serves POST /api/common/bill/createTrainingBill
// {name?, datasetId?}, and the same at FastGPT's current path, POST
// /api/support/wallet/usage/createTrainingUsage; data is the bill id. An
// empty body is allowed, as FastGPT's documented call sends one.
func (h *Handler) CreateTrainingBill(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name      string `json:"name"`
		DatasetID string `json:"datasetId"`
	}
	if r.ContentLength != 0 {
		if err := httpjson.Decode(w, r, &body, 64<<10); err != nil && !isEmptyBody(err) {
			httpjson.WriteError(w, r, h.log, err)
			return
		}
	}
	name, err := field.OptionalName("name", body.Name)
	if err == nil {
		err = field.OptionalID("datasetId", body.DatasetID)
	}
	if err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	p := auth.MustFromContext(r.Context())
	b := &Bill{TeamID: p.TeamID, Name: cmp.Or(name, "training"), DatasetID: body.DatasetID, CreateTime: time.Now().UTC()}
	if err := h.a.ledger.CreateBill(r.Context(), b); err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	httpjson.WriteData(w, b.ID)
}

func isEmptyBody(err error) bool {
	var de *httpjson.DecodeError
	return errors.As(err, &de) && de.Reason == "body is empty"
}

// BillDetail serves GET /api/common/bill/detail?id=.
func (h *Handler) BillDetail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if a, b := q.Get("id"), q.Get("billId"); a != "" && b != "" && a != b {
		httpjson.WriteError(w, r, h.log, apierror.InvalidRequest("billId", "differs from id; give one of them"))
		return
	}
	id := cmp.Or(q.Get("id"), q.Get("billId"))
	if err := field.ID("id", id); err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	b, err := h.a.ledger.Bill(r.Context(), id)
	if err == nil && b.TeamID != auth.MustFromContext(r.Context()).TeamID {
		err = ErrBillNotFound
	}
	if err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	httpjson.WriteData(w, b)
}

// filter reads keyId, appId, from and to (RFC 3339 or a date).
func filter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{TeamID: auth.MustFromContext(r.Context()).TeamID, KeyID: q.Get("keyId"), AppID: q.Get("appId")}
	if err := field.First(field.OptionalID("keyId", f.KeyID), field.OptionalID("appId", f.AppID)); err != nil {
		return f, err
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		s := q.Get(t.name)
		if s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			v, err = time.Parse("2006-01-02", s)
		}
		if err != nil {
			return f, apierror.InvalidRequest(t.name, "must be an RFC 3339 time or a date like 2006-01-02")
		}
		*t.dst = v
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, apierror.InvalidRequest("to", "must be after from")
	}
	return f, nil
}

// UsageList serves GET /api/support/usage/list?keyId=&appId=&from=&to=
// &offset=&pageSize=; data is {list, total}, newest first.
func (h *Handler) UsageList(w http.ResponseWriter, r *http.Request) {
	f, err := filter(r)
	if err == nil {
		f.Offset, f.Limit, err = httpjson.Page(r.URL.Query())
	}
	if err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	list, total, err := h.a.ledger.List(r.Context(), f)
	if err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	if list == nil {
		list = []Record{}
	}
	httpjson.WriteData(w, map[string]any{"list": list, "total": total})
}

// UsageSummary serves GET /api/support/usage/summary?keyId=&appId=&from=
// &to=: totals, by UTC day and by key.
func (h *Handler) UsageSummary(w http.ResponseWriter, r *http.Request) {
	f, err := filter(r)
	if err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	s, err := h.a.ledger.Summary(r.Context(), f)
	if err != nil {
		httpjson.WriteError(w, r, h.log, err)
		return
	}
	httpjson.WriteData(w, s)
}
