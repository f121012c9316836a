package auth

import (
	"context"
	"errors"
	"time"
)

// Store persists keys, their usage and the audit trail. Implementations must
// be safe for concurrent use. Every method that changes a key takes the audit
// event describing the change and must write both atomically, so the trail
// never misses a change nor records one that did not happen.
//
// The auth/authtest package holds a conformance test any Store must pass.
type Store interface {
	// Create adds k. It fails with ErrKeyExists if k.ID is taken and
	// ErrHashInUse if any of k's hashes resolves to another key.
	Create(ctx context.Context, k *Key, ev *AuditEvent) error
	// Update replaces the key with k.ID, keeping its usage. It fails with
	// ErrKeyNotFound if there is none and ErrHashInUse as Create does.
	Update(ctx context.Context, k *Key, ev *AuditEvent) error
	// Delete removes the key, its hashes and its usage.
	Delete(ctx context.Context, id string, ev *AuditEvent) error
	// Get returns the key with id, or ErrKeyNotFound.
	Get(ctx context.Context, id string) (*Key, error)
	// GetByHash returns the key that h resolves to, current or retired, or ErrKeyNotFound.
	GetByHash(ctx context.Context, h Hash) (*Key, error)
	// List returns the keys matching f, oldest first.
	List(ctx context.Context, f Filter) ([]*Key, error)
	// AddUsage adds points and raises last-used times, for keys that still exist.
	AddUsage(ctx context.Context, us []Usage) error
	// AppendAudit appends events not tied to a key change, such as auth failures.
	AppendAudit(ctx context.Context, evs []AuditEvent) error
	// Audit returns events matching q, newest first. It must stop reading
	// once it has q's limit of events, so a long trail does not slow the
	// usual query of the newest ones.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// TrimAudit bounds the trail and returns how many events it removed.
	// Reading from the oldest (lowest Seq), it removes events whose Time is
	// before before (when before is not zero), stopping at the first that
	// is not; then, when keep > 0, every event but the newest keep. It never
	// reuses a removed event's Seq.
	TrimAudit(ctx context.Context, before time.Time, keep int) (int, error)
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
