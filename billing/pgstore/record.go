package pgstore

import (
	"context"
	"math/rand/v2"

	"github.com/chatgate/chatgate/billing"
)

// slots is how many rows each total is spread over (see the migration):
// enough that 64 writers of one key seldom meet on a row, few enough that
// reading a total stays a handful of rows.
const slots = 16

// recordSQL stores a record and adds it to its totals in one statement,
// so one round trip and one transaction: the record and its totals commit
// together or not at all. The record goes in only if its bill is its
// team's; ON CONFLICT DO NOTHING makes an id already stored, or being
// stored by another replica (Postgres waits for that one to commit or
// roll back), insert nothing, and the totals add only what was inserted.
// Each total is an upsert of one slot row, which Postgres locks and adds
// to, so concurrent writers on any replica lose no update; every record
// locks its rows in the same order (key, app, bill item), so two records
// never deadlock.
const recordSQL = `WITH bill AS (
	SELECT $7::text = '' OR EXISTS (SELECT 1 FROM billing_bills WHERE id = $7::text AND team_id = $2::text) AS ok
), rec AS (
	INSERT INTO billing_records (id, team_id, key_id, app_id, share_id, dataset_id, bill_id, source, module, model,
		input_tokens, output_tokens, points, record_time)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM bill WHERE ok
	ON CONFLICT (id) DO NOTHING
	RETURNING 1
), k AS (
	INSERT INTO billing_key_points AS t (key_id, slot, points)
	SELECT $3, $15, $13 FROM rec WHERE $3::text <> '' AND $13::float8 <> 0
	ON CONFLICT (key_id, slot) DO UPDATE SET points = t.points + excluded.points
), a AS (
	INSERT INTO billing_app_points AS t (team_id, app_id, slot, points)
	SELECT $2, $4, $15, $13 FROM rec WHERE $4::text <> '' AND $13::float8 <> 0
	ON CONFLICT (team_id, app_id, slot) DO UPDATE SET points = t.points + excluded.points
), i AS (
	INSERT INTO billing_bill_items AS t (bill_id, module, model, slot, tokens, points)
	SELECT $7, $9, $10, $15, $11::bigint + $12::bigint, $13 FROM rec WHERE $7::text <> ''
	ON CONFLICT (bill_id, module, model, slot) DO UPDATE SET tokens = t.tokens + excluded.tokens,
		points = t.points + excluded.points
)
SELECT (SELECT ok FROM bill), EXISTS (SELECT 1 FROM rec)`

// Record implements billing.RecordWriter: when it returns nil the record
// has committed, so it is as durable as the server's commits
// (synchronous_commit, on by default). Concurrent calls share statements:
// a call joins the next batch (see batchSQL), which one statement writes
// and commits, so that under load one round trip and one WAL flush carry
// many records; a lone call is written on its own (recordSQL) at once. A
// record whose id is stored already, by this replica or another, is
// billing.ErrDuplicate; a record that fails does not fail the others of
// its batch. r's Time is cut to the microsecond, as Postgres keeps it.
//
// A call that fails for want of Postgres, or whose ctx ends while its
// batch is written, may or may not have committed; delivering the record
// again under its id (Record gave it one) is safe. A ctx that ends before
// the batch is sent stores nothing.
func (s *Store) Record(ctx context.Context, r *billing.Record) error {
	if err := check(r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fail("record "+r.ID, err)
	}
	p := &pending{ctx: ctx, r: *r, done: make(chan error, 1)}
	s.enqueue(p)
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fail("record "+r.ID, ctx.Err())
	}
}

// recordOne writes r alone, in recordSQL.
func (s *Store) recordOne(ctx context.Context, r *billing.Record) error {
	var billOK, stored bool
	err := s.pool.QueryRow(ctx, recordSQL, r.ID, r.TeamID, r.KeyID, r.AppID, r.ShareID, r.DatasetID, r.BillID,
		r.Source, r.Module, r.Model, r.InputTokens, r.OutputTokens, r.Points, r.Time, rand.IntN(slots)).Scan(&billOK, &stored)
	switch {
	case err != nil:
		return fail("record "+r.ID, err)
	case !billOK:
		return billing.ErrBillNotFound
	case !stored:
		return billing.ErrDuplicate
	}
	return nil
}
