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
