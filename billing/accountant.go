package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// Accountant prices usage, writes it to the ledger and charges the key. The
// other domains' usage recorders are thin adapters onto Record.
type Accountant struct {
	ledger Ledger
	prices *Prices
	keys   KeyCharger
	log    *slog.Logger
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
	return &Accountant{ledger: opts.Ledger, prices: opts.Prices, keys: opts.Keys, log: opts.Logger}
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
	if a.keys != nil && r.KeyID != "" && r.Points > 0 {
		if err := a.keys.Charge(ctx, r.KeyID, r.Points); err != nil {
			// The ledger has it; the key counter catches up at the next start.
			a.log.Warn("billing: charging key", "key", r.KeyID, "err", err)
		}
	}
	return nil
}

// CheckBudget returns ErrBudgetSpent if the team's app has spent budget
// points or more; budget <= 0 means no budget.
func (a *Accountant) CheckBudget(ctx context.Context, teamID, appID string, budget float64) error {
	if budget <= 0 {
		return nil
	}
	spent, err := a.ledger.AppPoints(ctx, teamID, appID)
	if err != nil {
		return fmt.Errorf("billing: app spend: %w", err)
	}
	if spent >= budget {
		return ErrBudgetSpent
	}
	return nil
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
