package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/internal/id"
)

// CreateBill implements billing.BillStore. A bill stored again under its
// id starts over, as in the other ledgers: its spend is dropped in the
// same statement. Its CreateTime is cut to the microsecond.
func (s *Store) CreateBill(ctx context.Context, b *billing.Bill) error {
	if b.ID == "" {
		b.ID = id.New()
	}
	b.CreateTime = b.CreateTime.Truncate(time.Microsecond)
	_, err := s.pool.Exec(ctx, `WITH spent AS (DELETE FROM billing_bill_items WHERE bill_id = $1)
		INSERT INTO billing_bills (id, team_id, name, dataset_id, create_time) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, name = excluded.name,
			dataset_id = excluded.dataset_id, create_time = excluded.create_time`,
		b.ID, b.TeamID, b.Name, b.DatasetID, b.CreateTime)
	if err != nil {
		return fail("create bill "+b.ID, err)
	}
	return nil
}

// billSQL reads a bill and its items, each the sum of its slots, in the
// order they were first spent on, as arrays: one row, one round trip.
const billSQL = `SELECT b.team_id, b.name, b.dataset_id, b.create_time, i.modules, i.models, i.tokens, i.points
FROM billing_bills b, LATERAL (
	SELECT coalesce(array_agg(module ORDER BY first, module, model), '{}') AS modules,
		coalesce(array_agg(model ORDER BY first, module, model), '{}') AS models,
		coalesce(array_agg(tokens ORDER BY first, module, model), '{}') AS tokens,
		coalesce(array_agg(points ORDER BY first, module, model), '{}') AS points
	FROM (SELECT module, model, sum(tokens)::bigint AS tokens, sum(points) AS points, min(first_time) AS first
		FROM billing_bill_items WHERE bill_id = b.id GROUP BY module, model) g
) i
WHERE b.id = $1`

// Bill implements billing.BillStore; a missing bill is
// billing.ErrBillNotFound. Its totals are the sums of its items.
func (s *Store) Bill(ctx context.Context, billID string) (*billing.BillDetail, error) {
	b := &billing.BillDetail{Bill: billing.Bill{ID: billID}}
	var (
		modules, models []string
		tokens          []int64
		points          []float64
	)
	err := s.pool.QueryRow(ctx, billSQL, billID).Scan(&b.TeamID, &b.Name, &b.DatasetID, &b.CreateTime,
		&modules, &models, &tokens, &points)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, billing.ErrBillNotFound
	}
	if err != nil {
		return nil, fail("bill "+billID, err)
	}
	b.CreateTime = b.CreateTime.UTC()
	b.Items = make([]billing.BillItem, len(modules))
	for i := range modules {
		b.Items[i] = billing.BillItem{Module: modules[i], Model: models[i], Tokens: int(tokens[i]), Points: points[i]}
		b.TotalTokens += b.Items[i].Tokens
		b.TotalPoints += b.Items[i].Points
	}
	return b, nil
}
