package auth

import "time"

// AuditAction names what an audit event records.
type AuditAction string

// Audit actions.
const (
	AuditKeyCreated   AuditAction = "key.created"
	AuditKeyImported  AuditAction = "key.imported"
	AuditKeyUpdated   AuditAction = "key.updated"
	AuditKeyRotated   AuditAction = "key.rotated"
	AuditKeyRevoked   AuditAction = "key.revoked"
	AuditKeyConfig    AuditAction = "key.config" // a config-file key was loaded, changed or removed
	AuditAuthFailed   AuditAction = "auth.failed"
	AuditScopeDenied  AuditAction = "auth.scope_denied"
	AuditRootKeyReady AuditAction = "key.root"
)

// AuditEvent is one entry of the audit trail. It names keys by id and hint,
// never by secret or hash.
type AuditEvent struct {
	Seq    uint64      `json:"seq"` // assigned by the store, increasing
	Time   time.Time   `json:"time"`
	Action AuditAction `json:"action"`
	KeyID  string      `json:"keyId,omitempty"`
	Hint   string      `json:"hint,omitempty"`
	TeamID string      `json:"teamId,omitempty"`
	// ActorKeyID is the key that made the change; empty for the CLI and config.
	ActorKeyID string `json:"actorKeyId,omitempty"`
	// Reason is the statusText of a failure, or a note on a change.
	Reason string `json:"reason,omitempty"`
	// RemoteIP is the client address; OverflowAddr on an aggregated event
	// counting failures from more addresses than were tracked.
	RemoteIP string `json:"remoteIp,omitempty"`
	// Count, on auth.failed and auth.scope_denied events, is how many
	// failures alike (same action, reason, address and key) the event
	// stands for: those of one minute starting at Time, the first of them.
	// Zero on events of key changes.
	Count int `json:"count,omitempty"`
}

// AuditQuery selects audit events, newest first.
type AuditQuery struct {
	KeyID  string      // empty: any key
	TeamID string      // empty: any team
	Action AuditAction // empty: any action
	Limit  int         // <= 0: 100
}

func (q AuditQuery) match(e *AuditEvent) bool {
	return (q.KeyID == "" || e.KeyID == q.KeyID) &&
		(q.TeamID == "" || e.TeamID == q.TeamID) &&
		(q.Action == "" || e.Action == q.Action)
}

func (q AuditQuery) limit() int {
	if q.Limit <= 0 {
		return 100
	}
	return q.Limit
}
