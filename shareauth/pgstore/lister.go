package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/shareauth"
)

var (
	_ shareauth.LinkLister     = (*Store)(nil)
	_ shareauth.DeliveryLister = (*Store)(nil)
)

// AllLinks implements shareauth.LinkLister.
func (s *Store) AllLinks(ctx context.Context) ([]*shareauth.Link, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+linkColumns+` FROM shareauth_links ORDER BY create_time, id`)
	if err == nil {
		var out []*shareauth.Link
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*shareauth.Link, error) { return scanLink(r) }); err == nil {
			return out, nil
		}
	}
	return nil, fail("list links", err)
}

// AllDeliveries implements shareauth.DeliveryLister.
func (s *Store) AllDeliveries(ctx context.Context) ([]*shareauth.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM shareauth_deliveries ORDER BY create_time, id`)
	if err == nil {
		var out []*shareauth.Delivery
		if out, err = collectDeliveries(rows); err == nil {
			return out, nil
		}
	}
	return nil, fail("list callbacks", err)
}
