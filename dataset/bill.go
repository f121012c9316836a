package dataset

import "context"

// BillChecker vets the billId a push or a search names before anything is
// queued or recorded under it, so usage is never written under a bill that
// does not exist. billing.Accountant is one; dataset only declares what
// it needs.
type BillChecker interface {
	// CheckBill returns an error (the checker's not-found error for a bill
	// of another team) unless billID names a bill of team.
	CheckBill(ctx context.Context, teamID, billID string) error
}

// BillCheckerFunc adapts a function to a BillChecker.
type BillCheckerFunc func(ctx context.Context, teamID, billID string) error

// CheckBill calls f.
func (f BillCheckerFunc) CheckBill(ctx context.Context, teamID, billID string) error {
	return f(ctx, teamID, billID)
}

// checkBill vets a billId before anything is queued or recorded under it;
// no billId, or no checker, passes.
func (s *Service) checkBill(ctx context.Context, teamID, billID string) error {
	if billID == "" || s.opts.Bills == nil {
		return nil
	}
	return s.opts.Bills.CheckBill(ctx, teamID, billID)
}
