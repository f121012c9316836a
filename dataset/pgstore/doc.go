// Package pgstore keeps datasets, collections, data, vectors, the training
// queue and the usage outbox in Postgres, for replicas that share one
// database, and tells each replica of every change through a change feed
// (dataset.ChangeFeed), so that the indexes each one searches in memory
// agree.
//
// It lives apart from dataset so that a program on the embedded stores
// links no pgx. New applies the package's migrations (dataset_* tables,
// versions in chatgate_dataset_migrations) under an advisory lock, so
// replicas may start together.
//
// Writes that change several records change them in one transaction, as
// dataset.Store documents: Commit stores a trained item's data, vectors,
// usage records and change-feed rows and removes the item from the queue
// at once. A q is held per collection by a primary key (dataset_qkeys), so
// that a q pushed through two replicas at once is queued once. Claim
// leases what it returns (FOR UPDATE SKIP LOCKED, then lease_until on the
// database's clock, DefaultLease unless Options.Lease says otherwise): an
// item is trained by one replica at a time, and those of a replica killed
// mid-batch come back when the lease runs out.
//
// The change feed (feed.go) is a row per changed data item, written in the
// change's transaction and read in transaction-id order below the reader's
// snapshot xmin, so that no row is skipped however transactions commit;
// LISTEN/NOTIFY (Channel) wakes the readers, whose Service also reads it
// every PollEvery. Changes are kept for Options.FeedRetention; the
// TextOutbox is read from the same rows. The usage outbox is one for all
// replicas: a record may be delivered by two at once, and the recorder
// counts it once by its id.
//
// Errors from a Postgres that cannot be reached are
// apierror.ErrStorageUnavailable (503 storage_unavailable); missing
// records are dataset's not-found errors. Times read back as written, to
// the nanosecond, in UTC.
package pgstore
