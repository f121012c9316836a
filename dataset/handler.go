package dataset

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// Handler serves FastGPT's knowledge-base routes (/api/core/dataset/...)
// on a Service. Routes lists them with the scope each needs, dataset:write
// for changes and dataset:read for reads; Register mounts them.
type Handler struct {
	s       *Service
	log     *slog.Logger
	maxBody int64
	pages   PageFetcher
	files   FileExtractor
	maxFile int64
}

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// MaxBody caps request bodies; default 16 MiB, enough for a full
	// pushData of 2,000 items.
	MaxBody int64
	// Pages reads the web pages of collection/create/link (the
	// dataset/webpage package has one); without it that route answers 400
	// naming link.
	Pages  PageFetcher
	Logger *slog.Logger
	// Files reads the files collection/create/localFile imports
	// (dataset/extract's Extractor); without it, that route answers
	// ErrFileImportUnavailable.
	Files FileExtractor
	// MaxFileBytes caps a localFile upload, counted as it arrives;
	// DefaultMaxFileBytes when zero.
	MaxFileBytes int64
}

// NewHandler returns a Handler on s.
func NewHandler(s *Service, opts HandlerOptions) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	return &Handler{s: s, log: opts.Logger, maxBody: opts.MaxBody, pages: opts.Pages, files: opts.Files, maxFile: opts.MaxFileBytes}
}

// Routes lists every route with the scope it needs. Each answers in
// FastGPT's envelope, refusals of the guard included.
func (h *Handler) Routes() []auth.Route {
	write, read := auth.ScopeDatasetWrite, auth.ScopeDatasetRead
	return []auth.Route{
		{Pattern: "POST /api/core/dataset/create", Scope: write, Handler: withBody(h, h.createDataset)},
		{Pattern: "GET /api/core/dataset/list", Scope: read, Handler: serve(h, h.listDatasets)},
		{Pattern: "POST /api/core/dataset/list", Scope: read, Handler: serve(h, h.listDatasetsPost)},
		{Pattern: "PUT /api/core/dataset/update", Scope: write, Handler: withBody(h, h.updateDataset)},
		{Pattern: "GET /api/core/dataset/detail", Scope: read, Handler: byID(h, h.datasetDetail, "id", "datasetId")},
		{Pattern: "DELETE /api/core/dataset/delete", Scope: write, Handler: byID(h, deleted(h.s.DeleteDataset, jsonNull), "id", "datasetId")},
		{Pattern: "POST /api/core/dataset/collection/create", Scope: write, Handler: withBody(h, h.createCollection)},
		{Pattern: "POST /api/core/dataset/collection/create/text", Scope: write, Handler: withBody(h, h.createTextCollection)},
		{Pattern: "POST /api/core/dataset/collection/create/link", Scope: write, Handler: withBody(h, h.createLinkCollection)},
		{Pattern: "POST /api/core/dataset/collection/create/localFile", Scope: write, Handler: serve(h, h.createLocalFile)},
		{Pattern: "POST /api/core/dataset/collection/create/apiCollection", Scope: write, Handler: withBody(h, h.createAPICollection)},
		{Pattern: "POST /api/proApi/core/dataset/collection/create/externalFileUrl", Scope: write, Handler: withBody(h, h.createExternalFile)},
		{Pattern: "GET /api/core/dataset/collection/list", Scope: read, Handler: paged(h, h.listCollections, "datasetId", "id")},
		{Pattern: "POST /api/core/dataset/collection/list", Scope: read, Handler: withBody(h, h.listCollectionsLegacy)},
		{Pattern: "POST /api/core/dataset/collection/listV2", Scope: read, Handler: withBody(h, h.listCollectionsV2)},
		{Pattern: "PUT /api/core/dataset/collection/update", Scope: write, Handler: withBody(h, h.updateCollection)},
		{Pattern: "GET /api/core/dataset/collection/detail", Scope: read, Handler: byID(h, h.collectionDetail, "id", "collectionId")},
		{Pattern: "GET /api/core/dataset/collection/trainingFailures", Scope: read, Handler: paged(h, h.trainingFailures, "collectionId", "id")},
		{Pattern: "DELETE /api/core/dataset/collection/delete", Scope: write, Handler: byID(h, deleted(h.s.DeleteCollection, jsonNull), "id", "collectionId")},
		{Pattern: "POST /api/core/dataset/collection/delete", Scope: write, Handler: withBody(h, h.deleteCollections)},
		{Pattern: "POST /api/core/dataset/data/pushData", Scope: write, Handler: withBody(h, h.pushData)},
		{Pattern: "GET /api/core/dataset/data/list", Scope: read, Handler: paged(h, h.s.DataList, "collectionId")},
		{Pattern: "POST /api/core/dataset/data/list", Scope: read, Handler: withBody(h, h.listDataLegacy)},
		{Pattern: "POST /api/core/dataset/data/v2/list", Scope: read, Handler: withBody(h, h.listDataV2)},
		{Pattern: "GET /api/core/dataset/data/detail", Scope: read, Handler: byID(h, h.dataDetail, "id", "dataId")},
		{Pattern: "PUT /api/core/dataset/data/update", Scope: write, Handler: withBody(h, h.updateData)},
		{Pattern: "DELETE /api/core/dataset/data/delete", Scope: write, Handler: byID(h, deleted(h.s.DeleteData, "success"), "id", "dataId")},
		{Pattern: "POST /api/core/dataset/searchTest", Scope: read, Handler: withBody(h, h.searchTest)},
	}
}

// Register mounts every route on mux behind g: auth.Mount of Routes.
func (h *Handler) Register(mux *http.ServeMux, g auth.Guard) {
	auth.Mount(mux, g, h.Routes()...)
}

func principal(r *http.Request) *auth.Principal {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		panic("dataset: handler mounted without auth middleware")
	}
	return p
}

// serve is every route's frame: it runs the route's work for the caller
// the guard admitted, and writes what the work returns, or its error, in
// FastGPT's envelope.
func serve[T any](h *Handler, work func(w http.ResponseWriter, r *http.Request, p *auth.Principal) (T, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := work(w, r, principal(r))
		if err != nil {
			httpjson.WriteError(w, r, h.log, err)
			return
		}
		httpjson.WriteData(w, data)
	})
}

// body is a route's JSON body, which vets its own fields once decoded.
type body interface{ check() error }

// withBody serves a route whose request is a JSON body B: it is decoded
// (unknown fields refused) and checked before work sees it.
func withBody[B any, PB interface {
	*B
	body
}, T any](h *Handler, work func(ctx context.Context, p *auth.Principal, b PB) (T, error)) http.Handler {
	return serve(h, func(w http.ResponseWriter, r *http.Request, p *auth.Principal) (T, error) {
		b := PB(new(B))
		err := httpjson.Decode(w, r, b, h.maxBody)
		if err == nil {
			err = b.check()
		}
		if err != nil {
			var zero T
			return zero, err
		}
		return work(r.Context(), p, b)
	})
}

// byID serves a route on one record of the caller's team, named by a query
// parameter under one of names.
func byID[T any](h *Handler, get func(ctx context.Context, teamID, id string) (T, error), names ...string) http.Handler {
	return serve(h, func(_ http.ResponseWriter, r *http.Request, p *auth.Principal) (T, error) {
		id, err := queryID(r, names...)
		if err != nil {
			var zero T
			return zero, err
		}
		return get(r.Context(), p.TeamID, id)
	})
}

type listPage[T any] struct {
	List  []T `json:"list"`
	Total int `json:"total"`
}

// paged serves a route answering a page of what belongs to a record named
// as byID's are, as {list, total}; the page is the offset and pageSize
// parameters.
func paged[T any](h *Handler, list func(ctx context.Context, teamID, id string, offset, size int) ([]T, int, error), names ...string) http.Handler {
	return serve(h, func(_ http.ResponseWriter, r *http.Request, p *auth.Principal) (listPage[T], error) {
		id, offset, size, err := pageQuery(r, names...)
		if err != nil {
			return listPage[T]{}, err
		}
		items, total, err := list(r.Context(), p.TeamID, id, offset, size)
		if items == nil {
			items = []T{}
		}
		return listPage[T]{List: items, Total: total}, err
	})
}

// pageQuery reads a paged route's id and page.
func pageQuery(r *http.Request, names ...string) (id string, offset, size int, err error) {
	if id, err = queryID(r, names...); err == nil {
		offset, size, err = httpjson.Page(r.URL.Query())
	}
	return id, offset, size, err
}

// queryID reads a required id parameter; FastGPT's routes name it
// variously, so each route lists the names it accepts. Two of them with
// different values are refused rather than one picked.
func queryID(r *http.Request, names ...string) (string, error) {
	q := r.URL.Query()
	var got, from string
	for _, n := range names {
		v := strings.TrimSpace(q.Get(n))
		switch {
		case v == "":
		case got == "":
			got, from = v, n
		case v != got:
			return "", apierror.InvalidRequest(n, "differs from %s; give one of them", from)
		}
	}
	if got == "" {
		return "", apierror.InvalidRequest(names[0], "is required")
	}
	return got, field.ID(from, got)
}

// parseMode reads a training mode from the field name.
func parseMode(name, raw string) (TrainingMode, error) {
	mode, err := ParseMode(raw)
	if err != nil {
		return "", apierror.InvalidRequest(name, "%v", err)
	}
	return mode, nil
}

// Limits of the fields only the handler sees.
const (
	MaxIntroBytes      = 10_000 // a dataset's intro
	MaxAvatarBytes     = 2048   // FastGPT's avatar URL
	MaxSearchTextBytes = 64 << 10
	// MaxBillIDBytes bounds a billId. It is one line of free text rather
	// than an id: FastGPT's documented pushData example sends a sentence as
	// its placeholder, and without Options.Bills it is stored as sent.
	MaxBillIDBytes = 1024
)

// idOf answers a create route: data is the new record's id.
func idOf[R interface{ recordID() string }](r R, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return r.recordID(), nil
}

func (d *Dataset) recordID() string    { return d.ID }
func (c *Collection) recordID() string { return c.ID }

// createDatasetBody is POST /api/core/dataset/create {name, vectorModel?,
// agentModel?, intro?}; data is the new dataset's id.
type createDatasetBody struct {
	Name        string          `json:"name"`
	VectorModel string          `json:"vectorModel"`
	AgentModel  string          `json:"agentModel"`
	VLMModel    string          `json:"vlmModel"` // FastGPT's image model; none here
	Intro       string          `json:"intro"`
	Avatar      string          `json:"avatar"`
	Type        string          `json:"type"`     // FastGPT's; only "dataset" exists here
	ParentID    json.RawMessage `json:"parentId"` // FastGPT's folders; ignored
}

func (b *createDatasetBody) check() error {
	if b.Type != "" && b.Type != "dataset" {
		return apierror.InvalidRequest("type", "only \"dataset\" is supported")
	}
	if b.VLMModel != "" {
		return apierror.InvalidRequest("vlmModel", "is not supported: datasets here index no images; leave it empty")
	}
	return nil
}

func (h *Handler) createDataset(ctx context.Context, p *auth.Principal, b *createDatasetBody) (string, error) {
	return idOf(h.s.CreateDatasetWith(ctx, p.TeamID, DatasetSpec{Name: b.Name, VectorModel: b.VectorModel,
		AgentModel: b.AgentModel, Intro: b.Intro, Avatar: b.Avatar}))
}

// listDatasets serves GET /api/core/dataset/list.
func (h *Handler) listDatasets(_ http.ResponseWriter, r *http.Request, p *auth.Principal) ([]*Dataset, error) {
	ds, err := h.s.Datasets(r.Context(), p.TeamID)
	if ds == nil {
		ds = []*Dataset{}
	}
	return ds, err
}

// createCollectionBody is POST /api/core/dataset/collection/create
// {datasetId, name}; data is the new collection's id.
type createCollectionBody struct {
	DatasetID string          `json:"datasetId"`
	Name      string          `json:"name"`
	Type      string          `json:"type"`     // FastGPT's; "virtual" is what this creates
	Metadata  json.RawMessage `json:"metadata"` // FastGPT's; ignored
	ParentID  json.RawMessage `json:"parentId"`
}

func (b *createCollectionBody) check() error {
	return field.First(field.ID("datasetId", b.DatasetID), field.Line("type", b.Type, 64))
}

func (h *Handler) createCollection(ctx context.Context, p *auth.Principal, b *createCollectionBody) (string, error) {
	return idOf(h.s.CreateCollection(ctx, p.TeamID, b.DatasetID, b.Name))
}

// textCollectionBody is POST /api/core/dataset/collection/create/text
// {datasetId, name, text, trainingType, chunkSize?, chunkOverlap?,
// prompt?, billId?, and FastGPT's other creation parameters (createParams)};
// data is {collectionId, results: pushData's answer}.
type textCollectionBody struct {
	createParams
	Name     string          `json:"name"`
	Text     string          `json:"text"`
	Metadata json.RawMessage `json:"metadata"` // FastGPT's "not used for now"; ignored
}

func (b *textCollectionBody) check() error { return b.createParams.check() }

func (h *Handler) createTextCollection(ctx context.Context, p *auth.Principal, b *textCollectionBody) (map[string]any, error) {
	tc := b.textCollection(p.TeamID, p.KeyID)
	tc.Name, tc.Text = b.Name, b.Text
	c, res, err := h.s.CreateTextCollection(ctx, tc)
	if err != nil {
		return nil, err
	}
	return map[string]any{"collectionId": c.ID, "results": res}, nil
}

// listCollections serves GET /api/core/dataset/collection/list?datasetId=
// &offset=&pageSize=.
func (h *Handler) listCollections(ctx context.Context, teamID, datasetID string, offset, size int) ([]*CollectionDetail, int, error) {
	cs, err := h.s.Collections(ctx, teamID, datasetID)
	total := len(cs)
	cs = cs[min(offset, total):]
	return cs[:min(size, len(cs))], total, err
}

// trainingFailures serves GET
// /api/core/dataset/collection/trainingFailures?collectionId=&offset=
// &pageSize=: the items that failed for good, with their last error.
func (h *Handler) trainingFailures(ctx context.Context, teamID, collectionID string, offset, size int) ([]*TrainingItem, int, error) {
	c, err := h.s.Collection(ctx, teamID, collectionID)
	if err != nil {
		return nil, 0, err
	}
	items, err := h.s.TrainingFailures(ctx, teamID, collectionID, offset+size)
	return items[min(offset, len(items)):], c.FailedAmount, err
}

// pushBody is POST /api/core/dataset/data/pushData.
type pushBody struct {
	CollectionID string     `json:"collectionId"`
	Mode         string     `json:"mode"`
	TrainingType string     `json:"trainingType"`
	Prompt       string     `json:"prompt"`
	BillID       string     `json:"billId"`
	Data         []PushItem `json:"data"`
	mode         TrainingMode
}

func (b *pushBody) check() (err error) {
	if err := field.First(field.ID("collectionId", b.CollectionID), field.Line("billId", b.BillID, MaxBillIDBytes)); err != nil {
		return err
	}
	if b.Mode == "" {
		b.mode, err = parseMode("trainingType", b.TrainingType)
	} else {
		b.mode, err = parseMode("mode", b.Mode)
	}
	return err
}

func (h *Handler) pushData(ctx context.Context, p *auth.Principal, b *pushBody) (*PushResult, error) {
	return h.s.Push(ctx, PushRequest{TeamID: p.TeamID, KeyID: p.KeyID, CollectionID: b.CollectionID,
		Mode: b.mode, Prompt: b.Prompt, BillID: b.BillID, Data: b.Data})
}

// updateDataBody is PUT /api/core/dataset/data/update {id|dataId, q?, a?,
// indexes?}.
type updateDataBody struct {
	ID      string   `json:"id"`
	DataID  string   `json:"dataId"`
	Q       *string  `json:"q"`
	A       *string  `json:"a"`
	Indexes *[]Index `json:"indexes"`
}

func (b *updateDataBody) check() error {
	if b.ID != "" && b.DataID != "" && b.ID != b.DataID {
		return apierror.InvalidRequest("dataId", "differs from id; give one of them")
	}
	return field.ID("id", cmp.Or(b.ID, b.DataID))
}

// updateData answers null, as FastGPT's document shows; data/detail reads
// the item back.
func (h *Handler) updateData(ctx context.Context, p *auth.Principal, b *updateDataBody) (json.RawMessage, error) {
	u := DataUpdate{ID: cmp.Or(b.ID, b.DataID), Q: b.Q, A: b.A}
	if b.Indexes != nil {
		idx := make([]string, len(*b.Indexes))
		for i, x := range *b.Indexes {
			idx[i] = string(x)
		}
		u.Indexes = &idx
	}
	if _, err := h.s.UpdateData(ctx, p.TeamID, u); err != nil {
		return nil, err
	}
	return jsonNull, nil
}

// searchBody is POST /api/core/dataset/searchTest {datasetId, text,
// limit?, maxResults?, similarity?, searchMode?, usingReRank?, billId?,
// datasetSearchUsingExtensionQuery?, datasetSearchExtensionModel?,
// datasetSearchExtensionBg?}; data is the hits, best first. limit is
// FastGPT's: a token budget for the hits (5000 by default, at most
// 20000); maxResults, chatgate's own, caps their number (100 by default
// and at most).
type searchBody struct {
	DatasetID   string  `json:"datasetId"`
	Text        string  `json:"text"`
	Limit       int     `json:"limit"`
	MaxResults  int     `json:"maxResults"`
	Similarity  float64 `json:"similarity"`
	SearchMode  string  `json:"searchMode"`
	UsingReRank bool    `json:"usingReRank"`
	BillID      string  `json:"billId"`

	// Query extension, FastGPT's names (see QueryExtension): the model
	// and background count only when extension is on, as in FastGPT.
	UsingExtension bool   `json:"datasetSearchUsingExtensionQuery"`
	ExtensionModel string `json:"datasetSearchExtensionModel"`
	ExtensionBg    string `json:"datasetSearchExtensionBg"`
}

func (b *searchBody) check() error {
	return field.First(field.OptionalID("datasetId", b.DatasetID), field.Text("text", b.Text, MaxSearchTextBytes),
		field.Line("datasetSearchExtensionModel", b.ExtensionModel, field.MaxIDLen),
		field.Text("datasetSearchExtensionBg", b.ExtensionBg, MaxSearchTextBytes))
}

func (h *Handler) searchTest(ctx context.Context, p *auth.Principal, b *searchBody) ([]SearchHit, error) {
	var ids []string
	if b.DatasetID != "" {
		ids = []string{b.DatasetID}
	}
	res, err := h.s.searchTest(ctx, SearchRequest{TeamID: p.TeamID, KeyID: p.KeyID, BillID: b.BillID,
		DatasetIDs: ids, Text: b.Text, MaxTokens: b.Limit, MaxResults: b.MaxResults, Similarity: b.Similarity,
		Mode: b.SearchMode, Rerank: b.UsingReRank,
		Extension: QueryExtension{Use: b.UsingExtension, Model: b.ExtensionModel, Background: b.ExtensionBg}})
	if err != nil {
		return nil, err
	}
	return res.Hits, nil
}
