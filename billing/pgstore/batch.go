package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/internal/panics"
	"github.com/chatgate/chatgate/internal/postgres"
)

// maxBatch caps the records of one statement, so that one statement's
// arrays and locks stay small.
const maxBatch = 256

// maxCommitters is how many batches of one Store are written at once.
// More than one overlaps one batch's round trip and WAL flush with the
// next, but splits the waiting records into smaller batches, each a
// statement to plan and run: on the 2-core benchmark machine 1 gave the
// most records/s at 8 and at 64 writers (2 and 4 gave fewer), the
// replicas of a cluster overlapping each other's batches anyway.
const maxCommitters = 1

// pending is a Record call waiting for its batch.
type pending struct {
	ctx  context.Context
	r    billing.Record // a copy: the caller may give up and reuse its own
	done chan error
}

// enqueue queues p and starts a committer if fewer than maxCommitters
// run.
func (s *Store) enqueue(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, p)
	if s.committers < maxCommitters {
		s.committers++
		go s.commitLoop()
	}
}

// commitLoop writes batches of what is queued until the queue is empty.
func (s *Store) commitLoop() {
	for {
		s.mu.Lock()
		batch := s.take()
		if len(batch) == 0 {
			s.committers--
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.commit(batch)
		// Let the callers just answered, and whichever goroutines are
		// runnable, reach the queue before the next batch is taken from
		// it: a yield, not a wait (see billing.BoltLedger).
		runtime.Gosched()
	}
}

// take removes the next batch from the queue, s.mu held: at most maxBatch
// records, of distinct ids. A record whose id is already in the batch
// stays queued for a later one, so that each record of a batch has an
// answer of its own (a statement that inserts an id twice could not tell
// which of them it stored). A caller that gave up before its record was
// sent stores nothing.
func (s *Store) take() []*pending {
	var (
		batch []*pending
		ids   = map[string]bool{}
		left  = s.queue[:0]
	)
	for _, p := range s.queue {
		switch {
		case p.ctx.Err() != nil:
			p.done <- fail("record "+p.r.ID, p.ctx.Err())
		case len(batch) == maxBatch || ids[p.r.ID]:
			left = append(left, p)
		default:
			ids[p.r.ID] = true
			batch = append(batch, p)
		}
	}
	clear(s.queue[len(left):])
	s.queue = left
	return batch
}

// commit writes batch in one statement and answers its callers. Should the
// statement fail for anything but an unreachable Postgres (a record
// Postgres refuses, a deadlock with another replica's batch), each record
// is written again in a statement of its own, so that the failure is only
// the record's it comes from. A panic fails its statement the same way
// instead of ending the process with every caller waiting.
func (s *Store) commit(batch []*pending) {
	ctx, cancel := whileAwaited(batch)
	defer cancel()
	errs := make([]error, len(batch))
	err := panics.Catch(func() error {
		if len(batch) == 1 {
			errs[0] = s.recordOne(ctx, &batch[0].r)
			return nil
		}
		return s.recordBatch(ctx, batch, errs)
	})
	if err != nil && len(batch) > 1 && ctx.Err() == nil && !errors.Is(postgres.Unavailable(err), apierror.ErrStorageUnavailable) {
		for _, p := range batch {
			s.commit([]*pending{p})
		}
		return
	}
	for i, p := range batch {
		if err != nil {
			errs[i] = fail("record "+p.r.ID, err)
		}
		p.done <- errs[i]
	}
}

// whileAwaited returns a context that ends once every caller of batch has
// given up waiting for it: the statement is one caller's as much as
// another's, so no one caller's deadline may cut it short for the others.
func whileAwaited(batch []*pending) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, p := range batch {
		stops[i] = context.AfterFunc(p.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// batchSQL is recordSQL for many records at once, given as arrays in the
// order of the columns (n numbers them from 1). Its records go in if their
// bill is their team's, in id order, and the totals add what went in,
// summed per row of each total: an upsert may not touch a row twice, and
// one upsert of a key's whole batch is one row lock instead of one per
// record. Every batch, on every replica, locks record ids, then key, app
// and bill item rows, each in sorted order, so two batches never deadlock.
// The answer is each record's: whether its bill was found, whether it was
// stored (not stored: its id was already).
const batchSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::float8[], $14::timestamptz[])
		WITH ORDINALITY AS u(id, team_id, key_id, app_id, share_id, dataset_id, bill_id, source, module, model,
			input_tokens, output_tokens, points, record_time, n)
), ok AS (
	SELECT * FROM input i
	WHERE i.bill_id = '' OR EXISTS (SELECT 1 FROM billing_bills b WHERE b.id = i.bill_id AND b.team_id = i.team_id)
), rec AS (
	INSERT INTO billing_records (id, team_id, key_id, app_id, share_id, dataset_id, bill_id, source, module, model,
		input_tokens, output_tokens, points, record_time)
	SELECT id, team_id, key_id, app_id, share_id, dataset_id, bill_id, source, module, model,
		input_tokens, output_tokens, points, record_time FROM ok ORDER BY id COLLATE "C"
	ON CONFLICT (id) DO NOTHING
	RETURNING id
), ins AS (
	SELECT ok.* FROM ok JOIN rec ON rec.id = ok.id
), k AS (
	INSERT INTO billing_key_points AS t (key_id, slot, points)
	SELECT key_id, $15, sum(points) FROM ins WHERE key_id <> ''
	GROUP BY key_id HAVING sum(points) <> 0 ORDER BY key_id COLLATE "C"
	ON CONFLICT (key_id, slot) DO UPDATE SET points = t.points + excluded.points
), a AS (
	INSERT INTO billing_app_points AS t (team_id, app_id, slot, points)
	SELECT team_id, app_id, $15, sum(points) FROM ins WHERE app_id <> ''
	GROUP BY team_id, app_id HAVING sum(points) <> 0 ORDER BY team_id COLLATE "C", app_id COLLATE "C"
	ON CONFLICT (team_id, app_id, slot) DO UPDATE SET points = t.points + excluded.points
), i AS (
	INSERT INTO billing_bill_items AS t (bill_id, module, model, slot, tokens, points)
	SELECT bill_id, module, model, $15, sum(input_tokens + output_tokens), sum(points) FROM ins WHERE bill_id <> ''
	GROUP BY bill_id, module, model ORDER BY bill_id COLLATE "C", module COLLATE "C", model COLLATE "C"
	ON CONFLICT (bill_id, module, model, slot) DO UPDATE SET tokens = t.tokens + excluded.tokens,
		points = t.points + excluded.points
)
SELECT i.n, o.n IS NOT NULL, r.id IS NOT NULL
FROM input i LEFT JOIN ok o ON o.n = i.n LEFT JOIN rec r ON r.id = i.id`

// recordBatch writes batch in one statement (see batchSQL), setting each
// record's own answer in errs; the error is the statement's.
func (s *Store) recordBatch(ctx context.Context, batch []*pending, errs []error) error {
	n := len(batch)
	var (
		ids, teams, keys, apps, shares, datasets = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		bills, sources, modules, models          = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		in, out                                  = make([]int64, n), make([]int64, n)
		points                                   = make([]float64, n)
		times                                    = make([]time.Time, n)
	)
	for i, p := range batch {
		r := &p.r
		ids[i], teams[i], keys[i], apps[i], shares[i], datasets[i] = r.ID, r.TeamID, r.KeyID, r.AppID, r.ShareID, r.DatasetID
		bills[i], sources[i], modules[i], models[i] = r.BillID, r.Source, r.Module, r.Model
		in[i], out[i], points[i], times[i] = int64(r.InputTokens), int64(r.OutputTokens), r.Points, r.Time
	}
	rows, err := s.pool.Query(ctx, batchSQL, ids, teams, keys, apps, shares, datasets, bills, sources, modules, models,
		in, out, points, times, rand.IntN(slots))
	if err != nil {
		return err
	}
	answered := 0
	var num int64
	var billOK, stored bool
	_, err = pgx.ForEachRow(rows, []any{&num, &billOK, &stored}, func() error {
		if num < 1 || num > int64(n) {
			return fmt.Errorf("answer for record %d of %d", num, n)
		}
		switch {
		case !billOK:
			errs[num-1] = billing.ErrBillNotFound
		case !stored:
			errs[num-1] = billing.ErrDuplicate
		}
		answered++
		return nil
	})
	if err == nil && answered != n {
		err = fmt.Errorf("%d answers for %d records", answered, n)
	}
	return err
}
