package chat

import (
	"context"
	"time"
)

// Retriever finds knowledge-base quotes for a question. The dataset package
// provides one; chat only declares what it needs.
type Retriever interface {
	Retrieve(ctx context.Context, req RetrieveRequest) (RetrieveResult, error)
}

// RetrieveRequest asks for quotes from an app's datasets.
type RetrieveRequest struct {
	TeamID     string
	DatasetIDs []string
	Query      string
	Limit      int
	Similarity float64
	Mode       string
	BillKeyID  string // the key whose usage the search is charged to
}

// RetrieveResult holds the quotes, best first, and what the search cost.
type RetrieveResult struct {
	Quotes []Quote
	Model  string // embedding model
	Tokens int
}

// UsageRecorder receives the usage of every chat call. The billing package
// provides one; chat only declares what it needs. RecordChatUsage is called
// before the response ends, so a recorder that writes durably makes usage
// durable for every answer a client saw complete.
type UsageRecorder interface {
	RecordChatUsage(ctx context.Context, u UsageRecord) error
}

// UsageRecord is the usage of one module of one chat call.
type UsageRecord struct {
	TeamID       string
	KeyID        string
	AppID        string
	ChatID       string
	ShareID      string
	Module       string // "AI Chat", "KB Search"
	Model        string
	InputTokens  int
	OutputTokens int
	Time         time.Time
}

// BudgetChecker vets an app's spending before a chat starts; the billing
// package provides one. A request that starts within the budget finishes;
// the next one is refused. Apps are named by team and id, as app ids are
// scoped to their team.
type BudgetChecker interface {
	CheckBudget(ctx context.Context, teamID, appID string, budget float64) error
}
