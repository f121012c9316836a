package dataset

import (
	"context"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
)

// apiCollectionBody is POST /api/core/dataset/collection/create/apiCollection
// {name, apiFileId, datasetId, parentId, trainingType, chunkSize, ...}:
// FastGPT's import of a file from an API dataset's file server. Datasets
// here have no file server (dataset/update refuses apiDatasetServer), so
// the route names the dataset it cannot serve rather than answer 404 as
// if FastGPT's call were unknown.
type apiCollectionBody struct {
	createParams
	Name      string `json:"name"`
	APIFileID string `json:"apiFileId"`
}

func (b *apiCollectionBody) check() error {
	if b.APIFileID == "" {
		return apierror.InvalidRequest("apiFileId", "is required")
	}
	return b.createParams.check()
}

func (h *Handler) createAPICollection(ctx context.Context, p *auth.Principal, b *apiCollectionBody) (any, error) {
	if _, err := h.s.Dataset(ctx, p.TeamID, b.DatasetID); err != nil {
		return nil, err
	}
	return nil, apierror.InvalidRequest("datasetId", "is not an API dataset: datasets here have no file server (apiDatasetServer) to read %q from; upload the file with collection/create/localFile", b.APIFileID)
}

// externalFileBody is POST
// /api/proApi/core/dataset/collection/create/externalFileUrl
// {externalFileUrl, externalFileId?, filename?, datasetId, ...}: FastGPT's
// import of a file its server downloads from a URL (deprecated there in
// favour of its file and API datasets). The route names what to use here
// rather than answer 404 as if FastGPT's call were unknown: a web page
// through collection/create/link, a file through collection/create/localFile.
type externalFileBody struct {
	createParams
	ExternalFileURL string `json:"externalFileUrl"`
	ExternalFileID  string `json:"externalFileId"`
	Filename        string `json:"filename"`
}

func (b *externalFileBody) check() error {
	if b.ExternalFileURL == "" {
		return apierror.InvalidRequest("externalFileUrl", "is required")
	}
	return b.createParams.check()
}

func (h *Handler) createExternalFile(ctx context.Context, p *auth.Principal, b *externalFileBody) (any, error) {
	if _, err := h.s.Dataset(ctx, p.TeamID, b.DatasetID); err != nil {
		return nil, err
	}
	return nil, apierror.InvalidRequest("externalFileUrl", "files are not downloaded from URLs here; import a web page with collection/create/link, or upload the file with collection/create/localFile")
}
