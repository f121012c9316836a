// Package billing keeps chatgate's accounts: a price table that turns
// tokens into points, a durable ledger of usage records (one per chat module
// and per piece of training or search work), training bills that aggregate
// the usage written under a billId, and the totals quotas are checked
// against.
//
// The Ledger is the source of truth for points: the counters on keys are a
// cache of it, brought back into agreement when a server starts.
package billing
