package chat

import (
	"context"
	"time"
)

// UsageRecorder receives the usage of every chat call. The billing package
// provides one; chat only declares what it needs. RecordChatUsage is called
// before the response ends, so a recorder that writes durably makes usage
// durable for every answer a client saw complete. Its ctx does not end when
// the client leaves: the usage is owed once the work is done.
type UsageRecorder interface {
	RecordChatUsage(ctx context.Context, u UsageRecord) error
}

// UsageRecorderFunc adapts a function to UsageRecorder.
type UsageRecorderFunc func(ctx context.Context, u UsageRecord) error

// RecordChatUsage implements UsageRecorder.
func (f UsageRecorderFunc) RecordChatUsage(ctx context.Context, u UsageRecord) error {
	return f(ctx, u)
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

// BudgetReserver admits chats of apps with a budget before they start; the
// billing package's Accountant is one. Apps are named by team and id, as
// app ids are scoped to their team.
type BudgetReserver interface {
	// ReserveBudget admits one chat of the app against budget points,
	// counting what the chats already running will likely spend, and
	// returns the func the engine calls once the chat has ended and its
	// usage is recorded. A spent budget is an error (billing.ErrBudgetSpent).
	ReserveBudget(ctx context.Context, teamID, appID string, budget float64) (end func(), err error)
}

// BudgetReserverFunc adapts a function to BudgetReserver.
type BudgetReserverFunc func(ctx context.Context, teamID, appID string, budget float64) (func(), error)

// ReserveBudget implements BudgetReserver.
func (f BudgetReserverFunc) ReserveBudget(ctx context.Context, teamID, appID string, budget float64) (func(), error) {
	return f(ctx, teamID, appID, budget)
}

// Pricer prices a module's tokens in points, for responseData's price
// field; the billing package's Accountant is one. The engine asks it only
// to report prices: what is charged is the UsageRecorder's business.
type Pricer interface {
	Points(model string, in, out int) float64
}

// PricerFunc adapts a function to Pricer.
type PricerFunc func(model string, in, out int) float64

// Points implements Pricer.
func (f PricerFunc) Points(model string, in, out int) float64 { return f(model, in, out) }
