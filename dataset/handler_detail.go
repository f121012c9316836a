package dataset

import (
	"context"
	"time"
)

// The detail routes' answers in the fields of FastGPT's current document
// (dataset.mdx), beside the fields chatgate answered before, which stay.

// indexView is one of a data item's indexes as FastGPT lists them: its
// default index (q, with a), then its custom ones; dataId names the
// vector, as FastGPT's does.
type indexView struct {
	Type   string `json:"type"` // "default" or "custom"
	DataID string `json:"dataId"`
	Text   string `json:"text"`
}

// dataView is GET /api/core/dataset/data/detail's answer: the item, with
// its indexes as FastGPT lists them (the default one first) in place of
// the texts, and the collection it came from.
type dataView struct {
	*Data
	Indexes    []indexView `json:"indexes"`    // shadows Data's
	SourceName string      `json:"sourceName"` // the collection's name
	SourceID   string      `json:"sourceId"`   // the collection's id
	IsOwner    bool        `json:"isOwner"`
	CanWrite   bool        `json:"canWrite"`
}

func (h *Handler) dataDetail(ctx context.Context, teamID, id string) (*dataView, error) {
	d, err := h.s.Data(ctx, teamID, id)
	if err != nil {
		return nil, err
	}
	c, err := h.s.Collection(ctx, teamID, d.CollectionID)
	if err != nil {
		return nil, err
	}
	def := d.Q
	if d.A != "" {
		def += "\n" + d.A
	}
	idx := make([]indexView, 0, len(d.Indexes)+1)
	idx = append(idx, indexView{Type: "default", DataID: vectorID(d.ID, 0), Text: def})
	for i, text := range d.Indexes {
		idx = append(idx, indexView{Type: "custom", DataID: vectorID(d.ID, i+1), Text: text})
	}
	// A key that may read a team's data may write it: the scopes, not the
	// record, decide, so both are true for whoever sees this.
	return &dataView{Data: d, Indexes: idx, SourceName: c.Name, SourceID: c.ID, IsOwner: true, CanWrite: true}, nil
}

// datasetView is GET /api/core/dataset/detail's answer: chatgate's fields
// and FastGPT's _id, parentId, type, status, isOwner, canWrite and an
// updateTime that is always there. vectorModel stays the model's name, as
// chatgate answered it before (FastGPT's document shows its model object).
type datasetView struct {
	*Dataset
	FastGPTID  string    `json:"_id"`
	ParentID   *string   `json:"parentId"` // always null: no folders
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	IsOwner    bool      `json:"isOwner"`
	CanWrite   bool      `json:"canWrite"`
	UpdateTime time.Time `json:"updateTime"` // shadows Dataset's, which a never-changed dataset omits
}

func (h *Handler) datasetDetail(ctx context.Context, teamID, id string) (*datasetView, error) {
	d, err := h.s.Dataset(ctx, teamID, id)
	if err != nil {
		return nil, err
	}
	return &datasetView{Dataset: d, FastGPTID: d.ID, Type: "dataset", Status: "active", IsOwner: true, CanWrite: true,
		UpdateTime: updated(d.CreateTime, d.UpdateTime)}, nil
}

// collectionView is GET /api/core/dataset/collection/detail's answer:
// chatgate's fields and FastGPT's _id, parentId, sourceName and an
// updateTime that is always there.
type collectionView struct {
	*CollectionDetail
	FastGPTID  string    `json:"_id"`
	ParentID   *string   `json:"parentId"` // always null: no folders
	SourceName string    `json:"sourceName"`
	CanWrite   bool      `json:"canWrite"`
	UpdateTime time.Time `json:"updateTime"`
}

func (h *Handler) collectionDetail(ctx context.Context, teamID, id string) (*collectionView, error) {
	c, err := h.s.Collection(ctx, teamID, id)
	if err != nil {
		return nil, err
	}
	return &collectionView{CollectionDetail: c, FastGPTID: c.ID, SourceName: c.Name, CanWrite: true,
		UpdateTime: updated(c.CreateTime, c.UpdateTime)}, nil
}

// deleted is a deletion as a route's work, answering data as FastGPT's
// document shows it: null, or "success" for data/delete.
func deleted(del func(ctx context.Context, teamID, id string) error, answer any) func(context.Context, string, string) (any, error) {
	return func(ctx context.Context, teamID, id string) (any, error) {
		if err := del(ctx, teamID, id); err != nil {
			return nil, err
		}
		return answer, nil
	}
}
