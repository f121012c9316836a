package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/field"
	"github.com/chatgate/chatgate/internal/httpjson"
)

// The routes of FastGPT's current OpenAPI document whose requests are JSON
// bodies where the older routes of handler.go take a query, and whose
// records carry FastGPT's field names (_id, parentId, ...). FastGPT's
// fields that have no meaning here (folders, disabled collections,
// external file ids, per-dataset models) are refused by name when they ask
// for something, rather than ignored.

// Limits of the paged bodies: FastGPT's document allows 30 a page.
const (
	MaxPageSize     = 30
	DefaultPageSize = 30
	// MaxDeleteCollections is how many collections one delete may name.
	MaxDeleteCollections = 1000
)

// jsonNull is the data of a route that answers none: FastGPT's document
// shows "data": null, which a nil data would leave out.
var jsonNull = json.RawMessage("null")

// errNoFolders answers a parentId that names a folder.
func errNoFolders(name string) error {
	return apierror.InvalidRequest(name, "folders are not supported: every dataset and collection is at the root; give null or \"\"")
}

// rootParent checks a parentId: absent, null and "" are the root, the
// only parent there is.
func rootParent(name string, raw json.RawMessage) error {
	switch v := string(bytes.TrimSpace(raw)); v {
	case "", "null", `""`:
		return nil
	}
	return errNoFolders(name)
}

// given reports whether a field of a body was sent with a value other
// than null.
func given(raw json.RawMessage) bool {
	v := string(bytes.TrimSpace(raw))
	return v != "" && v != "null"
}

// pageBody is the page of FastGPT's paged bodies: offset and pageSize.
type pageBody struct {
	Offset   *int `json:"offset"`
	PageSize *int `json:"pageSize"`
}

func (b pageBody) page() (offset, size int, err error) {
	size = DefaultPageSize
	if b.Offset != nil {
		if offset = *b.Offset; offset < 0 {
			return 0, 0, apierror.InvalidRequest("offset", "must be a non-negative integer")
		}
	}
	if b.PageSize != nil {
		if size = *b.PageSize; size < 1 || size > MaxPageSize {
			return 0, 0, apierror.InvalidRequest("pageSize", "must be an integer from 1 to %d", MaxPageSize)
		}
	}
	return offset, size, nil
}

// MaxListSearchBytes bounds the searchText of the list routes.
const MaxListSearchBytes = 1024

// datasetItem is a dataset as FastGPT's current routes list it.
type datasetItem struct {
	ID          string    `json:"_id"`
	ParentID    *string   `json:"parentId"` // always null: no folders
	TeamID      string    `json:"teamId"`
	Type        string    `json:"type"`
	Avatar      string    `json:"avatar"`
	Name        string    `json:"name"`
	Intro       string    `json:"intro"`
	VectorModel modelRef  `json:"vectorModel"`
	CreateTime  time.Time `json:"createTime"`
	UpdateTime  time.Time `json:"updateTime"`
}

// modelRef is FastGPT's model object; only its names apply here.
type modelRef struct {
	Model string `json:"model"`
	Name  string `json:"name"`
}

func newDatasetItem(d *Dataset) datasetItem {
	return datasetItem{ID: d.ID, TeamID: d.TeamID, Type: "dataset", Avatar: d.Avatar, Name: d.Name, Intro: d.Intro,
		VectorModel: modelRef{Model: d.VectorModel, Name: d.VectorModel}, CreateTime: d.CreateTime,
		UpdateTime: updated(d.CreateTime, d.UpdateTime)}
}

// updated is when a record last changed: its update time, or its
// creation for one never changed.
func updated(created, changed time.Time) time.Time {
	if changed.IsZero() {
		return created
	}
	return changed
}

// listDatasetsBody is POST /api/core/dataset/list {parentId}; the body may
// be empty, and parentId may come in the query too, as FastGPT's document
// sends it.
type listDatasetsBody struct {
	ParentID json.RawMessage `json:"parentId"`
}

// listDatasetsPost serves POST /api/core/dataset/list: the team's
// datasets, oldest first, as FastGPT lists them.
func (h *Handler) listDatasetsPost(w http.ResponseWriter, r *http.Request, p *auth.Principal) ([]datasetItem, error) {
	var b listDatasetsBody
	if err := httpjson.Decode(w, r, &b, h.maxBody); err != nil && !emptyBody(err) {
		return nil, err
	}
	if strings.TrimSpace(r.URL.Query().Get("parentId")) != "" {
		return nil, errNoFolders("parentId")
	}
	if err := rootParent("parentId", b.ParentID); err != nil {
		return nil, err
	}
	ds, err := h.s.Datasets(r.Context(), p.TeamID)
	if err != nil {
		return nil, err
	}
	out := make([]datasetItem, len(ds))
	for i, d := range ds {
		out[i] = newDatasetItem(d)
	}
	return out, nil
}

func emptyBody(err error) bool {
	var de *httpjson.DecodeError
	return errors.As(err, &de) && de.Field == "" && de.Reason == "body is empty"
}

// updateDatasetBody is PUT /api/core/dataset/update {id, name?, intro?,
// avatar?, agentModel?, parentId?}; data is null. FastGPT's other fields configure
// what does not exist here and are refused.
type updateDatasetBody struct {
	ID       string          `json:"id"`
	ParentID json.RawMessage `json:"parentId"`
	Name     *string         `json:"name"`
	Avatar   *string         `json:"avatar"`
	Intro    *string         `json:"intro"`

	VectorModel            json.RawMessage `json:"vectorModel"`
	AgentModel             *string         `json:"agentModel"`
	AgentModelID           json.RawMessage `json:"agentModelId"`
	VLMModelID             json.RawMessage `json:"vlmModelId"`
	VLMModel               json.RawMessage `json:"vlmModel"`
	WebsiteConfig          json.RawMessage `json:"websiteConfig"`
	ExternalReadURL        json.RawMessage `json:"externalReadUrl"`
	APIDatasetServer       json.RawMessage `json:"apiDatasetServer"`
	AutoSync               json.RawMessage `json:"autoSync"`
	ChunkSettings          json.RawMessage `json:"chunkSettings"`
	SangforFileParseConfig json.RawMessage `json:"sangforFileParseConfig"`
}

func (b *updateDatasetBody) check() error {
	if err := field.ID("id", b.ID); err != nil {
		return err
	}
	if err := rootParent("parentId", b.ParentID); err != nil {
		return err
	}
	if given(b.VectorModel) {
		return apierror.InvalidRequest("vectorModel", "cannot change: vectors of two models do not compare; create a dataset with the other model")
	}
	for _, f := range []struct {
		name, why string
		raw       json.RawMessage
	}{
		{"agentModelId", "name the QA model in agentModel", b.AgentModelID},
		{"vlmModelId", "datasets here have no image model", b.VLMModelID},
		{"vlmModel", "datasets here have no image model", b.VLMModel},
		{"websiteConfig", "website datasets are not supported", b.WebsiteConfig},
		{"externalReadUrl", "external datasets are not supported", b.ExternalReadURL},
		{"apiDatasetServer", "API datasets are not supported", b.APIDatasetServer},
		{"autoSync", "datasets here are not synced from a source", b.AutoSync},
		{"chunkSettings", "datasets here have no chunk settings; give chunkSize to collection/create/text", b.ChunkSettings},
		{"sangforFileParseConfig", "files are not parsed here", b.SangforFileParseConfig},
	} {
		if given(f.raw) {
			return apierror.InvalidRequest(f.name, "is not supported: %s", f.why)
		}
	}
	return nil
}

func (h *Handler) updateDataset(ctx context.Context, p *auth.Principal, b *updateDatasetBody) (json.RawMessage, error) {
	_, err := h.s.UpdateDataset(ctx, p.TeamID, DatasetUpdate{ID: b.ID, Name: b.Name, Intro: b.Intro, Avatar: b.Avatar,
		AgentModel: b.AgentModel})
	return jsonNull, err
}

// collectionItem is a collection as FastGPT's current routes list it.
type collectionItem struct {
	ID             string    `json:"_id"`
	ParentID       *string   `json:"parentId"` // always null: no folders
	TeamID         string    `json:"teamId"`
	DatasetID      string    `json:"datasetId"`
	Type           string    `json:"type"`
	Name           string    `json:"name"`
	Tags           []string  `json:"tags"`
	RawLink        string    `json:"rawLink,omitempty"` // a link collection's page
	Forbid         bool      `json:"forbid"`            // always false: every collection is searched
	TrainingType   string    `json:"trainingType,omitempty"`
	ChunkSize      int       `json:"chunkSize,omitempty"`
	CreateTime     time.Time `json:"createTime"`
	UpdateTime     time.Time `json:"updateTime"`
	DataAmount     int       `json:"dataAmount"`
	TrainingAmount int       `json:"trainingAmount"`
	FailedAmount   int       `json:"failedAmount"`
}

func newCollectionItem(c *CollectionDetail) collectionItem {
	it := collectionItem{ID: c.ID, TeamID: c.TeamID, DatasetID: c.DatasetID, Type: c.Type, Name: c.Name,
		Tags: c.Tags, RawLink: c.RawLink, ChunkSize: c.ChunkSize, CreateTime: c.CreateTime, UpdateTime: updated(c.CreateTime, c.UpdateTime),
		DataAmount: c.DataAmount, TrainingAmount: c.TrainingAmount, FailedAmount: c.FailedAmount}
	if it.Tags == nil {
		it.Tags = []string{}
	}
	switch c.TrainingType {
	case ModeIndex:
		it.TrainingType = "chunk" // FastGPT's name for index mode
	case ModeQA:
		it.TrainingType = "qa"
	}
	return it
}

// listCollectionsBody is POST /api/core/dataset/collection/listV2
// {datasetId, offset?, pageSize?, parentId?, searchText?}; data is
// {list, total}.
type listCollectionsBody struct {
	pageBody
	DatasetID  string          `json:"datasetId"`
	ParentID   json.RawMessage `json:"parentId"`
	SearchText string          `json:"searchText"`
	offset     int
	size       int
}

func (b *listCollectionsBody) check() (err error) {
	if err = field.First(field.ID("datasetId", b.DatasetID), rootParent("parentId", b.ParentID),
		field.Text("searchText", b.SearchText, MaxListSearchBytes)); err != nil {
		return err
	}
	b.offset, b.size, err = b.page()
	return err
}

func (h *Handler) listCollectionsV2(ctx context.Context, p *auth.Principal, b *listCollectionsBody) (listPage[collectionItem], error) {
	cs, total, err := h.s.CollectionPage(ctx, p.TeamID, b.DatasetID, strings.TrimSpace(b.SearchText), b.offset, b.size)
	if err != nil {
		return listPage[collectionItem]{}, err
	}
	out := make([]collectionItem, len(cs))
	for i, c := range cs {
		out[i] = newCollectionItem(c)
	}
	return listPage[collectionItem]{List: out, Total: total}, nil
}

// updateCollectionBody is PUT /api/core/dataset/collection/update {id,
// name?, tags?, createTime?, parentId?, forbid?}; data is null. FastGPT's
// other way to name the collection, datasetId with externalFileId, has
// nothing to find here.
type updateCollectionBody struct {
	ID             string          `json:"id"`
	ParentID       json.RawMessage `json:"parentId"`
	Name           *string         `json:"name"`
	Tags           *[]string       `json:"tags"`
	Forbid         *bool           `json:"forbid"`
	CreateTime     *string         `json:"createTime"`
	DatasetID      json.RawMessage `json:"datasetId"`
	ExternalFileID json.RawMessage `json:"externalFileId"`
	createTime     *time.Time
}

func (b *updateCollectionBody) check() error {
	if given(b.ExternalFileID) {
		return apierror.InvalidRequest("externalFileId", "is not supported: collections here have no external file id; name the collection by id")
	}
	if given(b.DatasetID) {
		return apierror.InvalidRequest("datasetId", "only goes with externalFileId, which is not supported; name the collection by id")
	}
	if err := field.First(field.ID("id", b.ID), rootParent("parentId", b.ParentID)); err != nil {
		return err
	}
	if b.Forbid != nil && *b.Forbid {
		return apierror.InvalidRequest("forbid", "is not supported: collections cannot be disabled here, every one is searched")
	}
	if b.CreateTime != nil {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(*b.CreateTime))
		if err != nil {
			return apierror.InvalidRequest("createTime", "must be an RFC 3339 time like 2024-01-01T00:00:00.000Z")
		}
		b.createTime = &t
	}
	return nil
}

func (h *Handler) updateCollection(ctx context.Context, p *auth.Principal, b *updateCollectionBody) (json.RawMessage, error) {
	_, err := h.s.UpdateCollection(ctx, p.TeamID, CollectionUpdate{ID: b.ID, Name: b.Name, Tags: b.Tags, CreateTime: b.createTime})
	return jsonNull, err
}

// deleteCollectionsBody is POST /api/core/dataset/collection/delete
// {collectionIds}; data is null.
type deleteCollectionsBody struct {
	CollectionIDs []string `json:"collectionIds"`
}

func (b *deleteCollectionsBody) check() error {
	if len(b.CollectionIDs) == 0 {
		return apierror.InvalidRequest("collectionIds", "must hold at least one id")
	}
	return field.IDs("collectionIds", b.CollectionIDs, MaxDeleteCollections)
}

func (h *Handler) deleteCollections(ctx context.Context, p *auth.Principal, b *deleteCollectionsBody) (json.RawMessage, error) {
	return jsonNull, h.s.DeleteCollections(ctx, p.TeamID, b.CollectionIDs)
}

// dataItem is a data item as FastGPT's current data list shows it.
type dataItem struct {
	ID           string    `json:"_id"`
	TeamID       string    `json:"teamId"`
	DatasetID    string    `json:"datasetId"`
	CollectionID string    `json:"collectionId"`
	Q            string    `json:"q"`
	A            string    `json:"a"`
	Source       string    `json:"source,omitempty"`
	UpdateTime   time.Time `json:"updateTime"`
}

// listDataBody is POST /api/core/dataset/data/v2/list {collectionId,
// offset?, pageSize?, searchText?}; data is {list, total}.
type listDataBody struct {
	pageBody
	CollectionID string `json:"collectionId"`
	SearchText   string `json:"searchText"`
	offset       int
	size         int
}

func (b *listDataBody) check() (err error) {
	if err = field.First(field.ID("collectionId", b.CollectionID),
		field.Text("searchText", b.SearchText, MaxListSearchBytes)); err != nil {
		return err
	}
	b.offset, b.size, err = b.page()
	return err
}

func (h *Handler) listDataV2(ctx context.Context, p *auth.Principal, b *listDataBody) (listPage[dataItem], error) {
	ds, total, err := h.s.DataListMatching(ctx, p.TeamID, b.CollectionID, strings.TrimSpace(b.SearchText), b.offset, b.size)
	if err != nil {
		return listPage[dataItem]{}, err
	}
	out := make([]dataItem, len(ds))
	for i, d := range ds {
		out[i] = dataItem{ID: d.ID, TeamID: d.TeamID, DatasetID: d.DatasetID, CollectionID: d.CollectionID,
			Q: d.Q, A: d.A, Source: d.Source, UpdateTime: updated(d.CreateTime, d.UpdateTime)}
	}
	return listPage[dataItem]{List: out, Total: total}, nil
}
