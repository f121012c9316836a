package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/chatgate/chatgate/limit"
)

// KeyCharger adds spent points to a key's quota counter;
// *auth.Authenticator is one.
type KeyCharger interface {
	Charge(ctx context.Context, keyID string, points float64) error
}

// KeyChargerFunc adapts a function to a KeyCharger.
type KeyChargerFunc func(ctx context.Context, keyID string, points float64) error

// Charge calls f.
func (f KeyChargerFunc) Charge(ctx context.Context, keyID string, points float64) error {
	return f(ctx, keyID, points)
}

// AccountantOptions configure an Accountant. The zero value is usable: it
// keeps records in memory, at the default prices, and charges no key.
type AccountantOptions struct {
	// Ledger stores the records; a new MemoryLedger, which forgets them
	// when the process ends, when nil.
	Ledger Ledger
	// Prices prices tokens; nil prices every model at the default price.
	Prices *Prices
	// Keys is charged what each record costs its key; nil charges no key.
	Keys KeyCharger
	// Logger receives the warnings of records stored without their bill or
	// not charged; slog.Default() when nil.
	Logger *slog.Logger
	// Budgets admits chats of apps with a budget (ReserveBudget), by
	// AppAccount, and is charged each record's points. When nil, a
	// limit.LocalQuota over the ledger (AppSpend), which sees this
	// process's chats only; give every replica one redislimit Quota over
	// AppSpend to admit across the cluster.
	Budgets limit.Quota
}

// Accountant prices usage, writes it to the ledger and charges the key. The
// other domains' usage recorders are thin adapters onto Record.
type Accountant struct {
	ledger  Ledger
	prices  *Prices
	keys    KeyCharger
	log     *slog.Logger
	budgets limit.Quota
}

// NewAccountant returns an Accountant on opts.Ledger.
func NewAccountant(opts AccountantOptions) *Accountant {
	if opts.Ledger == nil {
		opts.Ledger = NewMemoryLedger()
	}
	if opts.Prices == nil {
		opts.Prices = &Prices{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Budgets == nil {
		opts.Budgets = limit.NewLocalQuota(AppSpend(opts.Ledger))
	}
	return &Accountant{ledger: opts.Ledger, prices: opts.Prices, keys: opts.Keys, log: opts.Logger, budgets: opts.Budgets}
}

// AppAccount names a team's app to a budget Quota.
func AppAccount(teamID, appID string) string { return teamID + "/" + appID }

// AppSpend is the source of apps' budget counters: the points the ledger
// holds for each AppAccount.
func AppSpend(ledger SpendReader) limit.Source {
	return limit.SourceFunc(func(ctx context.Context, account string) (float64, error) {
		team, app, ok := strings.Cut(account, "/")
		if !ok {
			return 0, fmt.Errorf("billing: %q names no team's app", account)
		}
		return ledger.AppPoints(ctx, team, app)
	})
}

// KeySpend is the source of keys' quota counters: the points the ledger
// holds for each key id, read one key at a time when the ledger is a
// KeySpendReader.
func KeySpend(ledger SpendReader) limit.Source {
	return limit.SourceFunc(func(ctx context.Context, keyID string) (float64, error) {
		if r, ok := ledger.(KeySpendReader); ok {
			return r.KeyPointsOf(ctx, keyID)
		}
		all, err := ledger.KeyPoints(ctx)
		return all[keyID], err
	})
}

// Ledger returns the ledger a writes to, for reports of its own.
func (a *Accountant) Ledger() Ledger { return a.ledger }

// Points prices tokens of model.
func (a *Accountant) Points(model string, in, out int) float64 {
	return a.prices.Points(model, in, out)
}

// Record prices r (unless r.Points is already set), stores it durably and
// charges its key. A record naming a bill that does not exist is stored
// without the bill rather than lost. A record whose id the ledger already
// has was recorded and charged before: Record returns nil and charges
// nothing, so delivering a record again is safe.
func (a *Accountant) Record(ctx context.Context, r *Record) error {
	if r.Points == 0 {
		r.Points = a.Points(r.Model, r.InputTokens, r.OutputTokens)
	}
	err := a.ledger.Record(ctx, r)
	if errors.Is(err, ErrBillNotFound) {
		a.log.Warn("billing: usage names an unknown bill; recorded without it", "bill", r.BillID, "team", r.TeamID)
		r.BillID = ""
		err = a.ledger.Record(ctx, r)
	}
	if errors.Is(err, ErrDuplicate) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.AppID != "" && r.Points > 0 {
		if err := a.budgets.Charge(ctx, AppAccount(r.TeamID, r.AppID), r.Points); err != nil {
			a.log.Warn("billing: charging the app's budget counter; it is rebuilt from the ledger", "app", r.AppID, "err", err)
		}
	}
	if a.keys != nil && r.KeyID != "" && r.Points > 0 {
		if err := a.keys.Charge(ctx, r.KeyID, r.Points); err != nil {
			// The ledger has it; the key counter catches up at the next start.
			a.log.Warn("billing: charging key", "key", r.KeyID, "err", err)
		}
	}
	return nil
}

// ReserveBudget implements chat.BudgetReserver: it admits one chat of
// the team's app against budget points (budget <= 0: no budget), counting
// what the chats already running will likely spend, or returns
// ErrBudgetSpent. Call end once the chat's usage is recorded.
func (a *Accountant) ReserveBudget(ctx context.Context, teamID, appID string, budget float64) (end func(), err error) {
	end, err = a.budgets.Reserve(ctx, AppAccount(teamID, appID), budget)
	if errors.Is(err, limit.ErrSpent) {
		return nil, ErrBudgetSpent
	}
	if err != nil {
		return nil, fmt.Errorf("billing: budget of app %s: %w", appID, err)
	}
	return end, nil
}

// CheckBill returns ErrBillNotFound unless the bill exists in team.
func (a *Accountant) CheckBill(ctx context.Context, teamID, billID string) error {
	b, err := a.ledger.Bill(ctx, billID)
	if err != nil {
		return err
	}
	if b.TeamID != teamID {
		return ErrBillNotFound
	}
	return nil
}

// KeyUsage reads a key's quota counter, which Reconcile compares with the
// ledger; *auth.Authenticator is one.
type KeyUsage interface {
	UsedPoints(ctx context.Context, keyID string) (float64, error)
}

// KeyUsageFunc adapts a function to a KeyUsage.
type KeyUsageFunc func(ctx context.Context, keyID string) (float64, error)

// UsedPoints calls f.
func (f KeyUsageFunc) UsedPoints(ctx context.Context, keyID string) (float64, error) {
	return f(ctx, keyID)
}

// Reconcile brings key counters up to the ledger after a crash: usage the
// ledger holds but a counter lost (it is written every few seconds) is
// charged again. counters reads each key's counter; with no Keys to charge,
// Reconcile does nothing.
func (a *Accountant) Reconcile(ctx context.Context, counters KeyUsage) (int, error) {
	if a.keys == nil {
		return 0, nil
	}
	spent, err := a.ledger.KeyPoints(ctx)
	if err != nil {
		return 0, err
	}
	fixed := 0
	for keyID, points := range spent {
		have, err := counters.UsedPoints(ctx, keyID)
		if err != nil {
			continue // a key deleted since keeps its ledger records
		}
		if d := points - have; d > 1e-9 {
			if err := a.keys.Charge(ctx, keyID, d); err != nil {
				return fixed, err
			}
			fixed++
		}
	}
	return fixed, nil
}
