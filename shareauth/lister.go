package shareauth

import (
	"cmp"
	"context"
)

// LinkLister lists every team's links, where LinkStore lists one team's:
// what a copy of a whole store into another needs (the reference server's
// migrate command copies a bbolt store into Postgres with it). BoltStore,
// MemoryStore and shareauth/pgstore's Store implement it.
type LinkLister interface {
	// AllLinks returns every link, with its secret, oldest first (by
	// CreateTime, then ID).
	AllLinks(ctx context.Context) ([]*Link, error)
}

// DeliveryLister lists every undelivered callback, where Outbox lists one
// link's: a copy of a whole store must take along those whose link went
// while they were queued, which are still delivered. BoltStore,
// MemoryStore and shareauth/pgstore's Store implement it.
type DeliveryLister interface {
	// AllDeliveries returns every undelivered callback, failed ones
	// included, oldest first (by CreateTime, then ID).
	AllDeliveries(ctx context.Context) ([]*Delivery, error)
}

// byLinkCreation orders links oldest first, as Links and AllLinks return them.
func byLinkCreation(a, b *Link) int {
	return cmp.Or(a.CreateTime.Compare(b.CreateTime), cmp.Compare(a.ID, b.ID))
}
