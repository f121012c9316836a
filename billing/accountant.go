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

// Accountant prices usage, writes it to the ledger and charges the key. The
// other domains' usage recorders are thin adapters onto Record.
type Accountant struct {
	Ledger Ledger
	Prices *Prices      // nil: the default price for every model
	Keys   KeyCharger   // nil: keys are not charged
	Logger *slog.Logger // nil: slog.Default()
}

func (a *Accountant) log() *slog.Logger {
	if a.Logger == nil {
		return slog.Default()
	}
	return a.Logger
}

// Points prices tokens of model.
func (a *Accountant) Points(model string, in, out int) float64 {
	if a.Prices == nil {
		return (&Prices{}).Points(model, in, out)
	}
	return a.Prices.Points(model, in, out)
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
	err := a.Ledger.Record(ctx, r)
	if errors.Is(err, ErrBillNotFound) {
		a.log().Warn("billing: usage names an unknown bill; recorded without it", "bill", r.BillID, "team", r.TeamID)
		r.BillID = ""
		err = a.Ledger.Record(ctx, r)
	}
	if errors.Is(err, ErrDuplicate) {
		return nil
	}
	if err != nil {
		return err
	}
	if a.Keys != nil && r.KeyID != "" && r.Points > 0 {
		if err := a.Keys.Charge(ctx, r.KeyID, r.Points); err != nil {
			// The ledger has it; the key counter catches up at the next start.
			a.log().Warn("billing: charging key", "key", r.KeyID, "err", err)
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
	spent, err := a.Ledger.AppPoints(ctx, teamID, appID)
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
	b, err := a.Ledger.Bill(ctx, billID)
	if err != nil {
		return err
	}
	if b.TeamID != teamID {
		return ErrBillNotFound
	}
	return nil
}

// Reconcile brings key counters up to the ledger after a crash: usage the
// ledger holds but a counter lost (it is written every few seconds) is
// charged again. used returns a key's counter.
func (a *Accountant) Reconcile(ctx context.Context, used func(ctx context.Context, keyID string) (float64, error)) (int, error) {
	if a.Keys == nil {
		return 0, nil
	}
	spent, err := a.Ledger.KeyPoints(ctx)
	if err != nil {
		return 0, err
	}
	fixed := 0
	for keyID, points := range spent {
		have, err := used(ctx, keyID)
		if err != nil {
			continue // a key deleted since keeps its ledger records
		}
		if d := points - have; d > 1e-9 {
			if err := a.Keys.Charge(ctx, keyID, d); err != nil {
				return fixed, err
			}
			fixed++
		}
	}
	return fixed, nil
}
