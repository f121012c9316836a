package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatgate/chatgate/dataset"
)

// scanDataset reads a row of datasetColumns.
func scanDataset(row pgx.Row) (*dataset.Dataset, error) {
	var (
		d       dataset.Dataset
		ns, uns int16
		updated *time.Time
	)
	if err := row.Scan(&d.ID, &d.TeamID, &d.Name, &d.VectorModel, &d.CreateTime, &ns,
		&d.Intro, &d.Avatar, &updated, &uns, &d.AgentModel); err != nil {
		return nil, err
	}
	d.CreateTime, d.UpdateTime = joined(d.CreateTime, ns), joinedOrZero(updated, uns)
	return &d, nil
}

const datasetColumns = `id, team_id, name, vector_model, create_time, create_ns, intro, avatar, update_time, update_ns, agent_model`

// PutDataset implements dataset.DatasetStore.
func (s *Store) PutDataset(ctx context.Context, d *dataset.Dataset) error {
	at, ns := split(d.CreateTime)
	upd, uns := splitOrNull(d.UpdateTime)
	return s.exec(ctx, "put dataset "+d.ID, `INSERT INTO dataset_datasets (`+datasetColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, name = excluded.name,
			vector_model = excluded.vector_model, create_time = excluded.create_time, create_ns = excluded.create_ns,
			intro = excluded.intro, avatar = excluded.avatar, update_time = excluded.update_time, update_ns = excluded.update_ns,
			agent_model = excluded.agent_model`,
		d.ID, d.TeamID, d.Name, d.VectorModel, at, ns, d.Intro, d.Avatar, upd, uns, d.AgentModel)
}

// UpdateDataset implements dataset.DatasetStore: the row is locked, read,
// changed by fn and written back in one transaction.
func (s *Store) UpdateDataset(ctx context.Context, id string, fn func(*dataset.Dataset) error) (*dataset.Dataset, error) {
	var d *dataset.Dataset
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanDataset(tx.QueryRow(ctx, `SELECT `+datasetColumns+` FROM dataset_datasets WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return dataset.ErrDatasetNotFound
		}
		if err != nil {
			return err
		}
		d = new(dataset.Dataset)
		*d = *old
		if err := fn(d); err != nil {
			return errFn{err}
		}
		d.ID, d.TeamID = old.ID, old.TeamID
		at, ns := split(d.CreateTime)
		upd, uns := splitOrNull(d.UpdateTime)
		_, err = tx.Exec(ctx, `UPDATE dataset_datasets SET name = $2, vector_model = $3, create_time = $4, create_ns = $5,
			intro = $6, avatar = $7, update_time = $8, update_ns = $9, agent_model = $10 WHERE id = $1`,
			id, d.Name, d.VectorModel, at, ns, d.Intro, d.Avatar, upd, uns, d.AgentModel)
		return err
	})
	if err != nil {
		return nil, unwrapFn(err, dataset.ErrDatasetNotFound, "update dataset "+id)
	}
	return d, nil
}

// Dataset implements dataset.DatasetStore.
func (s *Store) Dataset(ctx context.Context, id string) (*dataset.Dataset, error) {
	return one(ctx, s, scanDataset, dataset.ErrDatasetNotFound, "dataset "+id,
		`SELECT `+datasetColumns+` FROM dataset_datasets WHERE id = $1`, id)
}

// Datasets implements dataset.DatasetStore.
func (s *Store) Datasets(ctx context.Context, teamID string) ([]*dataset.Dataset, error) {
	return all(ctx, s, scanDataset, "datasets of team "+teamID,
		`SELECT `+datasetColumns+` FROM dataset_datasets WHERE team_id = $1 ORDER BY create_time, create_ns, id`, teamID)
}

// AllDatasets implements dataset.DatasetLister.
func (s *Store) AllDatasets(ctx context.Context) ([]*dataset.Dataset, error) {
	return all(ctx, s, scanDataset, "datasets",
		`SELECT `+datasetColumns+` FROM dataset_datasets ORDER BY create_time, create_ns, id`)
}

// DeleteDataset implements dataset.DatasetStore, in one transaction: the
// dataset and its collections are locked first, so that writers into them
// finish before and fail after; then everything they hold goes, each data
// item with a change for the feed, and a last change tells the replicas
// the dataset is gone.
func (s *Store) DeleteDataset(ctx context.Context, id string) error {
	var n int64
	err := retry(func() error {
		b := &pgx.Batch{}
		b.Queue(`SELECT id FROM dataset_datasets WHERE id = $1 FOR UPDATE`, id)
		b.Queue(`SELECT id FROM dataset_collections WHERE dataset_id = $1 ORDER BY id FOR UPDATE`, id)
		colls := `(SELECT id FROM dataset_collections WHERE dataset_id = $1)`
		b.Queue(`DELETE FROM dataset_training WHERE collection_id IN `+colls, id)
		b.Queue(deleteDataSQL(`collection_id IN `+colls, "id"), id)
		b.Queue(`DELETE FROM dataset_qkeys WHERE collection_id IN `+colls, id)
		b.Queue(`DELETE FROM dataset_collections WHERE dataset_id = $1`, id)
		b.Queue(`INSERT INTO dataset_changes (dataset_id, data_id) SELECT id, NULL FROM dataset_datasets WHERE id = $1`, id)
		b.Queue(`DELETE FROM dataset_datasets WHERE id = $1`, id).Exec(func(tag pgconn.CommandTag) error {
			n = tag.RowsAffected()
			return nil
		})
		b.Queue(notifySQL)
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fail("delete dataset "+id, err)
	}
	if n == 0 {
		return dataset.ErrDatasetNotFound
	}
	return nil
}

const collectionColumns = `id, team_id, dataset_id, name, type, training_type, chunk_size, create_time, create_ns,
	tags, update_time, update_ns, raw_link`

func scanCollection(row pgx.Row) (*dataset.Collection, error) {
	var (
		c       dataset.Collection
		mode    string
		ns, uns int16
		updated *time.Time
	)
	if err := row.Scan(&c.ID, &c.TeamID, &c.DatasetID, &c.Name, &c.Type, &mode, &c.ChunkSize, &c.CreateTime, &ns,
		&c.Tags, &updated, &uns, &c.RawLink); err != nil {
		return nil, err
	}
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	c.TrainingType, c.CreateTime, c.UpdateTime = dataset.TrainingMode(mode), joined(c.CreateTime, ns), joinedOrZero(updated, uns)
	return &c, nil
}

// putCollectionSQL stores a collection; $14 says whether one with its id
// is replaced (PutCollection) or kept (CreateCollection, which then
// returns no row).
const putCollectionSQL = `INSERT INTO dataset_collections (` + collectionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, dataset_id = excluded.dataset_id,
		name = excluded.name, type = excluded.type, training_type = excluded.training_type,
		chunk_size = excluded.chunk_size, create_time = excluded.create_time, create_ns = excluded.create_ns,
		tags = excluded.tags, update_time = excluded.update_time, update_ns = excluded.update_ns,
		raw_link = excluded.raw_link
	WHERE $14::boolean
	RETURNING id`

func collectionArgs(c *dataset.Collection, replace bool) []any {
	at, ns := split(c.CreateTime)
	upd, uns := splitOrNull(c.UpdateTime)
	return []any{c.ID, c.TeamID, c.DatasetID, c.Name, c.Type, string(c.TrainingType), c.ChunkSize, at, ns,
		tags(c.Tags), upd, uns, c.RawLink, replace}
}

// tags is a collection's tags as their column takes them: never NULL.
func tags(ts []string) []string {
	if ts == nil {
		return []string{}
	}
	return ts
}

// PutCollection implements dataset.CollectionStore. The collection's
// foreign key holds its dataset while it is written, so that a dataset
// deleted meanwhile, through any replica, answers ErrDatasetNotFound.
func (s *Store) PutCollection(ctx context.Context, c *dataset.Collection) error {
	_, err := s.pool.Exec(ctx, putCollectionSQL, collectionArgs(c, true)...)
	if pgCode(err) == codeForeignKey {
		return dataset.ErrDatasetNotFound
	}
	if err != nil {
		return fail("put collection "+c.ID, err)
	}
	return nil
}

// UpdateCollection implements dataset.CollectionStore as UpdateDataset
// updates a dataset.
func (s *Store) UpdateCollection(ctx context.Context, id string, fn func(*dataset.Collection) error) (*dataset.Collection, error) {
	var c *dataset.Collection
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanCollection(tx.QueryRow(ctx, `SELECT `+collectionColumns+` FROM dataset_collections WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return dataset.ErrCollectionNotFound
		}
		if err != nil {
			return err
		}
		c = new(dataset.Collection)
		*c = *old
		c.Tags = slices.Clone(old.Tags)
		if err := fn(c); err != nil {
			return errFn{err}
		}
		c.ID, c.TeamID, c.DatasetID = old.ID, old.TeamID, old.DatasetID
		at, ns := split(c.CreateTime)
		upd, uns := splitOrNull(c.UpdateTime)
		_, err = tx.Exec(ctx, `UPDATE dataset_collections SET name = $2, type = $3, training_type = $4, chunk_size = $5,
			create_time = $6, create_ns = $7, tags = $8, update_time = $9, update_ns = $10, raw_link = $11 WHERE id = $1`,
			id, c.Name, c.Type, string(c.TrainingType), c.ChunkSize, at, ns, tags(c.Tags), upd, uns, c.RawLink)
		return err
	})
	if err != nil {
		return nil, unwrapFn(err, dataset.ErrCollectionNotFound, "update collection "+id)
	}
	return c, nil
}

// errFn carries the error of an update's fn out of its transaction, to be
// returned as it is.
type errFn struct{ err error }

func (e errFn) Error() string { return e.err.Error() }

// unwrapFn is the error an update returns for err: fn's own, missing, or
// a failure of op.
func unwrapFn(err, missing error, op string) error {
	var fe errFn
	switch {
	case errors.As(err, &fe):
		return fe.err
	case errors.Is(err, missing):
		return missing
	}
	return fail(op, err)
}

// Collections implements dataset.CollectionStore.
func (s *Store) Collections(ctx context.Context, datasetID string) ([]*dataset.Collection, error) {
	return all(ctx, s, scanCollection, "collections of dataset "+datasetID,
		`SELECT `+collectionColumns+` FROM dataset_collections WHERE dataset_id = $1 ORDER BY create_time, create_ns, id`, datasetID)
}

// Collection implements dataset.CollectionStore.
func (s *Store) Collection(ctx context.Context, id string) (*dataset.Collection, error) {
	return one(ctx, s, scanCollection, dataset.ErrCollectionNotFound, "collection "+id,
		`SELECT `+collectionColumns+` FROM dataset_collections WHERE id = $1`, id)
}

// DeleteCollection implements dataset.CollectionStore, in one round trip
// and one transaction that first locks the collection (see
// DeleteDataset).
func (s *Store) DeleteCollection(ctx context.Context, id string) ([]string, error) {
	return s.deleteWith(ctx, "delete collection "+id, dataset.ErrCollectionNotFound, id,
		`SELECT id FROM dataset_collections WHERE id = $1 FOR UPDATE`,
		[]string{`DELETE FROM dataset_training WHERE collection_id = $1`},
		`collection_id = $1`,
		[]string{`DELETE FROM dataset_qkeys WHERE collection_id = $1`, `DELETE FROM dataset_collections WHERE id = $1`})
}

// DeleteCollections implements dataset.CollectionStore, in one
// transaction that first locks every collection (in id order, as
// DeleteDataset locks them), so that a missing one is seen before
// anything is removed.
func (s *Store) DeleteCollections(ctx context.Context, ids []string) (map[string][]string, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var removed map[string][]string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		removed = map[string][]string{}
		tag, err := tx.Exec(ctx, `SELECT id FROM dataset_collections WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ids)) {
			return dataset.ErrCollectionNotFound
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM dataset_training WHERE collection_id = ANY($1)`, ids)
		b.Queue(deleteDataSQL(`collection_id = ANY($1)`, "dataset_id, id"), ids).Query(func(rows pgx.Rows) error {
			var ds, id string
			_, err := pgx.ForEachRow(rows, []any{&ds, &id}, func() error {
				removed[ds] = append(removed[ds], id)
				return nil
			})
			return err
		})
		b.Queue(`DELETE FROM dataset_qkeys WHERE collection_id = ANY($1)`, ids)
		b.Queue(`DELETE FROM dataset_collections WHERE id = ANY($1)`, ids)
		b.Queue(notifySQL)
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, dataset.ErrCollectionNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fail(fmt.Sprintf("delete %d collections", len(ids)), err)
	}
	return removed, nil
}

// deleteWith runs, in one batch (so one transaction), lock, which finds
// the record id names or not, the statements before, deleteDataSQL(where),
// the statements after, and the notification; each statement takes id as
// $1. It returns the vectors removed, or missing when lock found nothing.
func (s *Store) deleteWith(ctx context.Context, op string, missing error, id, lock string, before []string, where string, after []string) ([]string, error) {
	var (
		found   bool
		removed []string
	)
	err := retry(func() error {
		b := &pgx.Batch{}
		b.Queue(lock, id).Exec(func(tag pgconn.CommandTag) error {
			found = tag.RowsAffected() > 0
			return nil
		})
		for _, sql := range before {
			b.Queue(sql, id)
		}
		b.Queue(deleteDataSQL(where, "id"), id).Query(func(rows pgx.Rows) (err error) {
			removed, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		for _, sql := range after {
			b.Queue(sql, id)
		}
		b.Queue(notifySQL)
		return s.pool.SendBatch(ctx, b).Close()
	})
	switch {
	case err != nil:
		return nil, fail(op, err)
	case !found:
		return nil, missing
	case removed == nil:
		return []string{}, nil
	}
	return removed, nil
}

// deleteDataSQL deletes the data matching where (of $1) with their
// vectors and q keys, writes a change for each, and returns the columns
// of the vectors removed (id, or "dataset_id, id").
func deleteDataSQL(where, returning string) string {
	return `WITH d AS (DELETE FROM dataset_data WHERE ` + where + ` RETURNING id, dataset_id, collection_id, qhash),
	v AS (DELETE FROM dataset_vectors WHERE data_id IN (SELECT id FROM d) RETURNING data_id, id, dataset_id),
	k AS (DELETE FROM dataset_qkeys q USING d WHERE q.collection_id = d.collection_id AND q.qhash = d.qhash AND q.owner = d.id),
	c AS (INSERT INTO dataset_changes (dataset_id, data_id, removed)
		SELECT d.dataset_id, d.id, coalesce(g.ids, '{}') FROM d
		LEFT JOIN (SELECT data_id, array_agg(id) AS ids FROM v GROUP BY data_id) g ON g.data_id = d.id)
	SELECT ` + returning + ` FROM v`
}
