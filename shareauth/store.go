package shareauth

import (
	"context"
	"time"
)

// Store keeps links and the finish outbox. MemoryStore and BoltStore
// implement it; returned values are copies.
type Store interface {
	PutLink(ctx context.Context, l *Link) error
	// Link returns ErrLinkNotFound when missing.
	Link(ctx context.Context, id string) (*Link, error)
	// Links returns a team's links, of one app when appID is set.
	Links(ctx context.Context, teamID, appID string) ([]*Link, error)
	// DeleteLink removes a link and its undelivered callbacks.
	DeleteLink(ctx context.Context, id string) error
	// AddUsage adds spent points to a link and moves its last use.
	AddUsage(ctx context.Context, id string, points float64, at time.Time) error

	// Enqueue stores a callback to deliver; it is durable on return.
	Enqueue(ctx context.Context, d *Delivery) error
	// Due returns up to n deliveries whose NextAttempt is not after now.
	Due(ctx context.Context, now time.Time, n int) ([]*Delivery, error)
	// Delivered removes a delivery.
	Delivered(ctx context.Context, id string) error
	// Reschedule stores a delivery's attempts, next attempt and last error.
	Reschedule(ctx context.Context, d *Delivery) error
	// Pending counts a link's undelivered callbacks.
	Pending(ctx context.Context, shareID string) (int, error)
}

// Delivery is a finish callback waiting in the outbox.
type Delivery struct {
	ID          string    `json:"id"`
	ShareID     string    `json:"shareId"`
	Path        string    `json:"path"` // "/shareAuth/finish"
	Body        []byte    `json:"body"` // the JSON sent, signed at each attempt
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"nextAttempt"`
	LastError   string    `json:"lastError,omitempty"`
	CreateTime  time.Time `json:"createTime"`
}
