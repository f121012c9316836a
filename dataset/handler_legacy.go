package dataset

import (
	"context"
	"encoding/json"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
)

// The list routes as FastGPT documented them before 4.8.19 (collections)
// and 4.8.11 (data), which its current document still shows: POST bodies
// paged by pageNum from 1, answered as FastGPT's PagingData {pageNum,
// pageSize, data, total}. The GET forms of handler.go stay beside them.

// legacyPage is pageNum and pageSize, FastGPT's paging before offsets.
type legacyPage struct {
	PageNum  *int `json:"pageNum"`
	PageSize *int `json:"pageSize"`
}

// page turns pageNum into an offset, with pageBody's bounds on pageSize.
func (b legacyPage) page() (num, offset, size int, err error) {
	num = 1
	if b.PageNum != nil {
		if num = *b.PageNum; num < 1 {
			return 0, 0, 0, apierror.InvalidRequest("pageNum", "must be an integer from 1")
		}
	}
	if _, size, err = (pageBody{PageSize: b.PageSize}).page(); err != nil {
		return 0, 0, 0, err
	}
	return num, (num - 1) * size, size, nil
}

// pagingData is FastGPT's PagingData.
type pagingData[T any] struct {
	PageNum  int `json:"pageNum"`
	PageSize int `json:"pageSize"`
	Data     []T `json:"data"`
	Total    int `json:"total"`
}

// legacyCollectionsBody is POST /api/core/dataset/collection/list
// {pageNum, pageSize, datasetId, parentId, searchText}.
type legacyCollectionsBody struct {
	legacyPage
	DatasetID  string          `json:"datasetId"`
	ParentID   json.RawMessage `json:"parentId"`
	SearchText string          `json:"searchText"`
	v2         listCollectionsBody
	num        int
}

func (b *legacyCollectionsBody) check() (err error) {
	var offset, size int
	if b.num, offset, size, err = b.legacyPage.page(); err != nil {
		return err
	}
	b.v2 = listCollectionsBody{pageBody: pageBody{Offset: &offset, PageSize: &size},
		DatasetID: b.DatasetID, ParentID: b.ParentID, SearchText: b.SearchText}
	return b.v2.check()
}

func (h *Handler) listCollectionsLegacy(ctx context.Context, p *auth.Principal, b *legacyCollectionsBody) (pagingData[collectionItem], error) {
	l, err := h.listCollectionsV2(ctx, p, &b.v2)
	return pagingData[collectionItem]{PageNum: b.num, PageSize: b.v2.size, Data: l.List, Total: l.Total}, err
}

// legacyDataBody is POST /api/core/dataset/data/list {pageNum, pageSize,
// collectionId, searchText}.
type legacyDataBody struct {
	legacyPage
	CollectionID string `json:"collectionId"`
	SearchText   string `json:"searchText"`
	v2           listDataBody
	num          int
}

func (b *legacyDataBody) check() (err error) {
	var offset, size int
	if b.num, offset, size, err = b.legacyPage.page(); err != nil {
		return err
	}
	b.v2 = listDataBody{pageBody: pageBody{Offset: &offset, PageSize: &size},
		CollectionID: b.CollectionID, SearchText: b.SearchText}
	return b.v2.check()
}

func (h *Handler) listDataLegacy(ctx context.Context, p *auth.Principal, b *legacyDataBody) (pagingData[dataItem], error) {
	l, err := h.listDataV2(ctx, p, &b.v2)
	return pagingData[dataItem]{PageNum: b.num, PageSize: b.v2.size, Data: l.List, Total: l.Total}, err
}
