package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/queue"
)

const itemColumns = `doc, attempts, next_attempt, next_ns, last_error, failed`

// scanItem reads a row of itemColumns: the doc, then the queue state.
func scanItem(row pgx.Row) (*dataset.TrainingItem, error) {
	var (
		doc  []byte
		a    int32
		next time.Time
		ns   int16
		last string
		fail bool
	)
	if err := row.Scan(&doc, &a, &next, &ns, &last, &fail); err != nil {
		return nil, err
	}
	it := new(dataset.TrainingItem)
	if err := json.Unmarshal(doc, it); err != nil {
		return nil, err
	}
	it.Attempts, it.NextAttempt, it.LastError, it.Failed = int(a), joined(next, ns), last, fail
	it.CreateTime = it.CreateTime.UTC()
	return it, nil
}

// leaseSQL leases up to $4 items due at ($1, $2) that no lease holds,
// earliest first, leaving out the ids $3. SKIP LOCKED passes over the
// items another replica's Claim is leasing, and Postgres checks again an
// item leased meanwhile, so that no two claims get one item. The lease
// ($5 microseconds) runs on the database's clock, which every replica
// shares.
const leaseSQL = `UPDATE dataset_training t SET lease_until = now() + $5 * interval '1 microsecond'
	FROM (SELECT id FROM dataset_training
		WHERE NOT failed AND (next_attempt, next_ns) <= ($1, $2)
			AND (lease_until IS NULL OR lease_until <= now()) AND id <> ALL($3::text[])
		ORDER BY next_attempt, next_ns, id LIMIT $4 FOR UPDATE SKIP LOCKED) due
	WHERE t.id = due.id
	RETURNING t.doc, t.attempts, t.next_attempt, t.next_ns, t.last_error, t.failed`

// Claim implements queue.Store for replicas sharing the database: what it
// returns is leased to the caller until it is rescheduled, released or
// committed, or the lease (Options.Lease) runs out. It is one statement,
// unless skip leaves items out: those are released and others leased in
// their place.
func (s *Store) Claim(ctx context.Context, now time.Time, n int, skip func(string) bool) ([]*dataset.TrainingItem, error) {
	at, ns := split(now)
	var (
		out  []*dataset.TrainingItem
		back []string // leased, but for skip
		seen = []string{}
	)
	for len(out) < n {
		want := n - len(out)
		rows, err := s.pool.Query(ctx, leaseSQL, at, ns, seen, want, max(s.lease.Microseconds(), 1))
		var got []*dataset.TrainingItem
		if err == nil {
			got, err = collect(rows, scanItem)
		}
		if err != nil {
			// the leases taken so far run out by themselves if this fails too
			_ = s.Release(context.WithoutCancel(ctx), append(back, itemIDs(out)...))
			return nil, fail("claim training items", err)
		}
		for _, it := range got {
			seen = append(seen, it.ID)
			if skip != nil && skip(it.ID) {
				back = append(back, it.ID)
			} else {
				out = append(out, it)
			}
		}
		if len(got) < want {
			break // no more are due
		}
	}
	if err := s.Release(ctx, back); err != nil {
		_ = s.Release(context.WithoutCancel(ctx), itemIDs(out))
		return nil, err
	}
	slices.SortFunc(out, func(a, b *dataset.TrainingItem) int {
		return cmp.Or(a.NextAttempt.Compare(b.NextAttempt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func itemIDs(items []*dataset.TrainingItem) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// Release implements queue.Releaser: a Runner stopping mid-batch, or a
// Service whose commit failed, hands its items back at once rather than
// when their lease runs out.
func (s *Store) Release(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.exec(ctx, "release training items", `UPDATE dataset_training SET lease_until = NULL WHERE id = ANY($1)`, ids)
}

// Reschedule implements queue.Store; it ends the item's lease. A failed
// item gives up its q, which may then be pushed again.
func (s *Store) Reschedule(ctx context.Context, id string, a queue.Attempt) error {
	at, ns := split(a.Next)
	var n int
	err := retry(func() error {
		return s.pool.QueryRow(ctx, `WITH it AS (
				UPDATE dataset_training SET attempts = $2, last_error = $3, failed = $4, lease_until = NULL,
					next_attempt = CASE WHEN $4 THEN next_attempt ELSE $5 END,
					next_ns = CASE WHEN $4 THEN next_ns ELSE $6 END
				WHERE id = $1 RETURNING id, collection_id, qhash, failed),
			k AS (DELETE FROM dataset_qkeys q USING it
				WHERE it.failed AND q.collection_id = it.collection_id AND q.qhash = it.qhash AND q.owner = it.id)
			SELECT count(*) FROM it`, id, a.Attempts, a.Err, a.Failed, at, ns).Scan(&n)
	})
	if err != nil {
		return fail("reschedule training item "+id, err)
	}
	if n == 0 {
		return queue.ErrGone
	}
	return nil
}
