package billing

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/apierror"
)

// Record sources.
const (
	SourceChat     = "chat"
	SourceTraining = "training"
	SourceSearch   = "search"
)

// Record is one usage record: who spent what on which model.
type Record struct {
	ID           string    `json:"id"`
	TeamID       string    `json:"teamId"`
	KeyID        string    `json:"keyId,omitempty"`
	AppID        string    `json:"appId,omitempty"`
	ShareID      string    `json:"shareId,omitempty"`
	DatasetID    string    `json:"datasetId,omitempty"`
	BillID       string    `json:"billId,omitempty"`
	Source       string    `json:"source"`
	Module       string    `json:"module"`
	Model        string    `json:"model"`
	InputTokens  int       `json:"inputTokens"`
	OutputTokens int       `json:"outputTokens"`
	Points       float64   `json:"points"`
	Time         time.Time `json:"time"`
}

// Bill is a training bill: usage written with its id is aggregated on it.
type Bill struct {
	ID         string    `json:"id"`
	TeamID     string    `json:"teamId"`
	Name       string    `json:"name"`
	DatasetID  string    `json:"datasetId,omitempty"`
	CreateTime time.Time `json:"createTime"`
}

// BillDetail is a bill with what was spent on it, per module and model.
type BillDetail struct {
	Bill
	TotalTokens int        `json:"totalTokens"`
	TotalPoints float64    `json:"totalPoints"`
	Items       []BillItem `json:"items"`
}

// BillItem is the spend of one module and model on a bill.
type BillItem struct {
	Module string  `json:"module"`
	Model  string  `json:"model"`
	Tokens int     `json:"tokens"`
	Points float64 `json:"points"`
}

// Filter selects usage records of one team.
type Filter struct {
	TeamID   string
	KeyID    string    // "": any
	AppID    string    // "": any
	From, To time.Time // [From, To); zero: unbounded
	Offset   int
	Limit    int // 0: no limit
}

func (f *Filter) match(r *Record) bool {
	return r.TeamID == f.TeamID && (f.KeyID == "" || r.KeyID == f.KeyID) && (f.AppID == "" || r.AppID == f.AppID) &&
		(f.From.IsZero() || !r.Time.Before(f.From)) && (f.To.IsZero() || r.Time.Before(f.To))
}

// Summary is the totals of the records a Filter selects.
type Summary struct {
	Total Total      `json:"total"`
	ByDay []DayTotal `json:"byDay"` // UTC days, oldest first
	ByKey []KeyTotal `json:"byKey"` // most points first
}

// Total sums tokens and points.
type Total struct {
	Records      int     `json:"records"`
	InputTokens  int     `json:"inputTokens"`
	OutputTokens int     `json:"outputTokens"`
	Points       float64 `json:"points"`
}

func (t *Total) add(r *Record) {
	t.Records++
	t.InputTokens += r.InputTokens
	t.OutputTokens += r.OutputTokens
	t.Points += r.Points
}

// DayTotal is a Total for one UTC day, "2006-01-02".
type DayTotal struct {
	Day string `json:"day"`
	Total
}

// KeyTotal is a Total for one key.
type KeyTotal struct {
	KeyID string `json:"keyId"`
	Total
}

// RecordWriter stores usage records durably: when Record returns nil, the
// record survives a crash.
type RecordWriter interface {
	// Record stores r, assigning ID and Time when empty, and adds it to
	// its bill and to its key's and app's totals. A record whose ID is
	// already stored is not counted twice: Record returns ErrDuplicate and
	// changes nothing, so that a caller delivering a record again (from an
	// outbox, after a crash) knows not to charge it again. A record with a BillID of no
	// bill of its team fails with ErrBillNotFound, storing nothing; so
	// does a record without a team, or with negative or non-finite points
	// or tokens. A failing record does not fail the others.
	Record(ctx context.Context, r *Record) error
}

// BillStore keeps training bills, which the records written under their id
// add up on.
type BillStore interface {
	// CreateBill stores b, assigning ID when empty.
	CreateBill(ctx context.Context, b *Bill) error
	// Bill returns a bill with its spend; ErrBillNotFound if missing.
	Bill(ctx context.Context, id string) (*BillDetail, error)
}

// UsageReader answers the usage routes' queries of one team's records.
type UsageReader interface {
	// List returns the records f selects, newest first, and their count
	// before Offset and Limit.
	List(ctx context.Context, f Filter) ([]Record, int, error)
	// Summary returns the totals of the records f selects.
	Summary(ctx context.Context, f Filter) (*Summary, error)
}

// SpendReader returns the totals quotas and budgets are checked against.
type SpendReader interface {
	// KeyPoints returns the points each key has spent, to bring key
	// counters into agreement after a crash.
	KeyPoints(ctx context.Context) (map[string]float64, error)
	// AppPoints returns the points a team's app has spent. App ids are
	// scoped to their team, so another team's app of the same id counts
	// apart.
	AppPoints(ctx context.Context, teamID, appID string) (float64, error)
}

// KeySpendReader is a capability of ledgers that read one key's points
// without reading every key's; KeySpend uses it when the ledger has it.
type KeySpendReader interface {
	// KeyPointsOf returns the points the key has spent.
	KeyPointsOf(ctx context.Context, keyID string) (float64, error)
}

// Ledger stores usage records and bills durably, and answers for them: what
// an Accountant and its Handler need. It is split by who consumes it: the
// Accountant writes records and reads spend and bills, the Handler makes
// and shows bills and reads usage. MemoryLedger and BoltLedger implement
// it, and the billing/billingtest package holds the conformance test any
// Ledger must pass.
type Ledger interface {
	RecordWriter
	BillStore
	UsageReader
	SpendReader
}

// ErrBillNotFound answers a missing bill, or another team's.
var ErrBillNotFound = &apierror.Error{Status: http.StatusNotFound, Code: apierror.ErrNotFound.Code, Message: "bill not found"}

// ErrBudgetSpent answers work for an app whose budget is spent.
var ErrBudgetSpent = &apierror.Error{Status: http.StatusTooManyRequests, Code: apierror.CodeInsufficientQuota,
	Message: "the app has spent its usage budget"}

// ErrDuplicate reports a record whose id the ledger already has; nothing
// was changed. It is not a failure: the record was stored before.
var ErrDuplicate = errors.New("billing: record already stored")

var (
	errNoTeam     = errors.New("billing: record has no team")
	errBadFigures = errors.New("billing: record has negative or non-finite points or tokens")
)
