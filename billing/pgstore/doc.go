// Package pgstore keeps billing's ledger in Postgres, for replicas that
// share one database: a record written through any replica is counted
// once, and bills, usage and spend read the same through every other.
//
// It lives apart from billing so that a program on the embedded ledgers
// links no pgx. New applies the package's migrations (tables
// billing_records, billing_bills and the totals billing_key_points,
// billing_app_points, billing_bill_items; versions in
// chatgate_billing_migrations) under an advisory lock, so replicas may
// start together.
//
// Records are written in statements of one transaction each: a record is
// inserted unless its id is stored already (ON CONFLICT DO NOTHING, which
// waits on a replica inserting the same id at that moment, so that
// exactly one of them stores it and the other is billing.ErrDuplicate),
// and only what was inserted is added to its key's, app's and bill's
// totals, each an upsert Postgres locks, so concurrent writers on any
// replica lose no update. As the bbolt ledger shares an fsync among the
// records it commits together, concurrent Record calls of one Store share
// a statement: a batch of them is one round trip, one transaction and one
// WAL flush, its totals summed per row before they are added, and each
// call still gets its own answer; a record that makes the statement fail
// is written again alone, failing by itself. To keep writers of one key,
// app or bill item from queueing on its row lock, each total is spread
// over a few rows, summed when read.
//
// Errors from a Postgres that cannot be reached are
// apierror.ErrStorageUnavailable (503 storage_unavailable); a missing
// bill, or a record naming another team's, is billing.ErrBillNotFound.
// Times are kept to the microsecond: Record and CreateBill cut the times
// they store, and List and Summary compare bounds finer than that as if
// the stored times were exact. Times come back in UTC.
package pgstore
