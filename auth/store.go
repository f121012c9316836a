package auth

import (
	"context"
	"errors"
	"time"
)

// KeyReader resolves keys: by id, and by the hash of a presented secret.
type KeyReader interface {
	// Get returns the key with id, or ErrKeyNotFound.
	Get(ctx context.Context, id string) (*Key, error)
	// GetByHash returns the key that h resolves to, current or retired, or ErrKeyNotFound.
	GetByHash(ctx context.Context, h Hash) (*Key, error)
}

// KeyWriter changes keys. Each method takes the audit event describing the
// change and must write both atomically, so the trail never misses a change
// nor records one that did not happen.
type KeyWriter interface {
	// Create adds k. It fails with ErrKeyExists if k.ID is taken and
	// ErrHashInUse if any of k's hashes resolves to another key.
	Create(ctx context.Context, k *Key, ev *AuditEvent) error
	// Update replaces the key with k.ID, keeping its usage. It fails with
	// ErrKeyNotFound if there is none and ErrHashInUse as Create does.
	Update(ctx context.Context, k *Key, ev *AuditEvent) error
	// Delete removes the key, its hashes and its usage.
	Delete(ctx context.Context, id string, ev *AuditEvent) error
}

// KeyLister lists keys.
type KeyLister interface {
	// List returns the keys matching f, oldest first.
	List(ctx context.Context, f Filter) ([]*Key, error)
}

// UsageWriter takes the usage the Authenticator coalesces in memory.
type UsageWriter interface {
	// AddUsage adds points and raises last-used times, for keys that still exist.
	AddUsage(ctx context.Context, us []Usage) error
}

// AuditWriter takes the audit events not tied to a key change, such as
// the Authenticator's aggregated auth failures.
type AuditWriter interface {
	// AppendAudit appends evs, assigning each its Seq.
	AppendAudit(ctx context.Context, evs []AuditEvent) error
}

// AuditReader answers queries of the audit trail.
type AuditReader interface {
	// Audit returns events matching q, newest first. It must stop reading
	// once it has q's limit of events, so a long trail does not slow the
	// usual query of the newest ones.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
}

// AuditTrimmer bounds the audit trail.
type AuditTrimmer interface {
	// TrimAudit bounds the trail and returns how many events it removed.
	// Reading from the oldest (lowest Seq), it removes events whose Time is
	// before before (when before is not zero), stopping at the first that
	// is not; then, when keep > 0, every event but the newest keep. It never
	// reuses a removed event's Seq.
	TrimAudit(ctx context.Context, before time.Time, keep int) (int, error)
}

// AuditImporter writes audit events as another store numbered them: a
// copy of a trail (the reference server's migrate command copies a bbolt
// trail into Postgres with it) keeps each event's Seq, which the audit API
// shows, where AppendAudit would number them anew. BoltStore, MemoryStore
// and auth/pgstore's Store implement it.
type AuditImporter interface {
	// ImportAudit appends evs, keeping their Seqs, which must increase
	// along evs and be above every Seq the store has assigned; it fails,
	// appending none, when one is not. Events appended afterwards get
	// Seqs above the highest imported.
	ImportAudit(ctx context.Context, evs []AuditEvent) error
}

// ErrAuditSeq answers ImportAudit for an event whose Seq does not come
// after the trail's, which would put it out of order.
var ErrAuditSeq = errors.New("auth: audit event seq is not above the trail's")

// AuthenticatorStore is what an Authenticator needs: key lookups for
// requests, and somewhere to write usage and failures and to trim the trail.
type AuthenticatorStore interface {
	KeyReader
	UsageWriter
	AuditWriter
	AuditTrimmer
}

// ManagerStore is what a Manager needs to run the key lifecycle and to
// answer audit queries.
type ManagerStore interface {
	KeyReader
	KeyWriter
	KeyLister
	AuditReader
}

// Store persists keys, their usage and the audit trail: everything the
// Authenticator and the Manager of one deployment need. It is split by who
// consumes it, as database/sql/driver splits a driver, so that each takes
// only what it calls: the Authenticator an AuthenticatorStore, the Manager a
// ManagerStore. NewBoltStore and NewMemoryStore return Stores.
// Implementations must be safe for concurrent use.
//
// The auth/authtest package holds a conformance test any Store must pass.
type Store interface {
	AuthenticatorStore
	ManagerStore
}

// Filter selects keys in List. Empty fields match everything.
type Filter struct {
	TeamID string
	AppID  string
	Source Source
}

func (f Filter) match(k *Key) bool {
	return (f.TeamID == "" || k.TeamID == f.TeamID) &&
		(f.AppID == "" || k.AppID == f.AppID) &&
		(f.Source == "" || k.Source == f.Source)
}

// Store errors.
var (
	ErrKeyNotFound = errors.New("auth: key not found")
	ErrKeyExists   = errors.New("auth: key id already exists")
	ErrHashInUse   = errors.New("auth: key value already in use")
)
