package billing

import "context"

// BillLister lists every team's bills, where BillStore reads one bill by
// id: what a copy of a whole ledger into another needs (the reference
// server's migrate command copies a bbolt ledger into Postgres with it).
// BoltLedger, MemoryLedger and billing/pgstore's Store implement it.
type BillLister interface {
	// Bills returns every bill, without its spend, oldest first (by
	// CreateTime, then ID). The spend is that of the records written under
	// its id, which RecordSource hands out.
	Bills(ctx context.Context) ([]Bill, error)
}

// RecordSource hands out every team's usage records, where UsageReader
// answers for one team: what a copy of a whole ledger needs. A ledger may
// hold millions of records, so they come one at a time, not as a slice.
// BoltLedger, MemoryLedger and billing/pgstore's Store implement it.
type RecordSource interface {
	// EachRecord calls fn with every record, oldest first (by Time, then
	// ID), stopping at fn's first error, which it returns.
	EachRecord(ctx context.Context, fn func(Record) error) error
}
