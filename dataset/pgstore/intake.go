package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/dataset"
)

// itemDoc is what a training item's doc holds: the item less its queue
// state, which has columns of its own.
func itemDoc(it *dataset.TrainingItem) ([]byte, error) {
	c := *it
	c.Attempts, c.NextAttempt, c.LastError, c.Failed = 0, time.Time{}, "", false
	return json.Marshal(&c)
}

// intake is a batch of items to queue, as the arrays enqueueSQL unnests.
type intake struct {
	ids, datasets, colls, docs, lastErrors []string
	hashes                                 [][]byte
	attempts                               []int32
	next                                   []time.Time
	nextNS                                 []int16
	failed                                 []bool
	pos                                    []int // each item's position in the caller's items
}

// newIntake stages items, leaving out (as repeats) those whose q an
// earlier item of the batch has in the same collection.
func newIntake(items []*dataset.TrainingItem) (*intake, []int, error) {
	in := &intake{}
	var repeats []int
	seen := map[string]bool{}
	for i, it := range items {
		h := qhash(it.Q)
		if k := it.CollectionID + "\x00" + string(h); seen[k] {
			repeats = append(repeats, i)
			continue
		} else {
			seen[k] = true
		}
		doc, err := itemDoc(it)
		if err != nil {
			return nil, nil, err
		}
		at, ns := split(it.NextAttempt)
		in.ids, in.datasets, in.colls = append(in.ids, it.ID), append(in.datasets, it.DatasetID), append(in.colls, it.CollectionID)
		in.docs, in.lastErrors, in.hashes = append(in.docs, string(doc)), append(in.lastErrors, it.LastError), append(in.hashes, h)
		in.attempts, in.next, in.nextNS = append(in.attempts, int32(it.Attempts)), append(in.next, at), append(in.nextNS, ns)
		in.failed, in.pos = append(in.failed, it.Failed), append(in.pos, i)
	}
	return in, repeats, nil
}

// enqueueSQL takes the q of each item whose q its collection does not
// hold yet, in key order (so that replicas pushing the same qs at once
// wait for one another instead of deadlocking), and queues those items.
// It returns the ids queued. The foreign keys fail it when a collection
// is gone.
const enqueueSQL = `WITH u AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int[], $6::timestamptz[],
			$7::smallint[], $8::text[], $9::boolean[], $10::text[])
			AS u(id, dataset_id, collection_id, qhash, attempts, next_attempt, next_ns, last_error, failed, doc)),
	k AS (INSERT INTO dataset_qkeys (collection_id, qhash, owner)
		SELECT collection_id, qhash, id FROM u ORDER BY collection_id, qhash
		ON CONFLICT DO NOTHING RETURNING owner)
	INSERT INTO dataset_training (id, dataset_id, collection_id, qhash, attempts, next_attempt, next_ns, last_error, failed, doc)
	SELECT id, dataset_id, collection_id, qhash, attempts, next_attempt, next_ns, last_error, failed, doc::json
	FROM u WHERE id IN (SELECT owner FROM k)
	RETURNING id`

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// enqueue runs enqueueSQL on q and returns the repeats: the items of
// the batch it did not queue, and those newIntake left out.
func (in *intake) enqueue(ctx context.Context, q querier, early []int) ([]int, error) {
	if len(in.ids) == 0 {
		return early, nil
	}
	rows, err := q.Query(ctx, enqueueSQL, in.ids, in.datasets, in.colls, in.hashes, in.attempts, in.next,
		in.nextNS, in.lastErrors, in.failed, in.docs)
	if err != nil {
		return nil, err
	}
	queued, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	got := make(map[string]bool, len(queued))
	for _, id := range queued {
		got[id] = true
	}
	repeats := early
	for i, id := range in.ids {
		if !got[id] {
			repeats = append(repeats, in.pos[i])
		}
	}
	slices.Sort(repeats)
	return repeats, nil
}

// Enqueue implements dataset.TrainingIntake: one statement, hence one
// transaction.
func (s *Store) Enqueue(ctx context.Context, items []*dataset.TrainingItem) ([]int, error) {
	in, early, err := newIntake(items)
	if err != nil {
		return nil, err
	}
	var repeats []int
	err = retry(func() (err error) {
		repeats, err = in.enqueue(ctx, s.pool, early)
		return err
	})
	if pgCode(err) == codeForeignKey {
		return nil, dataset.ErrCollectionNotFound
	}
	if err != nil {
		return nil, fail("enqueue", err)
	}
	return repeats, nil
}

// CreateCollection implements dataset.TrainingIntake, in one transaction.
func (s *Store) CreateCollection(ctx context.Context, c *dataset.Collection, items []*dataset.TrainingItem) ([]int, error) {
	for i, it := range items {
		if it.CollectionID != c.ID || it.DatasetID != c.DatasetID || it.TeamID != c.TeamID {
			return nil, fmt.Errorf("dataset: CreateCollection item %d belongs to collection %q of dataset %q, not %q of %q",
				i, it.CollectionID, it.DatasetID, c.ID, c.DatasetID)
		}
	}
	in, early, err := newIntake(items)
	if err != nil {
		return nil, err
	}
	var repeats []int
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, putCollectionSQL, collectionArgs(c, false)...)
		if err != nil {
			return err
		}
		stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(stored) == 0 {
			return dataset.ErrCollectionExists
		}
		repeats, err = in.enqueue(ctx, tx, early)
		return err
	})
	switch {
	case err == dataset.ErrCollectionExists:
		return nil, err
	case pgCode(err) == codeForeignKey:
		return nil, dataset.ErrDatasetNotFound
	case err != nil:
		return nil, fail("create collection "+c.ID, err)
	}
	return repeats, nil
}

// TrainingCounts implements dataset.TrainingProgress.
func (s *Store) TrainingCounts(ctx context.Context, collectionID string) (queued, failed int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT failed), count(*) FILTER (WHERE failed)
		FROM dataset_training WHERE collection_id = $1`, collectionID).Scan(&queued, &failed)
	if err != nil {
		return 0, 0, fail("training counts of collection "+collectionID, err)
	}
	return queued, failed, nil
}

// TrainingFailures implements dataset.TrainingProgress.
func (s *Store) TrainingFailures(ctx context.Context, collectionID string, limit int) ([]*dataset.TrainingItem, error) {
	return all(ctx, s, scanItem, "training failures of collection "+collectionID,
		`SELECT `+itemColumns+` FROM dataset_training WHERE collection_id = $1 AND failed ORDER BY id LIMIT $2`, collectionID, max(limit, 0))
}

// TrainingItems implements dataset.TrainingLister.
func (s *Store) TrainingItems(ctx context.Context, collectionID string) ([]*dataset.TrainingItem, error) {
	return all(ctx, s, scanItem, "training items of collection "+collectionID,
		`SELECT `+itemColumns+` FROM dataset_training WHERE collection_id = $1 ORDER BY id`, collectionID)
}
