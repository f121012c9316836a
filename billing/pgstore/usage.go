package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/billing"
)

// selection is the WHERE clause of the records f selects and its
// arguments. Only the conditions f sets are written, so that each shape
// of filter has a plan using its index (pgx prepares each text once per
// connection: at most eight shapes).
func selection(f billing.Filter) (string, []any) {
	var b strings.Builder
	args := []any{f.TeamID}
	b.WriteString("team_id = $1")
	add := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, " AND %s $%d", cond, len(args))
	}
	if f.KeyID != "" {
		add("key_id =", f.KeyID)
	}
	if f.AppID != "" {
		add("app_id =", f.AppID)
	}
	if !f.From.IsZero() {
		add("record_time >=", ceilMicro(f.From))
	}
	if !f.To.IsZero() {
		add("record_time <", ceilMicro(f.To))
	}
	return b.String(), args
}

// ceilMicro is the first microsecond at or after t. Stored times are
// whole microseconds, so a record is at or after t exactly when it is at
// or after ceilMicro(t): a bound finer than Postgres keeps selects what
// it would select of times kept to the nanosecond.
func ceilMicro(t time.Time) time.Time {
	c := t.Truncate(time.Microsecond)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

const recordColumns = `id, team_id, key_id, app_id, share_id, dataset_id, bill_id, source, module, model,
	input_tokens, output_tokens, points, record_time`

// List implements billing.UsageReader: newest first, records of one time
// newest id first, as the bbolt ledger lists them. The page and the count
// of the whole selection come in one statement, so from one snapshot; a
// page past the end takes a second one to count.
func (s *Store) List(ctx context.Context, f billing.Filter) ([]billing.Record, int, error) {
	where, args := selection(f)
	var limit any // NULL: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	args = append(args, max(f.Offset, 0), limit)
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT %s, (SELECT count(*) FROM billing_records WHERE %s)
		FROM billing_records WHERE %s ORDER BY record_time DESC, id DESC OFFSET $%d LIMIT $%d`,
		recordColumns, where, where, len(args)-1, len(args)), args...)
	if err != nil {
		return nil, 0, fail("list usage", err)
	}
	total := 0
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.Record, error) {
		var r billing.Record
		err := row.Scan(&r.ID, &r.TeamID, &r.KeyID, &r.AppID, &r.ShareID, &r.DatasetID, &r.BillID, &r.Source,
			&r.Module, &r.Model, &r.InputTokens, &r.OutputTokens, &r.Points, &r.Time, &total)
		r.Time = r.Time.UTC()
		return r, err
	})
	if err != nil {
		return nil, 0, fail("list usage", err)
	}
	if len(recs) == 0 && f.Offset > 0 {
		err := s.pool.QueryRow(ctx, "SELECT count(*) FROM billing_records WHERE "+where, args[:len(args)-2]...).Scan(&total)
		if err != nil {
			return nil, 0, fail("count usage", err)
		}
	}
	return recs, total, nil
}

// summarySQL sums the selected records three ways in one pass: by UTC
// day, by key, and all together, sorted as billing.Summary lists them
// (grouping() tells the sets apart: days, then keys, then the total).
const summarySQL = `SELECT grouping(day) = 1, grouping(key_id) = 1, coalesce(day, ''), coalesce(key_id, ''), count(*),
	coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint, coalesce(sum(points), 0)
FROM (SELECT to_char(record_time AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, key_id, input_tokens, output_tokens, points
	FROM billing_records WHERE %s) s
GROUP BY GROUPING SETS ((day), (key_id), ())
ORDER BY grouping(day), grouping(key_id), day, sum(points) DESC, key_id`

// Summary implements billing.UsageReader in one statement.
func (s *Store) Summary(ctx context.Context, f billing.Filter) (*billing.Summary, error) {
	where, args := selection(f)
	rows, err := s.pool.Query(ctx, fmt.Sprintf(summarySQL, where), args...)
	if err != nil {
		return nil, fail("usage summary", err)
	}
	defer rows.Close()
	out := &billing.Summary{ByDay: []billing.DayTotal{}, ByKey: []billing.KeyTotal{}}
	for rows.Next() {
		var (
			noDay, noKey bool
			day, key     string
			t            billing.Total
		)
		if err := rows.Scan(&noDay, &noKey, &day, &key, &t.Records, &t.InputTokens, &t.OutputTokens, &t.Points); err != nil {
			return nil, fail("usage summary", err)
		}
		switch {
		case !noDay:
			out.ByDay = append(out.ByDay, billing.DayTotal{Day: day, Total: t})
		case !noKey:
			out.ByKey = append(out.ByKey, billing.KeyTotal{KeyID: key, Total: t})
		default:
			out.Total = t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fail("usage summary", err)
	}
	return out, nil
}
