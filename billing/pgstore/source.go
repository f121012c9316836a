package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/billing"
)

var (
	_ billing.BillLister   = (*Store)(nil)
	_ billing.RecordSource = (*Store)(nil)
)

// Bills implements billing.BillLister.
func (s *Store) Bills(ctx context.Context) ([]billing.Bill, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, team_id, name, dataset_id, create_time FROM billing_bills
		ORDER BY create_time, id`)
	if err != nil {
		return nil, fail("list bills", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.Bill, error) {
		var b billing.Bill
		err := row.Scan(&b.ID, &b.TeamID, &b.Name, &b.DatasetID, &b.CreateTime)
		b.CreateTime = b.CreateTime.UTC()
		return b, err
	})
	if err != nil {
		return nil, fail("list bills", err)
	}
	return out, nil
}

// EachRecord implements billing.RecordSource, reading the records as fn
// takes them: one statement, one snapshot, whatever the ledger's size.
func (s *Store) EachRecord(ctx context.Context, fn func(billing.Record) error) error {
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM billing_records ORDER BY record_time, id`)
	if err != nil {
		return fail("read records", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r billing.Record
		if err := rows.Scan(&r.ID, &r.TeamID, &r.KeyID, &r.AppID, &r.ShareID, &r.DatasetID, &r.BillID, &r.Source,
			&r.Module, &r.Model, &r.InputTokens, &r.OutputTokens, &r.Points, &r.Time); err != nil {
			return fail("read records", err)
		}
		r.Time = r.Time.UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fail("read records", err)
	}
	return nil
}
