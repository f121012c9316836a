package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/dataset"
)

// usageRows are usage records as the arrays usageInsertSQL unnests.
type usageRows struct {
	ids, teams, keys, sets, colls, bills, modules, models []string
	times                                                 []time.Time
	ns                                                    []int16
	in, out, items                                        []int32
}

func (u *usageRows) add(recs []dataset.UsageRecord) {
	for _, r := range recs {
		at, ns := split(r.Time)
		u.ids, u.teams, u.keys, u.sets = append(u.ids, r.ID), append(u.teams, r.TeamID), append(u.keys, r.KeyID), append(u.sets, r.DatasetID)
		u.colls, u.bills, u.modules, u.models = append(u.colls, r.CollectionID), append(u.bills, r.BillID), append(u.modules, r.Module), append(u.models, r.Model)
		u.times, u.ns = append(u.times, at), append(u.ns, ns)
		u.in, u.out, u.items = append(u.in, int32(r.InputTokens)), append(u.out, int32(r.OutputTokens)), append(u.items, int32(r.Items))
	}
}

func (u *usageRows) args() []any {
	return []any{u.ids, u.times, u.ns, u.teams, u.keys, u.sets, u.colls, u.bills, u.modules, u.models, u.in, u.out, u.items}
}

// usageInsertSQL puts records in the outbox; one already there (the same
// id) is kept.
const usageInsertSQL = `INSERT INTO dataset_usage (` + usageColumns + `)
	SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::smallint[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::int[], $12::int[], $13::int[])
	ON CONFLICT (id) DO NOTHING`

const usageColumns = `id, time, time_ns, team_id, key_id, dataset_id, collection_id, bill_id, module, model,
	input_tokens, output_tokens, items`

// PendingUsage implements dataset.UsageOutbox. Every replica's usage
// runner reads the one outbox, so a record may be delivered by two at
// once: the recorder counts a record once by its id (UsageRecorder).
func (s *Store) PendingUsage(ctx context.Context, n int) ([]dataset.UsageRecord, error) {
	return all(ctx, s, scanUsage, "pending usage", `SELECT `+usageColumns+` FROM dataset_usage ORDER BY time, time_ns, id LIMIT $1`, max(n, 0))
}

func scanUsage(r pgx.Row) (dataset.UsageRecord, error) {
	var (
		u             dataset.UsageRecord
		ns            int16
		in, out, item int32
	)
	err := r.Scan(&u.ID, &u.Time, &ns, &u.TeamID, &u.KeyID, &u.DatasetID, &u.CollectionID, &u.BillID, &u.Module, &u.Model, &in, &out, &item)
	u.Time, u.InputTokens, u.OutputTokens, u.Items = joined(u.Time, ns), int(in), int(out), int(item)
	return u, err
}

// ClearUsage implements dataset.UsageOutbox.
func (s *Store) ClearUsage(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.exec(ctx, "clear usage", `DELETE FROM dataset_usage WHERE id = ANY($1)`, ids)
}

// TextPending implements dataset.TextOutbox on the change feed, which
// every change of data writes to: an item is pending while it has a change
// newer than the version last cleared, its version being its latest
// change's seq. A Service on this store feeds its full-text index from the
// feed and never reads the outbox; the feed's pruning forgets entries
// older than Options.FeedRetention.
func (s *Store) TextPending(ctx context.Context, n int) ([]dataset.Pending, error) {
	return all(ctx, s, func(r pgx.Row) (p dataset.Pending, err error) {
		err = r.Scan(&p.DataID, &p.Version)
		return p, err
	}, "pending full-text entries", `SELECT c.data_id, max(c.seq) FROM dataset_changes c
		LEFT JOIN dataset_text_cleared t ON t.data_id = c.data_id
		WHERE c.data_id IS NOT NULL AND c.seq > coalesce(t.version, 0)
		GROUP BY c.data_id ORDER BY c.data_id LIMIT $1`, max(n, 0))
}

// ClearTextPending implements dataset.TextOutbox: an entry changed since
// its version was read has a newer change, and stays pending.
func (s *Store) ClearTextPending(ctx context.Context, done []dataset.Pending) error {
	if len(done) == 0 {
		return nil
	}
	ids, versions := make([]string, len(done)), make([]int64, len(done))
	for i, p := range done {
		ids[i], versions[i] = p.DataID, int64(p.Version)
	}
	return s.exec(ctx, "clear full-text entries", `INSERT INTO dataset_text_cleared (data_id, version)
		SELECT id, max(v) FROM unnest($1::text[], $2::bigint[]) u(id, v) GROUP BY id
		ON CONFLICT (data_id) DO UPDATE SET version = greatest(dataset_text_cleared.version, excluded.version)`, ids, versions)
}
