// Package billing keeps chatgate's accounts: a price table that turns
// tokens into points, a durable ledger of usage records (one per chat module
// and per piece of training or search work), training bills that aggregate
// the usage written under a billId, and the totals quotas are checked
// against.
//
// The [Ledger] is the source of truth for points: the counters on keys are
// a cache of it, brought back into agreement when a server starts
// ([Accountant.Reconcile]). It is split by who consumes it ([RecordWriter],
// [BillStore], [UsageReader], [SpendReader]); [NewBoltLedger] keeps it in a
// bbolt file ([OpenBoltLedger] with a journal in front, which makes a
// record durable with one write and sync) and [NewMemoryLedger] in memory, and the billing/billingtest
// package is the conformance suite any other Ledger must pass.
//
// An [Accountant], made with [NewAccountant], prices usage, writes it to
// the ledger and charges the key through a [KeyCharger]
// (*auth.Authenticator is one; [KeyChargerFunc] adapts a function). Its
// [Handler] serves the bill and usage routes, listed by Routes and mounted
// with Register behind an auth.Guard. Errors are apierror.Error values
// ([ErrBillNotFound], [ErrBudgetSpent]).
package billing
