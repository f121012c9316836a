package pgstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/queue"
	"github.com/chatgate/chatgate/shareauth"
)

const deliveryColumns = `id, share_id, path, body, attempts, next_attempt, last_error, failed, create_time`

// scanDelivery reads a row of deliveryColumns.
func scanDelivery(row pgx.Row) (*shareauth.Delivery, error) {
	var d shareauth.Delivery
	err := row.Scan(&d.ID, &d.ShareID, &d.Path, &d.Body, &d.Attempts, &d.NextAttempt, &d.LastError, &d.Failed, &d.CreateTime)
	if err != nil {
		return nil, err
	}
	d.NextAttempt, d.CreateTime = d.NextAttempt.UTC(), d.CreateTime.UTC()
	return &d, nil
}

func collectDeliveries(rows pgx.Rows) ([]*shareauth.Delivery, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*shareauth.Delivery, error) { return scanDelivery(r) })
}

// Enqueue implements shareauth.Outbox; a callback queued again under its
// id replaces the first, unclaimed.
func (s *Store) Enqueue(ctx context.Context, d *shareauth.Delivery) error {
	body := d.Body
	if body == nil {
		body = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO shareauth_deliveries (`+deliveryColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET share_id = excluded.share_id, path = excluded.path, body = excluded.body,
			attempts = excluded.attempts, next_attempt = excluded.next_attempt, last_error = excluded.last_error,
			failed = excluded.failed, create_time = excluded.create_time, lease_until = NULL`,
		d.ID, d.ShareID, d.Path, body, d.Attempts, d.NextAttempt, d.LastError, d.Failed, d.CreateTime)
	if err != nil {
		return fail("enqueue callback "+d.ID, err)
	}
	return nil
}

// claimSQL leases up to $2 due callbacks that no lease holds, earliest
// first, leaving out the ids in $3 (those an earlier round returned).
// SKIP LOCKED passes over the rows a concurrent Claim is leasing, and
// Postgres rechecks a row updated meanwhile, so that no two claims get
// the same callback. The lease runs on the database's clock, the one
// every replica shares.
const claimSQL = `UPDATE shareauth_deliveries d SET lease_until = now() + $4 * interval '1 microsecond'
	FROM (SELECT id FROM shareauth_deliveries
		WHERE NOT failed AND next_attempt <= $1 AND (lease_until IS NULL OR lease_until <= now())
			AND id <> ALL($3::text[])
		ORDER BY next_attempt, id LIMIT $2 FOR UPDATE SKIP LOCKED) c
	WHERE d.id = c.id
	RETURNING d.id, d.share_id, d.path, d.body, d.attempts, d.next_attempt, d.last_error, d.failed, d.create_time`

// Claim implements queue.Store for the replicas sharing the database:
// what it returns is leased to the caller until it is rescheduled or
// completed, or its lease (Options.Lease) runs out. It takes one
// statement unless skip leaves some out; those are released and others
// claimed instead.
func (s *Store) Claim(ctx context.Context, now time.Time, n int, skip func(id string) bool) ([]*shareauth.Delivery, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []*shareauth.Delivery
	var skipped []string
	seen := []string{} // what earlier rounds returned, left out of the next
	for len(out) < n {
		want := n - len(out)
		rows, err := s.pool.Query(ctx, claimSQL, now, want, seen, max(s.lease.Microseconds(), 1))
		var got []*shareauth.Delivery
		if err == nil {
			got, err = collectDeliveries(rows)
		}
		if err != nil {
			_ = s.Release(ctx, append(skipped, ids(out)...)) // best effort: else the lease frees them
			return nil, fail("claim callbacks", err)
		}
		for _, d := range got {
			seen = append(seen, d.ID)
			if skip(d.ID) {
				skipped = append(skipped, d.ID)
			} else {
				out = append(out, d)
			}
		}
		if len(got) < want {
			break // nothing more is due
		}
	}
	if len(skipped) > 0 {
		if err := s.Release(ctx, skipped); err != nil {
			_ = s.Release(ctx, ids(out))
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b *shareauth.Delivery) int {
		return cmp.Or(a.NextAttempt.Compare(b.NextAttempt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Release implements queue.Releaser: a Runner that stops mid-batch hands
// its callbacks back at once instead of at the end of their lease. Claim
// uses it too, for callbacks it took but does not return; only Claim gives
// out an unexpired lease, so such callbacks are as they were before.
func (s *Store) Release(ctx context.Context, idList []string) error {
	if len(idList) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE shareauth_deliveries SET lease_until = NULL WHERE id = ANY($1)`, idList); err != nil {
		return fail("release callbacks", err)
	}
	return nil
}

func ids(ds []*shareauth.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// Reschedule implements queue.Store; it ends the callback's lease.
func (s *Store) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	tag, err := s.pool.Exec(ctx, `UPDATE shareauth_deliveries SET attempts = $2, next_attempt = $3, failed = $4,
		last_error = $5, lease_until = NULL WHERE id = $1`, id, a.Attempts, a.Next, a.Failed, a.Err)
	if err != nil {
		return fail("reschedule callback "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return queue.ErrGone
	}
	return nil
}

// Complete implements queue.Completer.
func (s *Store) Complete(ctx context.Context, idList []string) error {
	if len(idList) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM shareauth_deliveries WHERE id = ANY($1)`, idList); err != nil {
		return fail("complete callbacks", err)
	}
	return nil
}

// Pending implements shareauth.Outbox.
func (s *Store) Pending(ctx context.Context, shareID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM shareauth_deliveries WHERE share_id = $1`, shareID).Scan(&n); err != nil {
		return 0, fail("pending callbacks of link "+shareID, err)
	}
	return n, nil
}

// Deliveries implements shareauth.Outbox.
func (s *Store) Deliveries(ctx context.Context, shareID string) ([]*shareauth.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM shareauth_deliveries
		WHERE share_id = $1 ORDER BY create_time, id`, shareID)
	if err == nil {
		var out []*shareauth.Delivery
		if out, err = collectDeliveries(rows); err == nil {
			return out, nil
		}
	}
	return nil, fail("callbacks of link "+shareID, err)
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
