// Package pgstore keeps shareauth's links and finish outbox in Postgres,
// for replicas that share one database: a link created, charged or
// deleted through one replica reads the same through every other, and
// each finish callback is worked by one replica at a time.
//
// It lives apart from shareauth so that a program on the embedded stores
// links no pgx. New applies the package's migrations (tables
// shareauth_links and shareauth_deliveries, versions in
// chatgate_shareauth_migrations) under an advisory lock, so replicas may
// start together.
//
// Claim leases the callbacks it returns (FOR UPDATE SKIP LOCKED, then a
// lease_until on the database's clock, DefaultLease unless Options.Lease
// says otherwise): no other replica gets them until they are rescheduled
// or completed, and those of a replica killed mid-delivery come back when
// the lease runs out, to be delivered again; finish is at least once.
// AddUsage is one UPDATE of the link's row, so charges made at once on
// several replicas add up and the last use never moves back. DeleteLink
// drops the link and its undelivered callbacks in one statement.
//
// Errors from a Postgres that cannot be reached are
// apierror.ErrStorageUnavailable (503 storage_unavailable); a missing
// link is shareauth.ErrLinkNotFound. Times come back in UTC, to the
// microsecond Postgres keeps.
package pgstore
