package dataset

import (
	"errors"
	"net/http"

	"github.com/chatgate/chatgate/apierror"
)

// The errors the service answers with. Records of another team answer the
// same not-found errors as missing ones, so ids cannot be probed.
var (
	ErrDatasetNotFound    = &apierror.Error{Status: http.StatusNotFound, Code: apierror.ErrNotFound.Code, Message: "dataset not found"}
	ErrCollectionNotFound = &apierror.Error{Status: http.StatusNotFound, Code: apierror.ErrNotFound.Code, Message: "collection not found"}
	ErrDataNotFound       = &apierror.Error{Status: http.StatusNotFound, Code: apierror.ErrNotFound.Code, Message: "data not found"}
	// ErrQAModelUnavailable answers QA-mode training when no model that can
	// write question/answer pairs is configured.
	ErrQAModelUnavailable = &apierror.Error{Status: http.StatusBadRequest, Code: "qa_model_unavailable",
		Message: "QA mode needs a QA model (dataset.qaModel in the config or CHATGATE_QA_MODEL); only the offline extractive model is available"}
	// ErrRerankUnavailable answers a search with usingReRank when no rerank
	// model is configured.
	ErrRerankUnavailable = &apierror.Error{Status: http.StatusBadRequest, Code: "rerank_model_unavailable",
		Message: "usingReRank needs a rerank model (dataset.rerank in the config); none is configured"}
	// ErrFileImportUnavailable answers localFile on a Handler given no
	// FileExtractor.
	ErrFileImportUnavailable = &apierror.Error{Status: http.StatusBadRequest, Code: "file_import_unavailable",
		Message: "this server reads no uploaded files (its dataset handler has no file extractor); send the text to collection/create/text"}
	// ErrClosed is what every method of a Service answers after Close: its
	// training and index catch-up have stopped.
	ErrClosed = errors.New("dataset: service closed")
)
