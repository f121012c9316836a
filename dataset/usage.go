package dataset

import (
	"context"
	"time"
)

// Usage modules.
const (
	ModuleEmbedding = "embedding" // training: embedding pushed data
	ModuleQA        = "qa"        // training: the QA model writing pairs
	ModuleSearch    = "search"    // embedding a search query
)

// UsageRecorder receives the tokens spent on training and search. The
// billing package provides one; dataset only declares what it needs. A
// record given again under an ID the recorder already has must not be
// counted again, and must not be an error.
type UsageRecorder interface {
	RecordDatasetUsage(ctx context.Context, u UsageRecord) error
}

// UsageRecord is the usage of one piece of dataset work.
type UsageRecord struct {
	// ID identifies the record. Training usage is delivered from a durable
	// outbox and may be delivered again after a crash: a recorder that
	// stores it under this id (the billing ledger does) counts it once.
	ID           string `json:"id"`
	TeamID       string
	KeyID        string
	DatasetID    string
	CollectionID string
	BillID       string // pushData's billId; empty for none
	Module       string
	Model        string
	InputTokens  int
	OutputTokens int
	Items        int // data items the work covered
	Time         time.Time
}
