package dataset

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// Handler serves FastGPT's knowledge-base routes on a Service. Mount each
// method behind auth middleware that requires dataset:write for changes and
// dataset:read for reads, as Register does.
type Handler struct {
	s       *Service
	log     *slog.Logger
	maxBody int64
}

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// MaxBody caps request bodies; default 16 MiB, enough for a full
	// pushData of 2,000 items.
	MaxBody int64
	Logger  *slog.Logger
}

// NewHandler returns a Handler on s.
func NewHandler(s *Service, opts HandlerOptions) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{s: s, log: opts.Logger, maxBody: opts.MaxBody}
}

// Register mounts every route on mux, each wrapped by require with the
// scope it needs (require is typically an auth.Authenticator's Require).
func (h *Handler) Register(mux *http.ServeMux, require func(auth.Scope, http.Handler) http.Handler) {
	for _, r := range []struct {
		pattern string
		scope   auth.Scope
		fn      http.HandlerFunc
	}{
		{"POST /api/core/dataset/create", auth.ScopeDatasetWrite, h.CreateDataset},
		{"GET /api/core/dataset/list", auth.ScopeDatasetRead, h.ListDatasets},
		{"GET /api/core/dataset/detail", auth.ScopeDatasetRead, h.DatasetDetail},
		{"DELETE /api/core/dataset/delete", auth.ScopeDatasetWrite, h.DeleteDataset},
		{"POST /api/core/dataset/collection/create", auth.ScopeDatasetWrite, h.CreateCollection},
		{"POST /api/core/dataset/collection/create/text", auth.ScopeDatasetWrite, h.CreateTextCollection},
		{"GET /api/core/dataset/collection/list", auth.ScopeDatasetRead, h.ListCollections},
		{"GET /api/core/dataset/collection/detail", auth.ScopeDatasetRead, h.CollectionDetail},
		{"GET /api/core/dataset/collection/trainingFailures", auth.ScopeDatasetRead, h.TrainingFailures},
		{"DELETE /api/core/dataset/collection/delete", auth.ScopeDatasetWrite, h.DeleteCollection},
		{"POST /api/core/dataset/data/pushData", auth.ScopeDatasetWrite, h.PushData},
		{"GET /api/core/dataset/data/list", auth.ScopeDatasetRead, h.ListData},
		{"GET /api/core/dataset/data/detail", auth.ScopeDatasetRead, h.DataDetail},
		{"PUT /api/core/dataset/data/update", auth.ScopeDatasetWrite, h.UpdateData},
		{"DELETE /api/core/dataset/data/delete", auth.ScopeDatasetWrite, h.DeleteData},
		{"POST /api/core/dataset/searchTest", auth.ScopeDatasetRead, h.SearchTest},
	} {
		mux.Handle(r.pattern, require(r.scope, r.fn))
	}
}

func principal(r *http.Request) *auth.Principal {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		panic("dataset: handler mounted without auth middleware")
	}
	return p
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpjson.WriteError(w, r, h.log, err)
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := httpjson.Decode(w, r, v, h.maxBody); err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// queryID reads a required id parameter; FastGPT's routes name it
// variously, so each route lists the names it accepts. Two of them with
// different values are refused rather than one picked.
func (h *Handler) queryID(w http.ResponseWriter, r *http.Request, names ...string) (string, bool) {
	q := r.URL.Query()
	var got, from string
	for _, n := range names {
		v := strings.TrimSpace(q.Get(n))
		switch {
		case v == "":
		case got == "":
			got, from = v, n
		case v != got:
			h.fail(w, r, apierror.InvalidRequest(n, "differs from %s; give one of them", from))
			return "", false
		}
	}
	if got == "" {
		h.fail(w, r, apierror.InvalidRequest(names[0], "is required"))
		return "", false
	}
	if err := field.ID(from, got); err != nil {
		h.fail(w, r, err)
		return "", false
	}
	return got, true
}

// check answers the first failed field check; it reports whether all passed.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, errs ...error) bool {
	if err := field.First(errs...); err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// Limits of the fields only the handler sees.
const (
	MaxIntroBytes      = 10_000 // a dataset's intro
	MaxAvatarBytes     = 2048   // FastGPT's avatar URL, ignored but bounded
	MaxSearchTextBytes = 64 << 10
	// MaxBillIDBytes bounds a billId. It is one line of free text rather
	// than an id: FastGPT's documented pushData example sends a sentence as
	// its placeholder, and without Options.CheckBill it is stored as sent.
	MaxBillIDBytes = 1024
)

type listPage[T any] struct {
	List  []T `json:"list"`
	Total int `json:"total"`
}

// CreateDataset serves POST /api/core/dataset/create {name, vectorModel?,
// intro?}; data is the new dataset's id.
func (h *Handler) CreateDataset(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name        string          `json:"name"`
		VectorModel string          `json:"vectorModel"`
		Intro       string          `json:"intro"`
		Avatar      string          `json:"avatar"`   // FastGPT's; ignored
		Type        string          `json:"type"`     // FastGPT's; only "dataset" exists here
		ParentID    json.RawMessage `json:"parentId"` // FastGPT's folders; ignored
	}
	if !h.decode(w, r, &body) {
		return
	}
	if body.Type != "" && body.Type != "dataset" {
		h.fail(w, r, apierror.InvalidRequest("type", "only \"dataset\" is supported"))
		return
	}
	if !h.check(w, r, field.Text("intro", body.Intro, MaxIntroBytes), field.Line("avatar", body.Avatar, MaxAvatarBytes)) {
		return
	}
	d, err := h.s.CreateDataset(r.Context(), principal(r).TeamID, body.Name, body.VectorModel)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, d.ID)
}

// ListDatasets serves GET /api/core/dataset/list.
func (h *Handler) ListDatasets(w http.ResponseWriter, r *http.Request) {
	ds, err := h.s.Datasets(r.Context(), principal(r).TeamID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []*Dataset{}
	}
	httpjson.WriteData(w, ds)
}

// DatasetDetail serves GET /api/core/dataset/detail?id=.
func (h *Handler) DatasetDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "id", "datasetId")
	if !ok {
		return
	}
	d, err := h.s.Dataset(r.Context(), principal(r).TeamID, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, d)
}

// DeleteDataset serves DELETE /api/core/dataset/delete?id=.
func (h *Handler) DeleteDataset(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "id", "datasetId")
	if !ok {
		return
	}
	if err := h.s.DeleteDataset(r.Context(), principal(r).TeamID, id); err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, nil)
}

// CreateCollection serves POST /api/core/dataset/collection/create
// {datasetId, name}; data is the new collection's id.
func (h *Handler) CreateCollection(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DatasetID string          `json:"datasetId"`
		Name      string          `json:"name"`
		Type      string          `json:"type"`     // FastGPT's; "virtual" is what this creates
		Metadata  json.RawMessage `json:"metadata"` // FastGPT's; ignored
		ParentID  json.RawMessage `json:"parentId"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	if !h.check(w, r, field.ID("datasetId", body.DatasetID), field.Line("type", body.Type, 64)) {
		return
	}
	c, err := h.s.CreateCollection(r.Context(), principal(r).TeamID, body.DatasetID, body.Name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, c.ID)
}

// CreateTextCollection serves POST /api/core/dataset/collection/create/text
// {datasetId, name, text, trainingType, chunkSize, chunkOverlap?, prompt?,
// billId?}; data is {collectionId, results: pushData's answer}.
func (h *Handler) CreateTextCollection(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DatasetID    string          `json:"datasetId"`
		Name         string          `json:"name"`
		Text         string          `json:"text"`
		TrainingType string          `json:"trainingType"`
		ChunkSize    int             `json:"chunkSize"`
		ChunkOverlap int             `json:"chunkOverlap"`
		Prompt       string          `json:"prompt"`
		QAPrompt     string          `json:"qaPrompt"` // FastGPT's newer name for prompt
		BillID       string          `json:"billId"`
		Metadata     json.RawMessage `json:"metadata"`
		ParentID     json.RawMessage `json:"parentId"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	if !h.check(w, r, field.ID("datasetId", body.DatasetID), field.Line("billId", body.BillID, MaxBillIDBytes),
		field.Text("qaPrompt", body.QAPrompt, MaxPromptBytes)) {
		return
	}
	mode, err := ParseMode(body.TrainingType)
	if err != nil {
		h.fail(w, r, apierror.InvalidRequest("trainingType", "%v", err))
		return
	}
	p := principal(r)
	c, res, err := h.s.CreateTextCollection(r.Context(), TextCollection{TeamID: p.TeamID, KeyID: p.KeyID,
		DatasetID: body.DatasetID, Name: body.Name, Text: body.Text, TrainingType: mode,
		ChunkSize: body.ChunkSize, ChunkOverlap: body.ChunkOverlap, Prompt: cmp.Or(body.Prompt, body.QAPrompt), BillID: body.BillID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, map[string]any{"collectionId": c.ID, "results": res})
}

// ListCollections serves GET /api/core/dataset/collection/list?datasetId=
// &offset=&pageSize=; data is {list, total}.
func (h *Handler) ListCollections(w http.ResponseWriter, r *http.Request) {
	dsID, ok := h.queryID(w, r, "datasetId", "id")
	if !ok {
		return
	}
	offset, size, err := httpjson.Page(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cs, err := h.s.Collections(r.Context(), principal(r).TeamID, dsID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	total := len(cs)
	cs = cs[min(offset, total):]
	httpjson.WriteData(w, listPage[*CollectionDetail]{List: cs[:min(size, len(cs))], Total: total})
}

// CollectionDetail serves GET /api/core/dataset/collection/detail?id=,
// with trainingAmount (still queued) and failedAmount.
func (h *Handler) CollectionDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "id", "collectionId")
	if !ok {
		return
	}
	c, err := h.s.Collection(r.Context(), principal(r).TeamID, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, c)
}

// TrainingFailures serves GET
// /api/core/dataset/collection/trainingFailures?collectionId=&offset=
// &pageSize=: the items that failed for good, with their last error, as
// {list, total}.
func (h *Handler) TrainingFailures(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "collectionId", "id")
	if !ok {
		return
	}
	offset, size, err := httpjson.Page(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := principal(r)
	c, err := h.s.Collection(r.Context(), p.TeamID, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.s.TrainingFailures(r.Context(), p.TeamID, id, offset+size)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items = items[min(offset, len(items)):]
	if items == nil {
		items = []*TrainingItem{}
	}
	httpjson.WriteData(w, listPage[*TrainingItem]{List: items, Total: c.FailedAmount})
}

// DeleteCollection serves DELETE /api/core/dataset/collection/delete?id=.
func (h *Handler) DeleteCollection(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "id", "collectionId")
	if !ok {
		return
	}
	if err := h.s.DeleteCollection(r.Context(), principal(r).TeamID, id); err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, nil)
}

// PushData serves POST /api/core/dataset/data/pushData.
func (h *Handler) PushData(w http.ResponseWriter, r *http.Request) {
	var body struct {
		CollectionID string     `json:"collectionId"`
		Mode         string     `json:"mode"`
		TrainingType string     `json:"trainingType"`
		Prompt       string     `json:"prompt"`
		BillID       string     `json:"billId"`
		Data         []PushItem `json:"data"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	if !h.check(w, r, field.ID("collectionId", body.CollectionID), field.Line("billId", body.BillID, MaxBillIDBytes)) {
		return
	}
	name, raw := "mode", body.Mode
	if raw == "" {
		name, raw = "trainingType", body.TrainingType
	}
	mode, err := ParseMode(raw)
	if err != nil {
		h.fail(w, r, apierror.InvalidRequest(name, "%v", err))
		return
	}
	p := principal(r)
	res, err := h.s.Push(r.Context(), PushRequest{TeamID: p.TeamID, KeyID: p.KeyID, CollectionID: body.CollectionID,
		Mode: mode, Prompt: body.Prompt, BillID: body.BillID, Data: body.Data})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, res)
}

// ListData serves GET /api/core/dataset/data/list?collectionId=&offset=
// &pageSize=; data is {list, total}.
func (h *Handler) ListData(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "collectionId")
	if !ok {
		return
	}
	offset, size, err := httpjson.Page(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, total, err := h.s.DataList(r.Context(), principal(r).TeamID, id, offset, size)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*Data{}
	}
	httpjson.WriteData(w, listPage[*Data]{List: list, Total: total})
}

// DataDetail serves GET /api/core/dataset/data/detail?id=.
func (h *Handler) DataDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "id", "dataId")
	if !ok {
		return
	}
	d, err := h.s.Data(r.Context(), principal(r).TeamID, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, d)
}

// UpdateData serves PUT /api/core/dataset/data/update {id|dataId, q?, a?,
// indexes?}.
func (h *Handler) UpdateData(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID      string   `json:"id"`
		DataID  string   `json:"dataId"`
		Q       *string  `json:"q"`
		A       *string  `json:"a"`
		Indexes *[]Index `json:"indexes"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	u := DataUpdate{ID: cmp.Or(body.ID, body.DataID), Q: body.Q, A: body.A}
	if body.ID != "" && body.DataID != "" && body.ID != body.DataID {
		h.fail(w, r, apierror.InvalidRequest("dataId", "differs from id; give one of them"))
		return
	}
	if !h.check(w, r, field.ID("id", u.ID)) {
		return
	}
	if body.Indexes != nil {
		idx := make([]string, len(*body.Indexes))
		for i, x := range *body.Indexes {
			idx[i] = string(x)
		}
		u.Indexes = &idx
	}
	d, err := h.s.UpdateData(r.Context(), principal(r).TeamID, u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, d)
}

// DeleteData serves DELETE /api/core/dataset/data/delete?id=.
func (h *Handler) DeleteData(w http.ResponseWriter, r *http.Request) {
	id, ok := h.queryID(w, r, "id", "dataId")
	if !ok {
		return
	}
	if err := h.s.DeleteData(r.Context(), principal(r).TeamID, id); err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, nil)
}

// SearchTest serves POST /api/core/dataset/searchTest {datasetId, text,
// limit?, similarity?, searchMode?}; data is the hits, best first.
func (h *Handler) SearchTest(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DatasetID  string  `json:"datasetId"`
		Text       string  `json:"text"`
		Limit      int     `json:"limit"`
		Similarity float64 `json:"similarity"`
		SearchMode string  `json:"searchMode"`
		BillID     string  `json:"billId"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	if !h.check(w, r, field.OptionalID("datasetId", body.DatasetID), field.Text("text", body.Text, MaxSearchTextBytes)) {
		return
	}
	p := principal(r)
	var ids []string
	if body.DatasetID != "" {
		ids = []string{body.DatasetID}
	}
	res, err := h.s.searchTest(r.Context(), SearchRequest{TeamID: p.TeamID, KeyID: p.KeyID, BillID: body.BillID,
		DatasetIDs: ids, Text: body.Text, Limit: body.Limit, Similarity: body.Similarity, Mode: body.SearchMode})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.WriteData(w, res.Hits)
}
