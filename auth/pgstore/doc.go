// Package pgstore keeps auth's keys, their usage and the audit trail in
// Postgres, for replicas that share one database: a key created, changed
// or revoked through one replica's Manager reads the same through every
// other, and their Authenticators hear of it at once through Watch.
//
// It lives apart from auth so that a program on the embedded stores links
// no pgx. New applies the package's migrations (tables auth_keys,
// auth_key_hashes and auth_audit, versions in chatgate_auth_migrations)
// under an advisory lock, so replicas may start together. As in the other
// stores, only the SHA-256 hashes of keys are kept, never a key.
//
// GetByHash, which every request whose key is not cached asks, is one
// statement: a probe of the hashes' primary key joined to the key's row.
// AddUsage is additive and atomic across replicas: one round trip locks
// the keys' rows in id order, then adds points and raises the last use,
// which never moves back, whatever order concurrent flushes commit in.
//
// Each key write (Create, Update, Delete) notifies Channel with the key's
// id in its transaction; Watch listens and hands the ids to a callback,
// with "" after every (re)connection, for a lost notification. Wired to
// Authenticator.Invalidate and InvalidateAll, a revoke, rotation, disable
// or limit change made on one replica applies on every replica within
// moments, and one whose notification was lost within the Authenticator's
// CacheTTL.
//
// Audit events take their Seq from an identity column, one total order
// across replicas; seqs are drawn at insert, so they may commit out of
// order, and seqs of rolled-back writes are never used. Audit and
// TrimAudit rank events by seq and count them, so neither needs the seqs
// to be contiguous nor to commit in order.
//
// Errors from a Postgres that cannot be reached are
// apierror.ErrStorageUnavailable (503 storage_unavailable); a missing key
// is auth.ErrKeyNotFound, and a taken id or key value auth.ErrKeyExists or
// auth.ErrHashInUse, as from the other stores. Times come back in UTC, to
// the microsecond Postgres keeps.
package pgstore
