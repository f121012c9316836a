package shareauth

import (
	"context"
	"time"

	"github.com/chatgate/chatgate/queue"
)

// LinkStore keeps share links, for the Service's link management and its
// admissions. Returned links are copies, with their Secret.
type LinkStore interface {
	// PutLink creates or replaces a link.
	PutLink(ctx context.Context, l *Link) error
	// Link returns ErrLinkNotFound when missing.
	Link(ctx context.Context, id string) (*Link, error)
	// Links returns a team's links, of one app when appID is set, oldest
	// first (by CreateTime, then ID).
	Links(ctx context.Context, teamID, appID string) ([]*Link, error)
	// DeleteLink removes a link and its undelivered callbacks, which nobody
	// would receive any more; ErrLinkNotFound when missing.
	DeleteLink(ctx context.Context, id string) error
	// AddUsage adds spent points to a link and moves its last use to at,
	// never back; ErrLinkNotFound when missing.
	AddUsage(ctx context.Context, id string, points float64, at time.Time) error
}

// Outbox is the durable queue of finish callbacks that the Service's
// queue.Runner works: Claim, Reschedule and Complete are the queue's verbs
// (queuetest checks them), Enqueue puts a callback in, and Pending and
// Deliveries let an operator see what waits. Returned deliveries are
// copies.
type Outbox interface {
	queue.Store[*Delivery]
	queue.Completer
	// Enqueue stores a callback to deliver; it is durable on return.
	Enqueue(ctx context.Context, d *Delivery) error
	// Pending counts a link's undelivered callbacks, failed ones included.
	Pending(ctx context.Context, shareID string) (int, error)
	// Deliveries returns a link's undelivered callbacks, failed ones
	// included, oldest first (by CreateTime, then ID).
	Deliveries(ctx context.Context, shareID string) ([]*Delivery, error)
}

// Store keeps links and their finish outbox in one place, since deleting a
// link drops its callbacks. MemoryStore and BoltStore implement it, and
// shareauthtest checks any implementation.
type Store interface {
	LinkStore
	Outbox
}

// Delivery is a finish callback waiting in the outbox; a queue.Job.
type Delivery struct {
	ID          string    `json:"id"`
	ShareID     string    `json:"shareId"`
	Path        string    `json:"path"` // "/shareAuth/finish"
	Body        []byte    `json:"body"` // the JSON sent, signed at each attempt
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"nextAttempt"`
	LastError   string    `json:"lastError,omitempty"`
	// Failed marks a callback that is never tried again but kept, to be
	// seen. The Service retries forever and fails none; a store keeps the
	// field because the queue's contract has it.
	Failed     bool      `json:"failed,omitempty"`
	CreateTime time.Time `json:"createTime"`
}

// JobID implements queue.Job.
func (d *Delivery) JobID() string { return d.ID }

// JobAttempts implements queue.Job.
func (d *Delivery) JobAttempts() int { return d.Attempts }

// attempt applies a failed attempt to d.
func (d *Delivery) attempt(a queue.Attempt) {
	d.Attempts, d.NextAttempt, d.LastError, d.Failed = a.Attempts, a.Next, a.Err, a.Failed
}
